"""evaluate's measures (composite, DNSMOS, with and without clean references) and enhance's
DNSMOS before → after, on tiny real files the tests write and a checkpoint as train saves it."""

import csv
import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from audio_trees import SR, voice, write_pairs
from conftest import ROOT, TINY
from omegaconf import OmegaConf

from crn_lightning.audio import read_audio
from crn_lightning.compose import compose_config
from crn_lightning.composite import COMPOSITE_MEASURES, composite_scores
from crn_lightning.dnsmos import dnsmos_scores, file_dnsmos
from crn_lightning.enhance import enhance
from crn_lightning.enhancer import CHECKPOINT_CONFIG_KEY, Enhancer
from crn_lightning.errors import ConfigError, UserError
from crn_lightning.evaluate import evaluate
from crn_lightning.metrics import PerceptualScorer
from crn_lightning.module import EnhancementModule
from crn_lightning.scoring import ClipScores, aggregate_scores

needs_speechmos = pytest.mark.skipif(
    importlib.util.find_spec("speechmos") is None,
    reason="speechmos is not installed: pip install -e '.[dnsmos]'",
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """The TINY model, untrained, saved with its config as train.py's checkpoints hold it:
    these tests check that evaluate reports what the measures compute on its output, which
    needs a model, not a good one (tests/test_pairs.py evaluates a trained one)."""
    root = tmp_path_factory.mktemp("measures")
    composed = compose_config([*TINY, f"paths.cache_dir={root}"])
    config = OmegaConf.to_container(composed, resolve=True)
    torch.manual_seed(0)
    module = EnhancementModule.from_config(config)
    path = root / "untrained.ckpt"
    torch.save({"state_dict": module.state_dict(), CHECKPOINT_CONFIG_KEY: config}, path)
    return path


def _config(name: str, **values) -> OmegaConf:
    return OmegaConf.merge(OmegaConf.load(ROOT / "conf" / f"{name}.yaml"), values)


def _enhanced(checkpoint: Path, noisy: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return Enhancer.from_checkpoint(checkpoint)(torch.from_numpy(noisy)[None])[0].numpy()


def _rows(run_dir: Path) -> dict[str, dict[str, str]]:
    with (run_dir / "scores.csv").open() as f:
        return {r["utterance"]: r for r in csv.DictReader(f)}


@needs_speechmos
def test_pairs_report_composite_and_dnsmos_as_the_measures_compute_them(checkpoint, tmp_path):
    pairs = write_pairs(tmp_path / "pairs", ["p1_001.wav"], subtype="FLOAT")  # DNSMOS: ~1 s
    cfg = _config(
        "evaluate",
        ckpt=str(checkpoint),
        pairs=str(tmp_path / "pairs"),
        measures=["pesq", "composite", "dnsmos"],
        metric_workers=0,
    )
    summary = evaluate(cfg, tmp_path / "run")
    rows = _rows(tmp_path / "run")
    assert set(rows) == set(pairs)
    header = next(iter(rows.values())).keys()
    assert "stoi" not in header and "si_sdr" not in header  # computed alongside, not asked for
    for name, (clean, noisy) in pairs.items():
        row, enhanced = rows[name], _enhanced(checkpoint, noisy)
        for signal, suffix in ((noisy, "_noisy"), (enhanced, "")):
            expected = composite_scores(clean, signal, SR)
            for m in (*COMPOSITE_MEASURES, "pesq"):
                assert math.isclose(float(row[f"{m}{suffix}"]), expected[m], rel_tol=1e-4), m
            dnsmos = dnsmos_scores(signal, SR)
            for m in ("sig", "bak", "ovrl"):
                assert math.isclose(float(row[f"dnsmos_{m}{suffix}"]), dnsmos[m], rel_tol=1e-4)
        assert float(row["dnsmos_ovrl_clean"]) == pytest.approx(dnsmos_scores(clean, SR)["ovrl"])
    mean = summary["all"]
    assert mean["csig"] == pytest.approx(np.mean([float(r["csig"]) for r in rows.values()]))
    assert mean["covl_gain"] == pytest.approx(mean["covl"] - mean["covl_noisy"])
    table = (tmp_path / "run" / "summary.md").read_text()
    assert "CSIG noisy → enhanced (gain)" in table and "DNSMOS OVRL clean" in table
    assert summary["measures"] == ["pesq", "composite", "dnsmos"]


@needs_speechmos
def test_a_folder_of_recordings_is_scored_by_dnsmos_alone(checkpoint, tmp_path):
    folder = tmp_path / "recordings"
    (folder / "day2").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for path, seconds in ((folder / "a.wav", 1.3), (folder / "day2" / "b.flac", 1.7)):
        audio = voice(seconds, 130) + 0.05 * rng.standard_normal(round(seconds * SR))
        sf.write(path, audio.astype(np.float32), SR)
    cfg = _config("evaluate", ckpt=str(checkpoint), recordings=str(folder), metric_workers=0)
    summary = evaluate(cfg, tmp_path / "run")
    rows = _rows(tmp_path / "run")
    assert set(rows) == {"a.wav", "day2/b.flac"} and summary["measures"] == ["dnsmos"]
    noisy = read_audio(folder / "day2" / "b.flac", SR)
    expected = dnsmos_scores(_enhanced(checkpoint, noisy), SR)
    assert float(rows["day2/b.flac"]["dnsmos_bak"]) == pytest.approx(expected["bak"], rel=1e-4)
    assert "loss" not in rows["a.wav"] and "dnsmos_sig_clean" not in rows["a.wav"]
    assert "DNSMOS BAK noisy → enhanced (gain)" in (tmp_path / "run" / "summary.md").read_text()

    reference = _config("evaluate", ckpt=str(checkpoint), recordings=str(folder), measures=["pesq"])
    with pytest.raises(ConfigError, match=r"\['pesq'\] compare with a clean reference"):
        evaluate(reference, tmp_path / "run2")
    assert not (tmp_path / "run2").exists()  # refused before any work


def test_bad_measures_and_a_missing_extra_stop_before_any_work(checkpoint, tmp_path, monkeypatch):
    write_pairs(tmp_path / "pairs", ["s_1.wav"])
    common = dict(ckpt=str(checkpoint), pairs=str(tmp_path / "pairs"))
    with pytest.raises(ConfigError, match=r"measures=\['pesq', 'mos'\].*\['mos'\] are not"):
        evaluate(_config("evaluate", **common, measures=["pesq", "mos"]), tmp_path / "run")
    both = _config("evaluate", **common, recordings=str(tmp_path / "pairs"))
    with pytest.raises(ConfigError, match="pairs= and recordings= are both set"):
        evaluate(both, tmp_path / "run")
    monkeypatch.setitem(sys.modules, "speechmos", None)  # makes `import speechmos` fail
    with pytest.raises(UserError, match=r"pip install -e '\.\[dnsmos\]'"):
        evaluate(_config("evaluate", **common, measures=["dnsmos"]), tmp_path / "run")
    with pytest.raises(UserError, match=r"pip install -e '\.\[dnsmos\]'"):
        options = dict(input=str(tmp_path), output=str(tmp_path / "o"), score="dnsmos")
        enhance(_config("enhance", ckpt=str(checkpoint), **options))
    assert not (tmp_path / "run").exists() and not (tmp_path / "o").exists()


@needs_speechmos
def test_enhance_prints_each_files_dnsmos_before_and_after(checkpoint, tmp_path, capsys):
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    rng = np.random.default_rng(1)
    for name in ("x.wav", "y.wav"):
        audio = voice(1.4, 150) + 0.1 * rng.standard_normal(round(1.4 * SR))
        sf.write(source / name, audio.astype(np.float32), SR)
    cfg = _config(
        "enhance", ckpt=str(checkpoint), input=str(source), output=str(out), score="dnsmos"
    )
    report = enhance(cfg)
    assert [c.output for c in report.dnsmos] == [out / "x.wav", out / "y.wav"]
    x = report.dnsmos[0]  # one checked: each DNSMOS call costs about a second
    assert x.before == file_dnsmos(source / "x.wav") and x.after == file_dnsmos(out / "x.wav")
    printed = capsys.readouterr().out
    assert f"{out / 'x.wav'}: SIG {x.before['sig']:.2f} → {x.after['sig']:.2f}" in printed
    assert "mean of 2 files: SIG" in printed
    with pytest.raises(ConfigError, match="score=pesq: expected null or dnsmos"):
        enhance(OmegaConf.merge(cfg, {"score": "pesq"}))


def test_composite_in_the_scoring_pipeline_and_paired_means(tmp_path):
    clean = voice(1.5, 120)
    noisy = clean + 0.05 * np.random.default_rng(2).standard_normal(len(clean)).astype(np.float32)
    scores = ClipScores(PerceptualScorer(0), composite=True)
    scores.add({"loss": 0.0, "si_sdr": 0.0, "si_sdr_noisy": 0.0}, clean, noisy, clean)
    scores.add(
        {"loss": 0.0, "si_sdr": 0.0, "si_sdr_noisy": 0.0}, *(x[:560] for x in (clean, noisy, clean))
    )
    whole, short = scores.collect()
    expected = composite_scores(clean, noisy, SR)
    assert whole["csig_noisy"] == pytest.approx(expected["csig"]) and whole["ssnr"] == 35.0
    # 35 ms: too short for the composite frames (and PESQ); NaN and the reason, not a crash
    assert math.isnan(short["csig"]) and "composite: signal of 560 samples" in short["pesq_error"]
    summary = aggregate_scores([whole, short], extra=COMPOSITE_MEASURES)
    assert summary["csig"] == whole["csig"] and summary["csig_noisy"] == whole["csig_noisy"]
    assert summary["csig_failures"] == 1 and summary["clips"] == 2
    json.dumps(summary)  # plain floats, as summary.json and metrics.json hold them
