"""Finished runs and sweeps read back from their folders (the layout ``crn_lightning.runs``
names and writes): a run's metrics, config and overrides, a sweep's jobs and summary, a run's
best checkpoint and its TensorBoard scalars."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from crn_lightning.runs import CHECKPOINTS_DIR, FAILED_FILE, METRICS_FILE, TENSORBOARD_DIR

RUN_DIR_VARIABLE = "CRN_RUN_DIR"  # the notebooks' pointer to a run or sweep folder


class RunError(FileNotFoundError):
    """A folder that is not a finished run or sweep; the message names it and what is missing."""


@dataclass
class Run:
    """A finished training run: its folder, ``metrics.json``, config and command-line overrides.

    Relative ``paths.*`` in the config are made absolute against the folder the run was
    launched from (``hydra.runtime.cwd``), so they mean what they meant to the run.
    """

    run_dir: Path
    metrics: dict[str, Any]
    config: DictConfig
    overrides: list[str]


@dataclass
class SweepJob:
    """One job of a Hydra multirun: its folder, overrides, and the run if it finished."""

    job_dir: Path
    overrides: list[str]
    run: Run | None
    problem: str | None = None  # why there is no run (failed, unfinished)

    @property
    def status(self) -> str:
        """ok (finished), failed (raised: ``failed.json``) or incomplete (killed, timed out,
        still running)."""
        if self.run is not None:
            return "ok"
        return "failed" if (self.job_dir / FAILED_FILE).is_file() else "incomplete"


def absolute_paths(cfg: DictConfig, base: Path | None, where: Path) -> None:
    """Make the relative ``paths.*`` of ``cfg`` absolute against ``base`` (in place)."""
    for key in list(cfg.get("paths", {})):
        value = cfg.paths[key]
        if value is None or Path(str(value)).is_absolute():
            continue
        if base is None:
            raise RunError(
                f"{where}: paths.{key}={value!r} is relative and the folder it was relative to "
                f"is unknown (no .hydra/hydra.yaml with hydra.runtime.cwd)"
            )
        cfg.paths[key] = str(base / str(value))


def load_run(run_dir: str | Path) -> Run:
    """Load a finished run folder; a clear ``RunError`` when it is not one."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"run folder not found: {run_dir}")
    metrics_path, hydra_dir = run_dir / METRICS_FILE, run_dir / ".hydra"
    if not metrics_path.is_file():
        raise RunError(
            f"{run_dir} is not a finished run: no {METRICS_FILE} (a run writes it after "
            f"testing; an interrupted or failed run has none)"
        )
    if not (hydra_dir / "config.yaml").is_file():
        raise RunError(f"{run_dir}: no .hydra/config.yaml (was it made by crn_lightning.train?)")
    config = OmegaConf.load(hydra_dir / "config.yaml")
    launch_dir = None
    if (hydra_dir / "hydra.yaml").is_file():
        launch_dir = Path(OmegaConf.load(hydra_dir / "hydra.yaml").hydra.runtime.cwd)
    absolute_paths(config, launch_dir, run_dir)
    overrides_path = hydra_dir / "overrides.yaml"
    overrides = list(OmegaConf.load(overrides_path)) if overrides_path.is_file() else []
    return Run(run_dir, json.loads(metrics_path.read_text()), config, overrides)


def find_runs(outputs: str | Path) -> list[Path]:
    """Every finished run folder (one with metrics.json) under ``outputs``, oldest first."""
    found = Path(outputs).rglob(METRICS_FILE)
    return [p.parent for p in sorted(found, key=lambda p: p.stat().st_mtime)]


def resolve_target(path: str | Path | None, outputs: str | Path = "outputs") -> Path:
    """The run or sweep folder to look at: ``path`` when given (it must exist), else the
    newest finished run under ``outputs``."""
    if path:
        path = Path(path)
        if not path.is_dir():
            raise RunError(f"{RUN_DIR_VARIABLE}={path}: no such folder")
        return path
    runs = find_runs(outputs) if Path(outputs).is_dir() else []
    if not runs:
        raise RunError(
            f"no finished run under {Path(outputs).resolve()}: train one "
            f"(python -m crn_lightning.train experiment=quickstart) or set {RUN_DIR_VARIABLE} "
            f"to a run or sweep folder"
        )
    return runs[-1]


def _job_dirs(path: Path) -> list[Path]:
    jobs = [d for d in path.iterdir() if (d / ".hydra" / "overrides.yaml").is_file()]
    return sorted(
        jobs, key=lambda d: (not d.name.isdigit(), int(d.name) if d.name.isdigit() else 0, d.name)
    )


def is_sweep(path: str | Path) -> bool:
    """A multirun folder: no metrics.json of its own, job folders with .hydra/overrides.yaml."""
    path = Path(path)
    return not (path / METRICS_FILE).is_file() and bool(_job_dirs(path))


def load_sweep(sweep_dir: str | Path) -> list[SweepJob]:
    """Every job of a multirun folder, in job order; a job without metrics.json keeps its
    overrides and the reason (``problem``) instead of a run: for a job that raised, the first
    line of its error from ``failed.json``."""
    sweep_dir = Path(sweep_dir)
    jobs_dirs = _job_dirs(sweep_dir) if sweep_dir.is_dir() else []
    if not jobs_dirs:
        raise RunError(f"{sweep_dir} holds no sweep jobs (sub-folders with .hydra/overrides.yaml)")
    jobs = []
    for job_dir in jobs_dirs:
        overrides = list(OmegaConf.load(job_dir / ".hydra" / "overrides.yaml"))
        try:
            jobs.append(SweepJob(job_dir, overrides, load_run(job_dir)))
        except RunError as err:
            problem = str(err)
            if (job_dir / FAILED_FILE).is_file():
                problem = json.loads((job_dir / FAILED_FILE).read_text())["error"]
            jobs.append(SweepJob(job_dir, overrides, None, problem))
    return jobs


def read_summary_csv(sweep_dir: str | Path) -> list[dict[str, str]] | None:
    """A sweep's ``summary.csv`` as one record per row when one was written, else None."""
    path = Path(sweep_dir) / "summary.csv"
    if not path.is_file():
        return None
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def checkpoint_path(run: Run) -> Path:
    """The run's best checkpoint (by validation PESQ), found in the run's own checkpoints/
    folder so that a moved or copied run folder still works."""
    best = run.metrics.get("best_checkpoint")
    if not best:
        raise RunError(f"{run.run_dir}: {METRICS_FILE} names no best checkpoint")
    path = run.run_dir / CHECKPOINTS_DIR / Path(best).name
    if not path.is_file():
        raise RunError(
            f"{run.run_dir}: the best checkpoint {Path(best).name} is not in {path.parent}"
        )
    return path


def tensorboard_dir(run_dir: str | Path) -> Path:
    """Where a run's TensorBoard events are: the run folder itself (``<run>/tensorboard`` for
    runs written before that), or for a multirun job ``<sweep>/tensorboard/<NN>_<swept
    overrides>`` (the names ``tensorboard_logger`` gives)."""
    run_dir = Path(run_dir)
    if run_dir.name.isdigit() and is_sweep(run_dir.parent):
        prefix = f"{int(run_dir.name):02d}"
        for folder in sorted((run_dir.parent / TENSORBOARD_DIR).glob(f"{prefix}*")):
            if folder.name == prefix or folder.name.startswith(prefix + "_"):
                return folder
    older = run_dir / TENSORBOARD_DIR
    return older if older.is_dir() else run_dir


def read_scalars(run_dir: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every scalar a run logged to TensorBoard: tag -> (steps, values), from its event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder = tensorboard_dir(run_dir)
    if not any(folder.glob("events.out.tfevents.*")):
        raise RunError(f"{folder}: no TensorBoard event files (events.out.tfevents.*)")
    # 0 keeps every scalar; images and audio are not needed here.
    guidance = {"scalars": 0, "images": 1, "audio": 1, "histograms": 1, "tensors": 1}
    events = EventAccumulator(str(folder), size_guidance=guidance)
    events.Reload()
    return {
        tag: (
            np.array([e.step for e in events.Scalars(tag)]),
            np.array([e.value for e in events.Scalars(tag)]),
        )
        for tag in events.Tags()["scalars"]
    }
