"""Run and sweep folders: where a run goes, what it leaves there, how it is resumed and read.

A run folder (``<paths.output_dir>/<name>/<time>``; ``<run>.resumed-<time>`` for a resumed
run) holds ``metrics.json`` (written after testing), ``.hydra/config.yaml`` (+ ``hydra.yaml``,
``overrides.yaml``), ``tensorboard/events.*`` and ``checkpoints/`` (``last.ckpt`` for resuming,
the best one by validation PESQ). A sweep folder (``<output_dir>/multirun/<name>/<time>``)
holds one numbered folder per job (``failed.json`` for a job that raised) and
``tensorboard/<NN>_<swept overrides>`` per job. This module writes and reads that layout; the
other modules use it from here.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from crn_lightning.errors import ConfigError, UserError

if TYPE_CHECKING:
    from lightning.pytorch.loggers import TensorBoardLogger

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
FAILED_FILE = "failed.json"  # a multirun job that raised (written by crn_lightning.sweep)
CHECKPOINTS_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"  # written after every validation: what resume= continues from
TENSORBOARD_DIR = "tensorboard"
# What a finished or running run leaves in its folder; a new run refuses a folder holding any.
RUN_ARTEFACTS = (CHECKPOINTS_DIR, TENSORBOARD_DIR, METRICS_FILE)
RUN_DIR_VARIABLE = "CRN_RUN_DIR"  # the notebooks' pointer to a run or sweep folder
# The config key that holds the overrides composing a run's config (resume= starts from them).
OVERRIDES_KEY = "overrides"
# A run name stays far below the 255-byte file-name limit; longer ones end in a hash.
MAX_RUN_NAME_BYTES = 120


class RunFolderError(ConfigError, InterpolationResolutionError):
    """Raised inside a resolver: OmegaConf passes this kind through unwrapped."""


class RunError(FileNotFoundError):
    """A folder that is not a finished run or sweep; the message names it and what is missing."""


# -- overrides and run names ---------------------------------------------------------------
def override_key(override: str) -> str:
    """``+data.snr_db=[0,5]`` → ``data.snr_db`` (the key an override sets)."""
    return override.partition("=")[0].lstrip("+~")


def swept_keys(sweep_dir: Path, sweeper_params: Mapping[str, Any] | None = None) -> set[str] | None:
    """Keys a multirun sweeps over: its sweeper's ``params`` (which every job's config carries)
    and its command-line sweeps (``key=a,b``), read from the ``multirun.yaml`` that Hydra's
    basic sweeper saves before launching (the Optuna sweeper saves none). None when neither
    says anything."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    keys = {override_key(k) for k in sweeper_params or {}}
    path = Path(sweep_dir) / "multirun.yaml"
    if path.is_file():
        config = OmegaConf.load(path)
        task = list(OmegaConf.select(config, "hydra.overrides.task", default=[]) or [])
        keys |= {
            o.key_or_group
            for o in OverridesParser.create().parse_overrides(task)
            if o.is_sweep_override()
        }
        params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
        keys |= {override_key(k) for k in params}
    return keys or None


def _safe_name(text: str) -> str:
    """A file-name-safe text of at most MAX_RUN_NAME_BYTES bytes (a hash keeps it unique)."""
    text = re.sub(r"[/\\\s]+", "_", text)
    raw = text.encode()
    if len(raw) <= MAX_RUN_NAME_BYTES:
        return text
    digest = hashlib.sha1(raw).hexdigest()[:8]
    head = raw[: MAX_RUN_NAME_BYTES - len(digest) - 1].decode(errors="ignore")
    return f"{head}~{digest}"


def run_name(job_num: int, overrides: Sequence[str], swept: set[str] | None) -> str:
    """A readable TensorBoard run name: the job number and the overrides it sweeps over
    (all of its overrides when the swept keys are unknown), e.g. ``02_stft.n_fft=960``."""
    shown = [o for o in overrides if swept is None or override_key(o) in swept]
    return _safe_name(f"{job_num:02d}" + ("_" + ",".join(shown) if shown else ""))


# -- where a run goes (resolvers in conf/config.yaml, checked before Hydra makes folders) ----
def output_folder(output_dir: str) -> str:
    """``paths.output_dir`` checked before Hydra makes a run or sweep folder in it (resolver
    ``${output_folder:...}``): a file there would otherwise fail deep inside Hydra."""
    if Path(output_dir).exists() and not Path(output_dir).is_dir():
        raise RunFolderError(
            f"paths.output_dir={output_dir} is a file, not a folder: choose a folder"
        )
    return output_dir


def resume_checkpoint(resume: str) -> Path:
    """The checkpoint ``resume=`` names: a ``.ckpt`` file, or a run folder's last one."""
    path = Path(resume)
    ckpt = path / CHECKPOINTS_DIR / LAST_CHECKPOINT if path.is_dir() else path
    if not ckpt.is_file():
        raise RunFolderError(
            f"resume={resume}: no checkpoint at {ckpt}; give a run folder holding "
            f"{CHECKPOINTS_DIR}/{LAST_CHECKPOINT}, or a .ckpt file"
        )
    return ckpt


def run_folder(output_dir: str, name: str, resume: str | None, stamp: str) -> str:
    """The run's folder (resolver ``${run_folder:...}`` in ``hydra.run.dir``), checked before
    Hydra makes it: ``<output_dir>/<name>/<stamp>``, or for ``resume=<run>`` a new folder
    beside that run, ``<run>.resumed-<stamp>``, so the resumed run's folder is never written to.
    """
    output_folder(output_dir)
    if resume:
        ckpt = resume_checkpoint(resume)
        if ckpt.parent.name == CHECKPOINTS_DIR:
            return f"{ckpt.parent.parent}.resumed-{stamp}"
    return f"{output_dir}/{name}/{stamp}"


def register_resolvers() -> None:
    """The resolvers conf/config.yaml uses in ``hydra.run.dir`` and ``hydra.sweep.dir``."""
    for name, resolver in (("run_folder", run_folder), ("output_folder", output_folder)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)


def hydra_run_dir() -> Path:
    """The folder Hydra made for this run (``hydra.run.dir`` or the job's sweep folder)."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def check_run_folder(run_dir: Path) -> None:
    """Refuse a folder that already holds a training run (e.g. a fixed ``hydra.run.dir``)."""
    found = [name for name in RUN_ARTEFACTS if (run_dir / name).exists()]
    if found:
        raise UserError(
            f"{run_dir} already holds a run ({', '.join(found)}); a run never writes into "
            "another run's folder: leave hydra.run.dir at its default or choose a new folder"
        )


def fresh_run_dir(run_dir: Path) -> Path:
    """``run_dir`` (created if needed), which must hold no earlier results: results are never
    overwritten (Hydra's log and config may be there already)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    earlier = sorted(
        p.name for p in run_dir.iterdir() if p.name != ".hydra" and not p.name.endswith(".log")
    )
    if earlier:
        raise ConfigError(
            f"hydra.run.dir={run_dir} already holds results ({', '.join(earlier)}): "
            "choose a new folder (the default is a new, time-stamped one)"
        )
    return run_dir


# -- resuming --------------------------------------------------------------------------------
def saved_overrides(ckpt: Path, resume: str) -> list[str]:
    """The overrides that composed the config of the run that wrote ``ckpt``."""
    from crn_lightning.enhancer import CHECKPOINT_CONFIG_KEY

    # mmap: only the config is read, not the weights and optimizer state.
    saved = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)
    overrides = saved.get(CHECKPOINT_CONFIG_KEY, {}).get(OVERRIDES_KEY)
    if overrides is None:
        raise UserError(
            f"resume={resume}: {ckpt} holds no training overrides (not written by this "
            "version of crn_lightning.train), so its run cannot be continued"
        )
    return list(overrides)


def resume_overrides(saved: Sequence[str], given: Sequence[str]) -> list[str]:
    """The saved run's overrides with this command's on top (a later one for the same key
    wins), without ``resume=``: what composes the resumed run's config."""
    overrides: dict[str, str] = {}
    for override in [*saved, *given]:
        overrides[override_key(override)] = override
    overrides.pop("resume", None)
    return list(overrides.values())


def resumed_config(cfg: DictConfig) -> tuple[DictConfig, Path, list[str]]:
    """Inside a Hydra run with ``resume=``: the config of the run it names, with this command's
    overrides on top, its checkpoint, and the overrides that make that config."""
    from hydra import compose
    from hydra.core.hydra_config import HydraConfig

    ckpt = resume_checkpoint(cfg.resume)
    given = HydraConfig.get().overrides.task
    overrides = resume_overrides(saved_overrides(ckpt, cfg.resume), given)
    log.info("resuming from %s with overrides %s", ckpt, overrides)
    composed = compose(HydraConfig.get().job.config_name, overrides=[*overrides, f"resume={ckpt}"])
    return composed, ckpt, overrides


# -- what a run writes -----------------------------------------------------------------------
def tensorboard_logger(run_dir: str | Path, default_hp_metric: bool) -> TensorBoardLogger:
    """The run's TensorBoard logger (``_target_`` of conf/logger/tensorboard.yaml). A single run
    logs into ``<run>/tensorboard``; a multirun job into ``<sweep>/tensorboard/<job
    number>_<swept overrides>``, so ``tensorboard --logdir`` on the sweep (or on outputs/)
    shows every job as a run named by what it changed."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from lightning.pytorch.loggers import TensorBoardLogger

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        save_dir, name = Path(run_dir), TENSORBOARD_DIR
    else:
        sweep_dir = Path(hydra_cfg.sweep.dir)
        save_dir = sweep_dir / TENSORBOARD_DIR
        swept = swept_keys(sweep_dir, hydra_cfg.sweeper.get("params"))
        name = run_name(hydra_cfg.job.num, list(hydra_cfg.overrides.task), swept)
    return TensorBoardLogger(
        save_dir=str(save_dir), name=name, version="", default_hp_metric=default_hp_metric
    )


def checkpoint_epoch(path: str | Path) -> int:
    """The 1-based epoch a checkpoint was saved in (Lightning stores it 0-based)."""
    # mmap: only the loop counters are read, not the weights.
    return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["epoch"]) + 1


def closing_line(test: Mapping[str, float], run_dir: Path) -> str:
    """The line a run ends with: its test figures, noisy → enhanced, and its folder."""
    gain = test["test/pesq"] - test["test/pesq_noisy"]
    return (
        f"test PESQ {test['test/pesq']:.2f} (noisy {test['test/pesq_noisy']:.2f}, {gain:+.2f}) | "
        f"STOI {test['test/stoi']:.3f} (noisy {test['test/stoi_noisy']:.3f}) | "
        f"SI-SDR {test['test/si_sdr']:.1f} dB (noisy {test['test/si_sdr_noisy']:.1f}) | "
        f"run: {run_dir}"
    )


def write_finished_run(
    run_dir: Path,
    metrics: Mapping[str, Any],
    logger: TensorBoardLogger,
    hparams: Mapping[str, Any],
) -> None:
    """What marks a run as finished (global rank 0 only): ``metrics.json`` (see ``load_run``),
    the hyper-parameters with the test figures in TensorBoard, and the closing line."""
    (run_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    test = metrics["test"]
    logger.log_hyperparams(
        dict(hparams), metrics={f"hparams/{k.removeprefix('test/')}": v for k, v in test.items()}
    )
    logger.finalize("success")
    line = closing_line(test, run_dir)
    log.info(line)
    print(line, flush=True)


# -- reading runs and sweeps -----------------------------------------------------------------
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
    """Where a run's TensorBoard events are: ``<run>/tensorboard``, or for a multirun job
    ``<sweep>/tensorboard/<NN>_<swept overrides>`` (the names ``tensorboard_logger`` gives)."""
    run_dir = Path(run_dir)
    if run_dir.name.isdigit() and is_sweep(run_dir.parent):
        prefix = f"{int(run_dir.name):02d}"
        for folder in sorted((run_dir.parent / TENSORBOARD_DIR).glob(f"{prefix}*")):
            if folder.name == prefix or folder.name.startswith(prefix + "_"):
                return folder
    return run_dir / TENSORBOARD_DIR


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
