"""What the entry points that use a trained model share: required keys and the checkpoint
(their run folders: crn_lightning.runs). Their errors are ``ConfigError``s naming the key:
Hydra prints the message alone, no traceback."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from crn_lightning.enhancer import Enhancer
from crn_lightning.errors import ConfigError


def required(cfg: DictConfig, key: str, what: str) -> Any:
    """``cfg.key``, or a ``ConfigError`` saying ``key=<what>`` is needed."""
    if OmegaConf.is_missing(cfg, key) or OmegaConf.select(cfg, key) in (None, ""):
        raise ConfigError(f"{key}=<{what}> is required")
    return OmegaConf.select(cfg, key)


def load_checkpoint(cfg: DictConfig) -> Enhancer:
    """The enhancer of ``cfg.ckpt`` (a checkpoint written by crn_lightning.train), with
    ``cfg.attenuation_limit_db`` in place of the checkpoint's unless it says ``checkpoint``."""
    path = required(cfg, "ckpt", "a checkpoint written by crn_lightning.train")
    try:
        enhancer = Enhancer.from_checkpoint(path)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(f"ckpt={path}: {err}") from err
    limit = cfg.get("attenuation_limit_db", "checkpoint")
    if limit != "checkpoint":
        enhancer.set_attenuation_limit(limit, "attenuation_limit_db")
    return enhancer
