"""Paired clean/noisy folders as a LightningDataModule (``data=pairs``).

Training takes random, sample-aligned crops of the pairs (fresh every epoch, read from disk);
validation and test score whole utterances, one per batch (their lengths differ, and padding
would enter the loss, SI-SDR and PESQ). Validation holds out whole speakers of the training
folder; the test set is another folder (VoiceBank+DEMAND's test set) or more held-out speakers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from torch.utils.data import Dataset

from crn_lightning.data.corpora import STAGES, assign_speakers
from crn_lightning.data.grids import grid_subset
from crn_lightning.data.mixtures import fit_length, mixture_example
from crn_lightning.data.pairs import Pair, binned_snr, pairs_of, scan_pairs
from crn_lightning.data.speakers import compile_speaker_pattern
from crn_lightning.data.speech_datamodule import SpeechDataModule
from crn_lightning.errors import ConfigError
from crn_lightning.stft import STFT

log = logging.getLogger(__name__)

# Pairs carry no noise label: one environment stands for all of them in the breakdowns.
UNLABELLED = "unlabelled noise"


def read_span(path: Path, start: int, frames: int) -> np.ndarray:
    """``frames`` samples of a mono file from ``start`` (fewer at its end), float32."""
    audio, _ = sf.read(str(path), start=start, frames=frames, dtype="float32")
    return audio


class TrainPairs(Dataset):
    """Random aligned crops: index → (pair, start) drawn from the seed and the index, the same
    span of the clean and of the noisy file, zero-padded at the end when the pair is shorter.
    Any non-negative index is valid (see ``ShardedSampler``)."""

    def __init__(self, pairs: Sequence[Pair], clip_samples: int, length: int, seed: int) -> None:
        self.pairs, self.clip_samples = list(pairs), clip_samples
        self.length, self.seed = length, seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, index])
        pair = self.pairs[rng.integers(len(self.pairs))]
        start = int(rng.integers(max(1, pair.samples - self.clip_samples + 1)))
        clean, noisy = (
            fit_length(read_span(path, start, self.clip_samples), self.clip_samples)
            for path in (pair.clean, pair.noisy)
        )
        return mixture_example(noisy, clean, pair.snr_db, 0, index)


@dataclass(frozen=True)
class PairItem:
    """A validation or test item: pair ``utterance`` of the split, labelled with its measured
    SNR rounded to ``data.snr_bin_db`` (``environment``: the one ``UNLABELLED``)."""

    utterance: int
    environment: int
    snr_db: float


class WholePairs(Dataset):
    """Whole pairs, fixed: every item is a full-length utterance."""

    def __init__(self, pairs: Sequence[Pair], snr_bin_db: float) -> None:
        self.utterances = list(pairs)
        self.items = [PairItem(i, 0, binned_snr(p.snr_db, snr_bin_db)) for i, p in enumerate(pairs)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.mixture(index)

    def mixture(self, index: int, full_length: bool = True) -> dict[str, Any]:
        """Item ``index``; a pair is always whole (``full_length`` is there for
        crn_lightning.evaluation, which asks the mixture grids for whole utterances)."""
        item = self.items[index]
        pair = self.utterances[item.utterance]
        clean, noisy = (read_span(path, 0, pair.samples) for path in (pair.clean, pair.noisy))
        return mixture_example(noisy, clean, item.snr_db, item.environment, index)


class PairsDataModule(SpeechDataModule):
    """Paired ``clean/`` + ``noisy/`` folders (same file names): ``root`` for training and
    validation, ``test_root`` (or held-out speakers of ``root``) for test. Speakers come from
    each name by ``speaker_pattern``; the splits are speaker-disjoint. Files at another rate
    are resampled once into ``resample_dir``. ``conf/data/pairs.yaml`` documents each key."""

    def __init__(
        self,
        stft: STFT,
        root: str,
        test_root: str | None = None,
        speaker_pattern: str = r"^([^_/]+)_",
        val_speakers: Sequence[str] | None = None,
        test_speakers: Sequence[str] | None = None,
        resample_dir: str | None = None,
        max_bad_pairs: int = 10,
        snr_bin_db: float = 5.0,
        sample_rate: int = 16000,
        train_clip_seconds: float = 2.0,
        epoch_length: int | None = None,
        val_subset: int | None = None,
        batch_size: int = 16,
        num_workers: int = 2,
        seed: int = 0,
    ) -> None:
        super().__init__(stft, num_workers, seed)
        self.root = Path(root)
        self.test_root = None if test_root is None else Path(test_root)
        self.speaker_pattern = compile_speaker_pattern(speaker_pattern, "data.speaker_pattern")
        if test_root is not None and test_speakers is not None:
            raise ConfigError(
                "data.test_speakers is set but so is data.test_root, which holds the test set: "
                "give one of them"
            )
        if snr_bin_db <= 0:
            raise ConfigError(f"data.snr_bin_db must be positive, got {snr_bin_db}")
        if batch_size < 1:
            raise ConfigError(f"data.batch_size must be at least 1, got {batch_size}")
        self.val_speakers, self.test_speakers = val_speakers, test_speakers
        self.resample_dir = None if resample_dir is None else Path(resample_dir)
        self.max_bad_pairs, self.snr_bin_db = max_bad_pairs, snr_bin_db
        self.sample_rate = sample_rate
        self.train_clip_samples = round(train_clip_seconds * sample_rate)
        self.epoch_length, self.val_subset = epoch_length, val_subset
        self.batch_size = batch_size
        self.eval_batch_size = 1  # whole utterances of different lengths
        self.environments = [UNLABELLED]

    def _scan(self, root: Path, key: str) -> tuple[list[Pair], list[tuple[Path, str]]]:
        return scan_pairs(
            root,
            key,
            self.speaker_pattern,
            self.sample_rate,
            self.resample_dir,
            self.max_bad_pairs,
        )

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        pairs, skipped = self._scan(self.root, "data.root")
        held_out = ("val",) if self.test_root is not None else ("val", "test")
        speakers = sorted({p.speaker for p in pairs})
        stage_speakers = assign_speakers(
            speakers,
            self.val_speakers,
            self.test_speakers,
            self.seed,
            speakers_from=f"the speakers data.speaker_pattern finds in {self.root}",
            held_out=held_out,
        )
        splits = {s: pairs_of(pairs, stage_speakers[s]) for s in ("train", *held_out)}
        if self.test_root is not None:
            splits["test"], test_skipped = self._scan(self.test_root, "data.test_root")
            stage_speakers["test"] = sorted({p.speaker for p in splits["test"]})
            skipped += test_skipped
            heard = sorted(set(stage_speakers["test"]) & set(speakers))
            if heard:  # allowed (a user's choice), but the test no longer measures new voices
                log.warning("data.test_root holds speakers of data.root too: %s", heard)
        splits["val"] = grid_subset(splits["val"], self.val_subset, self.seed)
        self.datasets = {
            "train": TrainPairs(
                splits["train"],
                self.train_clip_samples,
                self.epoch_length or len(splits["train"]),
                self.seed,
            ),
            "val": WholePairs(splits["val"], self.snr_bin_db),
            "test": WholePairs(splits["test"], self.snr_bin_db),
        }
        self.datasets["train"][0]  # a file that fails to read shows here, not mid-epoch
        self.corpus_info = {
            "kind": "pairs",
            "root": str(self.root),
            "test_root": None if self.test_root is None else str(self.test_root),
            "environments": self.environments,
            "split_by": "speaker",
            "stage_speakers": {s: stage_speakers[s] for s in STAGES},
            "utterances": {s: len(splits[s]) for s in STAGES},
            "mixtures": {s: len(d) for s, d in self.datasets.items()},
            "seconds": {s: sum(p.samples for p in splits[s]) / self.sample_rate for s in STAGES},
            "snr_bin_db": self.snr_bin_db,
            "skipped_files": [{"file": str(p), "reason": why} for p, why in skipped],
        }
        log.info(
            "corpus: pairs (%s%s); speakers %s; utterances %s; unusable files skipped: %d",
            self.root,
            f", test {self.test_root}" if self.test_root else "",
            self.corpus_info["stage_speakers"],
            self.corpus_info["utterances"],
            len(skipped),
        )

    def describe(self, stage: str, index: int) -> str:
        """What item ``index`` of the validation or test set is, e.g. 'p226 p226_001.wav
        (measured SNR 7.9 dB)'."""
        item = self.grid_item(stage, index)
        pair = self.datasets[stage].utterances[item.utterance]
        return f"{pair.speaker} {pair.name} (measured SNR {pair.snr_db:.1f} dB)"
