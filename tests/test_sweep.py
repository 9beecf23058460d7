"""Multiruns as a user runs them: the summary table, failed jobs, TensorBoard run names, DDP
figures equal to a single process's, and the SLURM / Optuna configs composing."""

import csv
import json
from pathlib import Path

import pytest
from conftest import compose, run_cli, run_train
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from crn_lightning.finished_runs import RunError
from crn_lightning.runs import MAX_RUN_NAME_BYTES, run_name, swept_keys
from crn_lightning.summarize import main as summarize_main
from crn_lightning.sweep import write_summary


def _sweep_dir(outputs: Path) -> Path:
    (sweep,) = (outputs / "multirun" / "quickstart").iterdir()
    return sweep


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_2x2_multirun_writes_a_summary_and_one_named_tensorboard_run_per_job(tmp_path, tiny_cache):
    # Two training SNR conditions × two learning rates, all tested on one grid (0 and 10 dB).
    result = run_train(
        tmp_path,
        "data.snr_db=[0],[10]",
        "module.lr=0.001,0.003",
        "data.test_snr_db=[0,10]",
        "trainer.max_epochs=1",
        cache=tiny_cache,
        multirun=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = _sweep_dir(tmp_path / "outputs")
    rows = _csv(sweep / "summary.csv")
    assert len(rows) == 4
    assert {(r["data.snr_db"], r["module.lr"]) for r in rows} == {
        (snr, lr) for snr in ("[0]", "[10]") for lr in ("0.001", "0.003")
    }
    for row in rows:
        metrics = json.loads((sweep / row["job"] / "metrics.json").read_text())
        assert row["status"] == "ok" and row["error"] == ""
        assert float(row["pesq"]) == metrics["test"]["test/pesq"]
        gain = metrics["test"]["test/pesq"] - metrics["test"]["test/pesq_noisy"]
        assert float(row["pesq_gain"]) == pytest.approx(gain)
        assert int(row["parameters"]) == metrics["parameters"] > 0
        assert row["best_epoch"] == "1" and float(row["wall_time_s"]) > 0
    # Every job is tested on the same fixed grid: the noisy figures per SNR are identical.
    for snr in ("0", "10"):
        assert len({r[f"pesq_noisy@snr={snr}"] for r in rows}) == 1
        assert all(float(r[f"pesq@snr={snr}"]) > 1 for r in rows)

    markdown = (sweep / "summary.md").read_text()
    header = next(line for line in markdown.splitlines() if line.startswith("| job |"))
    assert "overrides that differ" in header and "PESQ @10 dB" in header
    assert "| data.snr_db=[10] module.lr=0.003 | ok |" in markdown
    assert markdown.count("| ok |") == 4
    assert (sweep / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # TensorBoard: one run per job under the sweep, named by the swept overrides, with the
    # test scalars and the HPARAMS plugin data.
    runs = sorted(p.name for p in (sweep / "tensorboard").iterdir())
    assert runs == [
        "00_data.snr_db=[0],module.lr=0.001",
        "01_data.snr_db=[0],module.lr=0.003",
        "02_data.snr_db=[10],module.lr=0.001",
        "03_data.snr_db=[10],module.lr=0.003",
    ]
    events = EventAccumulator(str(sweep / "tensorboard" / runs[3]))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"test/pesq", "test_by_snr/pesq@snr=10", "summary/pesq_gain"} <= scalars
    hparams = set(events.PluginTagToContent("hparams"))
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= hparams

    # The command-line summary is the same code path: same table from the same folder; a job
    # whose metrics vanished (killed, timed out) shows as incomplete and the exit code says so.
    table = (sweep / "summary.csv").read_text()
    again = run_cli("summarize", str(sweep), timeout=300)
    assert again.returncode == 0, again.stderr
    assert (sweep / "summary.csv").read_text() == table
    (sweep / "3" / "metrics.json").unlink()
    partial = run_cli("summarize", str(sweep), timeout=300)
    assert partial.returncode == 1
    statuses = [(r["status"], r["error"]) for r in _csv(sweep / "summary.csv")]
    assert statuses[:3] == [("ok", "")] * 3
    assert statuses[3][0] == "incomplete" and "no metrics.json" in statuses[3][1]


@pytest.mark.slow
def test_failed_jobs_are_recorded_with_their_error_and_do_not_stop_the_others(tmp_path, tiny_cache):
    # Job 0 fails building the STFT; job 1 still runs, and fails on its own error: DDP that
    # would re-launch the whole sweep in each process.
    result = run_train(
        tmp_path,
        "stft.n_fft=16,320",
        "trainer.accelerator=cpu",
        "trainer.strategy=ddp",
        "trainer.devices=2",
        cache=tiny_cache,
        multirun=True,
    )
    assert result.returncode != 0  # a sweep with failed jobs does not exit 0
    sweep = _sweep_dir(tmp_path / "outputs")
    rows = _csv(sweep / "summary.csv")
    assert [r["status"] for r in rows] == ["failed", "failed"]
    assert rows[0]["error"] == "ConfigError: stft.hop_length must be in (0, win_length=16], got 160"
    assert rows[1]["error"].startswith("ConfigError: trainer.devices=2 with strategy DDPStrategy")
    assert "hydra/launcher=slurm" in json.loads((sweep / "1" / "failed.json").read_text())["error"]
    assert "| failed: ConfigError: stft.hop_length" in (sweep / "summary.md").read_text()


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_gives_the_single_process_test_figures(tmp_path, tiny_cache):
    # The same initial weights (no training) tested on 9 clips: uneven shards of 5 and 4 under
    # DDP. Every clip must count exactly once, so all test figures are equal.
    common = [
        "trainer.accelerator=cpu",
        "trainer.precision=32-true",
        "trainer.limit_train_batches=0",
        "data.environments=[PRESTO]",
        "data.split.test=3",
        "data.test_snr_db=[0,5,10]",
    ]
    figures = {}
    for name, trainer in [
        ("single", ["trainer.devices=1"]),
        ("ddp", ["trainer=ddp", "trainer.devices=2", "trainer.sync_batchnorm=false"]),
    ]:
        result = run_train(tmp_path, *trainer, *common, f"name={name}", cache=tiny_cache)
        assert result.returncode == 0, result.stderr[-3000:]
        (run_dir,) = (tmp_path / "outputs" / name).iterdir()
        figures[name] = json.loads((run_dir / "metrics.json").read_text())["test"]
    print(
        {
            name: {k: f[k] for k in ("test/clips", "test/pesq", "test/stoi")}
            for name, f in figures.items()
        }
    )
    assert figures["ddp"]["test/clips"] == figures["single"]["test/clips"] == 9
    # Equal to float32 rounding: the two processes' sums meet in another order (the complex
    # mask's means differ in the 7th digit); a clip missed or counted twice moves a mean by
    # orders of magnitude more.
    assert figures["ddp"].keys() == figures["single"].keys()
    for key, value in figures["single"].items():
        assert figures["ddp"][key] == pytest.approx(value, rel=1e-6, abs=1e-6), key


def test_slurm_and_optuna_configs_compose_on_the_command_line():
    # A tuning study whose trials go to SLURM: both plugins' configs in one composition.
    overrides = ["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "trainer=ddp"]
    result = run_cli("train", *overrides, "+sweep=tune_lr_batch", "--cfg", "hydra", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for target in (
        "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
        "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper",
    ):
        assert f"_target_: {target}" in result.stdout
    assert "partition: gpu" in result.stdout


def test_slurm_launcher_takes_its_resources_from_the_trainer_config():
    overrides = ["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"]
    cfg = compose(*overrides, hydra=True)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
    assert launcher["partition"] is None and launcher["timeout_min"] == 240
    assert cfg.hydra.launcher.gpus_per_node == cfg.hydra.launcher.tasks_per_node == 4
    assert cfg.hydra.launcher.nodes == 2
    assert cfg.trainer.sync_batchnorm is True and cfg.trainer.strategy == "ddp"
    assert cfg.trainer.precision == "bf16-mixed" and cfg.trainer.benchmark is True


def test_optuna_sweep_tunes_lr_and_batch_size_for_validation_pesq():
    sweeper = compose("+sweep=tune_lr_batch", hydra=True).hydra.sweeper
    assert sweeper.direction == "maximize"
    assert set(sweeper.params) == {"module.lr", "data.batch_size"}


def test_snr_and_fft_sweeps_test_every_job_on_one_grid():
    snr = compose("experiment=quickstart", "+sweep=snr", hydra=True)
    assert snr.data.test_snr_db == [-5, 0, 5, 10, 15, 20, 25]
    conditions = snr.hydra.sweeper.params["data.snr_db"]
    assert conditions == "[-5,0,5],[5,10,15],[15,20,25]"
    fft = compose("experiment=quickstart", "+sweep=fft", hydra=True)
    assert fft.hydra.sweeper.params["stft.n_fft"] == "320,512,960,1024"
    assert fft.stft.hop_length == 160


def test_run_names_are_readable_and_length_safe():
    assert run_name(3, ["experiment=quickstart", "stft.n_fft=512"], {"stft.n_fft"}) == (
        "03_stft.n_fft=512"
    )
    assert run_name(0, ["paths.output_dir=/a/b c"], None) == "00_paths.output_dir=_a_b_c"
    long = [f"model.channels=[{','.join(['512'] * 60)}]"]
    a, b = run_name(1, long, None), run_name(1, [long[0] + "0"], None)
    assert len(a.encode()) <= MAX_RUN_NAME_BYTES < 255 and a.startswith("01_model.channels=[")
    assert a != b  # the hash keeps shortened names apart


def test_swept_keys_come_from_the_command_line_and_the_sweeper_params(tmp_path):
    OmegaConf.save(
        {
            "hydra": {
                "overrides": {"task": ["experiment=quickstart", "stft.n_fft=320,512", "+x=1"]},
                "sweeper": {"params": {"data.snr_db": "[0],[5]"}},
            }
        },
        tmp_path / "multirun.yaml",
    )
    assert swept_keys(tmp_path) == {"stft.n_fft", "data.snr_db"}
    # Without multirun.yaml (the Optuna sweeper writes none), the job's sweeper params count.
    assert swept_keys(tmp_path / "optuna", {"module.lr": "interval(0.1, 1)"}) == {"module.lr"}
    assert swept_keys(tmp_path / "missing") is None


def test_summarize_names_what_it_expected_in_a_folder_without_jobs(tmp_path, capsys):
    with pytest.raises(RunError, match="holds no sweep jobs"):
        write_summary(tmp_path)
    assert summarize_main([str(tmp_path)]) == 2
    assert f"{tmp_path} holds no sweep jobs" in capsys.readouterr().err
