"""Enhance your own recordings with a trained model (the enhance entry point).

    python -m crn_lightning.enhance ckpt=CKPT input=FILE_OR_FOLDER output=FOLDER

Any length and sample rate (resampled to the model's rate and back), every channel enhanced on
its own (``channels=mix``: mixed down to mono first); each output keeps its input's format and
subtype, under the same relative path in ``output``. Existing files are never replaced unless
``overwrite=true``. A file that cannot be read or enhanced is reported and the others go on;
the failures are listed at the end (exit status 1). ``streaming=true`` runs the real-time
streaming enhancer chunk by chunk (the same output) and reports its latency and chunk times.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import hydra
import numpy as np
import soundfile as sf
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from crn_lightning.audio import AudioFileError, read_channels, resample, write_audio
from crn_lightning.cli import load_checkpoint, required
from crn_lightning.compose import CONFIG_DIR
from crn_lightning.errors import ConfigError
from crn_lightning.module import EnhancementModule
from crn_lightning.streaming import StreamingEnhancer

log = logging.getLogger(__name__)

# Extensions of the formats libsndfile reads and writes, looked for in an input folder.
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au", ".caf", ".w64"}
CHANNEL_MODES = ("separate", "mix")


@dataclass
class Report:
    written: list[Path] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    clipped: list[Path] = field(default_factory=list)
    chunk_seconds: list[float] = field(default_factory=list)
    audio_seconds: float = 0.0
    compute_seconds: float = 0.0


def find_inputs(source: Path) -> list[tuple[Path, Path]]:
    """(input file, its path relative to the output folder) for a file or a folder's audio."""
    if source.is_file():
        return [(source, Path(source.name))]
    if source.is_dir():
        files = sorted(
            p
            for p in source.rglob("*")
            if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith(".")
        )
        if not files:
            raise ConfigError(
                f"input={source}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) in it"
            )
        return [(p, p.relative_to(source)) for p in files]
    raise ConfigError(f"input={source}: no such file or folder")


class Enhancer:
    """A signal (channels, samples) at the model's rate → enhanced, offline or streaming."""

    def __init__(self, module: EnhancementModule, streaming: bool, block_seconds: float) -> None:
        self.module, self.streaming = module, streaming
        self.block_frames = max(
            1, round(block_seconds * module.sample_rate / module.stft.hop_length)
        )
        self._streamers: dict[int, StreamingEnhancer] = {}

    @torch.inference_mode()
    def __call__(self, signal: np.ndarray, report: Report) -> np.ndarray:
        started = time.perf_counter()
        if self.streaming:
            channels = signal.shape[0]
            streamer = self._streamers.setdefault(
                channels, StreamingEnhancer(self.module, batch=channels)
            )
            enhanced = streamer.enhance(signal, timings=report.chunk_seconds)
        else:
            enhanced = self.module(torch.from_numpy(signal), block_frames=self.block_frames)
        report.compute_seconds += time.perf_counter() - started
        report.audio_seconds += signal.shape[1] / self.module.sample_rate
        return enhanced.numpy()


def enhance_file(
    enhancer: Enhancer, source: Path, target: Path, mix: bool, overwrite: bool, report: Report
) -> None:
    """Enhance one file into ``target`` (raises ``AudioFileError``/``ValueError``)."""
    if target.exists() and not overwrite:
        what = "it is the input itself" if target.resolve() == source.resolve() else "it exists"
        raise FileExistsError(f"{target}: not written, {what} (overwrite=true replaces it)")
    audio, rate = read_channels(source)
    info = sf.info(str(source))
    if mix:
        audio = audio.mean(axis=0, keepdims=True)
    model_rate = enhancer.module.sample_rate
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


def enhance(cfg: DictConfig) -> Report:
    module = load_checkpoint(cfg)
    source = Path(required(cfg, "input", "an audio file or a folder of them"))
    output = Path(required(cfg, "output", "a folder for the enhanced files"))
    if cfg.channels not in CHANNEL_MODES:
        raise ConfigError(f"channels={cfg.channels}: expected one of {', '.join(CHANNEL_MODES)}")
    if output.exists() and not output.is_dir():
        raise ConfigError(f"output={output}: exists and is not a folder")
    inputs = find_inputs(source)
    enhancer = Enhancer(module, cfg.streaming, cfg.block_seconds)
    report = Report()
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads or threads)
    try:
        for path, relative in tqdm(inputs, desc="enhance", unit="file"):
            try:
                enhance_file(
                    enhancer, path, output / relative, cfg.channels == "mix", cfg.overwrite, report
                )
            except (AudioFileError, ValueError, FileExistsError, sf.LibsndfileError) as err:
                message = str(err) if str(path) in str(err) else f"{path}: {err}"
                log.error("%s", message)
                report.failures.append(message)
    finally:
        torch.set_num_threads(threads)
    _print_report(report, module, output, cfg.streaming)
    return report


def _print_report(report: Report, module: EnhancementModule, output: Path, streaming: bool) -> None:
    lines = [f"enhanced {len(report.written)} file(s) into {output}"]
    if report.audio_seconds:
        rtf = report.compute_seconds / report.audio_seconds
        lines.append(
            f"audio {report.audio_seconds:.1f} s, enhancement {report.compute_seconds:.1f} s "
            f"(real-time factor {rtf:.3f})"
        )
    if streaming and report.chunk_seconds:
        ms = np.array(report.chunk_seconds) * 1e3
        budget = module.stft.hop_length / module.sample_rate * 1e3
        latency = StreamingEnhancer(module).latency_seconds * 1e3
        lines.append(
            f"streaming: algorithmic latency {latency:g} ms; {len(ms)} chunks of {budget:g} ms, "
            f"compute per chunk mean {ms.mean():.2f} ms, p99 {np.percentile(ms, 99):.2f} ms "
            f"(budget {budget:g} ms)"
        )
    for path in report.clipped:
        lines.append(f"clipped to full scale: {path}")
    if report.failures:
        lines.append(f"FAILED {len(report.failures)} file(s):")
        lines += [f"  {failure}" for failure in report.failures]
    print("\n".join(lines), flush=True)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="enhance")
def main(cfg: DictConfig) -> None:
    if enhance(cfg).failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
