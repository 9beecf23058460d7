"""Enhanced examples from a data module's grid: the clips TensorBoard, the notebooks and the
README figure show."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch.utils.data import default_collate

from crn_lightning.enhancer import Enhancer

if TYPE_CHECKING:
    from crn_lightning.data.datamodule import ArcticDemandDataModule


@torch.no_grad()
def enhance_grid(
    enhancer: Enhancer, datamodule: ArcticDemandDataModule, stage: str, indices: Sequence[int]
) -> dict[str, torch.Tensor]:
    """Items ``indices`` of the data module's ``stage`` grid as one batch on the enhancer's
    device (waveforms, magnitudes, SNRs...), with the enhanced magnitude and waveform added
    as ``enhanced_mag`` and ``enhanced``."""
    dataset = datamodule.datasets[stage]
    batch = default_collate([dataset[i] for i in indices])
    device = enhancer.device
    batch = datamodule.on_after_batch_transfer({k: v.to(device) for k, v in batch.items()}, 0)
    _, batch["enhanced_mag"], batch["enhanced"] = enhancer.enhance_spectrum(
        batch["noisy_mag"], batch["noisy_phase"], batch["noisy"].shape[-1]
    )
    return batch
