"""Enhanced examples from a data module's grid: the clips TensorBoard, the notebooks and the
README figure show."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch.utils.data import default_collate

from crn_lightning.enhancer import Enhancer

if TYPE_CHECKING:
    from crn_lightning.data.speech_datamodule import SpeechDataModule


@torch.no_grad()
def enhance_grid(
    enhancer: Enhancer, datamodule: SpeechDataModule, stage: str, indices: Sequence[int]
) -> dict[str, torch.Tensor]:
    """Items ``indices`` of the data module's ``stage`` grid as one batch on the enhancer's
    device (waveforms, magnitudes, SNRs...), with the enhanced magnitude and waveform added
    as ``enhanced_mag`` and ``enhanced``. Items of different lengths (whole utterances, as
    ``data=pairs`` validates on) are cut to the shortest of them, so that they stack."""
    dataset = datamodule.datasets[stage]
    items = [dataset[i] for i in indices]
    shortest = min(len(item["noisy"]) for item in items)
    for item in items:
        item["noisy"], item["clean"] = item["noisy"][:shortest], item["clean"][:shortest]
    batch = default_collate(items)
    device = enhancer.device
    batch = datamodule.on_after_batch_transfer({k: v.to(device) for k, v in batch.items()}, 0)
    _, batch["enhanced_mag"], batch["enhanced"] = enhancer.enhance_spectrum(
        batch["noisy_mag"], batch["noisy_phase"], batch["noisy"].shape[-1]
    )
    return batch
