"""Discovery of CMU ARCTIC and DEMAND in the layouts their archives unpack to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

ARCTIC_LAYOUT = "<arctic_root>/cmu_us_<speaker>_arctic/wav/arctic_a0001.wav"
ARCTIC_SOURCE = "http://festvox.org/cmu_arctic/packed/cmu_us_<speaker>_arctic.tar.bz2"
DEMAND_LAYOUT = "<demand_root>/<ENV>/ch01.wav"
DEMAND_SOURCE = "https://zenodo.org/records/1227121 (the <ENV>_16k.zip files)"


class CorpusError(FileNotFoundError):
    """A missing or malformed corpus; the message names the path and the layout expected."""


def arctic_wav_dir(arctic_root: Path, speaker: str) -> Path:
    return Path(arctic_root) / f"cmu_us_{speaker}_arctic" / "wav"


def demand_channel_file(demand_root: Path, environment: str, channel: int) -> Path:
    return Path(demand_root) / environment / f"ch{channel:02d}.wav"


def arctic_present(arctic_root: Path, speakers: Sequence[str]) -> bool:
    return all(any(arctic_wav_dir(arctic_root, s).glob("*.wav")) for s in speakers)


def demand_present(demand_root: Path, environments: Sequence[str], channel: int) -> bool:
    return all(demand_channel_file(demand_root, e, channel).is_file() for e in environments)


def find_arctic(arctic_root: Path, speakers: Sequence[str]) -> dict[str, list[Path]]:
    """The sorted wav files of each speaker; a clear error when a speaker is missing."""
    if not speakers:
        raise CorpusError("data.speakers is empty: name at least one ARCTIC speaker (e.g. bdl)")
    found = {}
    for speaker in speakers:
        wav_dir = arctic_wav_dir(arctic_root, speaker)
        files = sorted(wav_dir.glob("*.wav")) if wav_dir.is_dir() else []
        if not files:
            raise CorpusError(
                f"CMU ARCTIC speaker '{speaker}' not found: no wav files in {wav_dir}. "
                f"Expected layout {ARCTIC_LAYOUT}; get it from {ARCTIC_SOURCE}"
            )
        found[speaker] = files
    return found


def find_demand(demand_root: Path, environments: Sequence[str], channel: int) -> dict[str, Path]:
    """The channel file of each DEMAND environment; a clear error when one is missing."""
    if not environments:
        raise CorpusError("data.environments is empty: name at least one DEMAND environment")
    found = {}
    for env in environments:
        path = demand_channel_file(demand_root, env, channel)
        if not path.is_file():
            raise CorpusError(
                f"DEMAND environment '{env}' not found: missing {path}. "
                f"Expected layout {DEMAND_LAYOUT}; get it from {DEMAND_SOURCE}"
            )
        found[env] = path
    return found


@dataclass(frozen=True)
class UtteranceRef:
    speaker: str
    path: Path


def select_utterances(
    files: Mapping[str, Sequence[Path]], max_seconds: float, total: int, seed: int
) -> list[UtteranceRef]:
    """``total`` utterances shorter than ``max_seconds``, balanced over speakers, seeded.

    The report used 203 + 204 ARCTIC utterances under 5 s; speakers take turns so the
    selection stays balanced whatever the corpus size.
    """
    pools = []
    for offset, (speaker, paths) in enumerate(sorted(files.items())):
        short = [p for p in paths if sf.info(str(p)).duration < max_seconds]
        order = np.random.default_rng([seed, offset]).permutation(len(short))
        pools.append([UtteranceRef(speaker, short[i]) for i in order])
    available = sum(len(pool) for pool in pools)
    if available < total:
        counts = ", ".join(f"{s}: {len(p)}" for s, p in zip(sorted(files), pools, strict=True))
        raise CorpusError(
            f"data.split asks for {total} utterances but only {available} are shorter than "
            f"data.max_utterance_seconds={max_seconds} ({counts})"
        )
    selected: list[UtteranceRef] = []
    turn = 0
    while len(selected) < total:
        pool = pools[turn % len(pools)]
        if pool:
            selected.append(pool.pop(0))
        turn += 1
    return selected


def split_utterances(
    utterances: Sequence[UtteranceRef], sizes: Mapping[str, int], seed: int
) -> dict[str, list[UtteranceRef]]:
    """Split by utterance into the named parts (e.g. train/val/test 300/99/8), seeded."""
    if sum(sizes.values()) > len(utterances):
        raise CorpusError(
            f"data.split {dict(sizes)} needs {sum(sizes.values())} utterances, "
            f"{len(utterances)} available"
        )
    order = np.random.default_rng(seed).permutation(len(utterances))
    parts, start = {}, 0
    for name, size in sizes.items():
        parts[name] = sorted(
            (utterances[i] for i in order[start : start + size]), key=lambda u: str(u.path)
        )
        start += size
    return parts
