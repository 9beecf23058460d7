"""Schemas of the training config (Hydra structured configs).

They close every config node: a mistyped key (``data.bach_size=4``, ``+model.chanels=...``
or a typo inside an experiment file) and a value of the wrong type (``data.batch_size=abc``)
are rejected while Hydra composes the config, with the key's full name, before any work.
The values themselves live in ``conf/``; the schemas give names and types only (``MISSING``),
so there is one place for each default.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, fields, make_dataclass
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from crn_lightning.data.embedded import EmbeddedCorpusSpec
from crn_lightning.errors import ConfigError


@dataclass
class PathsConfig:
    data_dir: str = MISSING
    cache_dir: str = MISSING
    output_dir: str = MISSING


@dataclass
class ModuleConfig:
    lr: float = MISSING
    compression: float = MISSING
    metric_workers: int | None = MISSING
    pesq_every_n_epochs: int = MISSING
    compile: bool = MISSING
    examples: int = MISSING
    nonfinite: str = MISSING


@dataclass
class CheckpointConfig:
    monitor: str = MISSING
    mode: str = MISSING
    every_n_train_steps: int | None = MISSING


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


@dataclass
class SISDRLossConfig:
    _target_: str = "crn_lightning.losses.NegativeSISDR"


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
    "multires_stft": MultiResolutionSTFTLossConfig,
    "combo": ComboLossConfig,
}


# The generator's own fields and defaults (an unfrozen copy: OmegaConf makes frozen read-only).
EmbeddedConfig = make_dataclass(
    "EmbeddedConfig",
    [(f.name, f.type, field(default=f.default)) for f in fields(EmbeddedCorpusSpec)],
)


@dataclass
class SplitConfig:
    train: int = MISSING
    val: int = MISSING
    test: int = MISSING


@dataclass
class ArcticDemandConfig:
    _target_: str = "crn_lightning.data.datamodule.ArcticDemandDataModule"
    _convert_: str = "all"
    arctic_root: str = MISSING
    demand_root: str = MISSING
    corpus: str = MISSING
    embedded_dir: str = MISSING
    embedded: EmbeddedConfig = field(default_factory=EmbeddedConfig)
    speakers: list[str] = MISSING
    environments: list[str] = MISSING
    noise_channel: int = MISSING
    max_utterance_seconds: float = MISSING
    max_bad_utterances: int = MISSING
    split: SplitConfig = field(default_factory=SplitConfig)
    split_by: str = MISSING
    val_speakers: list[str] | None = MISSING
    test_speakers: list[str] | None = MISSING
    noise_split: list[float] = MISSING
    max_silent_noise_fraction: float = MISSING
    snr_db: list[float] = MISSING
    test_snr_db: list[float] | None = MISSING
    train_snr_range_db: list[float] | None = MISSING
    augment: dict[str, Any] = MISSING
    sample_rate: int = MISSING
    clip_seconds: float = MISSING
    train_clip_seconds: float | None = MISSING
    epoch_length: int | None = MISSING
    val_subset: int | None = MISSING
    batch_size: int = MISSING
    eval_batch_size: int | None = MISSING
    num_workers: int = MISSING
    seed: int = MISSING


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
    module: ModuleConfig = field(default_factory=ModuleConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    data: Any = MISSING
    stft: Any = MISSING
    model: Any = MISSING
    loss: Any = MISSING
    trainer: Any = MISSING


def check_keys(cfg: Any) -> None:
    """Reject keys forced into a node with ``+key=...``, which Hydra lets through a schema."""
    schemas = (ArcticDemandConfig, STFTConfig, CRNConfig, TrainerConfig, *LOSS_SCHEMAS.values())
    known_targets = {s._target_: s for s in schemas}
    nodes = {"": TrainConfig, "paths": PathsConfig, "module": ModuleConfig}
    nodes |= {"checkpoint": CheckpointConfig}
    nodes |= {
        k: known_targets.get(cfg[k].get("_target_"))
        for k in ("data", "stft", "model", "loss", "trainer")
    }
    unknown = [
        f"{group}.{key}".lstrip(".")
        for group, schema in nodes.items()
        if schema is not None
        for key in (cfg[group] if group else cfg)
        if key not in {f.name for f in fields(schema)}
    ]
    if unknown:
        raise ConfigError(
            f"unknown config keys {unknown} (added with '+'?): the keys each node takes are "
            "in crn_lightning/config.py"
        )


class RunFolderError(ConfigError, InterpolationResolutionError):
    """Raised inside a resolver: OmegaConf passes this kind through unwrapped."""


def resume_checkpoint(resume: str) -> Path:
    """The checkpoint ``resume=`` names: a ``.ckpt`` file, or a run folder's last one."""
    path = Path(resume)
    ckpt = path / "checkpoints" / "last.ckpt" if path.is_dir() else path
    if not ckpt.is_file():
        raise RunFolderError(
            f"resume={resume}: no checkpoint at {ckpt}; give a run folder holding "
            "checkpoints/last.ckpt, or a .ckpt file"
        )
    return ckpt


def run_folder(output_dir: str, name: str, resume: str | None, stamp: str) -> str:
    """The run's folder (resolver ``${run_folder:...}`` in ``hydra.run.dir``), checked before
    Hydra makes it: ``<output_dir>/<name>/<stamp>``, or for ``resume=<run>`` a new folder
    beside that run, ``<run>.resumed-<stamp>``, so the resumed run's folder is never written to.
    """
    output_folder(output_dir)
    if resume:
        ckpt = resume_checkpoint(resume)
        if ckpt.parent.name == "checkpoints":
            return f"{ckpt.parent.parent}.resumed-{stamp}"
    return f"{output_dir}/{name}/{stamp}"


def output_folder(output_dir: str) -> str:
    """``paths.output_dir`` checked before Hydra makes a run or sweep folder in it (resolver
    ``${output_folder:...}``): a file there would otherwise fail deep inside Hydra."""
    if Path(output_dir).exists() and not Path(output_dir).is_dir():
        raise RunFolderError(
            f"paths.output_dir={output_dir} is a file, not a folder: choose a folder"
        )
    return output_dir


def register_configs() -> None:
    """Store the schemas where ``conf/`` files name them in their defaults lists, and the
    resolvers the configs use."""
    if not OmegaConf.has_resolver("run_folder"):
        OmegaConf.register_new_resolver("run_folder", run_folder)
    if not OmegaConf.has_resolver("output_folder"):
        OmegaConf.register_new_resolver("output_folder", output_folder)
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    store.store(group="data", name="arctic_demand_schema", node=ArcticDemandConfig)
    store.store(group="stft", name="stft_schema", node=STFTConfig)
    store.store(group="model", name="crn_schema", node=CRNConfig)
    for name, schema in LOSS_SCHEMAS.items():
        store.store(group="loss", name=f"{name}_schema", node=schema)
    store.store(group="trainer", name="trainer_schema", node=TrainerConfig)
