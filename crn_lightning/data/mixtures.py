"""The datasets: training mixtures drawn fresh from a seed and an index, and the fixed grids."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from crn_lightning.augment import augment_training_pair
from crn_lightning.data.grids import GridItem, build_grid, full_length_start
from crn_lightning.data.noise import NoiseRegion, draw_audible_offset
from crn_lightning.data.utterances import LoadedUtterance
from crn_lightning.mixing import mix_at_snr, prevent_clipping

log = logging.getLogger(__name__)


def fit_length(audio: np.ndarray, length: int, start: int = 0) -> np.ndarray:
    """``length`` samples of ``audio`` from ``start``, zero-padded at the end when short."""
    clip = audio[start : start + length]
    if len(clip) < length:
        padded = np.zeros(length, dtype=audio.dtype)  # 4x faster than np.pad on a 4 s clip
        padded[: len(clip)] = clip
        clip = padded
    return clip


def mixture_example(
    noisy: np.ndarray, clean: np.ndarray, snr_db: float, environment: int, index: int
) -> dict[str, Any]:
    """One dataset item as the loaders collate it."""
    # NumPy scalars: default_collate makes one tensor of each per batch (float32, int64),
    # several times cheaper than a torch.tensor per clip.
    return {
        "noisy": torch.from_numpy(np.ascontiguousarray(noisy, dtype=np.float32)),
        "clean": torch.from_numpy(np.ascontiguousarray(clean, dtype=np.float32)),
        "snr_db": np.float32(snr_db),
        "environment": np.int64(environment),
        "index": np.int64(index),
    }


class _Mixtures(Dataset):
    """Utterances and noise regions, mixed into clips of ``clip_samples``."""

    def __init__(
        self,
        utterances: Sequence[LoadedUtterance],
        noise: Sequence[NoiseRegion],
        clip_samples: int,
    ) -> None:
        self.utterances, self.noise, self.clip_samples = list(utterances), list(noise), clip_samples

    @property
    def noise_regions(self) -> list[np.ndarray]:
        """The noise samples of each environment's region."""
        return [region.audio for region in self.noise]


class TrainMixtures(_Mixtures):
    """Random mixtures drawn from a seed and the index: utterance, crop, noise environment,
    audible noise offset and SNR (one of ``snrs_db``, or uniform in ``snr_range_db`` when
    given), mixed by ``augment_training_pair`` with ``augment`` options. Any non-negative
    index is valid (see ``ShardedSampler``)."""

    def __init__(
        self,
        utterances: Sequence[LoadedUtterance],
        noise: Sequence[NoiseRegion],
        snrs_db: Sequence[float],
        clip_samples: int,
        length: int,
        seed: int,
        snr_range_db: Sequence[float] | None = None,
        augment: Mapping[str, Any] | None = None,
        sample_rate: int = 16000,
    ) -> None:
        super().__init__(utterances, noise, clip_samples)
        self.snrs_db, self.length, self.seed = list(snrs_db), length, seed
        self.snr_range_db = None if snr_range_db is None else tuple(snr_range_db)
        self.augment, self.sample_rate = dict(augment or {}), sample_rate
        # Offsets redrawn off silent noise, per environment: in this process only (each
        # DataLoader worker counts its own draws); the first per file is also logged.
        self.offset_redraws: Counter[int] = Counter()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, index])
        speech = self.utterances[rng.integers(len(self.utterances))].audio
        start = int(rng.integers(max(1, len(speech) - self.clip_samples + 1)))
        env = int(rng.integers(len(self.noise)))
        offset, redraws = draw_audible_offset(rng, self.noise[env], self.clip_samples)
        if redraws:
            self._count_redraws(env, redraws)
        if self.snr_range_db is None:
            snr = float(self.snrs_db[rng.integers(len(self.snrs_db))])
        else:
            snr = float(rng.uniform(*self.snr_range_db))
        noisy, clean = augment_training_pair(
            fit_length(speech, self.clip_samples, start),
            self.noise[env].audio[offset : offset + self.clip_samples],
            snr,
            rng,
            self.sample_rate,
            **self.augment,
        )
        return mixture_example(noisy, clean, snr, env, index)

    def _count_redraws(self, env: int, redraws: int) -> None:
        if not self.offset_redraws[env]:
            log.warning(
                "%s: a training noise offset fell on a silent stretch and was redrawn "
                "(%.1f%% of its train region's clip windows are silent)",
                self.noise[env].file,
                100 * self.noise[env].silent_fraction,
            )
        self.offset_redraws[env] += redraws


class GridMixtures(_Mixtures):
    """A fixed grid: every utterance × environment × SNR, each with a seeded noise offset.
    Speech starts at the utterance's start and is cut or padded to the clip (the report)."""

    def __init__(
        self,
        utterances: Sequence[LoadedUtterance],
        noise: Sequence[NoiseRegion],
        items: Sequence[GridItem],
        clip_samples: int,
    ) -> None:
        super().__init__(utterances, noise, clip_samples)
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.mixture(index)

    def mixture(self, index: int, full_length: bool = False) -> dict[str, Any]:
        """Grid item ``index`` as a clip, or with ``full_length`` as the whole utterance mixed
        with the item's noise at the item's SNR (crn_lightning.evaluate). The full-length noise
        starts at the item's offset, moved back if the utterance would run past the region."""
        item = self.items[index]
        region = self.noise[item.environment].audio
        speech = self.utterances[item.utterance].audio
        if full_length:
            if len(speech) > len(region):
                raise ValueError(
                    f"utterance {self.utterances[item.utterance].name} ({len(speech)} samples) "
                    f"is longer than its noise region ({len(region)} samples)"
                )
            start = full_length_start(item.noise_offset, len(speech), len(region))
            noise = region[start : start + len(speech)]
        else:
            speech = fit_length(speech, self.clip_samples)
            noise = region[item.noise_offset : item.noise_offset + self.clip_samples]
        noisy, clean, _ = mix_at_snr(speech, noise, item.snr_db)
        noisy, clean = prevent_clipping(noisy, clean)
        return mixture_example(noisy, clean, item.snr_db, item.environment, index)


def grid_mixtures(
    utterances: Sequence[LoadedUtterance],
    noise: Sequence[NoiseRegion],
    snrs_db: Sequence[float],
    clip_samples: int,
    seed: int,
    subset: int | None = None,
) -> tuple[GridMixtures, int]:
    """A validation or test grid (see ``build_grid``) and how many of its noise offsets were
    redrawn off silent stretches."""
    speech_lengths = [len(u.audio) for u in utterances]
    items, redraws = build_grid(speech_lengths, noise, snrs_db, clip_samples, seed, subset)
    whole = len(utterances) * len(noise) * len(snrs_db)
    if len(items) < whole:
        log.info(
            "scoring a fixed, seeded subset of a grid: %d of %d mixtures (data.val_subset), "
            "the same every epoch",
            len(items),
            whole,
        )
    return GridMixtures(utterances, noise, items, clip_samples), redraws
