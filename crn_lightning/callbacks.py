"""Small Lightning callbacks used by the train entry point."""

from __future__ import annotations

import statistics
import time
from typing import Any

import lightning as L


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
