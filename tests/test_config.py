"""The config schemas: every key reaches its real target, typos and wrong types are rejected
by key name while composing, and the configs compose from where the package finds them."""

from dataclasses import fields
from pathlib import Path

import pytest
from conftest import compose
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate

from crn_lightning import config as schemas
from crn_lightning.compose import CONFIG_DIR, PROJECT_ROOT, compose_config
from crn_lightning.errors import ConfigError


def _keys(schema) -> set[str]:
    return {f.name for f in fields(schema)}


def test_every_schema_key_reaches_its_real_target(tmp_path):
    # Each node holds exactly its schema's keys and instantiate passes every one of them to the
    # real class: a schema key the target does not take, or a required argument the schema
    # lacks, fails here.
    cfg = compose("experiment=quickstart", "callbacks.checkpoint.every_n_train_steps=5")
    nodes = {
        "stft": schemas.STFTConfig,
        "model": schemas.CRNConfig,
        "data": schemas.ArcticDemandConfig,
        "module": schemas.ModuleConfig,
        "logger": schemas.TensorBoardLoggerConfig,
        "trainer": schemas.TrainerConfig,
        "callbacks.checkpoint": schemas.ScoredCheckpointConfig,
    }
    for key, schema in nodes.items():
        node = cfg.callbacks.checkpoint if key == "callbacks.checkpoint" else cfg[key]
        assert set(node) == _keys(schema), key

    stft = instantiate(cfg.stft)
    model = instantiate(cfg.model, n_freqs=stft.n_freqs)
    assert instantiate(cfg.data, stft=stft).batch_size == 8
    build_module = instantiate(cfg.module, _partial_=True)
    module = build_module(model, stft, sample_rate=cfg.data.sample_rate, config={})
    assert module.lr == 0.002 and module.enhancer.compression == 0.5
    checkpoint = instantiate(cfg.callbacks.checkpoint, dirpath=str(tmp_path))
    assert checkpoint.monitor == "val/pesq" and checkpoint.last_every_n_train_steps == 5
    assert instantiate(cfg.callbacks.step_timer).median_s is None
    trainer = instantiate(cfg.trainer, logger=False, callbacks=[checkpoint])
    assert trainer.max_epochs == 3
    HydraConfig.instance().set_config(compose(hydra=True))  # what a Hydra app sets
    try:
        logger = instantiate(cfg.logger, run_dir=str(tmp_path))
    finally:
        HydraConfig.instance().cfg = None
    assert Path(logger.log_dir) == tmp_path  # a single run's events lie in its folder
    assert instantiate(cfg.callbacks.progress_log).estimate_after_steps == 10
    assert instantiate(cfg.callbacks.graceful_stop).requeue is True


def test_shipped_configs_compose_and_fill_every_key():
    for overrides in [(), ("experiment=quickstart",)]:
        cfg = compose(*overrides)
        assert cfg.data.max_bad_utterances == 10 and cfg.module.nonfinite == "stop"
        for group in ("data", "stft", "model", "trainer", "module", "paths", "checkpoint"):
            assert "???" not in str(cfg[group]), group
        assert "???" not in str(cfg.callbacks) and "???" not in str(cfg.logger)
    assert compose_config(config_name="evaluate").metric_workers is None


def test_checkpoint_keys_on_the_command_line_reach_the_checkpoint_callback():
    cfg = compose("checkpoint.monitor=val/stoi", "checkpoint.every_n_train_steps=50")
    assert cfg.callbacks.checkpoint.monitor == "val/stoi"
    assert cfg.callbacks.checkpoint.every_n_train_steps == 50


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.bach_size=4", "Key 'bach_size' not in 'ArcticDemandConfig'"),
        ("data.embedded.sed=1", "Key 'sed' not in 'EmbeddedConfig'"),
        ("trainer.max_epoch=3", "Key 'max_epoch' not in 'TrainerConfig'"),
        ("module.lrr=0.1", "Key 'lrr' not in 'ModuleConfig'"),
        ("callbacks.checkpoint.moniter=x", "Key 'moniter' not in 'ScoredCheckpointConfig'"),
        ("logger.default_hp_metrc=true", "Key 'default_hp_metrc' not in"),
        ("data.batch_size=abc", "Value 'abc' of type 'str' could not be converted to Integer"),
        ("stft.n_fft=big", "could not be converted to Integer"),
        ("data.snr_db=[0,loud]", "could not be converted to Float"),
        ("model.lstm_layers=1.5", "could not be converted to Integer"),
        ("module.compile=maybe", "is not a valid bool"),
    ],
)
def test_typos_and_wrong_types_are_rejected_with_the_key(override, message):
    with pytest.raises(ConfigCompositionException) as err:
        compose(override)
    text = f"{err.value} {err.value.__cause__}"
    assert message in text and override.split("=")[0].split(".")[-1] in text


def test_a_typo_inside_an_experiment_file_is_rejected(tmp_path):
    experiment = tmp_path / "experiment"
    experiment.mkdir()
    (experiment / "typo.yaml").write_text("# @package _global_\ndata:\n  snr_dbs: [0, 5]\n")
    with pytest.raises(ConfigCompositionException) as err:
        compose(f"hydra.searchpath=[file://{tmp_path}]", "experiment=typo")
    assert "snr_dbs" in f"{err.value} {err.value.__cause__}"


def test_keys_forced_in_with_plus_are_rejected_by_name():
    # Hydra lets "+node.key=..." into a dataclass node; check_keys (run first by train) does not.
    forced = ["+model.chanels=[4,8]", "+module.learning_rate=0.1", "+extra=1"]
    forced += ["+callbacks.checkpoint.patience=3", "+data.embedded.speed=2"]
    with pytest.raises(ConfigError) as err:
        schemas.check_keys(compose(*forced))
    for key in ["extra", "module.learning_rate", "model.chanels", "data.embedded.speed"]:
        assert f"'{key}'" in str(err.value)
    assert "'callbacks.checkpoint.patience'" in str(err.value)
    schemas.check_keys(compose("experiment=quickstart"))


def test_compose_config_reads_the_checkouts_conf_and_roots_relative_paths_there():
    assert CONFIG_DIR == PROJECT_ROOT / "conf" and (CONFIG_DIR / "config.yaml").is_file()
    cfg = compose_config(["experiment=quickstart"])
    assert cfg.paths.data_dir == str(PROJECT_ROOT / "data")
    assert cfg.stft.n_fft == 320 and cfg.name == "quickstart"
