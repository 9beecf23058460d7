"""On-the-fly mixing of speech utterances with noise recordings: the data module that
``data=arctic_demand`` (crn_lightning.data.datamodule) and ``data=folders``
(crn_lightning.data.folders_datamodule) are, once each has found its files.

The pieces: ``corpora`` chooses each split's utterances, ``utterances`` reads them, ``noise``
splits the noise recordings by time, ``grids`` fixes the validation and test items,
``mixtures`` holds the datasets and ``samplers`` the loaders' sampler.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from crn_lightning.data.corpora import STAGES, assign_speakers, check_split_settings
from crn_lightning.data.corpus_choice import SpeakerSplit
from crn_lightning.data.mixtures import TrainMixtures, grid_mixtures
from crn_lightning.data.noise import (
    NoiseRegion,
    check_noise_settings,
    load_noise_regions,
    silent_fractions,
)
from crn_lightning.data.speech_datamodule import SpeechDataModule
from crn_lightning.data.utterances import LoadedUtterance, load_utterances
from crn_lightning.errors import ConfigError
from crn_lightning.stft import STFT

# Utterances per split: the report's 300/99/8 of ARCTIC bdl + slt.
DEFAULT_SPLIT = MappingProxyType({"train": 300, "val": 99, "test": 8})


class MixingDataModule(SpeechDataModule):
    """Utterances of speakers mixed on the fly with noise recordings at set SNRs.

    Training draws fresh mixtures every epoch; validation and test are fixed, seeded grids.
    Each noise recording is split by time into train/val/test regions so evaluation never
    hears noise used in training. Subclasses find the files and call ``mix`` in ``setup``.

    The keyword arguments are the mixing keys of both configs (``data.*``), here once: a
    subclass takes them as ``**mixing`` and passes them on, naming only the defaults it
    changes (``data=folders``: three). These defaults are ``conf/data/arctic_demand.yaml``'s,
    which documents each key (the report's protocol). The STFT runs on the batch's device in
    ``on_after_batch_transfer``.
    """

    def __init__(
        self,
        stft: STFT,
        *,
        max_utterance_seconds: float = 5.0,
        max_bad_utterances: int = 10,
        split: Mapping[str, int | None] = DEFAULT_SPLIT,
        split_by: str = "utterance",
        val_speakers: Sequence[str] | None = None,
        test_speakers: Sequence[str] | None = None,
        noise_split: Sequence[float] = (0.7, 0.15, 0.15),
        max_silent_noise_fraction: float = 0.5,
        snr_db: Sequence[float] = (15, 20, 25),
        test_snr_db: Sequence[float] | None = None,
        train_snr_range_db: Sequence[float] | None = None,
        augment: Mapping[str, Any] = MappingProxyType({}),
        sample_rate: int = 16000,
        clip_seconds: float = 4.0,
        train_clip_seconds: float | None = None,
        epoch_length: int | None = None,
        val_subset: int | None = None,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int = 2,
        seed: int = 0,
    ) -> None:
        super().__init__(stft, num_workers, seed)
        self.max_utterance_seconds = max_utterance_seconds
        self.max_bad_utterances = max_bad_utterances
        self.split, self.split_by = dict(split), split_by
        self.val_speakers, self.test_speakers = val_speakers, test_speakers
        self.noise_split = list(noise_split)
        self.max_silent_noise_fraction = max_silent_noise_fraction
        self.snr_db = [float(s) for s in snr_db]
        self.test_snr_db = [float(s) for s in (test_snr_db or snr_db)]
        self.train_snr_range_db = None
        if train_snr_range_db is not None:
            self.train_snr_range_db = [float(s) for s in train_snr_range_db]
        self.augment = dict(augment)
        self.sample_rate = sample_rate
        self.clip_samples = round(clip_seconds * sample_rate)
        self.train_clip_samples = round((train_clip_seconds or clip_seconds) * sample_rate)
        self.epoch_length, self.val_subset = epoch_length, val_subset
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self._check_settings()

    def _check_settings(self) -> None:
        """Refuse values that cannot work, naming the key, before any file is read."""
        check_split_settings(self.split, self.split_by, self.val_speakers, self.test_speakers)
        check_noise_settings(self.noise_split, self.max_silent_noise_fraction)
        if not self.snr_db:
            raise ConfigError("data.snr_db is empty: give at least one SNR in dB")
        snr_range = self.train_snr_range_db
        if snr_range is not None and (len(snr_range) != 2 or snr_range[0] > snr_range[1]):
            raise ConfigError(
                f"data.train_snr_range_db must be null or [low, high] with low <= high, got "
                f"{snr_range}"
            )
        if self.batch_size < 1:
            raise ConfigError(f"data.batch_size must be at least 1, got {self.batch_size}")

    def mix(
        self,
        files: Mapping[str, Sequence[Path]],
        speakers: Sequence[str],
        noise_files: Mapping[str, Path],
        reader: Callable[[Path], np.ndarray] | None = None,
        split: SpeakerSplit | None = None,
    ) -> tuple[dict[str, Any], list[tuple[Path, str]]]:
        """Read the utterances (``files`` by speaker; through ``reader`` when given, else at
        the data's rate) and the noise files (by environment, already at the data's rate when
        another ``reader`` is used), fill ``datasets``; returns what each split holds (for
        ``corpus_info``) and the utterance files skipped. ``split``: how to split (default:
        data.split_by with the named speakers; see corpus_choice.speaker_split)."""
        split = split or SpeakerSplit(self.split_by, self.val_speakers, self.test_speakers)
        utterances, skipped = self._read_utterances(files, speakers, reader, split)
        noise = load_noise_regions(
            noise_files,
            self.noise_split,
            self.sample_rate,
            {"train": self.train_clip_samples, "val": self.clip_samples, "test": self.clip_samples},
            self.max_silent_noise_fraction,
        )
        redraws = self._build_datasets(utterances, noise)
        return self._split_info(utterances, noise, redraws, skipped, split.split_by), skipped

    def _read_utterances(
        self,
        files: Mapping[str, Sequence[Path]],
        speakers: Sequence[str],
        reader: Callable[[Path], np.ndarray] | None,
        split: SpeakerSplit,
    ) -> tuple[dict[str, list[LoadedUtterance]], list[tuple[Path, str]]]:
        stage_speakers = None  # split by utterance: every split draws from every speaker
        if split.split_by == "speaker":
            stage_speakers = assign_speakers(speakers, split.val, split.test, self.seed)
        return load_utterances(
            files,
            self.split,
            stage_speakers,
            self.max_utterance_seconds,
            self.sample_rate,
            self.seed,
            self.max_bad_utterances,
            reader,
        )

    def _build_datasets(
        self,
        utterances: Mapping[str, list[LoadedUtterance]],
        noise: Mapping[str, list[NoiseRegion]],
    ) -> dict[str, int]:
        """Fills ``datasets``; returns how many grid offsets were redrawn off silent noise."""
        per_epoch = len(utterances["train"]) * len(self.environments) * len(self.snr_db)
        train = TrainMixtures(
            utterances["train"],
            noise["train"],
            self.snr_db,
            self.train_clip_samples,
            self.epoch_length or per_epoch,
            self.seed,
            self.train_snr_range_db,
            self.augment,
            self.sample_rate,
        )
        train[0]  # a mixing or data.augment error shows here, not in a worker mid-epoch
        self.datasets["train"], redraws = train, {}
        for stage, snrs, subset, seed in (
            ("val", self.snr_db, self.val_subset, self.seed + 1),
            ("test", self.test_snr_db, None, self.seed + 2),
        ):
            self.datasets[stage], redraws[stage] = grid_mixtures(
                utterances[stage], noise[stage], snrs, self.clip_samples, seed, subset
            )
        return redraws

    def _split_info(
        self,
        utterances: Mapping[str, list[LoadedUtterance]],
        noise: Mapping[str, list[NoiseRegion]],
        offset_redraws: Mapping[str, int],
        skipped: Sequence[tuple[Path, str]],
        split_by: str,
    ) -> dict[str, Any]:
        """What each split holds, for ``corpus_info`` (and so metrics.json)."""
        return {
            "environments": self.environments,
            "split_by": split_by,
            "stage_speakers": {s: sorted({u.speaker for u in utterances[s]}) for s in STAGES},
            "utterances": {stage: len(u) for stage, u in utterances.items()},
            "mixtures": {stage: len(d) for stage, d in self.datasets.items()},
            "snr_db": {
                "train": None if self.train_snr_range_db else self.snr_db,
                "val": self.snr_db,
                "test": self.test_snr_db,
            },
            "train_snr_range_db": self.train_snr_range_db,
            "augment": self.augment,
            "silent_noise_windows": silent_fractions(noise),
            "noise_offset_redraws": dict(offset_redraws),
            "skipped_files": [{"file": str(p), "reason": why} for p, why in skipped],
        }

    def describe(self, stage: str, index: int) -> str:
        """What item ``index`` of a validation or test grid is, e.g.
        'slt arctic_a0012 + NPARK at 5 dB'."""
        item = self.grid_item(stage, index)
        utterance = self.datasets[stage].utterances[item.utterance]
        environment = self.environments[item.environment]
        return f"{utterance.speaker} {utterance.name} + {environment} at {item.snr_db:g} dB"
