"""Whether a speech recording is clean enough to train on, from its 20 ms frame energies.

:func:`assess_speech` applies, in this order: too short already before trimming; near-silent
(peak below the spec's ``silent_peak``); clipped (more than ``max_clipped_fraction`` of the
samples at ``|x| >= 0.99``); noisy (95th - 5th percentile of the 20 ms frame energies below
``min_dynamic_range_db``, digital-zero frames left out: a clean recording's pauses are far
quieter than its speech); then leading and trailing silence is trimmed to
``trim_margin_seconds`` (frames ``trim_threshold_db`` below the loudest), and a trimmed clip
outside ``[min_seconds, max_seconds]`` is too short or too long. Kept clips are resampled to
16 kHz (torchaudio) and averaged to mono.
"""

from __future__ import annotations

import numpy as np

from crn_lightning.audio import resample
from crn_lightning.data.offline_spec import OfflineCorpusSpec

FRAME_SECONDS = 0.02
_DIGITAL_ZERO_ENERGY = 1e-10  # -100 dB: digital zero (padding), below any room's noise floor
_CLIP_LEVEL = 0.99


def frame_energies_db(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mean-square energy (dB) of consecutive 20 ms frames of a mono signal."""
    size = max(1, round(FRAME_SECONDS * sample_rate))
    frames = audio[: len(audio) // size * size].astype(np.float64).reshape(-1, size)
    return 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-20)


def dynamic_range_db(energies_db: np.ndarray) -> float:
    """95th - 5th percentile of the frame energies, digital-zero frames left out (zero padding
    would otherwise make any recording look quiet between its words)."""
    live = energies_db[energies_db > 10.0 * np.log10(_DIGITAL_ZERO_ENERGY)]
    if len(live) < 2:
        return 0.0
    return float(np.percentile(live, 95) - np.percentile(live, 5))


def assess_speech(
    channels: np.ndarray, sample_rate: int, spec: OfflineCorpusSpec
) -> tuple[np.ndarray | None, str]:
    """The clean 16 kHz mono clip of a (channels, samples) recording and "kept", or None and
    why it was rejected (too short, silent, clipped, noisy, too long)."""
    if channels.shape[1] < spec.min_seconds * sample_rate:
        return None, "too short"  # before trimming already: not worth resampling
    magnitude = np.max(np.abs(channels), axis=0)
    if magnitude.max() < spec.silent_peak:
        return None, "silent"
    if np.mean(magnitude >= _CLIP_LEVEL) > spec.max_clipped_fraction:
        return None, "clipped"
    mono = resample(channels.mean(axis=0), sample_rate, spec.sample_rate)
    energies = frame_energies_db(mono, spec.sample_rate)
    if dynamic_range_db(energies) < spec.min_dynamic_range_db:
        return None, "noisy"
    active = np.flatnonzero(energies >= energies.max() - spec.trim_threshold_db)
    frame = round(FRAME_SECONDS * spec.sample_rate)
    margin = round(spec.trim_margin_seconds * spec.sample_rate)
    start = max(0, active[0] * frame - margin)
    stop = min(len(mono), (active[-1] + 1) * frame + margin)
    clip = mono[start:stop]
    seconds = len(clip) / spec.sample_rate
    if seconds < spec.min_seconds:
        return None, "too short"
    if seconds > spec.max_seconds:
        return None, "too long"
    return clip, "kept"
