"""Real noise recordings with silent stretches (engines stopping, keyboard pauses): offsets
landing on silence are redrawn, reproducibly, in training draws and in the fixed grids; a
recording that is mostly silent is refused at setup, naming the file and the fraction."""

import logging
import re

import numpy as np
import pytest
import torch
from conftest import write_tiny_corpora
from test_datamodule import SR, make

from crn_lightning.audio import write_audio
from crn_lightning.data.corpora import CorpusError
from crn_lightning.errors import ConfigError, UserError
from crn_lightning.mixing import is_silent, snr_db

NOISE_SECONDS = 40.0


def write_gapped_noise(path, sound_seconds: float, gap_seconds: float, seed: int = 0) -> None:
    """Noise that stops for ``gap_seconds`` (digital silence) after every ``sound_seconds``."""
    rng = np.random.default_rng(seed)
    noise = 0.05 * rng.standard_normal(int(NOISE_SECONDS * SR))
    period = sound_seconds + gap_seconds
    t = np.arange(len(noise)) / SR
    noise[(t % period) >= sound_seconds] = 0.0
    write_audio(path, noise, SR)


@pytest.fixture
def gapped_corpora(tmp_path):
    """ARCTIC-like speech, and a PRESTO noise that is silent 2 s out of every 3 s: a third of
    its 1 s clip windows are silent (train region; val and test: 40 %)."""
    arctic, demand = write_tiny_corpora(tmp_path, noise_seconds=NOISE_SECONDS)
    write_gapped_noise(demand / "PRESTO" / "ch01.wav", sound_seconds=1.0, gap_seconds=2.0)
    return arctic, demand


def test_training_draws_skip_silent_stretches_reproducibly(gapped_corpora, caplog):
    with caplog.at_level(logging.WARNING):
        data = make(*gapped_corpora, epoch_length=200)
    train = data.datasets["train"]
    items = [train[i] for i in range(len(train))]
    for item in items:
        noise = (item["noisy"] - item["clean"]).numpy()
        assert not is_silent(noise)
        assert abs(snr_db(item["clean"].numpy(), noise) - float(item["snr_db"])) < 0.01
    # Some first draws landed on a silent window (mix_at_snr raised there before) ...
    presto = data.environments.index("PRESTO")
    assert train.offset_redraws[presto] > 0 and set(train.offset_redraws) == {presto}
    noise_file = str(gapped_corpora[1] / "PRESTO" / "ch01.wav")
    assert f"{noise_file}: a training noise offset fell on a silent stretch" in caplog.text
    assert f"noise file {noise_file} has silent stretches" in caplog.text
    # ... and the redraws come from each item's own seeded stream: the same mixtures again.
    again = make(*gapped_corpora, epoch_length=200).datasets["train"]
    for i in (0, 57, 199):
        assert torch.equal(again[i]["noisy"], items[i]["noisy"])
    fraction = data.corpus_info["silent_noise_windows"][noise_file]["train"]
    assert fraction == pytest.approx(1 / 3, abs=0.01)


def test_a_loader_worker_epoch_over_gapped_noise_completes(gapped_corpora):
    # The reported failure: a DataLoader worker died mid-epoch on a silent noise window.
    data = make(*gapped_corpora, epoch_length=64, num_workers=1, batch_size=16)
    batches = list(data.train_dataloader())
    assert sum(len(b["index"]) for b in batches) == 64


def test_grid_offsets_are_audible_for_clips_and_full_length(gapped_corpora):
    data = make(*gapped_corpora, test_snr_db=[-5, 0, 5, 10])
    redrawn = data.corpus_info["noise_offset_redraws"]
    assert redrawn["val"] + redrawn["test"] > 0
    for stage in ("val", "test"):
        grid = data.datasets[stage]
        for i in range(len(grid)):
            for full_length in (False, True):
                item = grid.mixture(i, full_length=full_length)
                assert not is_silent((item["noisy"] - item["clean"]).numpy())
    again = make(*gapped_corpora, test_snr_db=[-5, 0, 5, 10])
    assert again.datasets["test"].items == data.datasets["test"].items


def test_a_mostly_silent_noise_file_is_refused_naming_file_and_fraction(tmp_path):
    arctic, demand = write_tiny_corpora(tmp_path, noise_seconds=NOISE_SECONDS)
    noise = demand / "NPARK" / "ch01.wav"
    # Its train region (28 s) stops 7 times for 3.5 s: 7 × 2.5 s of the 27 s of 1 s-window
    # starts give a silent window.
    write_gapped_noise(noise, sound_seconds=0.5, gap_seconds=3.5)
    with pytest.raises(CorpusError) as err:
        make(arctic, demand)
    assert isinstance(err.value, UserError)
    fraction = re.match(
        rf"{re.escape(str(noise))}: (\d+\.\d)% of the 1 s clip windows of its", str(err.value)
    )
    assert fraction and float(fraction[1]) == pytest.approx(100 * 7 * 2.5 / 27, abs=0.1)
    assert "(more than data.max_silent_noise_fraction=0.5)" in str(err.value)
    # A higher limit takes it, and every draw is still audible.
    data = make(arctic, demand, max_silent_noise_fraction=0.8, epoch_length=40)
    train = data.datasets["train"]
    assert all(not is_silent((train[i]["noisy"] - train[i]["clean"]).numpy()) for i in range(40))


@pytest.mark.parametrize("fraction", [1.0, -0.1])
def test_max_silent_noise_fraction_must_leave_audible_windows(tiny_corpora, fraction):
    with pytest.raises(ConfigError, match="data.max_silent_noise_fraction must be at least 0"):
        make(*tiny_corpora, max_silent_noise_fraction=fraction)
