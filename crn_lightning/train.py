"""Train, keep the best checkpoint by validation PESQ, then test it (the train entry point)."""

from __future__ import annotations

import json
import logging
import math
import re
import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from omegaconf import DictConfig, OmegaConf

from crn_lightning.callbacks import ScoredCheckpoint, StepTimer
from crn_lightning.config import check_keys, register_configs, resume_checkpoint
from crn_lightning.errors import ConfigError, UserError
from crn_lightning.module import CHECKPOINT_CONFIG_KEY, EnhancementModule
from crn_lightning.scoring import breakdown
from crn_lightning.sweep import override_key, run_name, swept_keys

log = logging.getLogger(__name__)
register_configs()

# What a finished or running run leaves in its folder; a new run refuses a folder holding any.
RUN_ARTEFACTS = ("checkpoints", "tensorboard", "metrics.json")

CHECKPOINT_FILENAME = "epoch{epoch:02d}-val_pesq{val/pesq:.3f}"
_CHECKPOINT_EPOCH = re.compile(r"^epoch(\d+)-")


def best_epoch(checkpoint_path: str | None) -> int | None:
    """The 1-based epoch of a checkpoint named by CHECKPOINT_FILENAME (its name says 0-based)."""
    match = _CHECKPOINT_EPOCH.match(Path(checkpoint_path).name) if checkpoint_path else None
    return int(match.group(1)) + 1 if match else None


def tensorboard_logger(run_dir: Path) -> TensorBoardLogger:
    """A single run logs into ``<run>/tensorboard``; a multirun job into
    ``<sweep>/tensorboard/<job number>_<swept overrides>``, so ``tensorboard --logdir`` on the
    sweep (or on outputs/) shows every job as a run named by what it changed."""
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        save_dir, name = run_dir, "tensorboard"
    else:
        sweep_dir = Path(hydra_cfg.sweep.dir)
        overrides = list(hydra_cfg.overrides.task)
        save_dir = sweep_dir / "tensorboard"
        swept = swept_keys(sweep_dir, hydra_cfg.sweeper.get("params"))
        name = run_name(hydra_cfg.job.num, overrides, swept)
    return TensorBoardLogger(save_dir=str(save_dir), name=name, version="", default_hp_metric=False)


def _refuse_respawn_in_multirun(trainer: L.Trainer) -> None:
    # Lightning's DDP launcher starts each extra process by re-running the command line, which
    # in a local multirun would start the whole sweep again in every process.
    respawns = isinstance(trainer.strategy.launcher, _SubprocessScriptLauncher)
    if respawns and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise ConfigError(
            f"trainer.devices={trainer.num_devices} with strategy "
            f"{type(trainer.strategy).__name__} in a local multirun (-m): Lightning would "
            "re-run the whole sweep in each process. Sweep multi-device jobs through "
            "hydra/launcher=slurm (SLURM starts the processes), or run them one at a time "
            "without -m."
        )


def closing_line(test: dict[str, float], run_dir: Path) -> str:
    gain = test["test/pesq"] - test["test/pesq_noisy"]
    return (
        f"test PESQ {test['test/pesq']:.2f} (noisy {test['test/pesq_noisy']:.2f}, {gain:+.2f}) | "
        f"STOI {test['test/stoi']:.3f} (noisy {test['test/stoi_noisy']:.3f}) | "
        f"SI-SDR {test['test/si_sdr']:.1f} dB (noisy {test['test/si_sdr_noisy']:.1f}) | "
        f"run: {run_dir}"
    )


def resumed_config(cfg: DictConfig) -> tuple[DictConfig, Path, list[str]]:
    """The config of the run that ``resume=`` names, with this command's overrides on top
    (later ones win), its checkpoint, and the overrides that make that config."""
    ckpt = resume_checkpoint(cfg.resume)
    # mmap: only the config is read, not the weights and optimizer state.
    saved = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)
    saved_overrides = saved.get(CHECKPOINT_CONFIG_KEY, {}).get("overrides")
    if saved_overrides is None:
        raise UserError(
            f"resume={cfg.resume}: {ckpt} holds no training overrides (not written by this "
            "version of crn_lightning.train), so its run cannot be continued"
        )
    overrides: dict[str, str] = {}
    for override in [*saved_overrides, *HydraConfig.get().overrides.task]:
        overrides[override_key(override)] = override
    del overrides["resume"]
    log.info("resuming from %s with overrides %s", ckpt, list(overrides.values()))
    composed = compose(
        HydraConfig.get().job.config_name, overrides=[*overrides.values(), f"resume={ckpt}"]
    )
    return composed, ckpt, list(overrides.values())


def check_run_folder(run_dir: Path) -> None:
    """Refuse a folder that already holds a run (e.g. a fixed ``hydra.run.dir``)."""
    found = [name for name in RUN_ARTEFACTS if (run_dir / name).exists()]
    if found:
        raise UserError(
            f"{run_dir} already holds a run ({', '.join(found)}); a run never writes into "
            "another run's folder: leave hydra.run.dir at its default or choose a new folder"
        )


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, test the best checkpoint, write ``metrics.json``; returns what it wrote."""
    started = time.perf_counter()
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    check_run_folder(run_dir)
    ckpt_path = None
    overrides = [o for o in HydraConfig.get().overrides.task if override_key(o) != "resume"]
    if cfg.resume:
        cfg, ckpt_path, overrides = resumed_config(cfg)
    check_keys(cfg)
    L.seed_everything(cfg.seed, workers=True)
    stft = instantiate(cfg.stft)
    datamodule = instantiate(cfg.data, stft=stft)
    model = instantiate(cfg.model, n_freqs=stft.n_freqs)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    # What composes this config: resume= starts from them (see resumed_config).
    resolved["overrides"] = overrides
    loss = instantiate(cfg.loss)  # the training objective (conf/loss/)
    module = EnhancementModule(
        model, stft, sample_rate=cfg.data.sample_rate, config=resolved, loss=loss, **cfg.module
    )
    parameters = model.num_parameters()
    log.info("CRN: %s parameters; frequency sizes %s", f"{parameters:,}", model.freq_sizes)

    logger = tensorboard_logger(run_dir)
    checkpoint = ScoredCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename=CHECKPOINT_FILENAME,
        auto_insert_metric_name=False,
        monitor=cfg.checkpoint.monitor,
        mode=cfg.checkpoint.mode,
        save_last=True,
        every_n_train_steps=cfg.checkpoint.every_n_train_steps,
    )
    timer = StepTimer()
    trainer: L.Trainer = instantiate(
        cfg.trainer, logger=logger, callbacks=[checkpoint, timer], default_root_dir=str(run_dir)
    )
    _refuse_respawn_in_multirun(trainer)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    best = checkpoint.best_model_path or None
    if best is None:
        log.warning("no checkpoint was kept (e.g. fast_dev_run): testing the final weights")
    trainer.test(module, datamodule=datamodule, ckpt_path=best)

    test = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    metrics = {
        "experiment": cfg.name,
        "test": test,
        "test_breakdown": breakdown(module.records["test"], datamodule.environments),
        "corpus": datamodule.corpus_info,
        "parameters": parameters,
        "best_checkpoint": best,
        "best_val_pesq": float(checkpoint.best_model_score)
        if checkpoint.best_model_score is not None
        else None,
        "best_epoch": best_epoch(best),
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
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        hparams = {k: v for k, v in resolved.items() if k not in ("paths", "hydra")}
        logger.log_hyperparams(
            hparams, metrics={f"hparams/{k.removeprefix('test/')}": v for k, v in test.items()}
        )
        logger.finalize("success")
        line = closing_line(test, run_dir)
        log.info(line)
        print(line, flush=True)
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    # What a Hydra sweeper (e.g. Optuna) optimises: the best validation score of the metric
    # that picks the checkpoint (val/pesq), never a test figure.
    best = train(cfg)["best_val_pesq"]
    return best if best is not None else math.nan


if __name__ == "__main__":
    main()
