"""A run's progress as log lines (``train.log`` and the console, with or without a terminal).

- After the first steps (``estimate_after_steps``, or ``estimate_after_s`` seconds if that
  comes first): the measured step time and what the run's training steps will take; on a
  CPU, when that is more than ``warn_hours``, a warning with the alternatives.
- After every validation: its figures, enhanced next to noisy, and how long it took.
- After every epoch: steps, the epoch's mean training loss, the last validation's figures,
  the epoch's wall time and the estimated time left.

Only global rank 0 logs.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from lightning.pytorch.accelerators import CPUAccelerator

log = logging.getLogger(__name__)

# (metric, label, format) of the validation figures, each shown with its noisy baseline.
FIGURES = (("pesq", "PESQ", ".2f"), ("stoi", "STOI", ".3f"), ("si_sdr", "SI-SDR", ".1f"))


def format_duration(seconds: float) -> str:
    """``3 s``, ``4 min 05 s``, ``14 h 02 min``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def validation_figures(metrics: Mapping[str, Any], names: frozenset[str] | None = None) -> str:
    """``loss 0.0123 | PESQ 1.44 (noisy 1.41) | ...`` from ``val/*`` metrics (only those in
    ``names`` when given: the ones the last validation computed)."""

    def value(key: str) -> float | None:
        if key not in metrics or (names is not None and key not in names):
            return None
        return float(metrics[key])

    parts = []
    loss = value("val/loss")
    if loss is not None:
        parts.append(f"val loss {loss:.4g}")
    for name, label, fmt in FIGURES:
        enhanced, noisy = value(f"val/{name}"), value(f"val/{name}_noisy")
        if enhanced is None:
            continue
        unit = " dB" if name == "si_sdr" else ""
        baseline = "" if noisy is None else f" (noisy {noisy:{fmt}})"
        parts.append(f"{label} {enhanced:{fmt}}{unit}{baseline}")
    return " | ".join(parts)


class ProgressLog(L.Callback):
    """Log lines that tell how a run goes (module docstring)."""

    def __init__(
        self,
        estimate_after_steps: int = 10,
        estimate_after_s: float = 60.0,
        warn_hours: float = 2.0,
    ) -> None:
        self.estimate_after_steps = estimate_after_steps
        self.estimate_after_s = estimate_after_s
        self.warn_hours = warn_hours
        self._fit_started = self._epoch_started = self._validation_started = 0.0
        self._first_step = 0
        self._estimated = False
        self._losses: list[float] = []
        self._epochs_done = 0

    # -- the first minute: an estimate of the run --------------------------------------
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A run resumed mid-epoch gets no on_train_epoch_start for that epoch.
        self._fit_started = self._epoch_started = time.perf_counter()
        self._first_step = trainer.global_step  # > 0 for a resumed run
        self._estimated = False
        self._epochs_done = 0

    def _total_steps(self, trainer: L.Trainer) -> float:
        total = trainer.estimated_stepping_batches
        return float(total) if total is not None else math.inf

    def _estimate(self, trainer: L.Trainer, pl_module: L.LightningModule, steps: int) -> None:
        self._estimated = True
        per_step = (time.perf_counter() - self._fit_started) / steps
        total = self._total_steps(trainer)
        left = total - trainer.global_step
        if not math.isfinite(left):
            log.info(
                "first %d step(s): %.2f s a step (the run's length is unknown)", steps, per_step
            )
            return
        seconds = per_step * left
        device = "CPU" if isinstance(trainer.accelerator, CPUAccelerator) else "GPU"
        log.info(
            "first %s: %.2f s a step on the %s; the %d training steps left take about %s "
            "(validation not included)",
            "step" if steps == 1 else f"{steps} steps",
            per_step,
            device,
            int(left),
            format_duration(seconds),
        )
        if device == "CPU" and seconds > 3600 * self.warn_hours:
            parameters = sum(p.numel() for p in pl_module.parameters())
            log.warning(
                "\n%s\nTHIS RUN WILL TAKE ABOUT %s ON THE CPU (%s parameters, %.1f s a step, %d "
                "steps).\nAlternatives:\n"
                "  experiment=quickstart   a small CRN that trains, validates and tests in "
                "about 10 minutes on a CPU\n"
                "  trainer=gpu             the same run on a GPU%s\n"
                "Stop it with Ctrl+C: a checkpoint is saved and the command to continue shown."
                "\n%s",
                "!" * 78,
                format_duration(seconds).upper(),
                f"{parameters:,}",
                per_step,
                int(left),
                " (none is visible here)" if not torch.cuda.is_available() else "",
                "!" * 78,
            )

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor):
            self._losses.append(float(loss.detach()))
        if self._estimated or not trainer.is_global_zero:
            return
        steps = trainer.global_step - self._first_step
        elapsed = time.perf_counter() - self._fit_started
        if steps >= self.estimate_after_steps or (steps >= 1 and elapsed >= self.estimate_after_s):
            self._estimate(trainer, pl_module, steps)

    # -- validations and epochs --------------------------------------------------------
    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validation_started = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        step, names = getattr(pl_module, "last_validation", (trainer.global_step, None))
        if step != trainer.global_step:
            return
        clips = trainer.callback_metrics.get("val/clips")
        log.info(
            "validation at step %d (epoch %d%s): %s; took %s",
            trainer.global_step,
            trainer.current_epoch + 1,
            "" if clips is None else f", {int(clips)} clips",
            validation_figures(trainer.callback_metrics, names),
            format_duration(time.perf_counter() - self._validation_started),
        )

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_started = time.perf_counter()
        self._losses = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        self._epochs_done += 1
        now = time.perf_counter()
        epochs = trainer.max_epochs
        left = None if epochs is None or epochs < 0 else epochs - trainer.current_epoch - 1
        per_epoch = (now - self._fit_started) / self._epochs_done
        total = self._total_steps(trainer)
        parts = [
            f"epoch {trainer.current_epoch + 1}/{epochs if left is not None else '?'}",
            f"step {trainer.global_step}/{int(total) if math.isfinite(total) else '?'}",
        ]
        if self._losses:
            parts.append(f"train loss {sum(self._losses) / len(self._losses):.4g}")
        figures = validation_figures(trainer.callback_metrics)
        if figures:
            parts.append(figures)
        parts.append(f"epoch {format_duration(now - self._epoch_started)}")
        if left is not None:
            parts.append(f"ETA {format_duration(per_epoch * left)} (then the test)")
        log.info(" | ".join(parts))
