"""The train entry point run as a user runs it: a subprocess, a tiny config, real files."""

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import run_train
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from crn_lightning.enhancer import Enhancer
from crn_lightning.errors import ConfigError
from crn_lightning.train import refuse_respawn_in_multirun

STAGE_TAGS = ["loss", "pesq", "pesq_noisy", "stoi", "stoi_noisy", "si_sdr", "si_sdr_noisy"]


@pytest.mark.slow
def test_train_cli_writes_metrics_checkpoints_and_tensorboard(tmp_path, tiny_cache):
    result = run_train(tmp_path, cache=tiny_cache)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "quickstart").iterdir()
    closing = result.stdout.strip().splitlines()[-1]
    assert closing.startswith("test PESQ ") and f"run: {run_dir}" in closing
    assert "corpus: embedded" in (run_dir / "train.log").read_text()

    metrics = json.loads((run_dir / "metrics.json").read_text())
    for tag in STAGE_TAGS:
        assert f"test/{tag}" in metrics["test"]
    assert "test/pesq@snr=10" in metrics["test"]
    assert metrics["corpus"]["kind"] == "embedded"
    assert metrics["parameters"] > 0 and metrics["wall_time_s"] > 0
    assert metrics["steps"] == 4 and metrics["train_step_time_s"] > 0
    assert metrics["test"]["test/clips"] == 2 * 2 * 2
    assert Path(metrics["best_checkpoint"]).is_file()
    assert set(metrics["test_breakdown"]["by_environment"]) == {"PRESTO", "NPARK"}

    # The checkpoint alone rebuilds the trained enhancer (config inside, weights-only load).
    enhancer = Enhancer.from_checkpoint(metrics["best_checkpoint"])
    noisy = torch.randn(1, 12345) * 0.1
    with torch.no_grad():
        assert enhancer(noisy).shape == noisy.shape

    events = EventAccumulator(str(run_dir), size_guidance={"images": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    expected = {"train/loss"} | {f"{s}/{t}" for s in ("val", "test") for t in STAGE_TAGS}
    assert expected <= scalars, expected - scalars
    assert len(events.Scalars("val/pesq")) == 2  # one per epoch
    # Tags, steps and the HPARAMS entry in detail: test_tensorboard_layout.py.
    assert len(events.Tags()["images"]) == 3
    assert len(events.Tags()["audio"]) == 3 * 3


@pytest.mark.parametrize(
    ("strategy", "devices", "multirun", "refused"),
    [
        ("ddp", 2, True, True),  # re-runs the command line: the sweep would start again
        ("ddp", 2, False, False),
        ("ddp_spawn", 2, True, False),  # spawns workers: the command line is not re-run
        ("auto", 1, True, False),
    ],
)
def test_a_local_multirun_refuses_only_the_launcher_that_reruns_the_command(
    strategy, devices, multirun, refused
):
    # Covers the one private Lightning name train.py uses (_SubprocessScriptLauncher): if
    # Lightning renamed or replaced it, the import or the first case fails.
    trainer = L.Trainer(accelerator="cpu", strategy=strategy, devices=devices, logger=False)
    if refused:
        with pytest.raises(ConfigError, match="in a local multirun"):
            refuse_respawn_in_multirun(trainer, multirun)
    else:
        refuse_respawn_in_multirun(trainer, multirun)
