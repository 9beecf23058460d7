"""The fixed validation and test grids: every utterance × environment × SNR, seeded offsets."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from crn_lightning.data.noise import NoiseRegion, draw_audible_offset, window_is_audible

T = TypeVar("T")


@dataclass(frozen=True)
class GridItem:
    utterance: int
    environment: int
    snr_db: float
    noise_offset: int


def full_length_start(noise_offset: int, speech_samples: int, region_samples: int) -> int:
    """Where an item's full-length noise starts (``GridMixtures.mixture(full_length=True)``):
    at its offset, moved back if the whole utterance would run past the region."""
    return min(noise_offset, region_samples - speech_samples)


def _full_length_audible(region: NoiseRegion, speech_samples: int) -> Callable[[int], bool]:
    """Whether the full-length noise of an item at an offset is audible too (evaluation mixes
    whole utterances). An utterance longer than the region has no full-length mixture."""

    def audible(offset: int) -> bool:
        if speech_samples > len(region.audio):
            return True
        start = full_length_start(offset, speech_samples, len(region.audio))
        return window_is_audible(region.audio, start, speech_samples)

    return audible


def grid_subset(items: Sequence[T], subset: int | None, seed: int) -> list[T]:
    """A fixed, seeded subset of ``subset`` items in grid order (all of them for None)."""
    if subset is None or subset >= len(items):
        return list(items)
    keep = np.sort(np.random.default_rng([seed, 1]).choice(len(items), subset, replace=False))
    return [items[i] for i in keep]


def build_grid(
    speech_lengths: Sequence[int],
    noise: Sequence[NoiseRegion],
    snrs_db: Sequence[float],
    clip_samples: int,
    seed: int,
    subset: int | None = None,
) -> tuple[list[GridItem], int]:
    """Every utterance (of ``speech_lengths`` samples) × environment × SNR with a seeded noise
    offset whose clip and full-length windows are audible; optionally a fixed, seeded subset
    (the same every epoch). Returns (items, offsets redrawn off silence for those items)."""
    rng = np.random.default_rng(seed)
    drawn = []
    for u, e, snr in itertools.product(range(len(speech_lengths)), range(len(noise)), snrs_db):
        full_length = _full_length_audible(noise[e], speech_lengths[u])
        offset, redraws = draw_audible_offset(rng, noise[e], clip_samples, full_length)
        drawn.append((GridItem(u, e, float(snr), offset), redraws))
    kept = grid_subset(drawn, subset, seed)
    return [item for item, _ in kept], sum(redraws for _, redraws in kept)
