import math

import numpy as np
import pytest
import torch

from crn_lightning.audio import resample
from crn_lightning.data.espeak import EspeakSynthesizer
from crn_lightning.metrics import PerceptualScorer, perceptual_scores, si_sdr
from crn_lightning.mixing import mix_at_snr
from crn_lightning.scoring import ClipScores, aggregate_scores, breakdown, with_gains
from crn_lightning.tables import markdown_table


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


def test_clip_scores_score_a_grid_items_noisy_signal_once(speech):
    rng = np.random.default_rng(3)
    noisy = speech + 0.05 * rng.standard_normal(len(speech)).astype(np.float32)
    enhanced = speech + 0.01 * rng.standard_normal(len(speech)).astype(np.float32)
    scorer, submits = PerceptualScorer(0), []
    original = scorer.submit
    scorer.submit = lambda *args, **kw: submits.append(args[1] is noisy) or original(*args, **kw)
    scores = ClipScores(scorer)
    for _ in range(2):  # two validations of a one-item grid
        scores.add({"index": 0}, speech, noisy, enhanced, noisy_key=0)
        (record,) = scores.collect()
    assert submits == [True, False, False]  # noisy, enhanced; then enhanced only
    expected_noisy, expected = perceptual_scores(speech, noisy), perceptual_scores(speech, enhanced)
    assert record == {
        "index": 0,
        "pesq": expected.pesq,
        "pesq_noisy": expected_noisy.pesq,
        "stoi": expected.stoi,
        "stoi_noisy": expected_noisy.stoi,
        "pesq_error": "",
    }
    scores.add({"index": 1}, speech, noisy, enhanced, perceptual=False)
    assert scores.collect() == [{"index": 1}]  # kept as it is, nothing submitted
    assert len(submits) == 3

    extended = ClipScores(scorer, extended=True)
    extended.add({}, np.zeros_like(speech), noisy, enhanced)  # silent reference: PESQ fails
    (failed,) = extended.collect()
    assert -1 <= failed["estoi"] <= 1 and "estoi_noisy" in failed
    assert (
        failed["pesq_error"].startswith("noisy: NoUtterances")
        and "; enhanced: " in failed["pesq_error"]
    )


def test_breakdown_groups_by_snr_and_names_environments():
    def record(snr, env, pesq):
        return dict(
            loss=0.1,
            snr_db=snr,
            environment=env,
            pesq=pesq,
            pesq_noisy=1.0,
            stoi=0.8,
            stoi_noisy=0.7,
            si_sdr=5.0,
            si_sdr_noisy=0.0,
        )

    records = [record(10.0, 1, 3.0), record(0.0, 0, 2.0), record(0.0, 1, 1.0), record(5.0, 0, 4.0)]
    groups = breakdown(records, environments=["PRESTO", "NPARK"])
    assert list(groups["by_snr_db"]) == ["0", "5", "10"]  # sorted by value, not by text
    assert groups["by_snr_db"]["0"]["pesq"] == 1.5 and groups["by_snr_db"]["0"]["clips"] == 2
    assert list(groups["by_environment"]) == ["PRESTO", "NPARK"]
    assert groups["by_environment"]["NPARK"]["pesq"] == 2.0
    named = [dict(r, environment=["PRESTO", "NPARK"][r["environment"]]) for r in records]
    assert breakdown(named)["by_environment"]["NPARK"] == groups["by_environment"]["NPARK"]
    gains = with_gains(groups["by_snr_db"]["5"], ["pesq", "si_sdr"])
    assert gains["pesq_gain"] == 3.0 and gains["si_sdr_gain"] == 5.0


def test_markdown_table_columns_floats_and_blanks():
    table = markdown_table([{"": "all", "PESQ": 1.23456, "n": 12345}, {"": "a|b", "x": None}])
    assert table.splitlines() == [
        "|  | PESQ | n | x |",
        "|---|---|---|---|",
        "| all | 1.235 | 12,345 |  |",
        "| a\\|b |  |  | None |",
    ]
