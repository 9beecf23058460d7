"""Training-time augmentation for real-world robustness: level, room, microphone.

Pure numpy/scipy functions; every random choice comes from an explicit ``np.random.Generator``
so a mixture is a function of its seed. The data module calls ``augment_training_pair``; with
every option at its default it is exactly today's mixing (``mix_at_snr`` + ``prevent_clipping``).

The chain follows the physics of a recording: the talker's speech is reverberated by the room,
the noise adds in the same room, the microphone (EQ, band limit) colours both, and the
recording level (gain) scales the result. The SNR is the one measured at the microphone: of the
reverberant, coloured speech against the coloured noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real

import numpy as np
from scipy import signal as sps  # a dependency of pystoi (and optuna), so always installed

from crn_lightning.errors import ConfigError
from crn_lightning.mixing import SILENCE_RMS, mix_at_snr, prevent_clipping, rms

# ln(1000): an exponential amplitude envelope exp(-DECAY_60DB * t / T60) is 60 dB down at T60.
DECAY_60DB = math.log(1000.0)
# Octave band edges (Hz) of the reverberation tail; the last band runs to Nyquist.
TAIL_BAND_EDGES_HZ = (250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)
# Narrowband (telephone, 300-3400 Hz) and wideband (50-7000 Hz) codec bandwidths: the cutoffs
# real band-limited input has. A 16 kHz signal has nothing to lose at its 8 kHz Nyquist.
BANDLIMIT_CUTOFFS_HZ = (3400.0, 7000.0)


def random_gain(
    noisy: np.ndarray,
    target: np.ndarray,
    rng: np.random.Generator,
    dbfs_range: Sequence[float] = (-35.0, -15.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Scale ``noisy`` and ``target`` by one gain so that the mixture's RMS level is uniform in
    ``dbfs_range`` (dB relative to an RMS of 1.0); then ``prevent_clipping`` on both.

    Real recordings arrive at any level (a quiet far-field mic, a hot headset); a model trained
    at one level misjudges the others. One common gain keeps the SNR and the pair's relation.
    """
    noisy_rms = rms(noisy)
    if noisy_rms < SILENCE_RMS:
        raise ValueError(f"cannot set the level of a silent mixture (rms {noisy_rms:.2e})")
    level_db = rng.uniform(dbfs_range[0], dbfs_range[1])
    gain = np.float32(10.0 ** (level_db / 20.0) / noisy_rms)
    noisy, target = prevent_clipping(noisy * gain, target * gain)
    return noisy, target


def _tail_band_t60_ratio(centre_hz: float) -> float:
    """T60 of a band relative to the drawn (mid-frequency) T60: high frequencies decay faster
    because air and most wall materials absorb more there. T60 is usually quoted at 0.5-1 kHz,
    so bands up to 1 kHz keep it and higher ones fall off smoothly (0.77 at 2.8 kHz, 0.65 at
    5.7 kHz)."""
    return min(1.0, (1000.0 / centre_hz) ** 0.25)


def room_impulse_response(
    rng: np.random.Generator,
    sample_rate: int,
    rt60_range: Sequence[float] = (0.2, 0.8),
    drr_db_range: Sequence[float] = (-5.0, 10.0),
    early_s: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """A random room impulse response and its direct-and-early part, ``(rir, early_rir)``.

    The statistical room model (Polack): after the direct sound, the diffuse reverberation of a
    room is Gaussian noise under an exponential envelope that is 60 dB down at T60. Here:

    - the direct path is a unit tap at sample 0 (time zero is the direct sound's arrival, so
      reverberation adds no delay to the speech and input and target stay aligned);
    - after a 1-5 ms gap (the nearest surface's extra path), 4-11 sparse early reflections of
      random sign stand out 3-10x above the diffuse tail (discrete echoes from walls, table);
    - the tail is octave-band noise, each band with its own T60 (``_tail_band_t60_ratio``);
      T60 is drawn uniformly from ``rt60_range`` (s);
    - everything after the direct tap is scaled to a direct-to-reverberant ratio drawn from
      ``drr_db_range`` (dB): far-field room mics sit near or below 0 dB, phones near 10 dB.
      DRR is drawn apart from T60 because it depends on the talker's distance, not the room.

    ``early_rir`` is ``rir`` up to ``early_s`` after the direct sound (50 ms: early reflections
    fuse with the direct sound perceptually and help intelligibility, so the usual
    dereverberation target keeps them); ``early_s=0`` gives the direct path alone (dry target).
    ``rir`` is ``ceil(T60 * sample_rate)`` samples long (its longest band is 60 dB down there).
    Its broadband T60 measures about 0.8x the drawn one (the faster high bands); below 1 kHz,
    where most speech energy lies, it is the drawn one (tests/test_augment.py checks both).
    """
    rt60 = rng.uniform(rt60_range[0], rt60_range[1])
    length = max(math.ceil(rt60 * sample_rate), round(early_s * sample_rate) + 2)
    times = np.arange(length) / sample_rate
    gap = round(rng.uniform(0.001, 0.005) * sample_rate)

    # Octave bands of white noise (complementary FFT masks, so they sum to the white noise).
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length, 1.0 / sample_rate)
    nyquist = sample_rate / 2.0
    edges = [0.0, *[e for e in TAIL_BAND_EDGES_HZ if e < nyquist], np.inf]
    tail = np.zeros(length)
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        centre = math.sqrt(max(low, 125.0) * min(high, nyquist))
        band = np.fft.irfft(np.where((freqs >= low) & (freqs < high), spectrum, 0.0), length)
        tail += band * np.exp(-DECAY_60DB * times / (rt60 * _tail_band_t60_ratio(centre)))

    early_end = max(gap + 1, round(early_s * sample_rate))
    reflections = np.zeros(length)
    n_reflections = int(rng.integers(4, 12))
    at = rng.integers(gap, early_end, size=n_reflections)
    heights = rng.uniform(3.0, 10.0, n_reflections) * rng.choice((-1.0, 1.0), n_reflections)
    np.add.at(reflections, at, heights * np.exp(-DECAY_60DB * times[at] / rt60))

    reverberation = tail + reflections
    reverberation[:gap] = 0.0
    drr_db = rng.uniform(drr_db_range[0], drr_db_range[1])
    reverberation *= math.sqrt(
        10.0 ** (-drr_db / 10.0) / float(np.dot(reverberation, reverberation))
    )
    rir = reverberation
    rir[0] = 1.0
    early_rir = rir[: round(early_s * sample_rate) + 1].copy()
    return rir, early_rir


def reverberate(
    speech: np.ndarray, rir: np.ndarray, early_rir: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(reverberant, target)``: ``speech`` convolved with the full ``rir`` (the model's input)
    and with ``early_rir`` (the target), both float32, cut to ``len(speech)``.

    Both RIRs start with the same direct tap at sample 0, so the target is aligned with the
    reverberant speech; cutting drops the tail that rings on past the clip (a recording of the
    clip would not contain it either)."""
    speech = np.asarray(speech, dtype=np.float32)
    reverberant = sps.fftconvolve(speech, rir)[: len(speech)].astype(np.float32)
    target = sps.fftconvolve(speech, early_rir)[: len(speech)].astype(np.float32)
    return reverberant, target


def _rbj_biquad(
    kind: str, freq_hz: float, gain_db: float, q: float, sample_rate: int
) -> np.ndarray:
    """One second-order section (``[b0, b1, b2, 1, a1, a2]``) of the Audio EQ Cookbook (R.
    Bristow-Johnson): ``kind`` is "peak", "low_shelf" or "high_shelf"; ``gain_db`` is the peak's
    or the shelf's gain, ``q`` the peak's Q (shelves use slope 1, the steepest without overshoot).
    """
    amp = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * freq_hz / sample_rate
    cos_w0, sin_w0 = math.cos(w0), math.sin(w0)
    if kind == "peak":
        alpha = sin_w0 / (2.0 * q)
        b = (1.0 + alpha * amp, -2.0 * cos_w0, 1.0 - alpha * amp)
        a = (1.0 + alpha / amp, -2.0 * cos_w0, 1.0 - alpha / amp)
    elif kind in ("low_shelf", "high_shelf"):
        alpha = sin_w0 / 2.0 * math.sqrt(2.0)  # slope S = 1
        root = 2.0 * math.sqrt(amp) * alpha
        sign = 1.0 if kind == "low_shelf" else -1.0  # the high shelf mirrors the low one
        b = (
            amp * ((amp + 1.0) - sign * (amp - 1.0) * cos_w0 + root),
            sign * 2.0 * amp * ((amp - 1.0) - sign * (amp + 1.0) * cos_w0),
            amp * ((amp + 1.0) - sign * (amp - 1.0) * cos_w0 - root),
        )
        a = (
            (amp + 1.0) + sign * (amp - 1.0) * cos_w0 + root,
            -sign * 2.0 * ((amp - 1.0) + sign * (amp + 1.0) * cos_w0),
            (amp + 1.0) + sign * (amp - 1.0) * cos_w0 - root,
        )
    else:
        raise ValueError(f"unknown biquad kind {kind!r}")
    return np.array([*b, *a]) / a[0]


def random_equalizer(
    rng: np.random.Generator, sample_rate: int, max_gain_db: float = 6.0
) -> np.ndarray:
    """A random microphone colouring as second-order sections (for ``scipy.signal.sosfilt``):
    a low shelf (100-400 Hz) and a high shelf (2-5 kHz, capped below Nyquist) that together tilt
    the spectrum, and 1-3 peaking filters (log-uniform 150 Hz - 0.8·Nyquist, Q 0.7-3), each with
    a gain uniform in ±``max_gain_db``.

    Cheap microphones, laptop mics and phone housings have responses off flat by a few dB in
    broad tilts and resonances; the model should not depend on one particular response."""
    nyquist = sample_rate / 2.0
    sections = [
        _rbj_biquad(
            "low_shelf",
            rng.uniform(100.0, 400.0),
            rng.uniform(-1, 1) * max_gain_db,
            0.0,
            sample_rate,
        ),
        _rbj_biquad(
            "high_shelf",
            rng.uniform(2000.0, min(5000.0, 0.6 * nyquist)),
            rng.uniform(-1, 1) * max_gain_db,
            0.0,
            sample_rate,
        ),
    ]
    for _ in range(int(rng.integers(1, 4))):
        centre = math.exp(rng.uniform(math.log(150.0), math.log(0.8 * nyquist)))
        sections.append(
            _rbj_biquad(
                "peak", centre, rng.uniform(-1, 1) * max_gain_db, rng.uniform(0.7, 3.0), sample_rate
            )
        )
    return np.stack(sections)


def random_lowpass(
    rng: np.random.Generator,
    sample_rate: int,
    cutoffs_hz: Sequence[float] = BANDLIMIT_CUTOFFS_HZ,
) -> np.ndarray:
    """An 8th-order Butterworth low-pass at a cutoff uniform in ``cutoffs_hz`` (capped at 0.9·
    Nyquist, where a low-pass changes nothing audible), as second-order sections.

    Narrowband microphones, Bluetooth headsets and telephone/VoIP codecs deliver speech with
    nothing above 3.4-7 kHz; 8th order puts the stopband (-48 dB/octave) close to the cutoff,
    as a codec's resampler does."""
    top = min(cutoffs_hz[1], 0.9 * sample_rate / 2.0)
    if cutoffs_hz[0] > top:
        raise ValueError(
            f"band-limit cutoffs {tuple(cutoffs_hz)} Hz are above 0.9x Nyquist at {sample_rate} Hz"
        )
    cutoff = rng.uniform(cutoffs_hz[0], top)
    return sps.butter(8, cutoff, btype="lowpass", output="sos", fs=sample_rate)


def _probability(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"data.augment.{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def _range(
    name: str, value: Sequence[float], low: float, high: float, unit: str
) -> tuple[float, float]:
    """``value`` as ``(lo, hi)`` with ``low <= lo <= hi <= high``, else a ConfigError naming it."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        lo = hi = math.nan
    if not (low <= lo <= hi <= high):
        raise ConfigError(
            f"data.augment.{name} must be two numbers [lo, hi] with {low} <= lo <= hi <= {high} "
            f"({unit}), got {value!r}"
        )
    return lo, hi


def augment_training_pair(
    clean: np.ndarray,
    noise: np.ndarray,
    snr_db: float,
    rng: np.random.Generator,
    sample_rate: int,
    *,
    gain_dbfs: Sequence[float] | None = None,
    reverb_probability: float = 0.0,
    rt60_s: Sequence[float] = (0.2, 0.8),
    eq_probability: float = 0.0,
    bandlimit_probability: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One training pair ``(noisy, target)``, float32, of ``min(len(clean), len(noise))``
    samples (the clean's length in the data module, which passes equal lengths).

    With every option at its default: ``noisy, target = prevent_clipping(mix_at_snr(...))``
    exactly as before, and no draw from ``rng``. Otherwise, in the order of a recording:

    - with ``reverb_probability``: the clean speech is reverberated by a random room with T60 in
      ``rt60_s``; the target is the direct-and-early (50 ms) speech, at the dry level (the
      direct path has gain 1);
    - with ``eq_probability`` / ``bandlimit_probability``: one random microphone filter colours
      the speech, the noise and the target alike;
    - the noise is scaled so that the reverberant, coloured speech (what the microphone hears) is
      at ``snr_db`` against it;
    - with ``gain_dbfs`` ``[lo, hi]``: mixture and target are scaled together to a mixture level
      uniform in that range (dBFS); then clipping is prevented as before.

    Each augmentation draws from its own generator seeded from ``rng``, so switching one on or
    off leaves the others' draws (the rooms, the filters, the levels) unchanged.
    """
    reverb_probability = _probability("reverb_probability", reverb_probability)
    eq_probability = _probability("eq_probability", eq_probability)
    bandlimit_probability = _probability("bandlimit_probability", bandlimit_probability)
    rt60_range = _range("rt60_s", rt60_s, 0.01, 10.0, "seconds")
    gain_range = None if gain_dbfs is None else _range("gain_dbfs", gain_dbfs, -100.0, 0.0, "dBFS")
    probabilities = (reverb_probability, eq_probability, bandlimit_probability)

    if gain_range is None and not any(probabilities):
        noisy, target, _ = mix_at_snr(clean, noise, snr_db)
        return prevent_clipping(noisy, target)

    reverb_rng, eq_rng, bandlimit_rng, gain_rng = (
        np.random.default_rng(seed) for seed in rng.integers(2**63, size=4)
    )
    speech, target = clean, None  # None: the target is the mixed speech itself
    if reverb_rng.random() < reverb_probability:
        speech, target = reverberate(
            clean, *room_impulse_response(reverb_rng, sample_rate, rt60_range)
        )

    # The microphone colours everything that reaches it; the target gets the same colouring so
    # that the model removes noise and late reverberation but does not learn to undo the
    # microphone: inverting a random EQ or inventing the band above a codec's cutoff is
    # guesswork that would add artefacts to every input. Filtering speech and noise apart
    # (linear, so the same as filtering their sum) lets the SNR be set at the microphone's
    # output; a band limit on the speech alone would leave noise above the cutoff, a cue real
    # band-limited input never has.
    sections = []
    if eq_rng.random() < eq_probability:
        sections.append(random_equalizer(eq_rng, sample_rate))
    if bandlimit_rng.random() < bandlimit_probability:
        sections.append(random_lowpass(bandlimit_rng, sample_rate))
    if sections:
        sos = np.concatenate(sections)
        length = min(len(clean), len(noise))
        target = speech if target is None else target
        speech, target, noise = (
            sps.sosfilt(sos, np.asarray(x[:length], dtype=np.float64))
            for x in (speech, target, noise)
        )

    noisy, mixed_speech, _ = mix_at_snr(speech, noise, snr_db)
    target = mixed_speech if target is None else np.asarray(target[: len(noisy)], dtype=np.float32)
    if gain_range is not None:
        return random_gain(noisy, target, gain_rng, gain_range)
    return prevent_clipping(noisy, target)
