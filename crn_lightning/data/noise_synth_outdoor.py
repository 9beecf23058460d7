"""The outdoor scenes of the synthetic noise: NFIELD (a sports field, with eSpeak NG shouts)
and NPARK (a park), both over wind."""

from __future__ import annotations

import numpy as np

from crn_lightning.audio import resample
from crn_lightning.data.espeak import EspeakSynthesizer
from crn_lightning.data.noise_synth_signals import (
    add_event,
    bandpass,
    coloured_noise,
    event_times,
    fft_filter,
    normalise,
    reverberate,
    slow_random,
)


def _wind(n: int, sample_rate: int, rng: np.random.Generator, gustiness: float) -> np.ndarray:
    """Low-passed noise whose level follows slow random gusts (``gustiness``: std of log level)."""
    gust = slow_random(n, sample_rate, rng, 0.15) + 0.5 * slow_random(n, sample_rate, rng, 0.6)
    envelope = np.exp(gustiness * gust / np.std(gust))
    rumble = coloured_noise(n, sample_rate, rng, bandpass(15.0, 180.0))
    # Turbulence higher up gets louder faster than the rumble as the gust strengthens.
    hiss = coloured_noise(n, sample_rate, rng, bandpass(300.0, 1200.0))
    return envelope * rumble + 0.1 * envelope**1.5 * hiss


_SHOUTS = (
    "Over here!", "Pass it!", "Man on!", "Go go go!", "Shoot!", "Come on!", "Yes!",
    "Keep going!", "Time!", "Well done!", "Back!", "Nice one!", "Push up!", "Left side!",
)  # fmt: skip


_SHOUT_VOICES = ("en-us+m1", "en-us+m3", "en-us+m6", "en-us+m4", "en-us+f1", "en-us+f3")


def sports_field(seconds: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """NFIELD: wind over an open field, distant players shouting, the odd referee whistle."""
    n = int(round(seconds * sample_rate))
    wind = _wind(n, sample_rate, rng, gustiness=0.5)
    wind /= np.std(wind)

    synth = EspeakSynthesizer()
    tts_rate = synth.sample_rate
    voices = np.zeros(int(np.ceil(seconds * tts_rate)))
    for onset in event_times(seconds, rng, 5.0):
        shout = synth.synthesize(
            _SHOUTS[int(rng.integers(len(_SHOUTS)))],
            _SHOUT_VOICES[int(rng.integers(len(_SHOUT_VOICES)))],
            rate_wpm=int(rng.integers(190, 260)),
            pitch=int(rng.integers(70, 100)),  # raised voices
        )
        add_event(voices, int(onset * tts_rate), shout * 10.0 ** (rng.uniform(-10.0, 0.0) / 20.0))
    voices = resample(voices.astype(np.float32), tts_rate, sample_rate)[:n].astype(np.float64)
    # Distance: air absorbs the highs, and the far side of the pitch sends back a diffuse echo.
    voices = fft_filter(voices, sample_rate, bandpass(200.0, 2500.0))
    voices = reverberate(voices, sample_rate, rng, rt60=1.0, wet=0.6)
    voices /= np.std(voices) + 1e-12

    whistles = np.zeros(n)
    for onset in event_times(seconds, rng, 40.0):
        for repeat in range(int(rng.choice([1, 1, 2, 3]))):
            start = int((onset + 0.5 * repeat) * sample_rate)
            add_event(
                whistles, start, _whistle(sample_rate, rng, long=repeat == 0 and rng.random() < 0.3)
            )
    whistles = reverberate(whistles, sample_rate, rng, rt60=0.8, wet=0.5)
    return normalise(wind + 0.6 * voices + 0.3 * whistles)


def _whistle(sample_rate: int, rng: np.random.Generator, long: bool) -> np.ndarray:
    """A pea whistle: a ~3 kHz tone trilled by the pea at some 30 Hz."""
    duration = rng.uniform(0.8, 1.3) if long else rng.uniform(0.15, 0.35)
    t = np.arange(int(duration * sample_rate)) / sample_rate
    trill = np.sin(2 * np.pi * rng.uniform(25.0, 40.0) * t)
    frequency = rng.uniform(2700.0, 3500.0) + 150.0 * trill
    phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
    envelope = np.minimum(t / 0.02, 1.0) * np.minimum((duration - t) / 0.03, 1.0)
    tone = np.sin(phase)
    if 2 * np.max(frequency) < 0.45 * sample_rate:  # the overtone only where it cannot alias
        tone += 0.15 * np.sin(2 * phase)
    return tone * (0.75 + 0.25 * trill) * envelope


def park(seconds: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """NPARK: a light breeze in the leaves, distant traffic and several kinds of birdsong."""
    n = int(round(seconds * sample_rate))
    wind = _wind(n, sample_rate, rng, gustiness=0.35)
    leaves = coloured_noise(n, sample_rate, rng, bandpass(1000.0, 6000.0))
    leaves *= np.exp(0.8 * slow_random(n, sample_rate, rng, 0.3)) * 0.15
    traffic = coloured_noise(n, sample_rate, rng, bandpass(30.0, 250.0))
    background = wind + leaves + 0.4 * traffic
    background /= np.std(background)

    birds = np.zeros(n)
    for _ in range(int(rng.integers(3, 6))):  # species, each with its own song
        species = {
            # Kept below 0.45 * sample_rate with sweep and vibrato added.
            "base": rng.uniform(2000.0, min(5000.0, 0.28 * sample_rate)),
            "sweep": rng.uniform(-1200.0, 1200.0),
            "length": rng.uniform(0.03, 0.15),
            "fm_rate": rng.uniform(20.0, 90.0),
            "fm_depth": rng.uniform(50.0, 350.0),
            "gap": rng.uniform(0.03, 0.12),
        }
        gain = 10.0 ** (rng.uniform(-12.0, 0.0) / 20.0)  # near and far birds
        for onset in event_times(seconds, rng, rng.uniform(4.0, 12.0)):
            start = onset
            for _ in range(int(rng.integers(3, 12))):
                chirp = _chirp(sample_rate, rng, species)
                add_event(birds, int(start * sample_rate), gain * chirp)
                start += len(chirp) / sample_rate + species["gap"] * rng.uniform(0.8, 1.2)
    birds = reverberate(birds, sample_rate, rng, rt60=0.5, wet=0.3)
    birds /= np.std(birds) + 1e-12
    return normalise(background + 0.8 * birds)


def _chirp(sample_rate: int, rng: np.random.Generator, species: dict[str, float]) -> np.ndarray:
    """One syllable of birdsong: a frequency sweep with fast vibrato and a smooth envelope."""
    duration = species["length"] * rng.uniform(0.8, 1.2)
    t = np.arange(int(duration * sample_rate)) / sample_rate
    sweep = species["base"] * rng.uniform(0.95, 1.05) + species["sweep"] * t / duration
    vibrato = species["fm_depth"] * np.sin(2 * np.pi * species["fm_rate"] * t)
    phase = 2 * np.pi * np.cumsum(sweep + vibrato) / sample_rate
    envelope = np.sin(np.pi * t / duration) ** 2
    return np.sin(phase) * envelope
