"""Validation examples in TensorBoard: spectrograms and audio of a few grid clips.

Each clip has one tag stem, e.g. ``val_examples/clip_050_slt_arctic_a0012_NPARK_5dB``: its
image (noisy / enhanced / clean stacked, one dB scale) under the stem, its audio under
``<stem>/1_noisy``, ``<stem>/2_enhanced``, ``<stem>/3_clean`` (TensorBoard sorts by tag:
the input first, the reference last), all at the validation's global step, the step its
scalars are logged at.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from crn_lightning.enhancer import Enhancer
from crn_lightning.examples import enhance_grid
from crn_lightning.viz import spectrogram_figure

if TYPE_CHECKING:
    from crn_lightning.data.speech_datamodule import SpeechDataModule

EXAMPLES_GROUP = "val_examples"
AUDIO_KINDS = ("noisy", "enhanced", "clean")  # the order they are shown in


def example_indices(count: int, examples: int) -> list[int]:
    """``examples`` grid indices spread evenly over a grid of ``count`` items."""
    return sorted({round(x) for x in np.linspace(0, count - 1, examples)})


def example_tag(index: int, description: str) -> str:
    """``val_examples/clip_050_slt_arctic_a0012_NPARK_5dB`` for clip 50 described as
    'slt arctic_a0012 + NPARK at 5 dB' (the data module's ``describe``)."""
    text = re.sub(r"(-?\d+(?:\.\d+)?) dB", r"\1dB", description)
    text = re.sub(r"\s*(?:\+|\bat\b)\s*|\s+", "_", text)
    text = re.sub(r"[^A-Za-z0-9_.=-]+", "", text).strip("_")
    return f"{EXAMPLES_GROUP}/clip_{index:03d}_{text}"


def audio_tag(stem: str, kind: str) -> str:
    return f"{stem}/{AUDIO_KINDS.index(kind) + 1}_{kind}"


def log_validation_examples(
    writer: SummaryWriter,
    enhancer: Enhancer,
    datamodule: SpeechDataModule,
    examples: int,
    step: int,
    with_inputs: bool,
) -> None:
    """The spectrograms and the enhanced audio of ``examples`` validation clips at ``step``;
    ``with_inputs``: the noisy and clean audio too (they never change, so once is enough)."""
    indices = example_indices(len(datamodule.datasets["val"]), examples)
    batch = enhance_grid(enhancer, datamodule, "val", indices)
    rate = enhancer.sample_rate
    for j, index in enumerate(indices):
        description = datamodule.describe("val", index)
        stem = example_tag(index, description)
        fig = spectrogram_figure(
            {kind: batch[f"{kind}_mag"][j] for kind in AUDIO_KINDS},
            rate,
            enhancer.stft.hop_length,
            # Two lines: one would be wider than the 640 px image.
            title=f"{stem.removeprefix(EXAMPLES_GROUP + '/')}\n{description}, step {step}",
            stacked=True,
        )
        writer.add_figure(stem, fig, step)
        for kind in AUDIO_KINDS if with_inputs else ("enhanced",):
            writer.add_audio(audio_tag(stem, kind), batch[kind][j].cpu(), step, rate)
