import math

import numpy as np
import pytest
import torch

from crn_lightning.audio import resample
from crn_lightning.data.espeak import EspeakSynthesizer
from crn_lightning.metrics import PerceptualScorer, perceptual_scores, si_sdr
from crn_lightning.mixing import mix_at_snr
from crn_lightning.module import aggregate_scores


@pytest.fixture(scope="module")
def speech():
    synth = EspeakSynthesizer()
    audio = synth.synthesize("The quick brown fox jumps over the lazy dog.", "en-us+m3")
    return resample(audio, synth.sample_rate, 16000)


def test_pesq_and_stoi_rank_noisier_speech_lower(speech):
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(len(speech)).astype(np.float32)
    scores = {snr: perceptual_scores(speech, mix_at_snr(speech, noise, snr)[0]) for snr in (0, 20)}
    assert 1.0 < scores[0].pesq < scores[20].pesq <= 4.65
    assert scores[0].stoi < scores[20].stoi
    assert perceptual_scores(speech, speech).pesq > 4.4


def test_pesq_failure_is_nan_with_the_reason_not_a_crash(speech):
    scores = perceptual_scores(np.zeros_like(speech), speech)
    assert math.isnan(scores.pesq) and "NoUtterances" in scores.error


def test_scorer_pool_matches_inline(speech):
    noisy = speech + 0.05 * np.random.default_rng(1).standard_normal(len(speech)).astype(np.float32)
    pool, inline = PerceptualScorer(2), PerceptualScorer(0)
    try:
        assert pool.submit(speech, noisy).result() == inline.submit(speech, noisy).result()
    finally:
        pool.close()


def test_si_sdr_is_scale_invariant():
    x = torch.randn(2, 8000)
    noisy = x + 0.1 * torch.randn(2, 8000)
    assert torch.allclose(si_sdr(3 * noisy, x), si_sdr(noisy, x), atol=1e-3)
    assert (si_sdr(noisy, x) > 15).all()


def test_aggregate_leaves_failed_pesq_out_of_both_means():
    base = dict(loss=1.0, stoi=0.5, stoi_noisy=0.4, si_sdr=5.0, si_sdr_noisy=1.0)
    records = [
        dict(base, pesq=3.0, pesq_noisy=2.0),
        dict(base, pesq=float("nan"), pesq_noisy=1.5),
        dict(base, pesq=2.0, pesq_noisy=1.0),
    ]
    summary = aggregate_scores(records)
    assert summary["pesq"] == 2.5 and summary["pesq_noisy"] == 1.5
    assert summary["pesq_failures"] == 1 and summary["clips"] == 3


def test_extended_stoi_only_when_asked_and_ranks_noisier_speech_lower(speech):
    noise = np.random.default_rng(2).standard_normal(len(speech)).astype(np.float32)
    scores = {
        snr: perceptual_scores(speech, mix_at_snr(speech, noise, snr)[0], extended=True)
        for snr in (0, 20)
    }
    assert -1 < scores[0].estoi < scores[20].estoi <= 1
    assert perceptual_scores(speech, speech).estoi is None
