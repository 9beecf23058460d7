"""Reading runs and sweeps, and their tables: run folders written here in the layout
crn_lightning.runs gives them."""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import compose
from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter

from crn_lightning import finished_runs, report_tables, results
from crn_lightning.data.corpora import CorpusError

NAMES = ("loss", "pesq", "pesq_noisy", "stoi", "stoi_noisy", "si_sdr", "si_sdr_noisy")


def _scores(pesq: float, noisy: float, clips: int) -> dict:
    return {
        "loss": 0.01,
        "pesq": pesq,
        "pesq_noisy": noisy,
        "pesq_failures": 0.0,
        "clips": float(clips),
        "stoi": 0.93,
        "stoi_noisy": 0.90,
        "si_sdr": 12.0,
        "si_sdr_noisy": 7.5,
    }


def make_run(
    run_dir: Path, pesq: float = 2.0, n_fft: int = 320, overrides=(), launched_from=None
) -> Path:
    """A finished run folder as crn_lightning.train leaves it (checkpoint file: empty)."""
    hydra_dir = run_dir / ".hydra"
    hydra_dir.mkdir(parents=True)
    cfg = compose("experiment=quickstart", f"stft.n_fft={n_fft}")
    cfg.paths.data_dir = "data"  # relative, as in conf/config.yaml
    OmegaConf.save(cfg, hydra_dir / "config.yaml")
    OmegaConf.save(
        {"hydra": {"runtime": {"cwd": str(launched_from or run_dir)}}}, hydra_dir / "hydra.yaml"
    )
    OmegaConf.save(list(overrides), hydra_dir / "overrides.yaml")
    by_snr = {"0": _scores(pesq - 0.5, 1.1, 4), "10": _scores(pesq + 0.5, 1.5, 4)}
    test = {f"test/{k}": v for k, v in _scores(pesq, 1.3, 8).items()}
    test["test/pesq@snr=0"] = pesq - 0.5
    checkpoint = run_dir / "checkpoints" / "epoch01-val_pesq1.900.ckpt"
    checkpoint.parent.mkdir()
    checkpoint.touch()
    metrics = {
        "experiment": "quickstart",
        "test": test,
        "test_breakdown": {
            "by_snr_db": by_snr,
            "by_environment": {"PRESTO": _scores(pesq, 1.2, 4), "NPARK": _scores(pesq, 1.4, 4)},
        },
        "corpus": {"kind": "real"},
        "parameters": 1234,
        "best_checkpoint": f"/elsewhere/{run_dir.name}/checkpoints/{checkpoint.name}",
        "steps": 4,
        "epochs": 2,
        "wall_time_s": 12.3,
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    return run_dir


def test_load_run_reads_metrics_config_and_makes_paths_absolute_from_the_launch_folder(tmp_path):
    run = finished_runs.load_run(
        make_run(tmp_path / "run", overrides=["a=1"], launched_from=tmp_path)
    )
    assert run.config.paths.data_dir == str(tmp_path / "data")
    assert run.config.data.arctic_root == str(tmp_path / "data" / "cmu_arctic")
    assert run.overrides == ["a=1"] and run.metrics["parameters"] == 1234
    # The checkpoint is found in the run's own folder, not at the absolute path recorded.
    assert (
        finished_runs.checkpoint_path(run)
        == run.run_dir / "checkpoints" / "epoch01-val_pesq1.900.ckpt"
    )
    (run.run_dir / "checkpoints" / "epoch01-val_pesq1.900.ckpt").unlink()
    with pytest.raises(finished_runs.RunError, match="epoch01-val_pesq1.900.ckpt is not in"):
        finished_runs.checkpoint_path(run)


def test_load_run_names_what_is_missing(tmp_path):
    with pytest.raises(finished_runs.RunError, match="run folder not found"):
        finished_runs.load_run(tmp_path / "nothing")
    run_dir = make_run(tmp_path / "run")
    (run_dir / "metrics.json").unlink()
    with pytest.raises(finished_runs.RunError, match="not a finished run: no metrics.json"):
        finished_runs.load_run(run_dir)
    run_dir = make_run(tmp_path / "run2")
    (run_dir / ".hydra" / "hydra.yaml").unlink()
    with pytest.raises(finished_runs.RunError, match="paths.data_dir='data' is relative"):
        finished_runs.load_run(run_dir)


def test_resolve_target_takes_the_given_folder_or_the_newest_run(tmp_path):
    outputs = tmp_path / "outputs"
    with pytest.raises(finished_runs.RunError, match="no finished run under .*set CRN_RUN_DIR"):
        finished_runs.resolve_target(None, outputs)
    old = make_run(outputs / "quickstart" / "old")
    new = make_run(outputs / "multirun" / "x" / "t" / "0")
    os.utime(old / "metrics.json", (1e9, 1e9))
    assert finished_runs.resolve_target(None, outputs) == new
    assert finished_runs.resolve_target(str(old), outputs) == old
    with pytest.raises(finished_runs.RunError, match="CRN_RUN_DIR=.*no such folder"):
        finished_runs.resolve_target(tmp_path / "missing", outputs)


def test_sweep_jobs_in_order_with_differing_overrides_and_a_failed_job(tmp_path):
    sweep = tmp_path / "sweep"
    common = ["experiment=quickstart", "trainer.max_epochs=2"]
    for num, n_fft, pesq in ((0, 256, 1.8), (1, 512, 2.2), (10, 960, 2.0)):
        make_run(sweep / str(num), pesq, n_fft, [*common, f"stft.n_fft={n_fft}"])
    failed = sweep / "2" / ".hydra"
    failed.mkdir(parents=True)
    OmegaConf.save([*common, "stft.n_fft=1024"], failed / "overrides.yaml")
    (sweep / "multirun.yaml").touch()

    assert finished_runs.is_sweep(sweep) and not finished_runs.is_sweep(sweep / "0")
    jobs = finished_runs.load_sweep(sweep)
    assert [j.job_dir.name for j in jobs] == ["0", "1", "2", "10"]
    assert jobs[2].run is None and "no metrics.json" in jobs[2].problem
    assert results.condition_labels(jobs) == [
        "stft.n_fft=256",
        "stft.n_fft=512",
        "stft.n_fft=1024",
        "stft.n_fft=960",
    ]
    assert results.best_job(jobs).job_dir.name == "1"

    table = report_tables.sweep_table(jobs)
    assert table[1]["PESQ"] == "2.200" and table[1]["gain"] == "+0.900"
    assert table[2]["status"] == f"incomplete: {jobs[2].problem}"
    assert jobs[2].problem.startswith(f"{jobs[2].job_dir} is not a finished run")
    points = results.sweep_points(jobs, "stft.n_fft")
    assert [(p["x"], p["label"], p["pesq"]) for p in points] == [
        (256, "", 1.8),
        (512, "", 2.2),
        (960, "", 2.0),
    ]
    by_snr = results.sweep_by_snr(jobs)
    assert list(by_snr) == ["stft.n_fft=256", "stft.n_fft=512", "stft.n_fft=960"]
    assert by_snr["stft.n_fft=512"][10.0]["pesq"] == pytest.approx(2.7)

    assert finished_runs.read_summary_csv(sweep) is None
    (sweep / "summary.csv").write_text("job,test/pesq\n0,1.8\n1,2.2\n")
    assert finished_runs.read_summary_csv(sweep) == [
        {"job": "0", "test/pesq": "1.8"},
        {"job": "1", "test/pesq": "2.2"},
    ]
    with pytest.raises(finished_runs.RunError, match="holds no sweep jobs"):
        finished_runs.load_sweep(tmp_path / "sweep" / "0" / "checkpoints")


def test_scores_table_lists_all_clips_then_snrs_then_environments(tmp_path):
    run = finished_runs.load_run(make_run(tmp_path / "run", pesq=2.0))
    rows = report_tables.scores_table(run.metrics)
    assert [r[""] for r in rows] == ["all", "0 dB", "10 dB", "PRESTO", "NPARK"]
    assert rows[0]["PESQ noisy → enhanced"] == "1.30 → 2.00" and rows[0]["gain"] == "+0.70"
    assert rows[2]["clips"] == "4"


def test_read_scalars_gathers_every_event_file(tmp_path):
    folder = tmp_path / "run" / "tensorboard"
    with SummaryWriter(str(folder), filename_suffix=".fit") as writer:
        for step in range(3):
            writer.add_scalar("train/loss", 1.0 / (step + 1), step)
    with SummaryWriter(str(folder), filename_suffix=".test") as writer:
        writer.add_scalar("test/pesq", 2.5, 3)
    scalars = finished_runs.read_scalars(tmp_path / "run")
    steps, values = scalars["train/loss"]
    assert list(steps) == [0, 1, 2] and values == pytest.approx([1, 0.5, 1 / 3])
    assert scalars["test/pesq"][1] == pytest.approx([2.5])
    with pytest.raises(finished_runs.RunError, match="no TensorBoard event files"):
        finished_runs.read_scalars(tmp_path)


def test_a_sweep_jobs_scalars_are_read_from_its_named_run_under_the_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    for num in (1, 10):
        (sweep / str(num) / ".hydra").mkdir(parents=True)
        (sweep / str(num) / ".hydra" / "overrides.yaml").write_text("[]\n")
    for name, loss in (("01_stft.n_fft=512", 0.5), ("10_stft.n_fft=1024", 0.25)):
        with SummaryWriter(str(sweep / "tensorboard" / name)) as writer:
            writer.add_scalar("train/loss", loss, 0)
    assert finished_runs.read_scalars(sweep / "1")["train/loss"][1] == pytest.approx([0.5])
    assert finished_runs.read_scalars(sweep / "10")["train/loss"][1] == pytest.approx([0.25])


def test_run_datamodule_keeps_the_corpus_kind_the_run_used(tmp_path):
    # The run used the real corpus; it is absent here: an error, not the embedded stand-in.
    run = finished_runs.load_run(make_run(tmp_path / "run", launched_from=tmp_path))
    with pytest.raises(CorpusError, match="cmu_arctic"):
        results.run_datamodule(run)


def test_data_tables_and_the_mixing_check_on_a_real_data_module(tiny_corpora, tmp_path):
    arctic, demand = tiny_corpora
    cfg = compose(
        f"data.arctic_root={arctic}",
        f"data.demand_root={demand}",
        "data.corpus=real",
        "data.environments=[PRESTO,NPARK]",
        "data.split={train: 6, val: 3, test: 2}",
        "data.snr_db=[0,10]",
        "data.test_snr_db=[-5,5]",
        "data.clip_seconds=1.0",
    )
    dm = results.build_datamodule(cfg)
    corpus = report_tables.corpus_table(dm)
    assert [r["split"] for r in corpus] == ["train", "val", "test"]
    assert corpus[2]["mixtures"] == 2 * 2 * 2 and corpus[2]["SNRs (dB)"] == "-5, 5"
    assert corpus[0]["SNRs (dB)"] == "0, 10"

    indices = results.grid_indices(dm, "test", utterance=1, environment="NPARK")
    assert [dm.grid_item("test", i).snr_db for i in indices] == [-5, 5]
    assert dm.describe("test", indices[0]).endswith("+ NPARK at -5 dB")
    assert len(results.grid_indices(dm, "test", snr_db=5)) == 4
    with pytest.raises(ValueError, match="'DLIVING' is not one of"):
        results.grid_indices(dm, "test", environment="DLIVING")

    check = report_tables.mixing_check(dm, "test", indices)
    assert [row["SNR asked (dB)"] for row in check] == [-5, 5]
    assert max(abs(row["error (dB)"]) for row in check) < 1e-3


def test_clip_scores_of_a_clean_clip_against_itself_and_a_noisy_one():
    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    speech = (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 2 * t) > 0)).astype(
        np.float32
    )
    noisy = speech + 0.05 * rng.standard_normal(len(speech)).astype(np.float32)
    same = results.clip_scores(speech, torch.from_numpy(speech))
    worse = results.clip_scores(speech, noisy)
    assert same["pesq"] > 4.0 and same["si_sdr"] > 50
    assert worse["pesq"] < same["pesq"] and math.isfinite(worse["stoi"])
