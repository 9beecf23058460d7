"""Run and sweep folders: where a run goes, what it writes there and how it is resumed.

A run folder (``<paths.output_dir>/<name>/<time>``; ``<run>.resumed-<time>`` for a resumed
run) holds ``metrics.json`` (written after testing), ``.hydra/config.yaml`` (+ ``hydra.yaml``,
``overrides.yaml``), ``train.log``, its TensorBoard ``events.*`` files and ``checkpoints/``
(``last.ckpt`` for resuming, the best one by validation PESQ). A sweep folder
(``<output_dir>/multirun/<name>/<time>``) holds one numbered folder per job (``failed.json``
for a job that raised) and ``tensorboard/<NN>_<swept overrides>`` per job. This module names
and writes that layout; ``crn_lightning.finished_runs`` reads finished runs and sweeps back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
TENSORBOARD_DIR = "tensorboard"  # a sweep's job runs; a single run's events before 2026-12
EVENTS_GLOB = "events.out.tfevents.*"
# What a finished or running run leaves in its folder; a new run refuses a folder holding any.
RUN_ARTEFACTS = (CHECKPOINTS_DIR, TENSORBOARD_DIR, METRICS_FILE)
# The config key that holds the overrides composing a run's config (resume= starts from them).
OVERRIDES_KEY = "overrides"
# A run name stays far below the 255-byte file-name limit; longer ones end in a hash.
MAX_RUN_NAME_BYTES = 120


class RunFolderError(ConfigError, InterpolationResolutionError):
    """Raised inside a resolver: OmegaConf passes this kind through unwrapped."""


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
    if any(run_dir.glob(EVENTS_GLOB)):
        found.append("TensorBoard events")
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


def requeued_checkpoint(run_dir: Path) -> Path | None:
    """In a requeued SLURM job (``SLURM_RESTART_COUNT`` ≥ 1) whose run folder holds
    ``checkpoints/last.ckpt`` (saved by ``GracefulStop`` before it requeued the job): that
    checkpoint, which the job continues from in the same folder. Else None."""
    ckpt = run_dir / CHECKPOINTS_DIR / LAST_CHECKPOINT
    return ckpt if int(os.environ.get("SLURM_RESTART_COUNT", "0")) > 0 and ckpt.is_file() else None


def start_run(cfg: DictConfig, run_dir: Path) -> tuple[DictConfig, Path | None, list[str]]:
    """The config, the checkpoint to continue from (None: a fresh run) and the overrides that
    compose the config, for a fresh run, ``resume=`` or a requeued SLURM job."""
    from hydra.core.hydra_config import HydraConfig

    overrides = resume_overrides([], HydraConfig.get().overrides.task)
    requeued = requeued_checkpoint(run_dir)
    if requeued is not None:
        log.warning("requeued SLURM job: continuing from %s in %s", requeued, run_dir)
        return cfg, requeued, overrides
    check_run_folder(run_dir)
    if cfg.resume:
        return resumed_config(cfg)
    return cfg, None, overrides


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
    logs into its own folder (``tensorboard --logdir outputs`` names it
    ``<name>/<date_time>``); a multirun job into ``<sweep>/tensorboard/<job number>_<swept
    overrides>``, so ``tensorboard --logdir`` on the sweep (or on outputs/) shows every job as
    a run named by what it changed."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from lightning.pytorch.loggers import TensorBoardLogger

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        save_dir, name = Path(run_dir).parent, Path(run_dir).name
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
    """What marks a run as finished (global rank 0 only): ``metrics.json`` (read back by
    ``finished_runs.load_run``), the HPARAMS entry and summary figures in TensorBoard
    (crn_lightning.tensorboard_layout), and the closing line."""
    from crn_lightning.tensorboard_layout import log_hparams, summary_figures

    (run_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    test = metrics["test"]
    summary = summary_figures(test, metrics["best_val_pesq"])
    log_hparams(logger.experiment, hparams, summary, metrics["steps"])
    logger.finalize("success")
    line = closing_line(test, run_dir)
    log.info(line)
    print(line, flush=True)
