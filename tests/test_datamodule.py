import dataclasses

import numpy as np
import pytest
import torch
from conftest import assert_constructor_defaults, compose, tiny_arctic_demand
from omegaconf import OmegaConf

from crn_lightning import augment
from crn_lightning.audio import read_audio
from crn_lightning.data import datamodule as dm
from crn_lightning.data import mixtures, samplers
from crn_lightning.data.corpora import CorpusError
from crn_lightning.data.embedded import EmbeddedCorpusSpec
from crn_lightning.data.offline import CONFIG_FIELDS as OFFLINE_CONFIG_FIELDS
from crn_lightning.data.offline_spec import OfflineCorpusSpec
from crn_lightning.mixing import snr_db

SR = 16000


def make(arctic, demand, **overrides):
    options = {"split": {"train": 6, "val": 3, "test": 2}, "seed": 7}
    module = tiny_arctic_demand(arctic, demand, **options | overrides)
    module.setup()
    return module


def test_grids_cover_every_utterance_environment_and_snr(tiny_corpora):
    data = make(*tiny_corpora, test_snr_db=[-5, 0, 5])
    assert len(data.datasets["val"]) == 3 * 2 * 2
    assert len(data.datasets["test"]) == 2 * 2 * 3
    combos = {(i.utterance, i.environment, i.snr_db) for i in data.datasets["test"].items}
    assert len(combos) == 12
    assert data.corpus_info["kind"] == "real"
    # Default epoch length: train utterances × environments × SNRs (the report's 300·5·3).
    assert len(data.datasets["train"]) == 6 * 2 * 2


def test_items_are_mixed_at_their_snr_and_grids_are_deterministic(tiny_corpora):
    data, again = make(*tiny_corpora), make(*tiny_corpora)
    for stage in ("val", "test"):
        for i in range(len(data.datasets[stage])):
            a, b = data.datasets[stage][i], again.datasets[stage][i]
            assert torch.equal(a["noisy"], b["noisy"]) and int(a["index"]) == i
            noise = (a["noisy"] - a["clean"]).numpy()
            assert a["noisy"].shape == (SR,)
            assert abs(snr_db(a["clean"].numpy(), noise) - float(a["snr_db"])) < 0.01


def test_training_draws_are_fresh_each_epoch_and_reproducible(tiny_corpora):
    data = make(*tiny_corpora, train_clip_seconds=0.5, epoch_length=8)
    loader = data.train_dataloader()
    sampler = loader.sampler
    first = [int(i) for batch in loader for i in batch["index"]]
    sampler.set_epoch(1)
    second = [int(i) for batch in loader for i in batch["index"]]
    assert first == list(range(8)) and second == list(range(8, 16))
    train = data.datasets["train"]
    assert not torch.equal(train[0]["noisy"], train[8]["noisy"])
    assert torch.equal(
        train[3]["noisy"], make(*tiny_corpora, train_clip_seconds=0.5).datasets["train"][3]["noisy"]
    )
    item = train[5]
    assert item["noisy"].shape == (SR // 2,)
    assert float(item["snr_db"]) in (0.0, 10.0)


def test_evaluation_noise_comes_from_its_own_time_region(tiny_corpora):
    arctic, demand = tiny_corpora
    data = make(arctic, demand)
    full = read_audio(demand / "PRESTO" / "ch01.wav", SR)
    bounds = np.round(np.cumsum([0, 0.7, 0.15, 0.15]) * len(full)).astype(int)
    for stage, (lo, hi) in (("val", bounds[1:3]), ("test", bounds[2:4])):
        for i, grid_item in enumerate(data.datasets[stage].items):
            if grid_item.environment != 0:
                continue
            item = data.datasets[stage][i]
            noise = (item["noisy"] - item["clean"]).numpy()
            start = lo + grid_item.noise_offset
            assert start + SR <= hi
            expected = full[start : start + SR]
            gain = np.dot(noise, expected) / np.dot(expected, expected)
            np.testing.assert_allclose(noise, gain * expected, atol=1e-5)


def test_val_subset_is_fixed(tiny_corpora):
    data = make(*tiny_corpora, val_subset=5)
    assert len(data.datasets["val"]) == 5
    assert data.datasets["val"].items == make(*tiny_corpora, val_subset=5).datasets["val"].items


def test_stft_features_after_transfer(tiny_corpora):
    data = make(*tiny_corpora)
    batch = next(iter(data.val_dataloader()))
    batch = data.on_after_batch_transfer(batch, 0)
    assert batch["noisy_mag"].shape == batch["clean_mag"].shape == (4, 161, 101)
    assert batch["noisy_phase"].shape == (4, 161, 101)


def test_shards_cover_each_item_exactly_once(monkeypatch):
    shards = []
    for rank in range(3):
        monkeypatch.setattr(samplers, "distributed_rank_world", lambda rank=rank: (rank, 3))
        sampler = samplers.ShardedSampler(10)
        shards.append(list(sampler))
        assert len(sampler) == len(shards[-1])
    assert sorted(sum(shards, [])) == list(range(10))


def test_real_corpus_missing_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="cmu_us_bdl_arctic"):
        make(tmp_path / "nope", tmp_path / "nope")


def test_noise_shorter_than_a_clip_names_the_file(tiny_corpora):
    with pytest.raises(CorpusError, match=r"PRESTO/ch01.wav: its val region"):
        make(*tiny_corpora, clip_seconds=2.0)


def test_train_snr_range_draws_continuous_snrs_for_training_only(tiny_corpora):
    data = make(*tiny_corpora, train_snr_range_db=[-5, 5], epoch_length=40)
    train = data.datasets["train"]
    snrs = [float(train[i]["snr_db"]) for i in range(40)]
    assert all(-5 <= s <= 5 for s in snrs) and len(set(snrs)) == 40
    item = train[7]
    measured = snr_db(item["clean"].numpy(), (item["noisy"] - item["clean"]).numpy())
    assert abs(measured - float(item["snr_db"])) < 0.01
    assert {i.snr_db for i in data.datasets["val"].items} == {0.0, 10.0}
    assert data.corpus_info["train_snr_range_db"] == [-5.0, 5.0]
    assert data.corpus_info["snr_db"]["train"] is None
    assert snrs == [float(s["snr_db"]) for s in map(train.__getitem__, range(40))]


@pytest.mark.parametrize("bad", [[5, -5], [0, 5, 10], [3]])
def test_a_bad_train_snr_range_names_the_key(tiny_corpora, bad):
    with pytest.raises(ValueError, match=r"data.train_snr_range_db must be null or \[low, high\]"):
        make(*tiny_corpora, train_snr_range_db=bad)


def test_training_pairs_go_through_augment_training_pair(tiny_corpora, monkeypatch):
    train = make(*tiny_corpora, train_clip_seconds=0.5).datasets["train"]
    plain = [train[i] for i in range(4)]  # mixed before the patch below
    calls = []

    def halve_the_noisy(clean, noise, snr, rng, sample_rate, **options):
        calls.append((len(clean), len(noise), snr, sample_rate, options))
        noisy, target = augment.augment_training_pair(clean, noise, snr, rng, sample_rate)
        return noisy * 0.5, target

    monkeypatch.setattr(mixtures, "augment_training_pair", halve_the_noisy)
    options = {"gain_dbfs": [-30, -20], "reverb_probability": 0.5}
    data = make(*tiny_corpora, train_clip_seconds=0.5, augment=options)
    assert calls[0] == (SR // 2, SR // 2, float(plain[0]["snr_db"]), SR, options)
    item = data.datasets["train"][3]
    assert torch.equal(item["noisy"], plain[3]["noisy"] * 0.5)
    assert torch.equal(item["clean"], plain[3]["clean"])
    # Validation and test grids are never augmented.
    calls.clear()
    data.datasets["val"][0]
    assert calls == []


def test_constructor_defaults_are_the_shipped_config():
    """One set of defaults: conf/data/arctic_demand.yaml says what the constructor does; keys
    taken from the top-level config (paths, seed) are interpolations there."""
    data = compose().data
    interpolated = {"arctic_root", "demand_root", "embedded_dir", "offline_dir", "seed"}
    assert {k for k in data if OmegaConf.is_interpolation(data, k)} == interpolated
    assert data.embedded == dataclasses.asdict(EmbeddedCorpusSpec())
    offline = OfflineCorpusSpec()
    assert data.offline == {key: getattr(offline, key) for key in OFFLINE_CONFIG_FIELDS}
    skip = interpolated | {"embedded", "offline"}
    assert_constructor_defaults(data, dm.ArcticDemandDataModule, skip)
