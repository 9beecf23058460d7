"""Validation examples in TensorBoard: spectrograms and audio of a few grid clips."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from crn_lightning.enhancer import Enhancer
from crn_lightning.examples import enhance_grid
from crn_lightning.viz import spectrogram_figure

if TYPE_CHECKING:
    from crn_lightning.data.datamodule import ArcticDemandDataModule


def example_indices(count: int, examples: int) -> list[int]:
    """``examples`` grid indices spread evenly over a grid of ``count`` items."""
    return sorted({round(x) for x in np.linspace(0, count - 1, examples)})


def log_validation_examples(
    writer: SummaryWriter,
    enhancer: Enhancer,
    datamodule: ArcticDemandDataModule,
    examples: int,
    step: int,
    with_inputs: bool,
) -> None:
    """Noisy / enhanced / clean spectrograms and the enhanced audio of ``examples`` validation
    clips at ``step``; ``with_inputs``: the noisy and clean audio too (they never change, so
    once is enough)."""
    indices = example_indices(len(datamodule.datasets["val"]), examples)
    batch = enhance_grid(enhancer, datamodule, "val", indices)
    rate = enhancer.sample_rate
    for j, index in enumerate(indices):
        fig = spectrogram_figure(
            {
                "noisy": batch["noisy_mag"][j],
                "enhanced": batch["enhanced_mag"][j],
                "clean": batch["clean_mag"][j],
            },
            rate,
            enhancer.stft.hop_length,
            title=f"validation clip {index}: {datamodule.describe('val', index)} (step {step})",
        )
        writer.add_figure(f"val_examples/clip{j}_spectrograms", fig, step)
        writer.add_audio(f"val_examples/clip{j}_enhanced", batch["enhanced"][j].cpu(), step, rate)
        if with_inputs:
            for kind in ("noisy", "clean"):
                writer.add_audio(f"val_examples/clip{j}_{kind}", batch[kind][j].cpu(), step, rate)
