"""Crashes, resumption, non-finite losses, run folders and determinism, run as a user runs them."""

import hashlib
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT, cli_command, run_cli, tiny_train_args

# 2 epochs of 8 steps: killed after the first, in the middle of the run. With the quickstart's
# cosine learning rate the first epoch scores the best validation PESQ, so the resumed run
# must carry the ranking of the epoch before the interruption to test the same checkpoint.
LONGER = [
    "trainer.max_epochs=2",
    "data.epoch_length=32",
    "module.metric_workers=0",
]


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_steps_and_figures(tmp_path, tiny_cache):
    whole = run_cli("train", *tiny_train_args(tmp_path / "a", tiny_cache, *LONGER))
    assert whole.returncode == 0, whole.stderr[-3000:]
    (whole_dir,) = (tmp_path / "a" / "outputs" / "quickstart").iterdir()

    killed = subprocess.Popen(
        cli_command("train", *tiny_train_args(tmp_path / "b", tiny_cache, *LONGER)),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    runs = tmp_path / "b" / "outputs" / "quickstart"
    deadline = time.monotonic() + 300
    while not list(runs.glob("*/checkpoints/last.ckpt")):  # the end of epoch 0
        assert killed.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    (killed_dir,) = runs.iterdir()
    assert not (killed_dir / "metrics.json").exists()
    before = snapshot(killed_dir)

    resumed = run_cli("train", f"resume={killed_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (resumed_dir,) = runs.glob("*.resumed-*")
    assert resumed_dir.name.startswith(killed_dir.name)
    assert snapshot(killed_dir) == before  # nothing in the killed run's folder changed
    done, reference = metrics(resumed_dir), metrics(whole_dir)
    assert done["resumed_from"] == str(killed_dir / "checkpoints" / "last.ckpt")
    assert done["steps"] == reference["steps"] == 16
    assert (done["best_epoch"], done["best_val_pesq"]) == (
        reference["best_epoch"],
        reference["best_val_pesq"],
    )
    assert Path(done["best_checkpoint"]).parent == resumed_dir / "checkpoints"
    # Mixtures are drawn from (seed, index) and the optimizer state is restored: on CPU the
    # resumed run ends exactly where the uninterrupted one does.
    assert done["test"] == reference["test"]


@pytest.mark.slow
def test_a_non_finite_loss_stops_naming_the_step_or_is_skipped_when_asked(tmp_path, tiny_cache):
    # lr 1e30: the first update sends the weights to ~1e30, the next forward overflows.
    fast = ("module.lr=1e30", "trainer.fast_dev_run=2")
    stopped = run_cli("train", *tiny_train_args(tmp_path / "stop", tiny_cache, *fast))
    assert stopped.returncode != 0
    assert "non-finite gradients at global step 1 (epoch 0, batch 1" in stopped.stderr
    assert "module.nonfinite=skip" in stopped.stderr and "Traceback" not in stopped.stderr

    skip = tiny_train_args(tmp_path / "skip", tiny_cache, *fast, "module.nonfinite=skip")
    skipped = run_cli("train", *skip)
    assert skipped.returncode == 0, skipped.stderr[-3000:]
    (run_dir,) = (tmp_path / "skip" / "outputs" / "quickstart").iterdir()
    assert metrics(run_dir)["skipped_batches"] >= 1
    assert "skipped the batch: non-finite gradients" in (run_dir / "train.log").read_text()


@pytest.mark.slow
def test_reruns_get_new_folders_and_identical_figures_and_none_is_reused(tmp_path, tiny_cache):
    args = tiny_train_args(
        tmp_path, tiny_cache, "trainer.fast_dev_run=2", "module.metric_workers=0"
    )
    assert run_cli("train", *args).returncode == 0 and run_cli("train", *args).returncode == 0
    first, second = sorted((tmp_path / "outputs" / "quickstart").iterdir())
    assert first != second
    # Determinism on CPU: the same seed and config give the same grids and figures.
    a, b = metrics(first), metrics(second)
    assert a["corpus"]["mixtures"] == b["corpus"]["mixtures"]
    assert a["test"] == b["test"] and a["test_breakdown"] == b["test_breakdown"]

    reused = run_cli("train", *args, f"hydra.run.dir={first}")
    assert reused.returncode != 0 and "Traceback" not in reused.stderr
    # fast_dev_run keeps no checkpoint: the run left its TensorBoard events and metrics.json.
    assert f"{first} already holds a run (metrics.json, TensorBoard events)" in reused.stderr

    a_file = tmp_path / "a_file"
    a_file.write_text("user data\n")
    refused = run_cli("train", *args, f"paths.output_dir={a_file}")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert f"paths.output_dir={a_file} is a file, not a folder" in refused.stderr
    assert a_file.read_text() == "user data\n"

    missing = run_cli("train", f"resume={tmp_path / 'nope'}")
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert "no checkpoint at" in missing.stderr
