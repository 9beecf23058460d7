"""Small Lightning callbacks used by the train entry point."""

from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn

from crn_lightning.runs import LAST_CHECKPOINT


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
    validation computed it for these very weights, and (``save_last``) writes ``last.ckpt``
    after every validation, at the end of every training epoch without one, and every
    ``every_n_train_steps`` steps.

    Lightning keeps a metric's last value between validations, so a plain ModelCheckpoint
    would rank an epoch that skipped PESQ (``module.pesq_every_n_epochs``), or a mid-epoch
    step, by an earlier epoch's score; and it writes ``last.ckpt`` only beside a top-k save,
    while resuming needs it every epoch. Both are done here through public hooks: ranking runs
    after validation only, and ``last.ckpt`` is written with ``Trainer.save_checkpoint``.
    """

    def __init__(
        self,
        *,
        save_last: bool | None = None,
        every_n_train_steps: int | None = None,
        **kwargs: Any,
    ) -> None:
        # The step trigger applies to last.ckpt only: a step-triggered ranking would read a
        # stale score.
        # Ranked after validation, before last.ckpt is written, so last.ckpt holds the epoch's
        # score (Lightning would rank at the training epoch's end, after last.ckpt).
        super().__init__(save_last=False, save_on_train_epoch_end=False, **kwargs)
        self.keep_last = bool(save_last)
        self.last_every_n_train_steps = every_n_train_steps
        self._last_saved_step = 0  # as Lightning: nothing to save before the first step

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the ranking on ``resume=``, which writes into a new run folder.

        Lightning reloads the best score only for the same folder, so the resumed run would
        rank its first validation best whatever an earlier epoch scored, and test the wrong
        checkpoint. The earlier run's top-k checkpoints are copied into this folder (its own
        files stay untouched) and ranked with their scores.
        """
        saved_dir = state_dict.get("dirpath")
        if self.dirpath is None or saved_dir is None or Path(saved_dir) == Path(self.dirpath):
            super().load_state_dict(state_dict)
            return
        Path(self.dirpath).mkdir(parents=True, exist_ok=True)
        copies: dict[str, str] = {}
        for path in state_dict.get("best_k_models", {}):
            if Path(path).is_file():
                copy = Path(self.dirpath) / Path(path).name
                if not copy.exists():
                    shutil.copy2(path, copy)
                copies[path] = str(copy)
        best_k = {
            copies[p]: s for p, s in state_dict.get("best_k_models", {}).items() if p in copies
        }
        super().load_state_dict(
            {
                **state_dict,
                "dirpath": self.dirpath,
                "best_k_models": best_k,
                "best_model_path": copies.get(state_dict.get("best_model_path", ""), ""),
                "kth_best_model_path": copies.get(state_dict.get("kth_best_model_path", ""), ""),
                "best_model_score": state_dict.get("best_model_score") if best_k else None,
                "last_model_path": "",  # written afresh in this folder
            }
        )

    def _scored(self, trainer: L.Trainer) -> bool:
        step, metrics = getattr(trainer.lightning_module, "last_validation", (None, ()))
        return self.monitor is None or (step == trainer.global_step and self.monitor in metrics)

    def _save_last(self, trainer: L.Trainer) -> None:
        """``last.ckpt`` when one is due (``save_last``, fitting, not a fast_dev_run)."""
        skip = (
            not self.keep_last
            or bool(trainer.fast_dev_run)
            or trainer.sanity_checking
            or trainer.state.fn != TrainerFn.FITTING
        )
        if not skip:
            self.write_last(trainer)

    def write_last(self, trainer: L.Trainer) -> Path:
        """Write ``last.ckpt`` (what ``resume=`` continues from) unless this step's is written
        already; returns its path. Also used by ``GracefulStop`` on a signal."""
        if self.dirpath is None:
            raise RuntimeError("ScoredCheckpoint.write_last: the checkpoint folder is not set")
        path = Path(self.dirpath) / LAST_CHECKPOINT
        if trainer.global_step != self._last_saved_step or not path.is_file():
            # last_model_path is part of this callback's state (restored on resume).
            self.last_model_path = str(path)
            trainer.save_checkpoint(self.last_model_path, weights_only=self.save_weights_only)
            self._last_saved_step = trainer.global_step
        return path

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._scored(trainer):
            super().on_validation_end(trainer, pl_module)
        self._save_last(trainer)  # after the ranking, so last.ckpt holds the updated best

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # No ranking here: it runs after validation (save_on_train_epoch_end=False).
        self._save_last(trainer)  # a no-op when this epoch's validation wrote it

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, *args)
        every = self.last_every_n_train_steps
        if every and trainer.global_step % every == 0:
            self._save_last(trainer)
