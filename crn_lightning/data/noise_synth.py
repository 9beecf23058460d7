"""Synthetic stand-ins for the five DEMAND noise environments the project trains on.

Each generator is a function of ``(seconds, sample_rate, rng)`` that returns float32 mono audio
normalised to an RMS of about 0.05 with peaks below 0.99. The two environments with voices in
them (PRESTO, NFIELD) also use the eSpeak NG engine, whose output depends on what the process
synthesised before (see :class:`EspeakSynthesizer`); the other three are pure. They aim at
the character of the real recordings (spectral shape, stationarity, the kind of transients),
not at realism in every detail.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile

from crn_lightning.data.builds import seeded_rng
from crn_lightning.data.noise_synth_indoor import music, restaurant, washing_machine
from crn_lightning.data.noise_synth_outdoor import park, sports_field

NoiseGenerator = Callable[[float, int, np.random.Generator], np.ndarray]

ENVIRONMENT_GENERATORS: dict[str, NoiseGenerator] = {
    "PRESTO": restaurant,
    "DLIVING": music,
    "DWASHING": washing_machine,
    "NFIELD": sports_field,
    "NPARK": park,
}


def write_generated_noise(
    folder: Path, environment: str, seconds: float, sample_rate: int, seed: int
) -> None:
    """``folder``/ch01.wav: the generated ``environment`` noise, in DEMAND's layout, seeded
    by (``seed``, its name) as both the embedded and the offline corpus build it."""
    rng = seeded_rng(seed, f"noise/{environment}")
    audio = ENVIRONMENT_GENERATORS[environment](seconds, sample_rate, rng)
    folder.mkdir(parents=True)
    soundfile.write(folder / "ch01.wav", audio, sample_rate, subtype="PCM_16")
