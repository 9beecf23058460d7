"""A package's speech, filtered, written in CMU ARCTIC's layout under the build folder.

Per file, in this order (the manifest counts what each removed): a file whose path names no
voice the source keeps ("other voice"); unreadable; a duplicate of an earlier file (sha256 of
the decoded samples, across all sources); then :func:`~.speech_quality.assess_speech`'s
verdicts (too short, silent, clipped, noisy, too long). A speaker left with fewer than
``min_speaker_utterances`` clips is dropped ("speaker too small").
"""

from __future__ import annotations

import functools
import re
import shutil
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from crn_lightning.data.offline_spec import OfflineCorpusSpec, SpeechSource
from crn_lightning.data.package_audio import (
    FileMapper,
    content_hash,
    matching_files,
    read_or_none,
)
from crn_lightning.data.packages import FetchedPackage
from crn_lightning.data.speech_quality import assess_speech


def write_speech(
    build: Path,
    package: FetchedPackage,
    source: SpeechSource,
    spec: OfflineCorpusSpec,
    seen: set[str],
    mapper: FileMapper,
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Write the clean clips of ``source`` under ``build/cmu_arctic``, one folder per speaker;
    return the utterance records and the counts of every filter's verdicts. ``seen`` holds the
    content hashes of the files already looked at (from any source); ``mapper`` runs the
    per-file work."""
    voice_regex = re.compile(source.voice_regex)
    records: dict[str, list[dict[str, Any]]] = defaultdict(list)
    counts: Counter[str] = Counter()
    files = matching_files(package, (source.pattern,), f"speech source {source.tag}")
    voiced: list[tuple[str, str]] = []  # (path relative to the package, voice)
    for path in files:
        relative = path.relative_to(package.root).as_posix()
        match = voice_regex.search(relative)
        if match is None:
            counts["other voice"] += 1
        else:
            voiced.append((relative, match.group("voice") or source.default_voice))
    assessed = mapper(
        functools.partial(_assess_speech_file, spec=spec),
        [str(package.root / relative) for relative, _ in voiced],
    )
    # In file order, whatever the workers' timing: the same duplicates, names and files.
    for (relative, voice), (digest, verdict, clip) in zip(voiced, assessed, strict=True):
        if digest is None:
            counts[verdict] += 1
            continue
        if digest in seen:
            counts["duplicate"] += 1
            continue
        seen.add(digest)
        counts[verdict] += 1
        if clip is None:
            continue
        speaker = f"{source.tag}_{voice}"
        folder = _speaker_folder(build, speaker)
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / f"utt_{len(records[speaker]):05d}.wav"
        soundfile.write(out, clip, spec.sample_rate, subtype="PCM_16")
        records[speaker].append(
            {
                "speaker": speaker,
                "path": out.relative_to(build).as_posix(),
                "package": package.name,
                "source": relative,
                "seconds": round(len(clip) / spec.sample_rate, 3),
            }
        )
    kept = []
    for speaker, items in sorted(records.items()):
        if len(items) < spec.min_speaker_utterances:
            # Too few to be worth a speaker of their own in speaker-disjoint splits.
            shutil.rmtree(_speaker_folder(build, speaker).parent)
            counts["kept"] -= len(items)
            counts["speaker too small"] += len(items)
        else:
            kept += items
    return kept, counts


def _assess_speech_file(
    path: str, spec: OfflineCorpusSpec
) -> tuple[str | None, str, np.ndarray | None]:
    """One speech file's (content hash, verdict, clean clip); the hash is None when the file
    cannot be read. Runs in a worker process."""
    read = read_or_none(Path(path))
    if read is None:
        return None, "unreadable", None
    channels, rate = read
    clip, verdict = assess_speech(channels, rate, spec)
    return content_hash(channels), verdict, clip


def _speaker_folder(build: Path, speaker: str) -> Path:
    return build / "cmu_arctic" / f"cmu_us_{speaker}_arctic" / "wav"
