"""What the entry points that use a trained model share: required keys, the checkpoint, the
run folder, and errors shown as one clear line instead of a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from crn_lightning.checkpoint import load_enhancer
from crn_lightning.module import EnhancementModule


class UsageError(ValueError):
    """A bad command-line value; the message names the key and what was expected."""


def required(cfg: DictConfig, key: str, what: str) -> Any:
    """``cfg.key``, or a ``UsageError`` saying ``key=<what>`` is needed."""
    if OmegaConf.is_missing(cfg, key) or OmegaConf.select(cfg, key) in (None, ""):
        raise UsageError(f"{key}=<{what}> is required")
    return OmegaConf.select(cfg, key)


def load_checkpoint(cfg: DictConfig) -> EnhancementModule:
    """The enhancer of ``cfg.ckpt`` (a checkpoint written by crn_lightning.train)."""
    path = required(cfg, "ckpt", "a checkpoint written by crn_lightning.train")
    try:
        return load_enhancer(path)
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(f"ckpt={path}: {err}") from err


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
        raise UsageError(
            f"hydra.run.dir={run_dir} already holds results ({', '.join(earlier)}): "
            "choose a new folder (the default is a new, time-stamped one)"
        )
    return run_dir


def exit_on_usage_error(main: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Show a ``UsageError`` as one line on stderr and exit with status 2 (no traceback)."""

    @functools.wraps(main)
    def wrapper(cfg: DictConfig) -> Any:
        try:
            return main(cfg)
        except UsageError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            sys.exit(2)

    return wrapper
