from pathlib import Path

import numpy as np
import pytest

from crn_lightning.audio import write_audio

SR = 16000


def write_tiny_corpora(
    root: Path,
    speakers=("bdl", "slt"),
    utterances=6,
    environments=("PRESTO", "NPARK"),
    noise_seconds=8.0,
    seed=0,
) -> tuple[Path, Path]:
    """Tiny ARCTIC and DEMAND trees in their real layouts: harmonic 'speech' bursts of
    1.2–2.4 s per utterance and coloured noise per environment."""
    rng = np.random.default_rng(seed)
    arctic, demand = root / "cmu_arctic", root / "DEMAND"
    for s, speaker in enumerate(speakers):
        for u in range(utterances):
            seconds = 1.2 + 1.2 * rng.random()
            t = np.arange(int(seconds * SR)) / SR
            f0 = 110 + 90 * s + 20 * rng.random()
            voice = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8))
            envelope = np.clip(np.sin(np.pi * t / seconds) * 3, 0, 1)
            path = arctic / f"cmu_us_{speaker}_arctic" / "wav" / f"arctic_a{u + 1:04d}.wav"
            write_audio(path, 0.2 * voice * envelope, SR)
    for e, env in enumerate(environments):
        white = rng.standard_normal(int(noise_seconds * SR))
        noise = np.convolve(white, np.ones(e + 2) / (e + 2), mode="same")
        write_audio(demand / env / "ch01.wav", 0.1 * noise / np.abs(noise).max(), SR)
    return arctic, demand


@pytest.fixture
def tiny_corpora(tmp_path):
    return write_tiny_corpora(tmp_path)
