"""Stopping a run on a signal without losing it: SIGTERM / SIGINT save a resumable checkpoint
and say how to continue; in a SLURM job the requeue signal also requeues the job.

What happens, in the main process of every rank:

- the signal only sets a flag (the handler replaces Lightning's for the training stage, and
  is restored after it); a second Ctrl+C stops at once (KeyboardInterrupt);
- at the next training-batch boundary (or the end of the epoch; a signal during validation
  waits for it to end) ``checkpoints/last.ckpt`` is saved through the run's
  ``ScoredCheckpoint``, the command that continues the run is logged, and
  ``StopRequested`` (a ``SystemExit`` with status 128 + signal number) ends the process
  without a traceback;
- in a SLURM job (Lightning's ``SLURMEnvironment.detect()``) the requeue signal (the
  cluster environment's ``requeue_signal``, SIGUSR1 unless set, as Lightning's auto-requeue;
  and SIGUSR2, what submitit, i.e. ``hydra/launcher=slurm``, asks SLURM to send before the
  time limit) saves the same checkpoint and runs ``scontrol requeue <job id>`` as
  Lightning's ``_SignalConnector`` does; the requeued job continues from that checkpoint in
  the same run folder (``runs.requeued_checkpoint``).

Loader workers and the scoring pool ignore SIGTERM and SIGINT (``ignore_stop_signals``): a
signal sent to the whole process group (SLURM, Ctrl+C) leaves them to the main process,
which shuts them down, instead of killing them under it (the "DataLoader worker (pid ...)
is killed by signal" traceback).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.fabric.utilities.seed import pl_worker_init_function

from crn_lightning.callbacks import ScoredCheckpoint

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# What submitit (hydra/launcher=slurm) has SLURM send before a job's time limit.
SUBMITIT_SIGNAL = signal.SIGUSR2


class StopRequested(SystemExit):
    """Ends the process after a signal was handled (status 128 + the signal's number)."""


def ignore_stop_signals() -> None:
    """In a worker process: leave SIGTERM and SIGINT to the main process."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def loader_worker_init(worker_id: int) -> None:
    """``worker_init_fn`` of the training loaders: ignore stop signals, then seed the worker as
    Lightning does when ``seed_everything(workers=True)`` ran (it adds its own function only to
    loaders without one)."""
    ignore_stop_signals()
    if int(os.environ.get("PL_SEED_WORKERS", "0")):
        pl_worker_init_function(worker_id)


def slurm_job_id() -> str:
    """The job id ``scontrol requeue`` takes, as Lightning forms it (array jobs too)."""
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    job_id = (
        f"{array_job}_{os.environ['SLURM_ARRAY_TASK_ID']}"
        if array_job
        else os.environ["SLURM_JOB_ID"]
    )
    if not re.fullmatch(r"[0-9_-]+", job_id):
        raise RuntimeError(f"SLURM_JOB_ID / SLURM_ARRAY_*: unexpected job id {job_id!r}")
    return job_id


def resume_command(run_dir: Path) -> str:
    return f"python -m crn_lightning.train resume={run_dir}"


class GracefulStop(L.Callback):
    """Save and stop cleanly on SIGTERM / SIGINT, requeue on SLURM (module docstring).
    ``requeue``: in a SLURM job, requeue on its requeue signal (``scontrol requeue``)."""

    def __init__(self, requeue: bool = True) -> None:
        self.requeue = requeue
        self.received: signal.Signals | None = None
        self._previous: dict[signal.Signals, Any] = {}
        self._requeue_signals: tuple[signal.Signals, ...] = ()

    # -- the handlers ------------------------------------------------------------------
    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl+C: stop at once
        if self.received is None:
            self.received = signal.Signals(signum)
            log.warning(
                "received %s: saving a checkpoint and stopping after this step%s",
                self.received.name,
                " (Ctrl+C again stops at once, without saving)" if signum == signal.SIGINT else "",
            )

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Installed here, after Lightning registered its own handlers (Trainer._run), so that
        # a signal stops at a batch boundary rather than after the epoch and its validation.
        self.received = None
        signals = list(STOP_SIGNALS)
        if self.requeue and SLURMEnvironment.detect():
            environment = getattr(trainer.strategy, "cluster_environment", None)
            requeue = getattr(environment, "requeue_signal", None) or signal.SIGUSR1
            self._requeue_signals = tuple(dict.fromkeys([requeue, SUBMITIT_SIGNAL]))
            signals += self._requeue_signals
        for signum in signals:
            self._previous[signum] = signal.signal(signum, self._handle)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._restore()

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    # -- stopping at a batch boundary ----------------------------------------------------
    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._maybe_stop(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._maybe_stop(trainer)

    def _maybe_stop(self, trainer: L.Trainer) -> None:
        stop = self.received is not None
        if trainer.world_size > 1:  # every rank stops at the same step (saving is collective)
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if not stop:
            return
        signum = self.received or signal.SIGTERM  # a rank that did not get it follows rank 0
        checkpoint = next(
            (c for c in trainer.checkpoint_callbacks if isinstance(c, ScoredCheckpoint)), None
        )
        if checkpoint is None or checkpoint.dirpath is None:
            raise RuntimeError(
                "GracefulStop needs the run's ScoredCheckpoint (callbacks.checkpoint) to save"
            )
        path = checkpoint.write_last(trainer)
        run_dir = Path(checkpoint.dirpath).parent
        if trainer.is_global_zero:
            where = f"at step {trainer.global_step} (epoch {trainer.current_epoch + 1})"
            if signum in self._requeue_signals:
                self._requeue_slurm_job(path, where)
            else:
                log.warning(
                    "stopped by %s %s; saved %s. To continue the run:\n    %s",
                    signum.name,
                    where,
                    path,
                    resume_command(run_dir),
                )
        raise StopRequested(128 + int(signum))

    @staticmethod
    def _requeue_slurm_job(path: Path, where: str) -> None:
        job_id = slurm_job_id()
        log.warning("SLURM requeue signal %s; saved %s; requeueing job %s", where, path, job_id)
        result = subprocess.call(["scontrol", "requeue", job_id])
        if result == 0:
            log.warning(
                "requeued SLURM job %s: it continues from %s in the same run folder", job_id, path
            )
        else:
            log.error(
                "scontrol requeue %s failed (exit status %d); continue by hand:\n    %s",
                job_id,
                result,
                resume_command(path.parent.parent),
            )
