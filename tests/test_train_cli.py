"""The train entry point run as a user runs it: a subprocess, a tiny config, real files."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from crn_lightning.checkpoint import load_enhancer

ROOT = Path(__file__).resolve().parents[1]
STAGE_TAGS = ["loss", "pesq", "pesq_noisy", "stoi", "stoi_noisy", "si_sdr", "si_sdr_noisy"]
TINY = [
    "experiment=quickstart",
    "data.embedded.utterances_per_speaker=5",
    "data.embedded.noise_seconds=12",
    "data.split.train=4",
    "data.split.val=2",
    "data.split.test=2",
    "data.snr_db=[0,10]",
    "data.clip_seconds=1.0",
    "data.train_clip_seconds=0.5",
    "data.epoch_length=8",
    "data.val_subset=null",
    "data.batch_size=4",
    "data.environments=[PRESTO,NPARK]",
    "data.num_workers=0",
    "model.channels=[4,8,8,16,16]",
    "model.lstm_hidden=32",
    "trainer.max_epochs=2",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
]


def run_train(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "crn_lightning.train",
        *TINY,
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"paths.output_dir={tmp_path / 'outputs'}",
        *overrides,
    ]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_train_cli_writes_metrics_checkpoints_and_tensorboard(tmp_path):
    result = run_train(tmp_path)
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
    enhancer = load_enhancer(metrics["best_checkpoint"])
    noisy = torch.randn(1, 12345) * 0.1
    with torch.no_grad():
        assert enhancer(noisy).shape == noisy.shape

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    expected = {"train/loss"} | {f"{s}/{t}" for s in ("val", "test") for t in STAGE_TAGS}
    assert expected <= scalars, expected - scalars
    assert len(events.Scalars("val/pesq")) == 2  # one per epoch
    assert {f"val_examples/clip{j}_spectrograms" for j in range(3)} <= set(events.Tags()["images"])
    assert "val_examples/clip0_enhanced" in events.Tags()["audio"]
