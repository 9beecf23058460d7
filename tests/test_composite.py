import math
from pathlib import Path

import numpy as np
import pytest

from crn_lightning.audio import read_channels, resample
from crn_lightning.composite import (
    SSNR_MAX_DB,
    composite_ratings,
    composite_scores,
    log_likelihood_ratio,
    segmental_snr,
    weighted_spectral_slope,
)
from crn_lightning.data.espeak import EspeakSynthesizer
from crn_lightning.metrics import perceptual_scores
from crn_lightning.mixing import mix_at_snr

LOIZOU_PAIR = Path(__file__).parent / "data" / "loizou_composite"


@pytest.fixture(scope="module")
def loizou_pair() -> tuple[np.ndarray, np.ndarray, int]:
    """composite.m's example pair, the longer file cut to the shorter one as composite.m does."""
    clean, rate = read_channels(LOIZOU_PAIR / "sp09.wav")
    enhanced, enhanced_rate = read_channels(LOIZOU_PAIR / "enhanced_logmmse.wav")
    assert rate == enhanced_rate == 8000
    length = min(clean.shape[1], enhanced.shape[1])
    return clean[0, :length], enhanced[0, :length], rate


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """eSpeak speech at 16 kHz with a recording's noise floor (about -80 dBFS) in its pauses."""
    synth = EspeakSynthesizer()
    audio = synth.synthesize("The quick brown fox jumps over the lazy dog.", "en-us+m3")
    audio = resample(audio, synth.sample_rate, 16000)
    floor = 1e-4 * np.random.default_rng(2).standard_normal(len(audio)).astype(np.float32)
    return audio + floor


def test_measures_reproduce_the_figures_composite_m_prints_for_its_example(loizou_pair):
    clean, enhanced, rate = loizou_pair
    # tests/data/loizou_composite/README.md: LLR=0.681368 SNRseg=3.991727 WSS=49.671978
    assert log_likelihood_ratio(clean, enhanced, rate) == pytest.approx(0.681368, abs=1e-6)
    assert segmental_snr(clean, enhanced, rate) == pytest.approx(3.991727, abs=1e-6)
    assert weighted_spectral_slope(clean, enhanced, rate) == pytest.approx(49.671978, abs=1e-6)


def test_ratings_reproduce_composite_m_from_its_printed_measures():
    # composite.m's example prints PESQ=2.255732 (its raw P.862 score) and c, b, o below.
    ratings = composite_ratings(pesq=2.255732, llr=0.681368, wss=49.671978, ssnr=3.991727)
    assert ratings["csig"] == pytest.approx(3.3050, abs=5e-5)
    assert ratings["cbak"] == pytest.approx(2.6160, abs=5e-5)
    assert ratings["covl"] == pytest.approx(2.7133, abs=5e-5)


def test_ratings_are_clipped_to_the_mos_scale_and_a_failed_pesq_stays_nan():
    assert set(composite_ratings(pesq=4.64, llr=0.0, wss=0.0, ssnr=35.0).values()) == {5.0}
    assert set(composite_ratings(pesq=1.0, llr=3.0, wss=150.0, ssnr=-10.0).values()) == {1.0}
    assert all(math.isnan(v) for v in composite_ratings(math.nan, 0.5, 40.0, 5.0).values())


def test_identical_signals_score_perfectly(speech):
    scores = composite_scores(speech, speech, 16000)
    assert scores["ssnr"] == SSNR_MAX_DB
    assert scores["llr"] == pytest.approx(0.0, abs=1e-9)
    assert scores["wss"] == pytest.approx(0.0, abs=1e-9)
    assert scores["pesq"] > 4.5
    assert scores["csig"] == scores["cbak"] == scores["covl"] == 5.0


def test_digital_silence_counts_as_the_ssnr_floor_even_against_itself(speech):
    # composite.m's rule: a silent frame has no signal energy, so its SNR is clipped to -10 dB.
    silent_gap = np.concatenate([speech, np.zeros(16000, dtype=np.float32)])
    assert segmental_snr(silent_gap, silent_gap, 16000) < SSNR_MAX_DB - 10


def test_noisier_speech_scores_lower_on_every_measure(speech):
    noise = np.random.default_rng(0).standard_normal(len(speech)).astype(np.float32)
    noisy, quiet = (
        composite_scores(speech, mix_at_snr(speech, noise, snr)[0], 16000) for snr in (10, 30)
    )
    for rating in ("csig", "cbak", "covl"):
        assert 1.0 <= noisy[rating] < quiet[rating] <= 5.0
    assert noisy["ssnr"] < quiet["ssnr"] and noisy["pesq"] < quiet["pesq"]
    assert noisy["llr"] > quiet["llr"] > 0 and noisy["wss"] > quiet["wss"] > 0


def test_pesq_is_the_projects_wideband_pesq_or_the_callers(speech):
    noisy = speech + 0.02 * np.random.default_rng(1).standard_normal(len(speech)).astype(np.float32)
    computed = composite_scores(speech, noisy, 16000)
    assert computed["pesq"] == perceptual_scores(speech, noisy).pesq
    given = composite_scores(speech, noisy, 16000, pesq_score=computed["pesq"])
    assert given == computed
    assert composite_scores(speech, noisy, 16000, pesq_score=1.0)["csig"] < computed["csig"]


def test_silent_reference_gives_nan_ratings_not_a_crash(speech):
    scores = composite_scores(np.zeros_like(speech), speech, 16000)
    assert math.isnan(scores["pesq"]) and math.isnan(scores["covl"])
    assert scores["ssnr"] == -10.0


def test_bad_input_is_refused_with_the_reason(speech):
    with pytest.raises(ValueError, match="16000 Hz"):
        composite_scores(speech, speech, 8000)
    with pytest.raises(ValueError, match="differ in length"):
        composite_scores(speech, speech[:-1], 16000)
    with pytest.raises(ValueError, match="too short"):
        segmental_snr(speech[:500], speech[:500], 16000)
    with pytest.raises(ValueError, match="1-D"):
        weighted_spectral_slope(speech[None], speech[None], 16000)
