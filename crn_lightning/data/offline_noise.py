"""The offline corpus's noise environments, rendered from a package's recorded sounds.

Each layer of an environment pools the pieces its parts' files give and arranges them by its
method into one ``noise_seconds`` stream, levelled to unit RMS and then to its ``level_db``;
the layers are summed and the sum levelled like DEMAND's recordings:

- ``concatenate`` cuts each recording into its non-silent stretches, levels them, and joins
  them in a seeded random order with short crossfades until ``noise_seconds``; the manifest
  records how many seconds of distinct material it had (``unique_seconds``): where that is less
  than ``noise_seconds`` the material repeats, and the time-split validation/test parts of that
  noise may hear stretches the training part heard.
- ``typing`` places whole key clicks, at their recorded levels, at a typing rhythm.
- ``babble`` sums ``babble_talkers`` streams of clean utterances (speech quality filter, any
  length up to 60 s) with short gaps.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from crn_lightning.audio import resample
from crn_lightning.data.builds import seeded_rng
from crn_lightning.data.offline_spec import (
    NoiseEnvironment,
    NoiseLayer,
    NoisePart,
    OfflineCorpusSpec,
)
from crn_lightning.data.package_audio import (
    FileMapper,
    OfflineCorpusError,
    content_hash,
    matching_files,
    read_or_none,
)
from crn_lightning.data.packages import FetchedPackage
from crn_lightning.data.speech_quality import FRAME_SECONDS, assess_speech, frame_energies_db

LOGGER = logging.getLogger(__name__)

_NOISE_RMS = 10.0 ** (-26.0 / 20.0)  # each environment's level (DEMAND's are about as quiet)
_NOISE_PEAK = 0.99
_NOISE_SILENCE_DB = 40.0  # a noise recording's frames this far below its loudest are cut out
_NOISE_MIN_SEGMENT_SECONDS = 0.1


def _noise_segments(channels: np.ndarray, rate: int, spec: OfflineCorpusSpec) -> list[np.ndarray]:
    """The non-silent stretches of a recording, 16 kHz mono, each levelled to unit RMS."""
    mono = resample(channels.mean(axis=0), rate, spec.sample_rate)
    energies = frame_energies_db(mono, spec.sample_rate)
    if len(energies) == 0 or energies.max() < 20 * np.log10(spec.silent_peak):
        return []
    active = energies >= energies.max() - _NOISE_SILENCE_DB
    frame = round(FRAME_SECONDS * spec.sample_rate)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(int), [0]])))
    segments = []
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        piece = mono[start * frame : stop * frame]
        if len(piece) >= _NOISE_MIN_SEGMENT_SECONDS * spec.sample_rate:
            segments.append(_level(piece))
    return segments


def _level(audio: np.ndarray) -> np.ndarray:
    """``audio`` at unit RMS, kept in float32 (an hour of babble material in float64: 0.5 GB)."""
    return (audio / np.sqrt(np.mean(audio.astype(np.float64) ** 2))).astype(np.float32)


def _join(
    pieces: Sequence[np.ndarray], total: int, crossfade: int, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """Pieces in random order, joined with equal-power crossfades, repeated (reshuffled) until
    ``total`` samples; also how many passes over the material that took."""
    out = np.zeros(total + max(len(p) for p in pieces) + crossfade, dtype=np.float64)
    fade = np.linspace(0.0, np.pi / 2, crossfade, endpoint=False)
    fade_in, fade_out = np.sin(fade), np.cos(fade)
    position, passes = 0, 0
    while position < total:
        passes += 1
        for index in rng.permutation(len(pieces)):
            piece = pieces[index].astype(np.float64)
            if position > 0 and len(piece) > 2 * crossfade and crossfade > 0:
                out[position - crossfade : position] *= fade_out
                piece = piece.copy()
                piece[:crossfade] *= fade_in
                start = position - crossfade
            else:
                start = position
            out[start : start + len(piece)] += piece
            position = start + len(piece)
            if position >= total:
                break
    return out[:total], passes


def _typing(
    clicks: Sequence[np.ndarray], total: int, rate: int, rng: np.random.Generator
) -> np.ndarray:
    """Key clicks at a typing rhythm: words of 2-9 keys ~0.12 s apart, gaps between words and
    now and then a pause to think. Clicks keep their recorded levels relative to each other."""
    out = np.zeros(total + max(len(c) for c in clicks), dtype=np.float64)
    time_s = 0.0
    while time_s * rate < total:
        for _ in range(int(rng.integers(2, 10))):
            click = clicks[int(rng.integers(len(clicks)))]
            start = int(time_s * rate)
            if start >= total:
                break
            out[start : start + len(click)] += click
            time_s += float(rng.lognormal(np.log(0.12), 0.35))
        time_s += float(rng.uniform(0.15, 0.45)) + (
            float(rng.uniform(1, 3)) if rng.random() < 0.08 else 0.0
        )
    return out[:total]


def layer_pieces(
    method: str,
    package: FetchedPackage,
    part: NoisePart,
    spec: OfflineCorpusSpec,
    key: str,
    mapper: FileMapper,
) -> tuple[list[np.ndarray], int]:
    """The 16 kHz pieces a layer's ``method`` arranges, from one part; and how many distinct
    files they came from."""
    files = matching_files(package, part.patterns, f"noise layer {key}")
    pieces: list[np.ndarray] = []
    seen: set[str] = set()
    # Each worker decodes one file at a time and sends back only its pieces (all of a
    # package's files decoded at once would take GBs).
    found = mapper(
        functools.partial(_noise_file_pieces, method=method, spec=spec), [str(f) for f in files]
    )
    for digest, file_pieces in found:
        if digest is None or digest in seen:
            continue
        seen.add(digest)
        pieces += file_pieces
    return pieces, len(seen)


def _noise_file_pieces(
    path: str, method: str, spec: OfflineCorpusSpec
) -> tuple[str | None, list[np.ndarray]]:
    """One noise file's content hash (None: unreadable) and the pieces ``method`` takes from
    it. Runs in a worker process."""
    read = read_or_none(Path(path))
    if read is None:
        return None, []
    channels, rate = read
    if method == "typing":
        # Clicks are kept whole and at their own levels: their loudness varies like keys'.
        pieces = [resample(channels.mean(axis=0), rate, spec.sample_rate)]
    elif method == "concatenate":
        pieces = _noise_segments(channels, rate, spec)
    else:  # babble: clean utterances of any length, levelled
        clip, _ = assess_speech(channels, rate, dataclasses.replace(spec, max_seconds=60.0))
        pieces = [] if clip is None else [_level(clip)]
    return content_hash(channels), pieces


def _render_layer(
    layer: NoiseLayer, pieces: list[np.ndarray], spec: OfflineCorpusSpec, key: str
) -> tuple[np.ndarray, dict[str, Any]]:
    """A layer's ``noise_seconds`` of sound, at its level_db, and a record of what it used."""
    total = round(spec.noise_seconds * spec.sample_rate)
    rng = seeded_rng(spec.seed, key)
    if not pieces:
        raise OfflineCorpusError(f"noise layer {key}: its files hold no usable sound")
    unique_seconds = sum(len(p) for p in pieces) / spec.sample_rate
    if layer.method == "typing":
        audio, passes = _typing(pieces, total, spec.sample_rate, rng), 0
    elif layer.method == "concatenate":
        audio, passes = _join(pieces, total, round(spec.crossfade_seconds * spec.sample_rate), rng)
    else:  # babble: several talkers, each a stream of utterances with short gaps
        if len(pieces) < spec.babble_talkers:
            raise OfflineCorpusError(f"noise layer {key}: only {len(pieces)} usable utterances")
        gaps = [
            np.zeros(int(rng.uniform(0.05, 0.4) * spec.sample_rate), np.float32) for _ in pieces
        ]
        # Replaced, not kept alongside: an hour of material is ~0.3 GB in float32.
        pieces = [np.concatenate([piece, gap]) for piece, gap in zip(pieces, gaps, strict=True)]
        audio, passes = _join(pieces, total, 0, rng)
        for _ in range(spec.babble_talkers - 1):
            stream, stream_passes = _join(pieces, total, 0, rng)
            audio += stream
            passes = max(passes, stream_passes)
    if passes > 1 and layer.method == "concatenate":
        LOGGER.warning(
            "noise layer %s has %.0f s of material for %.0f s: it repeats, so its validation "
            "and test parts may hear noise the training part heard",
            key,
            unique_seconds,
            spec.noise_seconds,
        )
    audio = audio / np.sqrt(np.mean(audio**2)) * 10.0 ** (layer.level_db / 20.0)
    record = {
        "method": layer.method,
        "packages": sorted({part.package for part in layer.parts}),
        "pieces": len(pieces),
        "unique_seconds": round(unique_seconds, 1),
        "passes": passes,
        "level_db": layer.level_db,
    }
    return audio, record


def write_environment(
    build: Path,
    env: NoiseEnvironment,
    pieces: dict[tuple[str, int], list[np.ndarray]],
    files: Mapping[tuple[str, int], int],
    spec: OfflineCorpusSpec,
) -> dict[str, Any]:
    """Render ``env``'s layers from their pieces (keyed by (environment, layer index)), mix
    them at DEMAND's level into ``build/DEMAND/<name>/ch01.wav`` and return its manifest record.
    Each layer's pieces are popped from ``pieces`` so that they are freed once rendered."""
    layers, records = [], []
    for index, layer in enumerate(env.layers):
        key = f"{env.name}/{index}"
        audio, record = _render_layer(layer, pieces.pop((env.name, index)), spec, key)
        layers.append(audio)
        records.append({**record, "files": files[env.name, index]})
    audio = np.sum(layers, axis=0)
    audio *= min(_NOISE_RMS / np.sqrt(np.mean(audio**2)), _NOISE_PEAK / np.max(np.abs(audio)))
    folder = build / "DEMAND" / env.name
    folder.mkdir()
    soundfile.write(
        folder / "ch01.wav", audio.astype(np.float32), spec.sample_rate, subtype="PCM_16"
    )
    return {"name": env.name, "layers": records}
