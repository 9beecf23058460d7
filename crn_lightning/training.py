"""What the train entry point does around ``Trainer.fit`` and ``test``: the multirun check
and the figures a finished run records (``metrics.json``, TensorBoard's HPARAMS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L

# Private, unavoidable: no public API tells the launcher that re-runs the command line (tested).
from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher
from omegaconf import DictConfig

from crn_lightning import runs
from crn_lightning.callbacks import ScoredCheckpoint, StepTimer
from crn_lightning.errors import ConfigError
from crn_lightning.module import EnhancementModule
from crn_lightning.scoring import breakdown
from crn_lightning.tensorboard_layout import curated_hparams


def refuse_respawn_in_multirun(trainer: L.Trainer, multirun: bool) -> None:
    """Lightning's DDP launcher starts each extra process by re-running the command line, which
    in a local multirun would start the whole sweep again in every process."""
    if multirun and isinstance(trainer.strategy.launcher, _SubprocessScriptLauncher):
        raise ConfigError(
            f"trainer.devices={trainer.num_devices} with strategy "
            f"{type(trainer.strategy).__name__} in a local multirun (-m): Lightning would "
            "re-run the whole sweep in each process. Sweep multi-device jobs through "
            "hydra/launcher=slurm (SLURM starts the processes), or run them one at a time "
            "without -m."
        )


def finished_metrics(
    cfg: DictConfig,
    trainer: L.Trainer,
    module: EnhancementModule,
    datamodule: Any,
    checkpoint: ScoredCheckpoint,
    run_dir: Path,
    resumed_from: Path | None,
) -> dict[str, Any]:
    """What ``metrics.json`` holds after testing (``wall_time_s`` is added by the caller)."""
    best = checkpoint.best_model_path or None
    score = checkpoint.best_model_score
    timer = next((c for c in trainer.callbacks if isinstance(c, StepTimer)), None)
    test = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    return {
        "experiment": cfg.name,
        "test": test,
        "test_breakdown": breakdown(module.records["test"], datamodule.environments),
        "corpus": datamodule.corpus_info,
        "parameters": module.enhancer.num_parameters(),
        "best_checkpoint": best,
        "best_val_pesq": None if score is None else float(score),
        "best_epoch": None if best is None else runs.checkpoint_epoch(best),
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "train_step_time_s": None if timer is None else timer.median_s,
        "run_dir": str(run_dir),
        "tensorboard_dir": trainer.logger.log_dir if trainer.logger else None,
        "resumed_from": str(resumed_from) if resumed_from else None,
        "skipped_batches": module.skipped_batches,
    }


def run_hparams(
    resolved: dict[str, Any], metrics: dict[str, Any], module: EnhancementModule
) -> dict[str, int | float | str | bool]:
    """TensorBoard's HPARAMS: the experiment's swept settings, flat and typed."""
    return curated_hparams(
        resolved, metrics["corpus"].get("kind", "?"), metrics["parameters"], module.loss.label
    )
