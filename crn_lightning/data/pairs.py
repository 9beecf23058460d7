"""Paired corpora: ``clean/`` and ``noisy/`` folders holding the same file names (the
VoiceBank+DEMAND and DNS-Challenge layouts), found, checked and split by speaker.

Every pair is read once at setup: the files that cannot be used are skipped and counted (the
README's bad-input table), so training never meets them mid-epoch.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crn_lightning.audio import AudioFileError, audio_files, read_audio
from crn_lightning.data.corpora import CorpusError, refuse_too_many_bad
from crn_lightning.data.rate_cache import at_rate, file_rate
from crn_lightning.data.speakers import speaker_of
from crn_lightning.mixing import is_silent, snr_db

log = logging.getLogger(__name__)

PAIRS_LAYOUT = "<folder>/clean/NAME and <folder>/noisy/NAME, the same NAMEs (e.g. p226_001.wav)"


@dataclass(frozen=True)
class Pair:
    """A clean file and its noisy twin, both at the data's sample rate (cached copies where
    the originals are at another rate)."""

    name: str  # the path under clean/ and noisy/
    speaker: str
    clean: Path
    noisy: Path
    samples: int
    snr_db: float  # of the noisy file against the clean one over the whole pair


def pair_folders(root: Path, key: str) -> tuple[Path, Path]:
    """``root/clean`` and ``root/noisy``, or a ``CorpusError`` naming ``key`` and the layout."""
    folders = (Path(root) / "clean", Path(root) / "noisy")
    for folder in folders:
        if not folder.is_dir():
            raise CorpusError(
                f"{key}={root}: {folder} is not a folder; expected the layout {PAIRS_LAYOUT}"
            )
    return folders


def match_names(
    root: Path, key: str
) -> tuple[dict[str, tuple[Path, Path]], list[tuple[Path, str]]]:
    """{name: (clean file, noisy file)} for the names under both ``root/clean`` and
    ``root/noisy`` (sorted; subfolders included), and each file whose name is in one folder
    only, with why."""
    clean_dir, noisy_dir = pair_folders(root, key)
    found = {
        kind: {p.relative_to(folder).as_posix(): p for p in audio_files(folder)}
        for kind, folder in (("clean", clean_dir), ("noisy", noisy_dir))
    }
    unmatched = [
        (found[kind][name], f"no {other}/{name} to pair with it")
        for kind, other in (("clean", "noisy"), ("noisy", "clean"))
        for name in sorted(found[kind].keys() - found[other].keys())
    ]
    names = sorted(found["clean"].keys() & found["noisy"].keys())
    if not names:
        raise CorpusError(
            f"{key}={root}: no file name is in both clean/ ({len(found['clean'])} audio files) "
            f"and noisy/ ({len(found['noisy'])}); expected the layout {PAIRS_LAYOUT}"
        )
    return {name: (found["clean"][name], found["noisy"][name]) for name in names}, unmatched


def read_pair(clean: Path, noisy: Path, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Both files at ``sample_rate``; ``AudioFileError`` when they are not sample-aligned."""
    clean_audio, noisy_audio = read_audio(clean, sample_rate), read_audio(noisy, sample_rate)
    if len(clean_audio) != len(noisy_audio):
        raise AudioFileError(
            f"{clean} and {noisy}: lengths differ ({len(clean_audio)} vs {len(noisy_audio)} "
            f"samples at {sample_rate} Hz); a pair must be sample-aligned"
        )
    return clean_audio, noisy_audio


def _check_pair(
    clean: Path, noisy: Path, sample_rate: int, cache_dir: Path | None
) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """Both files at ``sample_rate`` and their samples; ``AudioFileError`` saying why not."""
    rates = file_rate(clean), file_rate(noisy)
    if rates[0] != rates[1]:
        raise AudioFileError(
            f"{clean} is at {rates[0]} Hz but {noisy} at {rates[1]} Hz: a pair must share its rate"
        )
    clean, noisy = (at_rate(p, sample_rate, cache_dir, "data.resample_dir") for p in (clean, noisy))
    clean_audio, noisy_audio = read_pair(clean, noisy, sample_rate)
    if is_silent(clean_audio):
        raise AudioFileError(f"{clean}: silent (all samples zero): nothing to enhance towards")
    return clean, noisy, clean_audio, noisy_audio


def scan_pairs(
    root: Path,
    key: str,
    speaker_pattern: re.Pattern[str],
    sample_rate: int,
    cache_dir: Path | None,
    max_bad: int,
) -> tuple[list[Pair], list[tuple[Path, str]]]:
    """The usable pairs under ``root`` (config ``key``) sorted by name, and the files skipped
    with why: a name in one folder only, an unreadable, non-mono or non-finite file, a pair
    whose rates or lengths differ, a silent clean file. More than ``max_bad`` skipped stops
    with the list (that many means a wrong folder, not a few bad files)."""
    matched, skipped = match_names(root, key)
    pairs = []
    for name, (clean_file, noisy_file) in matched.items():
        speaker = speaker_of(name, speaker_pattern, "data.speaker_pattern")
        try:
            clean, noisy, clean_audio, noisy_audio = _check_pair(
                clean_file, noisy_file, sample_rate, cache_dir
            )
        except AudioFileError as err:
            skipped.append((clean_file, str(err)))
            continue
        noise = noisy_audio - clean_audio
        snr = math.inf if is_silent(noise) else snr_db(clean_audio, noise)
        pairs.append(Pair(name, speaker, clean, noisy, len(clean_audio), snr))
    for path, why in skipped:
        log.warning("skipped pair %s: %s", path, why)
    refuse_too_many_bad(skipped, max_bad, "pairs", "data.max_bad_pairs")
    return pairs, skipped


def binned_snr(snr: float, bin_db: float) -> float:
    """``snr`` rounded to the nearest multiple of ``bin_db`` (what a pair's ``snr_db`` label
    is: a measured SNR, grouped so a breakdown per SNR has a few groups)."""
    return snr if not math.isfinite(snr) else float(bin_db * round(snr / bin_db))


def pairs_of(pairs: Sequence[Pair], speakers: Sequence[str]) -> list[Pair]:
    chosen = set(speakers)
    return [p for p in pairs if p.speaker in chosen]
