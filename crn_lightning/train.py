"""Train, keep the best checkpoint by validation PESQ, then test it (the train entry point)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from crn_lightning.callbacks import StepTimer
from crn_lightning.module import EnhancementModule, aggregate_by

log = logging.getLogger(__name__)


def _breakdown(records: list[dict[str, Any]], environments: list[str]) -> dict[str, Any]:
    return {
        "by_snr_db": {f"{snr:g}": s for snr, s in aggregate_by(records, "snr_db").items()},
        "by_environment": {
            environments[i]: s for i, s in aggregate_by(records, "environment").items()
        },
    }


def closing_line(test: dict[str, float], run_dir: Path) -> str:
    gain = test["test/pesq"] - test["test/pesq_noisy"]
    return (
        f"test PESQ {test['test/pesq']:.2f} (noisy {test['test/pesq_noisy']:.2f}, {gain:+.2f}) | "
        f"STOI {test['test/stoi']:.3f} (noisy {test['test/stoi_noisy']:.3f}) | "
        f"SI-SDR {test['test/si_sdr']:.1f} dB (noisy {test['test/si_sdr_noisy']:.1f}) | "
        f"run: {run_dir}"
    )


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, test the best checkpoint, write ``metrics.json``; returns what it wrote."""
    started = time.perf_counter()
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    L.seed_everything(cfg.seed, workers=True)
    stft = instantiate(cfg.stft)
    datamodule = instantiate(cfg.data, stft=stft)
    model = instantiate(cfg.model, n_freqs=stft.n_freqs)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    module = EnhancementModule(
        model, stft, sample_rate=cfg.data.sample_rate, config=resolved, **cfg.module
    )
    parameters = model.num_parameters()
    log.info("CRN: %s parameters; frequency sizes %s", f"{parameters:,}", model.freq_sizes)

    logger = TensorBoardLogger(
        save_dir=str(run_dir), name="tensorboard", version="", default_hp_metric=False
    )
    checkpoint = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="epoch{epoch:02d}-val_pesq{val/pesq:.3f}",
        auto_insert_metric_name=False,
        monitor=cfg.checkpoint.monitor,
        mode=cfg.checkpoint.mode,
        save_last=True,
    )
    timer = StepTimer()
    trainer: L.Trainer = instantiate(
        cfg.trainer, logger=logger, callbacks=[checkpoint, timer], default_root_dir=str(run_dir)
    )
    trainer.fit(module, datamodule=datamodule)
    best = checkpoint.best_model_path or None
    if best is None:
        log.warning("no checkpoint was kept (e.g. fast_dev_run): testing the final weights")
    trainer.test(module, datamodule=datamodule, ckpt_path=best)

    test = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    metrics = {
        "experiment": cfg.name,
        "test": test,
        "test_breakdown": _breakdown(module.records["test"], datamodule.environments),
        "corpus": datamodule.corpus_info,
        "parameters": parameters,
        "best_checkpoint": best,
        "best_val_pesq": float(checkpoint.best_model_score)
        if checkpoint.best_model_score is not None
        else None,
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "train_step_time_s": timer.median_s,
        "wall_time_s": round(time.perf_counter() - started, 1),
        "run_dir": str(run_dir),
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
    # The return value is what a Hydra sweeper (e.g. Optuna) optimises.
    return train(cfg)["test"]["test/pesq"]


if __name__ == "__main__":
    main()
