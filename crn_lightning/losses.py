"""The training loss, in one place: training, validation, test and evaluate all use it."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def enhancement_loss(
    estimate: torch.Tensor, target: torch.Tensor, per_clip: bool = False
) -> torch.Tensor:
    """Mean squared error between the ``Enhancer``'s estimate and its ``target`` of the clean
    speech (both (B, F, T)): the batch mean, or with ``per_clip`` one value per clip (B,)."""
    if per_clip:
        return (estimate - target).pow(2).mean(dim=tuple(range(1, estimate.dim())))
    return F.mse_loss(estimate, target)
