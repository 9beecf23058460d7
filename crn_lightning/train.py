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
from omegaconf import DictConfig, OmegaConf

from crn_lightning import runs
from crn_lightning.compose import CONFIG_DIR
from crn_lightning.config import check_keys, register_configs
from crn_lightning.training import finished_metrics, refuse_respawn_in_multirun, run_hparams

log = logging.getLogger(__name__)
register_configs()

__all__ = ["main", "refuse_respawn_in_multirun", "train"]


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, test the best checkpoint, write ``metrics.json``; returns what it wrote."""
    started = time.perf_counter()
    run_dir = runs.hydra_run_dir()
    cfg, ckpt_path, overrides = runs.start_run(cfg, run_dir)
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
    log.info(
        "CRN: %s parameters; frequency sizes %s", f"{model.num_parameters():,}", model.freq_sizes
    )

    logger = instantiate(cfg.logger, run_dir=str(run_dir))
    # conf/callbacks/default.yaml: the checkpoint first (GracefulStop saves through it).
    checkpoint = instantiate(cfg.callbacks.checkpoint, dirpath=str(run_dir / runs.CHECKPOINTS_DIR))
    others = [instantiate(node) for key, node in cfg.callbacks.items() if key != "checkpoint"]
    trainer: L.Trainer = instantiate(
        cfg.trainer, logger=logger, callbacks=[checkpoint, *others], default_root_dir=str(run_dir)
    )
    refuse_respawn_in_multirun(trainer, HydraConfig.get().mode == RunMode.MULTIRUN)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    best = checkpoint.best_model_path or None
    if best is None:
        log.warning("no checkpoint was kept (e.g. fast_dev_run): testing the final weights")
    trainer.test(module, datamodule=datamodule, ckpt_path=best)

    metrics = finished_metrics(cfg, trainer, module, datamodule, checkpoint, run_dir, ckpt_path)
    metrics["wall_time_s"] = round(time.perf_counter() - started, 1)
    if trainer.is_global_zero:
        hparams = run_hparams(resolved, metrics, module)
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
