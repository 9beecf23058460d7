"""Enhancing audio files (what crn_lightning.enhance runs): any length, sample rate, channel
count and format; each output keeps its input's format and subtype."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from crn_lightning.audio import (
    AUDIO_SUFFIXES,
    AudioFileError,
    audio_files,
    read_channels,
    resample,
    write_audio,
)
from crn_lightning.dnsmos import DNSMOS_MEASURES, file_dnsmos
from crn_lightning.enhancer import Enhancer
from crn_lightning.errors import ConfigError
from crn_lightning.streaming import StreamingEnhancer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DnsmosChange:
    """DNSMOS of an input file and of its enhanced output (``enhance score=dnsmos``)."""

    output: Path
    before: dict[str, float] | None
    after: dict[str, float] | None
    error: str | None = None  # why it could not be scored (the file itself was written)


def dnsmos_change(source: Path, target: Path) -> DnsmosChange:
    """DNSMOS of ``source`` and of the written ``target``, each as it is on disk (mono mix)."""
    try:
        return DnsmosChange(target, file_dnsmos(source), file_dnsmos(target))
    except (AudioFileError, ValueError) as err:
        return DnsmosChange(target, None, None, str(err))


@dataclass
class Report:
    written: list[Path] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    clipped: list[Path] = field(default_factory=list)
    chunk_seconds: list[float] = field(default_factory=list)
    audio_seconds: float = 0.0
    compute_seconds: float = 0.0
    dnsmos: list[DnsmosChange] = field(default_factory=list)


def _output_inside(source: Path, output: Path | None) -> Path | None:
    """``output`` relative to the folder ``source`` when it lies strictly inside it."""
    if output is None:
        return None
    try:
        inside = output.resolve().relative_to(source.resolve())
    except ValueError:
        return None
    return inside if inside != Path() else None


def find_inputs(
    source: Path, output: Path | None = None, key: str = "input"
) -> list[tuple[Path, Path]]:
    """(input file, its path relative to the output folder) for a file or a folder's audio;
    errors name the config ``key`` that gave ``source``.

    Outputs are never inputs: an ``output`` folder inside the ``source`` folder is skipped
    (else a second run would enhance the first run's outputs into ``output/output/``).
    """
    if source.is_file():
        return [(source, Path(source.name))]
    if source.is_dir():
        skip = _output_inside(source, output)
        if skip is not None and (source / skip).is_dir():
            log.info("%s=%s: skipping the output folder %s inside it", key, source, source / skip)
        files = [
            p
            for p in audio_files(source)
            if not (skip is not None and p.relative_to(source).is_relative_to(skip))
        ]
        if not files:
            raise ConfigError(
                f"{key}={source}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) in it"
            )
        return [(p, p.relative_to(source)) for p in files]
    raise ConfigError(f"{key}={source}: no such file or folder")


class SignalEnhancer:
    """A signal (channels, samples) at the model's rate → enhanced, offline (over blocks of
    ``block_seconds``) or streaming, timing it into a ``Report``."""

    def __init__(self, enhancer: Enhancer, streaming: bool, block_seconds: float) -> None:
        self.enhancer, self.streaming = enhancer, streaming
        self.block_frames = max(
            1, round(block_seconds * enhancer.sample_rate / enhancer.stft.hop_length)
        )
        self._streamers: dict[int, StreamingEnhancer] = {}

    @torch.inference_mode()
    def __call__(self, signal: np.ndarray, report: Report) -> np.ndarray:
        started = time.perf_counter()
        if self.streaming:
            channels = signal.shape[0]
            if channels not in self._streamers:
                self._streamers[channels] = self.enhancer.stream(batch=channels)
            enhanced = self._streamers[channels].enhance(signal, timings=report.chunk_seconds)
        else:
            enhanced = self.enhancer(torch.from_numpy(signal), block_frames=self.block_frames)
        report.compute_seconds += time.perf_counter() - started
        report.audio_seconds += signal.shape[1] / self.enhancer.sample_rate
        return enhanced.numpy()


def enhance_file(
    enhancer: SignalEnhancer, source: Path, target: Path, mix: bool, overwrite: bool, report: Report
) -> None:
    """Enhance one file into ``target`` (raises ``AudioFileError``/``ValueError``)."""
    if target.exists() and not overwrite:
        what = "it is the input itself" if target.resolve() == source.resolve() else "it exists"
        raise FileExistsError(f"{target}: not written, {what} (overwrite=true replaces it)")
    audio, rate = read_channels(source)
    info = sf.info(str(source))
    if mix:
        audio = audio.mean(axis=0, keepdims=True)
    model_rate = enhancer.enhancer.sample_rate
    signal = np.stack([resample(channel, rate, model_rate) for channel in audio])
    enhanced = enhancer(signal, report)
    length = audio.shape[1]
    out = np.stack([resample(channel, model_rate, rate)[:length] for channel in enhanced])
    out = np.pad(out, ((0, 0), (0, length - out.shape[1])))
    if not info.subtype.startswith(("FLOAT", "DOUBLE")) and np.abs(out).max() > 1.0:
        # Integer formats cannot hold values beyond full scale: clip, and say so.
        report.clipped.append(target)
        out = np.clip(out, -1.0, 1.0)
    # Written beside the target first, then renamed: no half-written file under its name.
    partial = target.with_name(f".{target.name}.partial")
    write_audio(partial, out[0] if len(out) == 1 else out.T, rate, info.subtype, info.format)
    os.replace(partial, target)
    report.written.append(target)


def report_lines(report: Report, enhancer: Enhancer, output: Path, streaming: bool) -> list[str]:
    """What a run enhanced, how fast (streaming: latency and chunk times), what failed."""
    lines = [f"enhanced {len(report.written)} file(s) into {output}"]
    if report.audio_seconds:
        rtf = report.compute_seconds / report.audio_seconds
        lines.append(
            f"audio {report.audio_seconds:.1f} s, enhancement {report.compute_seconds:.1f} s "
            f"(real-time factor {rtf:.3f})"
        )
    if streaming and report.chunk_seconds:
        ms = np.array(report.chunk_seconds) * 1e3
        budget = enhancer.stft.hop_length / enhancer.sample_rate * 1e3
        latency = enhancer.stream().latency_seconds * 1e3
        lines.append(
            f"streaming: algorithmic latency {latency:g} ms; {len(ms)} chunks of {budget:g} ms, "
            f"compute per chunk mean {ms.mean():.2f} ms, p99 {np.percentile(ms, 99):.2f} ms "
            f"(budget {budget:g} ms)"
        )
    lines += [f"clipped to full scale: {path}" for path in report.clipped]
    if report.dnsmos:
        lines += dnsmos_lines(report.dnsmos)
    if report.failures:
        lines.append(f"FAILED {len(report.failures)} file(s):")
        lines += [f"  {failure}" for failure in report.failures]
    return lines


def _dnsmos_text(before: dict[str, float], after: dict[str, float]) -> str:
    return ", ".join(f"{m.upper()} {before[m]:.2f} → {after[m]:.2f}" for m in DNSMOS_MEASURES)


def dnsmos_lines(changes: list[DnsmosChange]) -> list[str]:
    """Each file's DNSMOS before → after enhancement, and the mean over the files scored."""
    lines = ["DNSMOS P.835 before → after (no clean reference needed):"]
    scored = [c for c in changes if c.error is None]
    for change in changes:
        text = _dnsmos_text(change.before, change.after) if change.error is None else None
        lines.append(f"  {change.output}: {text or f'not scored ({change.error})'}")
    if len(scored) > 1:
        before, after = (
            {m: float(np.mean([getattr(c, side)[m] for c in scored])) for m in DNSMOS_MEASURES}
            for side in ("before", "after")
        )
        lines.append(f"  mean of {len(scored)} files: {_dnsmos_text(before, after)}")
    return lines
