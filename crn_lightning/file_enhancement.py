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

from crn_lightning.audio import read_channels, resample, write_audio
from crn_lightning.enhancer import Enhancer
from crn_lightning.errors import ConfigError
from crn_lightning.streaming import StreamingEnhancer

log = logging.getLogger(__name__)

# Extensions of the formats libsndfile reads and writes, looked for in an input folder.
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au", ".caf", ".w64"}


@dataclass
class Report:
    written: list[Path] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    clipped: list[Path] = field(default_factory=list)
    chunk_seconds: list[float] = field(default_factory=list)
    audio_seconds: float = 0.0
    compute_seconds: float = 0.0


def _output_inside(source: Path, output: Path | None) -> Path | None:
    """``output`` relative to the folder ``source`` when it lies strictly inside it."""
    if output is None:
        return None
    try:
        inside = output.resolve().relative_to(source.resolve())
    except ValueError:
        return None
    return inside if inside != Path() else None


def find_inputs(source: Path, output: Path | None = None) -> list[tuple[Path, Path]]:
    """(input file, its path relative to the output folder) for a file or a folder's audio.

    Outputs are never inputs: an ``output`` folder inside the ``source`` folder is skipped
    (else a second run would enhance the first run's outputs into ``output/output/``).
    """
    if source.is_file():
        return [(source, Path(source.name))]
    if source.is_dir():
        skip = _output_inside(source, output)
        if skip is not None and (source / skip).is_dir():
            log.info("input=%s: skipping the output folder %s inside it", source, source / skip)
        files = sorted(
            p
            for p in source.rglob("*")
            if p.is_file()
            and p.suffix.lower() in AUDIO_SUFFIXES
            and not p.name.startswith(".")
            and not (skip is not None and p.relative_to(source).is_relative_to(skip))
        )
        if not files:
            raise ConfigError(
                f"input={source}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) in it"
            )
        return [(p, p.relative_to(source)) for p in files]
    raise ConfigError(f"input={source}: no such file or folder")


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
    if report.failures:
        lines.append(f"FAILED {len(report.failures)} file(s):")
        lines += [f"  {failure}" for failure in report.failures]
    return lines
