"""Tiny real audio trees on disk for the data and evaluation tests: paired clean/ + noisy/
folders and nested speech and noise folders, written by the tests themselves."""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000


def voice(seconds: float, f0: float, rate: int = SR) -> np.ndarray:
    """A harmonic 'voice' with a smooth onset and offset, peak about 0.5."""
    t = np.arange(round(seconds * rate)) / rate
    harmonics = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8))
    envelope = np.clip(np.sin(np.pi * t / seconds) * 3, 0, 1)
    return (0.2 * harmonics * envelope).astype(np.float32)


def write_pairs(
    root: Path,
    names: Iterable[str],
    seed: int = 0,
    rate: int = SR,
    noise_level: float = 0.05,
    subtype: str = "PCM_16",
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``root/clean/NAME`` and ``root/noisy/NAME`` (voice + white noise, 1.2-2.2 s, a pitch
    per speaker prefix); returns {name: (clean, noisy)} as written (float, before PCM)."""
    rng = np.random.default_rng(seed)
    pairs = {}
    for name in names:
        f0 = 100 + (zlib.crc32(name.split("_")[0].encode()) % 7) * 20
        clean = voice(1.2 + rng.random(), f0, rate)
        noisy = clean + noise_level * rng.standard_normal(len(clean)).astype(np.float32)
        for kind, audio in (("clean", clean), ("noisy", noisy)):
            (root / kind / name).parent.mkdir(parents=True, exist_ok=True)
            sf.write(root / kind / name, audio, rate, subtype=subtype)
        pairs[name] = (clean, noisy)
    return pairs


def write_speech_tree(root: Path, layout: dict[str, tuple[int, str]], utterances: int = 3) -> None:
    """``root/<folder>/<speaker>_<k>.<format>`` voices: ``layout`` maps a folder under
    ``root`` (nested allowed) to (sample rate, file suffix); a pitch per folder."""
    rng = np.random.default_rng(len(layout))
    for folder, (rate, suffix) in layout.items():
        f0 = 100 + zlib.crc32(folder.encode()) % 150
        for k in range(utterances):
            path = root / folder / f"{Path(folder).name}_{k}{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, voice(1.0 + 0.4 * rng.random(), f0, rate), rate)


def write_noise(path: Path, seconds: float, rate: int = SR, seed: int = 0) -> np.ndarray:
    """Coloured noise (peak 0.1) written to ``path``; returns it as written (float)."""
    white = np.random.default_rng(seed).standard_normal(round(seconds * rate))
    noise = np.convolve(white, np.ones(3) / 3, mode="same")
    noise = (0.1 * noise / np.abs(noise).max()).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, noise, rate)
    return noise
