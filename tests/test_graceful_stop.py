"""SIGTERM and SLURM's requeue signal sent to a real training run, which then continues."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT, cli_command, run_cli, tiny_train_args

# 2 epochs of 8 steps (an uninterrupted run of this config makes 16 steps: see
# test_reliability.py), a loader worker and a scoring pool, so the signal reaches those
# processes too; the estimate line after 3 steps tells the test when to send it.
LONGER = [
    "trainer.max_epochs=2",
    "data.epoch_length=32",
    "data.num_workers=1",
    "module.metric_workers=1",
    "module.lr_schedule=constant",
    "callbacks.progress_log.estimate_after_steps=3",
    "callbacks.progress_log.estimate_after_s=1e9",  # after 3 steps, however slow the machine
]
STEPS = 16


def start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        cli_command("train", *args),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, as a SLURM job step or a terminal
    )


def wait_for_line(log_file: Path, text: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 600
    while not (log_file.is_file() and text in log_file.read_text()):
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"no {text!r} in {log_file}"
        time.sleep(0.05)


def steps(run_dir: Path) -> int:
    return json.loads((run_dir / "metrics.json").read_text())["steps"]


@pytest.mark.slow
def test_sigterm_saves_says_how_to_resume_and_the_resumed_run_ends_at_the_same_step(
    tmp_path, tiny_cache
):
    # warn_hours=0: the CPU warning of a long run shows however short this one is.
    run = start(
        tiny_train_args(tmp_path, tiny_cache, *LONGER, "callbacks.progress_log.warn_hours=0")
    )
    runs = tmp_path / "outputs" / "quickstart"
    deadline = time.monotonic() + 300
    while not list(runs.glob("*/train.log")):
        assert run.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    (run_dir,) = runs.iterdir()
    wait_for_line(run_dir / "train.log", "first 3 steps", run)
    os.killpg(run.pid, signal.SIGTERM)  # the whole group: main process, loader and pool workers
    out, err = run.communicate(timeout=600)

    assert run.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "Traceback" not in err and "Traceback" not in out, err[-3000:]
    log = (run_dir / "train.log").read_text()
    assert "received SIGTERM" in log
    assert "THIS RUN WILL TAKE ABOUT" in log and "experiment=quickstart" in log
    assert "trainer=gpu" in log
    assert f"python -m crn_lightning.train resume={run_dir}" in log
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert not (run_dir / "metrics.json").exists()

    resumed = run_cli("train", f"resume={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (resumed_dir,) = runs.glob("*.resumed-*")
    assert steps(resumed_dir) == STEPS


@pytest.mark.slow
def test_slurm_requeue_signal_saves_requeues_and_the_requeued_job_continues(tmp_path, tiny_cache):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "scontrol.calls"
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    scontrol.chmod(0o755)
    env = os.environ | {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "crn",
        "SLURM_NTASKS": "1",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0",
    }
    job_dir = tmp_path / "job"  # a requeued job starts again in its own folder
    args = tiny_train_args(tmp_path, tiny_cache, *LONGER, f"hydra.run.dir={job_dir}")
    run = start(args, env)
    wait_for_line(job_dir / "train.log", "first 3 steps", run)
    run.send_signal(signal.SIGUSR1)  # Lightning's requeue signal (#SBATCH --signal=SIGUSR1@90)
    out, err = run.communicate(timeout=600)

    assert run.returncode == 128 + signal.SIGUSR1, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert calls.read_text().split() == ["requeue", "4242"]
    assert "requeued SLURM job 4242" in (job_dir / "train.log").read_text()
    assert (job_dir / "checkpoints" / "last.ckpt").is_file()

    # SLURM starts the requeued job with the same command and SLURM_RESTART_COUNT=1.
    again = subprocess.run(
        cli_command("train", *args),
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env | {"SLURM_RESTART_COUNT": "1"},
        timeout=900,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert steps(job_dir) == STEPS
    metrics = json.loads((job_dir / "metrics.json").read_text())
    assert metrics["resumed_from"] == str(job_dir / "checkpoints" / "last.ckpt")
