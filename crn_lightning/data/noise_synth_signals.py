"""The signal building blocks of the synthetic noise scenes (``noise_synth_indoor``,
``noise_synth_outdoor``): filters by magnitude response, coloured and slowly varying noise,
reverberation, events placed on a track, Poisson onsets, and the common level of a scene."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

TARGET_RMS = 0.05
MAX_PEAK = 0.99


def normalise(signal: np.ndarray) -> np.ndarray:
    """A scene's final level: zero mean, RMS ``TARGET_RMS``, peaks at most ``MAX_PEAK``."""
    signal = signal - signal.mean()
    signal = signal * (TARGET_RMS / np.sqrt(np.mean(np.square(signal))))
    peak = np.max(np.abs(signal))
    if peak > MAX_PEAK:  # sparse, loud events: give up some RMS rather than clip
        signal = signal * (MAX_PEAK / peak)
    return signal.astype(np.float32)


def fft_filter(
    signal: np.ndarray, sample_rate: int, gain: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Zero-phase filtering by a magnitude response ``gain(frequencies_hz)``."""
    spectrum = np.fft.rfft(signal)
    spectrum *= gain(np.fft.rfftfreq(len(signal), 1.0 / sample_rate))
    return np.fft.irfft(spectrum, len(signal))


def lowpass(cutoff_hz: float, order: int = 2) -> Callable[[np.ndarray], np.ndarray]:
    """A Butterworth-shaped low-pass magnitude response, for ``fft_filter``."""
    return lambda f: 1.0 / np.sqrt(1.0 + (f / cutoff_hz) ** (2 * order))


def highpass(cutoff_hz: float, order: int = 2) -> Callable[[np.ndarray], np.ndarray]:
    """A Butterworth-shaped high-pass magnitude response, for ``fft_filter``."""
    return lambda f: 1.0 / np.sqrt(1.0 + (cutoff_hz / np.maximum(f, 1e-3)) ** (2 * order))


def bandpass(low_hz: float, high_hz: float) -> Callable[[np.ndarray], np.ndarray]:
    """``highpass(low_hz)`` times ``lowpass(high_hz)``."""
    low, high = highpass(low_hz), lowpass(high_hz)
    return lambda f: low(f) * high(f)


def coloured_noise(
    n: int, sample_rate: int, rng: np.random.Generator, gain: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """``n`` samples of white noise shaped by ``gain`` (see ``fft_filter``), unit variance."""
    noise = fft_filter(rng.standard_normal(n), sample_rate, gain)
    return noise / np.std(noise)


def slow_random(n: int, sample_rate: int, rng: np.random.Generator, corner_hz: float) -> np.ndarray:
    """A smooth zero-mean, unit-variance random process varying at about ``corner_hz``."""
    return coloured_noise(n, sample_rate, rng, lowpass(corner_hz, order=3))


def _room_impulse(
    sample_rate: int, rng: np.random.Generator, rt60: float, damping_hz: float = 4000.0
) -> np.ndarray:
    """Exponentially decaying noise: a diffuse late reverberation tail, highs absorbed."""
    length = int(rt60 * sample_rate)
    t = np.arange(length) / sample_rate
    tail = rng.standard_normal(length) * np.exp(-6.9 * t / rt60)
    tail = fft_filter(tail, sample_rate, lowpass(damping_hz, order=1))
    return tail / np.sqrt(np.sum(np.square(tail)))


def reverberate(
    signal: np.ndarray, sample_rate: int, rng: np.random.Generator, rt60: float, wet: float
) -> np.ndarray:
    """``signal`` in a room with reverberation time ``rt60`` s, ``wet`` the share of the tail."""
    impulse = _room_impulse(sample_rate, rng, rt60)
    size = 1 << int(np.ceil(np.log2(len(signal) + len(impulse) - 1)))
    tail = np.fft.irfft(np.fft.rfft(signal, size) * np.fft.rfft(impulse, size), size)
    return (1.0 - wet) * signal + wet * tail[: len(signal)]


def add_event(track: np.ndarray, start: int, event: np.ndarray) -> None:
    """Add ``event`` into ``track`` at ``start``, cutting whatever falls outside."""
    if start >= len(track) or start + len(event) <= 0:
        return
    lo, hi = max(start, 0), min(start + len(event), len(track))
    track[lo:hi] += event[lo - start : hi - start]


def event_times(seconds: float, rng: np.random.Generator, mean_interval: float) -> np.ndarray:
    """Onsets of a Poisson process over ``[0, seconds)``."""
    count = int(seconds / mean_interval * 2 + 10)
    times = np.cumsum(rng.exponential(mean_interval, count))
    while times[-1] < seconds:
        times = np.concatenate(
            [times, times[-1] + np.cumsum(rng.exponential(mean_interval, count))]
        )
    return times[times < seconds]
