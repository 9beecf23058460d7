"""Schemas of the training config (Hydra structured configs).

They close every config node: a mistyped key (``data.bach_size=4``, ``+model.chanels=...``
or a typo inside an experiment file) and a value of the wrong type (``data.batch_size=abc``)
are rejected while Hydra composes the config, with the key's full name, before any work.
The values themselves live in ``conf/``; the schemas give names and types only (``MISSING``),
so there is one place for each default.
"""

from __future__ import annotations

import inspect
from dataclasses import MISSING as NO_DEFAULT
from dataclasses import dataclass, field, fields, is_dataclass, make_dataclass
from typing import Any

import lightning as L
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig

from crn_lightning.data.embedded import EmbeddedCorpusSpec
from crn_lightning.data.offline import CONFIG_FIELDS as OFFLINE_CONFIG_FIELDS
from crn_lightning.data.offline_spec import OfflineCorpusSpec
from crn_lightning.data.schemas import FoldersConfig, MixingConfig, PairsConfig
from crn_lightning.errors import ConfigError
from crn_lightning.runs import register_resolvers


@dataclass
class PathsConfig:
    data_dir: str = MISSING
    cache_dir: str = MISSING
    output_dir: str = MISSING


@dataclass
class ModuleConfig:
    _target_: str = "crn_lightning.module.EnhancementModule"
    lr: float = MISSING
    compression: float = MISSING
    metric_workers: int | None = MISSING
    pesq_every_n_epochs: int = MISSING
    compile: bool = MISSING
    examples: int = MISSING
    nonfinite: str = MISSING
    lr_schedule: str = MISSING
    attenuation_limit_db: float | None = MISSING


@dataclass
class CheckpointConfig:
    monitor: str = MISSING
    mode: str = MISSING
    every_n_train_steps: int | None = MISSING


@dataclass
class ScoredCheckpointConfig:
    # dirpath is passed by train.py: <run folder>/checkpoints.
    _target_: str = "crn_lightning.callbacks.ScoredCheckpoint"
    filename: str = MISSING
    auto_insert_metric_name: bool = MISSING
    monitor: str | None = MISSING
    mode: str = MISSING
    save_top_k: int = MISSING
    save_last: bool = MISSING
    every_n_train_steps: int | None = MISSING


@dataclass
class StepTimerConfig:
    _target_: str = "crn_lightning.callbacks.StepTimer"


@dataclass
class ProgressLogConfig:
    _target_: str = "crn_lightning.progress_log.ProgressLog"
    estimate_after_steps: int = MISSING
    estimate_after_s: float = MISSING
    warn_hours: float = MISSING


@dataclass
class GracefulStopConfig:
    _target_: str = "crn_lightning.graceful_stop.GracefulStop"
    requeue: bool = MISSING


@dataclass
class CallbacksConfig:
    checkpoint: ScoredCheckpointConfig = field(default_factory=ScoredCheckpointConfig)
    step_timer: StepTimerConfig = field(default_factory=StepTimerConfig)
    progress_log: ProgressLogConfig = field(default_factory=ProgressLogConfig)
    graceful_stop: GracefulStopConfig = field(default_factory=GracefulStopConfig)


@dataclass
class TensorBoardLoggerConfig:
    # run_dir is passed by train.py.
    _target_: str = "crn_lightning.runs.tensorboard_logger"
    default_hp_metric: bool = MISSING


@dataclass
class STFTConfig:
    _target_: str = "crn_lightning.stft.STFT"
    n_fft: int = MISSING
    hop_length: int = MISSING
    win_length: int | None = MISSING
    center: bool = MISSING


@dataclass
class CRNConfig:
    _target_: str = "crn_lightning.models.crn.CRN"
    _convert_: str = "all"
    channels: list[int] = MISSING
    lstm_hidden: int | None = MISSING
    lstm_layers: int = MISSING
    output: str = MISSING
    input_channels: int | None = MISSING
    mask_bound: float = MISSING


# -- the training objectives (conf/loss/, crn_lightning.losses) ------------------------------
@dataclass
class MSELossConfig:
    _target_: str = "crn_lightning.losses.CompressedMagnitudeMSE"


@dataclass
class CompressedLossConfig:
    _target_: str = "crn_lightning.losses.CompressedSpectrumLoss"
    exponent: float = MISSING
    complex_weight: float = MISSING
    over_suppression_weight: float = MISSING


@dataclass
class SISDRLossConfig:
    _target_: str = "crn_lightning.losses.NegativeSISDR"


@dataclass
class STOILossConfig:
    _target_: str = "crn_lightning.losses.NegativeSTOI"
    sample_rate: int = MISSING
    extended: bool = MISSING


@dataclass
class MultiResolutionSTFTLossConfig:
    _target_: str = "crn_lightning.losses.MultiResolutionSTFTLoss"
    _convert_: str = "all"
    fft_sizes: list[int] = MISSING
    hop_sizes: list[int] = MISSING
    win_lengths: list[int] = MISSING
    sc_weight: float = MISSING
    mag_weight: float = MISSING


@dataclass
class WeightedTermConfig:
    weight: float = MISSING
    loss: Any = MISSING  # a loss node with its _target_


@dataclass
class ComboLossConfig:
    _target_: str = "crn_lightning.losses.WeightedSum"
    _convert_: str = "all"
    terms: list[WeightedTermConfig] = MISSING


LOSS_SCHEMAS = {
    "mse": MSELossConfig,
    "compressed": CompressedLossConfig,
    "si_sdr": SISDRLossConfig,
    "stoi": STOILossConfig,
    "multires_stft": MultiResolutionSTFTLossConfig,
    "combo": ComboLossConfig,
}


# The generator's own fields and defaults (an unfrozen copy: OmegaConf makes frozen read-only).
EmbeddedConfig = make_dataclass(
    "EmbeddedConfig",
    [(f.name, f.type, field(default=f.default)) for f in fields(EmbeddedCorpusSpec)],
)


# The offline corpus's settable fields (data.offline.*) with the builder's defaults.
OfflineConfig = make_dataclass(
    "OfflineConfig",
    [
        (f.name, f.type, field(default=f.default))
        for f in fields(OfflineCorpusSpec)
        if f.name in OFFLINE_CONFIG_FIELDS
    ],
)


@dataclass
class SplitConfig:
    # Utterances per split; null (data.split_by=speaker only): every usable one of the split's
    # speakers.
    train: int | None = MISSING
    val: int | None = MISSING
    test: int | None = MISSING


@dataclass
class ArcticDemandConfig(MixingConfig):
    _target_: str = "crn_lightning.data.datamodule.ArcticDemandDataModule"
    _convert_: str = "all"
    arctic_root: str = MISSING
    demand_root: str = MISSING
    corpus: str = MISSING
    embedded_dir: str = MISSING
    embedded: EmbeddedConfig = field(default_factory=EmbeddedConfig)
    offline_dir: str = MISSING
    offline: OfflineConfig = field(default_factory=OfflineConfig)
    offline_speakers: list[str] | None = MISSING
    offline_environments: list[str] | None = MISSING
    speakers: list[str] = MISSING
    environments: list[str] = MISSING
    noise_channel: int = MISSING
    split: SplitConfig = field(default_factory=SplitConfig)


# Passed by train.py, not by the config.
_TRAINER_ARGS_FROM_CODE = {"self", "logger", "callbacks", "plugins", "default_root_dir"}
_TRAINER_ARGS_UNSUPPORTED = {"model_registry"}

# Every plain argument of lightning.Trainer, with Lightning's own default: a key that is not a
# Trainer argument is rejected by name; values are checked by the Trainer itself when built,
# which happens before any data is read.
TrainerConfig = make_dataclass(
    "TrainerConfig",
    [("_target_", str, field(default="lightning.Trainer"))]
    + [
        (name, Any, field(default=parameter.default))
        for name, parameter in inspect.signature(L.Trainer.__init__).parameters.items()
        if name not in _TRAINER_ARGS_FROM_CODE | _TRAINER_ARGS_UNSUPPORTED
    ],
)


@dataclass
class TrainConfig:
    name: str = MISSING
    seed: int = MISSING
    # A run folder or checkpoint to continue from (see README, "Resume a run").
    resume: str | None = None
    paths: PathsConfig = field(default_factory=PathsConfig)
    # What the command line sets; callbacks.checkpoint takes these values by interpolation.
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    # Config groups: the schema of each is named in the defaults list of its conf/ file.
    module: Any = MISSING
    logger: Any = MISSING
    data: Any = MISSING
    stft: Any = MISSING
    model: Any = MISSING
    loss: Any = MISSING
    trainer: Any = MISSING


# The schema of a group node, by the _target_ it builds.
_SCHEMAS_BY_TARGET = {
    schema._target_: schema
    for schema in (
        ModuleConfig,
        TensorBoardLoggerConfig,
        ArcticDemandConfig,
        PairsConfig,
        FoldersConfig,
        STFTConfig,
        CRNConfig,
        TrainerConfig,
        *LOSS_SCHEMAS.values(),
    )
}


def _unknown_keys(node: DictConfig, schema: type, prefix: str) -> list[str]:
    known = {f.name: f for f in fields(schema)}
    unknown = []
    for key in node:
        if key not in known:
            unknown.append(f"{prefix}{key}")
            continue
        value, default = node[key], known[key].default_factory
        if not isinstance(value, DictConfig):
            continue
        sub = default if default is not NO_DEFAULT and is_dataclass(default) else None
        sub = sub or _SCHEMAS_BY_TARGET.get(value.get("_target_"))
        if sub is not None:
            unknown += _unknown_keys(value, sub, f"{prefix}{key}.")
    return unknown


def check_keys(cfg: DictConfig) -> None:
    """Reject keys forced into a node with ``+key=...``, which Hydra lets through a schema."""
    unknown = _unknown_keys(cfg, TrainConfig, "")
    if unknown:
        raise ConfigError(
            f"unknown config keys {unknown} (added with '+'?): the keys each node takes are "
            "in crn_lightning/config.py"
        )


def register_configs() -> None:
    """Store the schemas where ``conf/`` files name them in their defaults lists, and the
    resolvers the configs use."""
    register_resolvers()
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    store.store(group="module", name="module_schema", node=ModuleConfig)
    store.store(group="logger", name="tensorboard_schema", node=TensorBoardLoggerConfig)
    store.store(group="data", name="arctic_demand_schema", node=ArcticDemandConfig)
    store.store(group="data", name="pairs_schema", node=PairsConfig)
    store.store(group="data", name="folders_schema", node=FoldersConfig)
    store.store(group="stft", name="stft_schema", node=STFTConfig)
    store.store(group="model", name="crn_schema", node=CRNConfig)
    for name, schema in LOSS_SCHEMAS.items():
        store.store(group="loss", name=f"{name}_schema", node=schema)
    store.store(group="trainer", name="trainer_schema", node=TrainerConfig)
