"""The config schemas: typos and wrong types are rejected by key name while composing."""

import inspect
from dataclasses import fields
from pathlib import Path

import lightning as L
import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, InstantiationException
from hydra.utils import instantiate

from crn_lightning import config as schemas
from crn_lightning.data.datamodule import ArcticDemandDataModule
from crn_lightning.errors import ConfigError
from crn_lightning.models.crn import CRN
from crn_lightning.stft import STFT

CONF = Path(__file__).resolve().parents[1] / "conf"
schemas.register_configs()


def compose_train(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def _params(cls, *passed_by_code: str) -> set[str]:
    names = set(inspect.signature(cls.__init__).parameters) - {"self", *passed_by_code}
    return names


@pytest.mark.parametrize(
    ("schema", "target", "passed_by_code"),
    [
        (schemas.STFTConfig, STFT, ()),
        (schemas.CRNConfig, CRN, ("n_freqs",)),
        (schemas.ArcticDemandConfig, ArcticDemandDataModule, ("stft",)),
    ],
)
def test_schemas_name_exactly_the_constructor_arguments(schema, target, passed_by_code):
    keys = {f.name for f in fields(schema)} - {"_target_", "_convert_"}
    assert keys == _params(target, *passed_by_code)


def test_trainer_schema_is_lightnings_own_argument_list():
    keys = {f.name for f in fields(schemas.TrainerConfig)} - {"_target_"}
    assert keys <= _params(L.Trainer)
    assert {"max_epochs", "precision", "gradient_clip_val", "sync_batchnorm"} <= keys


def test_shipped_configs_compose_and_fill_every_key():
    for overrides in [(), ("experiment=quickstart",)]:
        cfg = compose_train(*overrides)
        assert cfg.data.max_bad_utterances == 10 and cfg.module.nonfinite == "stop"
        for group in ("data", "stft", "model", "trainer", "module", "paths", "checkpoint"):
            assert "???" not in str(cfg[group]), group


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.bach_size=4", "Key 'bach_size' not in 'ArcticDemandConfig'"),
        ("trainer.max_epoch=3", "Key 'max_epoch' not in 'TrainerConfig'"),
        ("data.batch_size=abc", "Value 'abc' of type 'str' could not be converted to Integer"),
        ("stft.n_fft=big", "could not be converted to Integer"),
        ("data.snr_db=[0,loud]", "could not be converted to Float"),
        ("model.lstm_layers=1.5", "could not be converted to Integer"),
    ],
)
def test_typos_and_wrong_types_are_rejected_with_the_key(override, message):
    with pytest.raises(ConfigCompositionException) as err:
        compose_train(override)
    text = f"{err.value} {err.value.__cause__}"
    assert message in text and override.split("=")[0].lstrip("+") in text


def test_a_typo_inside_an_experiment_file_is_rejected(tmp_path):
    experiment = tmp_path / "experiment"
    experiment.mkdir()
    (experiment / "typo.yaml").write_text("# @package _global_\ndata:\n  snr_dbs: [0, 5]\n")
    with pytest.raises(ConfigCompositionException) as err:
        compose_train(f"hydra.searchpath=[file://{tmp_path}]", "experiment=typo")
    assert "snr_dbs" in f"{err.value} {err.value.__cause__}"


def test_keys_forced_in_with_plus_are_rejected_by_name():
    # Hydra lets "+node.key=..." into a dataclass node; check_keys (run first by train) does not.
    cfg = compose_train("+model.chanels=[4,8]", "+module.learning_rate=0.1", "+extra=1")
    with pytest.raises(ConfigError, match=r"\['extra', 'module.learning_rate', 'model.chanels'\]"):
        schemas.check_keys(cfg)
    schemas.check_keys(compose_train("experiment=quickstart"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("stft.n_fft=320", "stft.hop_length=400"), "stft.hop_length must be in"),
        (("stft.n_fft=320", "stft.win_length=400"), "stft.win_length (400) must not exceed"),
    ],
)
def test_invalid_stft_values_name_the_key(overrides, message):
    cfg = compose_train(*overrides)
    with pytest.raises(
        InstantiationException, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        instantiate(cfg.stft)
