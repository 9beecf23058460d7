"""Small Lightning callbacks used by the train entry point."""

from __future__ import annotations

import statistics
import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint


class StepTimer(L.Callback):
    """Wall time of each training step (data transfer, STFT, forward, backward, optimizer),
    so every run reports its speed; ``median_s`` ignores the slow first steps."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._started = 0.0

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        self._started = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self.durations.append(time.perf_counter() - self._started)

    @property
    def median_s(self) -> float | None:
        return statistics.median(self.durations) if self.durations else None


class ScoredCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that ranks a checkpoint by the monitored metric only when the last
    validation computed it for these very weights, and writes ``last.ckpt`` after every
    validation and every ``every_n_train_steps`` regardless.

    Lightning keeps a metric's last value between validations, so a plain ModelCheckpoint
    would rank an epoch that skipped PESQ (``module.pesq_every_n_epochs``), or a mid-epoch
    step, by an earlier epoch's score.
    """

    def _save_topk_checkpoint(
        self, trainer: L.Trainer, monitor_candidates: dict[str, torch.Tensor]
    ) -> None:
        step, metrics = getattr(trainer.lightning_module, "last_validation", (None, ()))
        if self.monitor is None or (step == trainer.global_step and self.monitor in metrics):
            super()._save_topk_checkpoint(trainer, monitor_candidates)

    # The parent writes last.ckpt only beside a top-k save; resumption needs it every epoch.
    def _save_last_if_not_saved(self, trainer: L.Trainer) -> None:
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_not_saved(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_not_saved(trainer)
