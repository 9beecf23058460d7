"""Train, keep the best checkpoint by validation PESQ, then test it (the train entry point)."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate

# Private, unavoidable: no public API tells the launcher that re-runs the command line (tested).
from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher
from omegaconf import DictConfig, OmegaConf

from crn_lightning import runs
from crn_lightning.compose import CONFIG_DIR
from crn_lightning.config import check_keys, register_configs
from crn_lightning.errors import ConfigError
from crn_lightning.scoring import breakdown

log = logging.getLogger(__name__)
register_configs()


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


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, test the best checkpoint, write ``metrics.json``; returns what it wrote."""
    started = time.perf_counter()
    run_dir = runs.hydra_run_dir()
    runs.check_run_folder(run_dir)
    ckpt_path = None
    overrides = runs.resume_overrides([], HydraConfig.get().overrides.task)
    if cfg.resume:
        cfg, ckpt_path, overrides = runs.resumed_config(cfg)
    check_keys(cfg)
    L.seed_everything(cfg.seed, workers=True)
    stft = instantiate(cfg.stft)
    datamodule = instantiate(cfg.data, stft=stft)
    model = instantiate(cfg.model, n_freqs=stft.n_freqs)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved[runs.OVERRIDES_KEY] = overrides  # what composes this config: resume= starts there
    # A partial: instantiate's own first parameter is named "config", as is the module's.
    build_module = instantiate(cfg.module, _partial_=True)
    module = build_module(
        model, stft, sample_rate=cfg.data.sample_rate, config=resolved, loss=instantiate(cfg.loss)
    )
    parameters = model.num_parameters()
    log.info("CRN: %s parameters; frequency sizes %s", f"{parameters:,}", model.freq_sizes)

    logger = instantiate(cfg.logger, run_dir=str(run_dir))
    checkpoint = instantiate(cfg.callbacks.checkpoint, dirpath=str(run_dir / runs.CHECKPOINTS_DIR))
    timer = instantiate(cfg.callbacks.step_timer)
    trainer: L.Trainer = instantiate(
        cfg.trainer, logger=logger, callbacks=[checkpoint, timer], default_root_dir=str(run_dir)
    )
    refuse_respawn_in_multirun(trainer, HydraConfig.get().mode == RunMode.MULTIRUN)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    best = checkpoint.best_model_path or None
    if best is None:
        log.warning("no checkpoint was kept (e.g. fast_dev_run): testing the final weights")
    trainer.test(module, datamodule=datamodule, ckpt_path=best)

    score = checkpoint.best_model_score
    test = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    metrics = {
        "experiment": cfg.name,
        "test": test,
        "test_breakdown": breakdown(module.records["test"], datamodule.environments),
        "corpus": datamodule.corpus_info,
        "parameters": parameters,
        "best_checkpoint": best,
        "best_val_pesq": None if score is None else float(score),
        "best_epoch": None if best is None else runs.checkpoint_epoch(best),
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "train_step_time_s": timer.median_s,
        "wall_time_s": round(time.perf_counter() - started, 1),
        "run_dir": str(run_dir),
        "tensorboard_dir": logger.log_dir,
        "resumed_from": str(ckpt_path) if ckpt_path else None,
        "skipped_batches": module.skipped_batches,
    }
    if trainer.is_global_zero:
        # TensorBoard's hparams: the experiment's settings, not where it ran nor how it logged.
        hparams = {k: v for k, v in resolved.items() if k not in ("paths", "callbacks", "logger")}
        runs.write_finished_run(run_dir, metrics, logger, hparams)
    return metrics


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def main(cfg: DictConfig) -> float:
    # What a Hydra sweeper (e.g. Optuna) optimises: the best validation score of the metric
    # that picks the checkpoint (val/pesq), never a test figure.
    best = train(cfg)["best_val_pesq"]
    return best if best is not None else math.nan


if __name__ == "__main__":
    main()
