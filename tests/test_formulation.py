"""The formulation configs: model.output × loss compose strictly, the seed config keeps the
report's mapping + mse, the formulation sweep's grid composes job by job, and a real train
run of a complex output with a phase-aware loss."""

import itertools
import json
from pathlib import Path

import pytest
from conftest import ROOT, run_train
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from crn_lightning.compose import compose_config
from crn_lightning.config import check_keys
from crn_lightning.enhancer import Enhancer
from crn_lightning.errors import ConfigError
from crn_lightning.losses import (
    CompressedMagnitudeMSE,
    CompressedSpectrumLoss,
    NegativeSTOI,
    loss_from_config,
)


def test_the_seed_config_keeps_the_reports_mapping_and_mse():
    cfg = compose_config()
    assert cfg.model.output == "mapping" and cfg.model.input_channels is None
    assert cfg.module.compression == 1.0
    assert type(instantiate(cfg.loss)) is CompressedMagnitudeMSE
    # The quickstart's formulation was chosen on real recordings: a complex mask trained on
    # the compressed loss plus a STOI term.
    quickstart = compose_config(["experiment=quickstart"])
    loss = instantiate(quickstart.loss)
    assert quickstart.model.output == "complex_mask"
    assert [(weight, type(term)) for weight, term in loss.terms] == [
        (1.0, CompressedSpectrumLoss),
        (0.5, NegativeSTOI),
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["loss=compressed", "loss.exponnet=0.5"], "Key 'exponnet' not in 'CompressedLossConfig'"),
        (["loss=compressed", "loss.exponent=high"], "could not be converted to Float"),
        (["loss=combo", "loss.terms.0.wieght=2"], "Key 'wieght' not in 'WeightedTermConfig'"),
        (["loss=compresed"], "Could not find 'loss/compresed'"),
        (["model.mask_bnd=2"], "Key 'mask_bnd' not in 'CRNConfig'"),
    ],
)
def test_misspelt_loss_and_model_keys_are_rejected(overrides, message):
    with pytest.raises(ConfigCompositionException) as err:
        compose_config(overrides)
    assert message in f"{err.value} {err.value.__cause__}"


def test_a_loss_key_forced_in_with_plus_is_rejected_by_name():
    cfg = compose_config(["loss=si_sdr", "+loss.exponent=0.3"])
    with pytest.raises(ConfigError, match=r"loss\.exponent"):
        check_keys(cfg)


def test_every_job_of_the_formulation_sweep_composes_and_builds():
    sweep = OmegaConf.load(ROOT / "conf" / "sweep" / "formulation.yaml")
    params = sweep.hydra.sweeper.params
    grid = [str(params[key]).split(",") for key in params]
    jobs = list(itertools.product(*grid))
    assert len(jobs) == 9
    assert {("mask", "mse"), ("mask", "compressed"), ("complex_mapping", "compressed")} <= set(jobs)
    assert ("complex_mask", "compressed") in jobs and ("complex_mask", "combo") in jobs
    for values in jobs:
        overrides = [
            "experiment=quickstart",
            *(f"{k}={v}" for k, v in zip(params, values, strict=True)),
        ]
        cfg = compose_config(overrides)
        check_keys(cfg)
        stft = instantiate(cfg.stft)
        model = instantiate(cfg.model, n_freqs=stft.n_freqs)
        assert model.output == values[0]
        instantiate(cfg.loss)


def test_train_cli_runs_a_complex_mask_on_the_compressed_loss(tmp_path, tiny_cache):
    result = run_train(tmp_path, "model.output=complex_mask", "loss=compressed", cache=tiny_cache)
    assert result.returncode == 0, result.stderr[-3000:]
    (metrics_file,) = Path(tmp_path / "outputs").rglob("metrics.json")
    metrics = json.loads(metrics_file.read_text())
    assert 1.0 <= metrics["test"]["test/pesq"] <= 4.65
    assert metrics["best_val_pesq"] is not None  # checkpoints are still chosen by PESQ
    # The run's checkpoint rebuilds the same formulation for evaluate/enhance/export.
    enhancer = Enhancer.from_checkpoint(metrics["best_checkpoint"])
    assert enhancer.complex and enhancer.network.output == "complex_mask"
    assert isinstance(loss_from_config(enhancer.config), CompressedSpectrumLoss)
