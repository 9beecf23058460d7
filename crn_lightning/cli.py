"""What the entry points that use a trained model share: required keys, the checkpoint and
the run folder. Their errors are ``ConfigError``s naming the key: Hydra prints the message
alone, no traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from crn_lightning.enhancer import Enhancer
from crn_lightning.errors import ConfigError


def required(cfg: DictConfig, key: str, what: str) -> Any:
    """``cfg.key``, or a ``ConfigError`` saying ``key=<what>`` is needed."""
    if OmegaConf.is_missing(cfg, key) or OmegaConf.select(cfg, key) in (None, ""):
        raise ConfigError(f"{key}=<{what}> is required")
    return OmegaConf.select(cfg, key)


def load_checkpoint(cfg: DictConfig) -> Enhancer:
    """The enhancer of ``cfg.ckpt`` (a checkpoint written by crn_lightning.train)."""
    path = required(cfg, "ckpt", "a checkpoint written by crn_lightning.train")
    try:
        return Enhancer.from_checkpoint(path)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(f"ckpt={path}: {err}") from err


def hydra_run_dir() -> Path:
    return Path(HydraConfig.get().runtime.output_dir)


def fresh_run_dir(run_dir: Path) -> Path:
    """``run_dir`` (created if needed), which must hold no earlier results: results are never
    overwritten (Hydra's log and config may be there already)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    earlier = sorted(
        p.name for p in run_dir.iterdir() if p.name != ".hydra" and not p.name.endswith(".log")
    )
    if earlier:
        raise ConfigError(
            f"hydra.run.dir={run_dir} already holds results ({', '.join(earlier)}): "
            "choose a new folder (the default is a new, time-stamped one)"
        )
    return run_dir
