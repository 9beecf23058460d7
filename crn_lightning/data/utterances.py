"""The corpus utterances each split uses, read into memory."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crn_lightning.audio import AudioFileError, read_audio
from crn_lightning.data.corpora import select_by_speaker, select_utterances, split_utterances
from crn_lightning.mixing import is_silent

log = logging.getLogger(__name__)


@dataclass
class LoadedUtterance:
    """One corpus utterance in memory: its speaker, its file's stem and its samples."""

    speaker: str
    name: str
    audio: np.ndarray


def load_utterances(
    files: Mapping[str, Sequence[Path]],
    sizes: Mapping[str, int],
    stage_speakers: Mapping[str, Sequence[str]] | None,
    max_seconds: float,
    sample_rate: int,
    seed: int,
    max_bad: int,
    reader: Callable[[Path], np.ndarray] | None = None,
) -> tuple[dict[str, list[LoadedUtterance]], list[tuple[Path, str]]]:
    """``sizes[split]`` utterances per split, read at ``sample_rate``: split by utterance
    (``stage_speakers`` None: every split draws from every speaker), or speaker-disjoint
    (each split from its own ``stage_speakers``). Returns (splits, unusable files skipped,
    each logged). ``reader``: how a file is read at ``sample_rate`` (default ``read_audio``;
    data=folders reads through its resampling cache)."""
    audio: dict[Path, np.ndarray] = {}
    read = reader or (lambda path: read_audio(path, sample_rate))

    def check(path: Path) -> str | None:
        # Policy: one bad utterance among hundreds is skipped (logged, counted in
        # corpus_info and metrics.json); see select_utterances for when it stops.
        try:
            audio[path] = read(path)
        except AudioFileError as err:
            return str(err).removeprefix(f"{path}: ")
        if is_silent(audio[path]):
            return "silent (all samples zero): it cannot be mixed at any SNR"
        return None

    if stage_speakers is None:
        total = sum(sizes.values())
        selection = select_utterances(files, max_seconds, total, seed, check, max_bad)
        parts, skipped = split_utterances(selection.chosen, sizes, seed), selection.skipped
    else:
        parts, skipped = select_by_speaker(
            files, stage_speakers, sizes, max_seconds, seed, check, max_bad
        )
    for path, why in skipped:
        log.warning("skipped utterance %s: %s", path, why)
    loaded = {
        stage: [LoadedUtterance(u.speaker, u.path.stem, audio[u.path]) for u in refs]
        for stage, refs in parts.items()
    }
    return loaded, skipped
