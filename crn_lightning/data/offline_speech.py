"""A package's speech, filtered, written in CMU ARCTIC's layout under the build folder.

Per file, in this order (the manifest counts what each removed): a file whose path names no
voice the source keeps ("other voice"); unreadable; a duplicate of an earlier file (sha256 of
the decoded samples, across all sources); then :func:`~.speech_quality.assess_speech`'s
verdicts (too short, silent, clipped, noisy, too long). A speaker left with fewer than
``min_speaker_utterances`` clips is dropped ("speaker too small").

A source with ``cut_at_pauses`` (festvox voices: read sentences of 5-15 s) is first cut at the
pauses of each file's phone labels into pieces of at most ``max_seconds``, and each piece is
judged as a file of its own (the verdicts then count pieces; "no pause labels" and "no piece
between pauses" count files).
"""

from __future__ import annotations

import functools
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Sequence
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
        functools.partial(_assess_speech_file, spec=spec, cut=source.cut_at_pauses),
        [str(package.root / relative) for relative, _ in voiced],
    )
    # In file order, whatever the workers' timing: the same duplicates, names and files.
    for (relative, voice), (digest, pieces) in zip(voiced, assessed, strict=True):
        if digest is not None:  # None: unreadable, nothing to compare
            if digest in seen:
                counts["duplicate"] += 1
                continue
            seen.add(digest)
        speaker = f"{source.tag}_{voice}"
        for verdict, clip, span in pieces:
            counts[verdict] += 1
            if clip is None:
                continue
            folder = _speaker_folder(build, speaker)
            folder.mkdir(parents=True, exist_ok=True)
            out = folder / f"utt_{len(records[speaker]):05d}.wav"
            soundfile.write(out, clip, spec.sample_rate, subtype="PCM_16")
            records[speaker].append(
                {
                    "speaker": speaker,
                    "path": out.relative_to(build).as_posix(),
                    "package": package.name,
                    "source": relative
                    if span is None
                    else f"{relative}@{span[0]:.3f}-{span[1]:.3f}",
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


Piece = tuple[str, np.ndarray | None, tuple[float, float] | None]  # verdict, clip, span (s)


def _assess_speech_file(
    path: str, spec: OfflineCorpusSpec, cut: bool = False
) -> tuple[str | None, list[Piece]]:
    """One speech file's content hash (None when the file cannot be read) and its pieces'
    (verdict, clean clip or None, span in seconds or None for the whole file): one piece, or
    with ``cut`` those between its labelled pauses. Runs in a worker process."""
    read = read_or_none(Path(path))
    if read is None:
        return None, [("unreadable", None, None)]
    channels, rate = read
    digest = content_hash(channels)
    if not cut:
        clip, verdict = assess_speech(channels, rate, spec)
        return digest, [(verdict, clip, None)]
    labels = festvox_label_path(Path(path))
    if not labels.is_file():
        return digest, [("no pause labels", None, None)]
    spans = pieces_between_pauses(
        festvox_pauses(labels.read_text(errors="replace")),
        channels.shape[1] / rate,
        spec.min_seconds,
        spec.max_seconds,
    )
    if not spans:
        return digest, [("no piece between pauses", None, None)]
    pieces: list[Piece] = []
    for start, stop in spans:
        piece = channels[:, round(start * rate) : round(stop * rate)]
        clip, verdict = assess_speech(piece, rate, spec)
        pieces.append((verdict, clip, (start, stop)))
    return digest, pieces


def festvox_label_path(wav: Path) -> Path:
    """A festvox voice's phone labels of ``<voice>/wav/<name>.wav``: ``<voice>/lab/<name>.lab``."""
    return wav.parent.parent / "lab" / f"{wav.stem}.lab"


def festvox_pauses(label_text: str) -> list[float]:
    """The middle (s) of every pause after the first phone of a festvox label file (lines
    ``<end time> <colour> <phone>`` after a ``#`` line; pauses are ``pau``)."""
    middles, previous_end = [], None
    for line in label_text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        try:
            end = float(fields[0])
        except ValueError:
            continue
        if fields[2] == "pau" and previous_end is not None:
            middles.append((previous_end + end) / 2.0)
        previous_end = end
    return middles


def pieces_between_pauses(
    pauses: Sequence[float], seconds: float, min_seconds: float, max_seconds: float
) -> list[tuple[float, float]]:
    """Consecutive (start, stop) pieces of a ``seconds``-long recording, cut only at
    ``pauses`` (and its end), each as long as possible within [min_seconds, max_seconds]; where
    no pause lies in that range the stretch up to the next pause is left out."""
    cuts = sorted({c for c in pauses if 0.0 < c < seconds} | {seconds})
    pieces, start = [], 0.0
    while True:
        fitting = [c for c in cuts if min_seconds <= c - start <= max_seconds]
        if fitting:
            pieces.append((start, fitting[-1]))  # cuts are sorted: the longest piece
            start = fitting[-1]
            continue
        later = [c for c in cuts if c > start]
        if not later or later[0] >= seconds:
            return pieces
        start = later[0]


def _speaker_folder(build: Path, speaker: str) -> Path:
    return build / "cmu_arctic" / f"cmu_us_{speaker}_arctic" / "wav"
