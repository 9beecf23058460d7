"""Composite speech-quality measures of Hu & Loizou (2008): CSIG, CBAK, COVL, and their parts.

Hu, Y. and Loizou, P. C. (2008), "Evaluation of objective quality measures for speech
enhancement", IEEE Trans. Audio, Speech, Lang. Process. 16(1). The three ratings are linear
regressions on four measures of an enhanced signal against its clean reference:

- LLR, the log-likelihood ratio of the frames' LPC models,
- WSS, Klatt's weighted spectral slope distance over 25 critical bands,
- segmental SNR (SSNR) in dB, each frame's SNR clipped to [-10, 35] dB,
- PESQ.

The LLR, WSS and SSNR follow Loizou's MATLAB ``composite.m`` frame for frame (30 ms Hann
frames, 75 % overlap, LPC order 16 above 10 kHz, the best 95 % of frames kept for LLR and WSS,
no LLR clipping); they reproduce the values that ``composite.m``'s readme prints for its
8 kHz example pair (``tests/test_composite.py``).

PESQ: ``composite.m`` used Loizou's P.862 code and its raw (unmapped) score. The Python port
that VoiceBank+DEMAND papers use (facebookresearch/denoiser ``scripts/matlab_eval.py``, copied
by CMGAN, SpeechBrain and others) uses wideband PESQ (P.862.2 MOS-LQO) instead, and so does
this module: the project's own wideband PESQ (:mod:`crn_lightning.metrics`). Its CSIG, CBAK and
COVL are therefore comparable with those papers, not with figures computed by ``composite.m``.
Unlike that port, segmental SNR here does not remove the mean or rescale the enhanced signal
(``composite.m`` has those lines commented out).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from crn_lightning.metrics import PESQ_SAMPLE_RATE, PerceptualScores, perceptual_scores

# What an evaluation reports of the composite measures (their parts LLR and WSS stay inside).
COMPOSITE_MEASURES = ("csig", "cbak", "covl", "ssnr")

FRAME_SECONDS = 0.030
KEPT_FRACTION = 0.95  # LLR and WSS average the best 95 % of frames (composite.m's alpha)
SSNR_MIN_DB = -10.0
SSNR_MAX_DB = 35.0
# MATLAB's eps: composite.m adds it to both signals, which keeps the LPC of digital silence
# defined, and SSNR adds it inside the logarithm.
_EPS = float(np.finfo(np.float64).eps)

# Critical bands of the WSS filter bank (centre frequency, bandwidth in Hz); they span 0-4 kHz
# at every sample rate, as in the reference.
_BAND_CENTRES_HZ = np.array(
    [50.0, 120.0, 190.0, 260.0, 330.0, 400.0, 470.0, 540.0, 617.372, 703.378, 798.717,
     904.128, 1020.38, 1148.30, 1288.72, 1442.54, 1610.70, 1794.16, 1993.93, 2211.08,
     2446.71, 2701.97, 2978.04, 3276.17, 3597.63]
)  # fmt: skip
_BAND_WIDTHS_HZ = np.array(
    [70.0, 70.0, 70.0, 70.0, 70.0, 70.0, 70.0, 77.3724, 86.0056, 95.3398, 105.411, 116.256,
     127.914, 140.423, 153.823, 168.154, 183.457, 199.776, 217.153, 235.631, 255.255,
     276.072, 298.126, 321.465, 346.136]
)  # fmt: skip
_WSS_KMAX = 20.0  # Klatt (1982), p. 1280
_WSS_KLOCMAX = 1.0


def _checked_pair(clean: np.ndarray, processed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    clean = np.asarray(clean, dtype=np.float64)
    processed = np.asarray(processed, dtype=np.float64)
    if clean.ndim != 1 or processed.ndim != 1:
        raise ValueError(
            f"composite measures need two 1-D signals, got shapes {clean.shape} and "
            f"{processed.shape}"
        )
    if clean.shape != processed.shape:
        raise ValueError(
            f"clean and processed signals differ in length ({clean.size} vs {processed.size} "
            "samples); trim them to a common length first"
        )
    return clean + _EPS, processed + _EPS


def _hann_frames(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """The reference's frames: (frames, samples), 30 ms, hop a quarter frame, Hann-weighted."""
    frame_length = math.floor(FRAME_SECONDS * sample_rate + 0.5)  # MATLAB round()
    hop = frame_length // 4
    # composite.m loops over floor(len/hop - frame/hop) frames, one fewer than would fit.
    frame_count = (signal.size - frame_length) // hop
    if frame_count < 1:
        raise ValueError(
            f"signal of {signal.size} samples is too short for the composite measures: they "
            f"need at least {frame_length + hop} samples ({FRAME_SECONDS * 1000:.0f} ms frames) "
            f"at {sample_rate} Hz"
        )
    starts = np.arange(frame_count)[:, None] * hop
    window = 0.5 * (1.0 - np.cos(2.0 * np.pi * np.arange(1, frame_length + 1) / (frame_length + 1)))
    return signal[starts + np.arange(frame_length)] * window


def _mean_of_best(per_frame: np.ndarray) -> float:
    kept = math.floor(per_frame.size * KEPT_FRACTION + 0.5)  # MATLAB round()
    return float(np.mean(np.sort(per_frame)[:kept]))


def segmental_snr(clean: np.ndarray, processed: np.ndarray, sample_rate: int) -> float:
    """Mean over frames of each frame's SNR in dB, clipped to [-10, 35] dB."""
    clean, processed = _checked_pair(clean, processed)
    clean_frames = _hann_frames(clean, sample_rate)
    error_frames = clean_frames - _hann_frames(processed, sample_rate)
    signal_energy = np.sum(clean_frames**2, axis=1)
    noise_energy = np.sum(error_frames**2, axis=1)
    frame_snr = 10.0 * np.log10(signal_energy / (noise_energy + _EPS) + _EPS)
    return float(np.mean(np.clip(frame_snr, SSNR_MIN_DB, SSNR_MAX_DB)))


def _autocorrelation(frames: np.ndarray, max_lag: int) -> np.ndarray:
    length = frames.shape[1]
    return np.stack(
        [np.sum(frames[:, : length - lag] * frames[:, lag:], axis=1) for lag in range(max_lag + 1)],
        axis=1,
    )


def _lpc_polynomials(autocorrelation: np.ndarray) -> np.ndarray:
    """Prediction-error filters [1, -a_1, ..., -a_P] per frame (Levinson-Durbin)."""
    frame_count, order = autocorrelation.shape[0], autocorrelation.shape[1] - 1
    predictor = np.zeros((frame_count, order))
    error = autocorrelation[:, 0].copy()
    for i in range(order):
        previous = predictor[:, :i].copy()
        reflection = (
            autocorrelation[:, i + 1] - np.sum(previous * autocorrelation[:, i:0:-1], axis=1)
        ) / error
        predictor[:, i] = reflection
        predictor[:, :i] = previous - reflection[:, None] * previous[:, ::-1]
        error = (1.0 - reflection**2) * error
    return np.concatenate([np.ones((frame_count, 1)), -predictor], axis=1)


def log_likelihood_ratio(clean: np.ndarray, processed: np.ndarray, sample_rate: int) -> float:
    """LLR of the processed frames' LPC models against the clean ones (best 95 % of frames)."""
    clean, processed = _checked_pair(clean, processed)
    order = 10 if sample_rate < 10000 else 16
    clean_autocorrelation = _autocorrelation(_hann_frames(clean, sample_rate), order)
    clean_lpc = _lpc_polynomials(clean_autocorrelation)
    processed_lpc = _lpc_polynomials(_autocorrelation(_hann_frames(processed, sample_rate), order))
    lags = np.abs(np.arange(order + 1)[:, None] - np.arange(order + 1)[None, :])
    clean_toeplitz = clean_autocorrelation[:, lags]  # (frames, order + 1, order + 1)
    # Residual energy of the clean frame through each model: minimal for its own model.
    numerator = np.einsum("fi,fij,fj->f", processed_lpc, clean_toeplitz, processed_lpc)
    denominator = np.einsum("fi,fij,fj->f", clean_lpc, clean_toeplitz, clean_lpc)
    return _mean_of_best(np.log(numerator / denominator))


def _critical_band_filters(sample_rate: int, half_fft: int) -> np.ndarray:
    """Gaussian critical-band weights over the FFT bins below Nyquist, cut below -30 dB."""
    nyquist = sample_rate / 2
    centre_bins = np.floor(_BAND_CENTRES_HZ / nyquist * half_fft)
    width_bins = _BAND_WIDTHS_HZ / nyquist * half_fft
    # Equal-area normalisation: narrower bands get higher peaks.
    log_gain = np.log(_BAND_WIDTHS_HZ[0]) - np.log(_BAND_WIDTHS_HZ)
    bins = np.arange(half_fft)
    filters = np.exp(
        -11.0 * ((bins[None, :] - centre_bins[:, None]) / width_bins[:, None]) ** 2
        + log_gain[:, None]
    )
    return filters * (filters > math.exp(-30.0 / (2.0 * 2.303)))


def _nearest_peaks(energy_db: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """For each band, the energy at the nearest spectral peak as the reference finds it.

    A rising slope searches to the right and takes the band before the first non-rising slope;
    a falling one searches left and takes the band after the last rising slope.
    """
    frame_count, slope_count = slope.shape
    rising = slope > 0
    next_non_rising = np.empty_like(slope, dtype=np.int64)
    following = np.full(frame_count, slope_count)
    for band in range(slope_count - 1, -1, -1):
        following = np.where(rising[:, band], following, band)
        next_non_rising[:, band] = following
    last_rising = np.empty_like(next_non_rising)
    preceding = np.full(frame_count, -1)
    for band in range(slope_count):
        preceding = np.where(rising[:, band], band, preceding)
        last_rising[:, band] = preceding
    peak_band = np.where(rising, next_non_rising - 1, last_rising + 1)
    return np.take_along_axis(energy_db, peak_band, axis=1)


def _band_weights(energy_db: np.ndarray, slope: np.ndarray) -> np.ndarray:
    below_max = energy_db.max(axis=1, keepdims=True) - energy_db[:, :-1]
    below_peak = _nearest_peaks(energy_db, slope) - energy_db[:, :-1]
    return _WSS_KMAX / (_WSS_KMAX + below_max) * _WSS_KLOCMAX / (_WSS_KLOCMAX + below_peak)


def weighted_spectral_slope(clean: np.ndarray, processed: np.ndarray, sample_rate: int) -> float:
    """Klatt's weighted spectral slope distance over 25 critical bands (best 95 % of frames)."""
    clean, processed = _checked_pair(clean, processed)
    clean_frames = _hann_frames(clean, sample_rate)
    fft_size = 2 ** math.ceil(math.log2(2 * clean_frames.shape[1]))
    filters = _critical_band_filters(sample_rate, fft_size // 2)

    def band_energy_db(frames: np.ndarray) -> np.ndarray:
        power = np.abs(np.fft.fft(frames, fft_size, axis=1)[:, : fft_size // 2]) ** 2
        return 10.0 * np.log10(np.maximum(power @ filters.T, 1e-10))

    clean_db = band_energy_db(clean_frames)
    processed_db = band_energy_db(_hann_frames(processed, sample_rate))
    clean_slope = np.diff(clean_db, axis=1)
    processed_slope = np.diff(processed_db, axis=1)
    weights = (
        _band_weights(clean_db, clean_slope) + _band_weights(processed_db, processed_slope)
    ) / 2
    per_frame = np.sum(weights * (clean_slope - processed_slope) ** 2, axis=1)
    return _mean_of_best(per_frame / np.sum(weights, axis=1))


def composite_ratings(pesq: float, llr: float, wss: float, ssnr: float) -> dict[str, float]:
    """Hu & Loizou's regressions of the four measures, each rating clipped to [1, 5]."""
    csig = 3.093 - 1.029 * llr + 0.603 * pesq - 0.009 * wss
    cbak = 1.634 + 0.478 * pesq - 0.007 * wss + 0.063 * ssnr
    covl = 1.594 + 0.805 * pesq - 0.512 * llr - 0.007 * wss
    ratings = {"csig": csig, "cbak": cbak, "covl": covl}
    # np.clip keeps a NaN (failed PESQ) NaN instead of turning it into 1 or 5.
    return {name: float(np.clip(value, 1.0, 5.0)) for name, value in ratings.items()}


def composite_scores(
    clean: np.ndarray, enhanced: np.ndarray, sample_rate: int, pesq_score: float | None = None
) -> dict[str, float]:
    """CSIG, CBAK, COVL and their parts (``pesq``, ``llr``, ``wss``, ``ssnr`` in dB) of
    ``enhanced`` against ``clean``, two equally long 16 kHz signals.

    ``pesq_score`` is this pair's wideband PESQ when the caller has it already (an
    evaluation computes it anyway); otherwise it is computed here. Where PESQ fails
    (silent or very short reference) it is NaN, and so are the three ratings.
    """
    if sample_rate != PESQ_SAMPLE_RATE:
        raise ValueError(
            f"composite measures use wideband PESQ, which needs {PESQ_SAMPLE_RATE} Hz; got "
            f"{sample_rate} Hz: resample both signals first"
        )
    llr = log_likelihood_ratio(clean, enhanced, sample_rate)
    wss = weighted_spectral_slope(clean, enhanced, sample_rate)
    ssnr = segmental_snr(clean, enhanced, sample_rate)
    if pesq_score is None:
        pesq_score = perceptual_scores(np.asarray(clean), np.asarray(enhanced)).pesq
    ratings = composite_ratings(pesq_score, llr, wss, ssnr)
    return {**ratings, "pesq": float(pesq_score), "llr": llr, "wss": wss, "ssnr": ssnr}


def perceptual_and_composite_scores(
    reference: np.ndarray, degraded: np.ndarray, extended: bool = False
) -> PerceptualScores:
    """``metrics.perceptual_scores`` with CSIG, CBAK, COVL and SSNR added (``composite``), from
    the same wideband PESQ: one job of ``metrics.PerceptualScorer`` (``job=``).

    A pair too short for the composite frames gets NaN there and the reason in ``error``,
    as a failed PESQ does, instead of stopping a whole evaluation.
    """
    scores = perceptual_scores(reference, degraded, extended)
    try:
        parts = composite_scores(reference, degraded, PESQ_SAMPLE_RATE, scores.pesq)
    except ValueError as err:
        failed = dict.fromkeys(COMPOSITE_MEASURES, math.nan)
        error = "; ".join(filter(None, [scores.error, f"composite: {err}"]))
        return dataclasses.replace(scores, composite=failed, error=error)
    return dataclasses.replace(scores, composite={m: parts[m] for m in COMPOSITE_MEASURES})
