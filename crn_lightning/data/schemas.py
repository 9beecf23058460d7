"""Schemas of the data groups ``data=pairs`` and ``data=folders`` and of the mixing keys
``data=arctic_demand`` shares (see crn_lightning/config.py: names and types only; the values
live in conf/data/)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING


@dataclass
class PairsConfig:
    _target_: str = "crn_lightning.data.pairs_datamodule.PairsDataModule"
    _convert_: str = "all"
    root: str = MISSING
    test_root: str | None = MISSING
    speaker_pattern: str = MISSING
    val_speakers: list[str] | None = MISSING
    test_speakers: list[str] | None = MISSING
    resample_dir: str | None = MISSING
    max_bad_pairs: int = MISSING
    snr_bin_db: float = MISSING
    sample_rate: int = MISSING
    train_clip_seconds: float = MISSING
    epoch_length: int | None = MISSING
    val_subset: int | None = MISSING
    batch_size: int = MISSING
    num_workers: int = MISSING
    seed: int = MISSING


@dataclass
class MixingConfig:
    """The mixing keys of ``data=arctic_demand`` and ``data=folders``
    (crn_lightning.data.mixing_datamodule), but ``split``, whose values differ in type."""

    max_utterance_seconds: float = MISSING
    max_bad_utterances: int = MISSING
    split_by: str = MISSING
    val_speakers: list[str] | None = MISSING
    test_speakers: list[str] | None = MISSING
    noise_split: list[float] = MISSING
    max_silent_noise_fraction: float = MISSING
    snr_db: list[float] = MISSING
    test_snr_db: list[float] | None = MISSING
    train_snr_range_db: list[float] | None = MISSING
    augment: dict[str, Any] = MISSING
    sample_rate: int = MISSING
    clip_seconds: float = MISSING
    train_clip_seconds: float | None = MISSING
    epoch_length: int | None = MISSING
    val_subset: int | None = MISSING
    batch_size: int = MISSING
    eval_batch_size: int | None = MISSING
    num_workers: int = MISSING
    seed: int = MISSING


@dataclass
class FoldersSplitConfig:
    train: int | None = MISSING
    val: int | None = MISSING
    test: int | None = MISSING


@dataclass
class FoldersConfig(MixingConfig):
    _target_: str = "crn_lightning.data.folders_datamodule.FoldersDataModule"
    _convert_: str = "all"
    speech_dirs: list[str] = MISSING
    noise_dirs: list[str] = MISSING
    speaker_pattern: str | None = MISSING
    resample_dir: str | None = MISSING
    split: FoldersSplitConfig = field(default_factory=FoldersSplitConfig)
