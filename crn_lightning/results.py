"""Reading finished runs and sweeps (for the notebooks): metrics, configs, TensorBoard scalars,
the data module and best checkpoint of a run, and the tables the notebooks show.

A run folder holds ``metrics.json``, ``.hydra/config.yaml`` (+ ``hydra.yaml``,
``overrides.yaml``), ``tensorboard/events.*`` and ``checkpoints/*.ckpt``; a sweep folder
(``outputs/multirun/<name>/<time>/``) holds one such folder per job.
"""

from __future__ import annotations

import copy
import csv
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from crn_lightning.config import register_configs
from crn_lightning.data.datamodule import STAGES, ArcticDemandDataModule
from crn_lightning.metrics import perceptual_scores, si_sdr
from crn_lightning.mixing import rms, snr_db

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = PROJECT_ROOT / "conf"
RUN_DIR_VARIABLE = "CRN_RUN_DIR"  # the notebooks' pointer to a run or sweep folder
FAILED_FILE = "failed.json"  # a multirun job that raised (written by crn_lightning.sweep)


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


# -- locating and loading runs ---------------------------------------------------------------
def _absolute_paths(cfg: DictConfig, base: Path | None, where: Path) -> None:
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
    metrics_path, hydra_dir = run_dir / "metrics.json", run_dir / ".hydra"
    if not metrics_path.is_file():
        raise RunError(
            f"{run_dir} is not a finished run: no metrics.json (a run writes it after testing; "
            f"an interrupted or failed run has none)"
        )
    if not (hydra_dir / "config.yaml").is_file():
        raise RunError(f"{run_dir}: no .hydra/config.yaml (was it made by crn_lightning.train?)")
    config = OmegaConf.load(hydra_dir / "config.yaml")
    launch_dir = None
    if (hydra_dir / "hydra.yaml").is_file():
        launch_dir = Path(OmegaConf.load(hydra_dir / "hydra.yaml").hydra.runtime.cwd)
    _absolute_paths(config, launch_dir, run_dir)
    overrides_path = hydra_dir / "overrides.yaml"
    overrides = list(OmegaConf.load(overrides_path)) if overrides_path.is_file() else []
    return Run(run_dir, json.loads(metrics_path.read_text()), config, overrides)


def find_runs(outputs: str | Path) -> list[Path]:
    """Every finished run folder (one with metrics.json) under ``outputs``, oldest first."""
    found = Path(outputs).rglob("metrics.json")
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


def is_sweep(path: str | Path) -> bool:
    """A multirun folder: no metrics.json of its own, job folders with .hydra/overrides.yaml."""
    path = Path(path)
    return not (path / "metrics.json").is_file() and bool(_job_dirs(path))


def _job_dirs(path: Path) -> list[Path]:
    jobs = [d for d in path.iterdir() if (d / ".hydra" / "overrides.yaml").is_file()]
    return sorted(
        jobs, key=lambda d: (not d.name.isdigit(), int(d.name) if d.name.isdigit() else 0, d.name)
    )


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


def _override_items(overrides: Sequence[str]) -> dict[str, str]:
    return dict(o.split("=", 1) if "=" in o else (o, "") for o in overrides)


def differing_overrides(jobs: Sequence[SweepJob]) -> list[dict[str, str]]:
    """For each job, its overrides whose values are not the same in every job."""
    items = [_override_items(job.overrides) for job in jobs]
    keys = dict.fromkeys(k for overrides in items for k in overrides)
    differ = [k for k in keys if len({o.get(k) for o in items}) > 1]
    return [{k: o[k] for k in differ if k in o} for o in items]


def condition_labels(jobs: Sequence[SweepJob], leave_out: Sequence[str] = ()) -> list[str]:
    """A short label per job from its differing overrides except ``leave_out`` (e.g.
    'stft.n_fft=512'); '' when nothing else differs."""
    return [
        " ".join(f"{k}={v}" for k, v in diff.items() if k not in leave_out)
        for diff in differing_overrides(jobs)
    ]


def best_job(jobs: Sequence[SweepJob]) -> SweepJob:
    """The finished job with the highest test PESQ."""
    done = [j for j in jobs if j.run and math.isfinite(j.run.metrics["test"]["test/pesq"])]
    if not done:
        raise RunError(f"no job of the sweep {jobs[0].job_dir.parent} finished with a test PESQ")
    return max(done, key=lambda j: j.run.metrics["test"]["test/pesq"])


def read_summary_csv(sweep_dir: str | Path) -> list[dict[str, str]] | None:
    """A sweep's ``summary.csv`` as one record per row when one was written, else None."""
    path = Path(sweep_dir) / "summary.csv"
    if not path.is_file():
        return None
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def tensorboard_dir(run_dir: str | Path) -> Path:
    """Where a run's TensorBoard events are: ``<run>/tensorboard``, or for a multirun job
    ``<sweep>/tensorboard/<NN>_<swept overrides>`` (the train entry point's names)."""
    run_dir = Path(run_dir)
    if run_dir.name.isdigit() and is_sweep(run_dir.parent):
        prefix = f"{int(run_dir.name):02d}"
        for folder in sorted((run_dir.parent / "tensorboard").glob(f"{prefix}*")):
            if folder.name == prefix or folder.name.startswith(prefix + "_"):
                return folder
    return run_dir / "tensorboard"


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


# -- scores as tables ------------------------------------------------------------------------
def test_scores(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The overall test figures of a run without the 'test/' prefix (as in the breakdowns)."""
    return {k.removeprefix("test/"): v for k, v in metrics["test"].items() if "@" not in k}


def breakdown(metrics: Mapping[str, Any], by: str) -> dict[str, dict[str, float]]:
    """Test scores per SNR (``by='snr'``, labels like '5 dB') or per noise environment
    (``by='environment'``) from a run's ``test_breakdown``."""
    if by == "snr":
        per_snr = metrics["test_breakdown"]["by_snr_db"]
        return {f"{k} dB": v for k, v in sorted(per_snr.items(), key=lambda kv: float(kv[0]))}
    if by == "environment":
        return dict(metrics["test_breakdown"]["by_environment"])
    raise ValueError(f"by must be 'snr' or 'environment', got {by!r}")


def scores_by_snr(metrics: Mapping[str, Any]) -> dict[float, dict[str, float]]:
    return {float(k): v for k, v in metrics["test_breakdown"]["by_snr_db"].items()}


def _score_record(name: str, s: Mapping[str, float]) -> dict[str, str]:
    return {
        "": name,
        "clips": f"{s['clips']:.0f}",
        "PESQ noisy → enhanced": f"{s['pesq_noisy']:.2f} → {s['pesq']:.2f}",
        "gain": f"{s['pesq'] - s['pesq_noisy']:+.2f}",
        "STOI": f"{s['stoi_noisy']:.3f} → {s['stoi']:.3f}",
        "SI-SDR (dB)": f"{s['si_sdr_noisy']:.1f} → {s['si_sdr']:.1f}",
    }


def test_table(metrics: Mapping[str, Any]) -> list[dict[str, str]]:
    """The run's test figures: all clips, then each SNR, then each noise environment."""
    rows = [_score_record("all", test_scores(metrics))]
    rows += [_score_record(k, v) for k, v in breakdown(metrics, "snr").items()]
    rows += [_score_record(k, v) for k, v in breakdown(metrics, "environment").items()]
    return rows


def sweep_snrs(jobs: Sequence[SweepJob]) -> list[float]:
    """Every test SNR of a sweep's finished jobs, ascending."""
    return sorted({snr for job in jobs if job.run for snr in scores_by_snr(job.run.metrics)})


def _minutes(seconds: float | None) -> str:
    return "" if seconds is None else f"{int(seconds // 60)}:{round(seconds % 60):02d}"


def sweep_table(jobs: Sequence[SweepJob]) -> list[dict[str, Any]]:
    """One record per job: its differing overrides, status, test figures (noisy → enhanced
    where both exist), PESQ at each test SNR, parameters, best epoch of the epochs run, median
    training step and wall time. The sweep's summary.md and the results notebook show it."""
    snrs = sweep_snrs(jobs)
    rows = []
    for job, label in zip(jobs, condition_labels(jobs), strict=True):
        row: dict[str, Any] = {"job": job.job_dir.name, "overrides that differ": label}
        if job.run is None:
            rows.append({**row, "status": f"{job.status}: {job.problem}"})
            continue
        m, s, by_snr = job.run.metrics, test_scores(job.run.metrics), scores_by_snr(job.run.metrics)
        step = m.get("train_step_time_s")
        best = m.get("best_epoch")
        rows.append(
            {
                **row,
                "status": job.status,
                "PESQ": f"{s['pesq']:.3f}",
                "noisy": f"{s['pesq_noisy']:.3f}",
                "gain": f"{s['pesq'] - s['pesq_noisy']:+.3f}",
                "STOI": f"{s['stoi_noisy']:.3f} → {s['stoi']:.3f}",
                "SI-SDR (dB)": f"{s['si_sdr_noisy']:.1f} → {s['si_sdr']:.1f}",
                **{
                    f"PESQ @{snr:g} dB": f"{by_snr[snr]['pesq_noisy']:.2f} → "
                    f"{by_snr[snr]['pesq']:.2f}"
                    if snr in by_snr
                    else ""
                    for snr in snrs
                },
                "parameters": m["parameters"],
                "best epoch": f"{best}/{m['epochs']}" if best is not None else "",
                "step (ms)": f"{step * 1000:.0f}" if step is not None else "",
                "wall time": _minutes(m["wall_time_s"]),
            }
        )
    return rows


def sweep_by_snr(jobs: Sequence[SweepJob]) -> dict[str, dict[float, dict[str, float]]]:
    """Per finished job (labelled by its differing overrides): its test scores per SNR, the
    input to ``viz.pesq_vs_snr_figure``."""
    done = [job for job in jobs if job.run is not None]
    return {
        label or job.job_dir.name: scores_by_snr(job.run.metrics)
        for job, label in zip(done, condition_labels(done), strict=True)
    }


def sweep_points(jobs: Sequence[SweepJob], key: str) -> list[dict[str, Any]]:
    """Per finished job: config value ``key`` (x), label (the other differing overrides), and
    test PESQ, STOI, SI-SDR with their noisy figures: input to
    ``viz.metric_vs_parameter_figure``."""
    labels = condition_labels(jobs, leave_out=[key])
    points = []
    for job, label in zip(jobs, labels, strict=True):
        if job.run is None:
            continue
        x = OmegaConf.select(job.run.config, key)
        if x is None:
            raise KeyError(f"{job.job_dir}: its config has no key {key!r}")
        points.append({"x": x, "label": label, **test_scores(job.run.metrics)})
    return points


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return f"{value:,}" if isinstance(value, int) else str(value).replace("|", "\\|")


def markdown_table(records: Sequence[Mapping[str, Any]]) -> str:
    """Records (dicts) as a Markdown table; columns from all records' keys in order, floats
    to 4 significant digits, blanks where a record lacks a column."""
    columns = list(dict.fromkeys(k for r in records for k in r))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c, "")) for c in columns) + " |" for r in records]
    return "\n".join(lines)


# -- data and model of a run -----------------------------------------------------------------
def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """The project config as ``python -m crn_lightning.train <overrides>`` composes it from
    the project folder (relative ``paths.*`` are taken from the project root)."""
    if not (CONFIG_DIR / "config.yaml").is_file():
        raise FileNotFoundError(f"the project's Hydra configs are not at {CONFIG_DIR}")
    register_configs()  # the schemas conf/config.yaml names in its defaults
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    _absolute_paths(cfg, PROJECT_ROOT, CONFIG_DIR)
    return cfg


def build_datamodule(cfg: DictConfig) -> ArcticDemandDataModule:
    """The data module of a composed or saved config, set up: corpus resolved (the embedded
    one generated if needed), utterances and noise loaded, grids built."""
    datamodule = instantiate(cfg.data, stft=instantiate(cfg.stft))
    datamodule.prepare_data()
    datamodule.setup()
    return datamodule


def run_datamodule(run: Run, overrides: Sequence[str] = ()) -> ArcticDemandDataModule:
    """The data module a run trained and tested on: its saved config with ``data.corpus``
    pinned to the corpus kind it used (so a missing real corpus is an error, not a switch to
    the embedded one), then ``overrides`` (dot-list, e.g. ``paths.cache_dir=...``)."""
    cfg = copy.deepcopy(run.config)
    kind = run.metrics.get("corpus", {}).get("kind")
    if kind:
        cfg.data.corpus = kind
    if overrides:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    return build_datamodule(cfg)


def checkpoint_path(run: Run) -> Path:
    """The run's best checkpoint (by validation PESQ), found in the run's own checkpoints/
    folder so that a moved or copied run folder still works."""
    best = run.metrics.get("best_checkpoint")
    if not best:
        raise RunError(f"{run.run_dir}: metrics.json names no best checkpoint")
    path = run.run_dir / "checkpoints" / Path(best).name
    if not path.is_file():
        raise RunError(
            f"{run.run_dir}: the best checkpoint {Path(best).name} is not in {path.parent}"
        )
    return path


def grid_indices(
    datamodule: ArcticDemandDataModule,
    stage: str,
    utterance: int | None = None,
    environment: str | None = None,
    snr_db: float | None = None,
) -> list[int]:
    """Indices of the ``stage`` grid items matching the given utterance (index within the
    split), noise environment (name) and SNR."""
    if environment is not None and environment not in datamodule.environments:
        raise ValueError(f"environment {environment!r} is not one of {datamodule.environments}")
    env = None if environment is None else datamodule.environments.index(environment)
    return [
        i
        for i, item in enumerate(datamodule.datasets[stage].items)
        if (utterance is None or item.utterance == utterance)
        and (env is None or item.environment == env)
        and (snr_db is None or item.snr_db == snr_db)
    ]


def clip_scores(clean: np.ndarray | torch.Tensor, degraded: np.ndarray | torch.Tensor) -> dict:
    """PESQ, STOI and SI-SDR of one clip, computed as in training (crn_lightning.metrics)."""
    clean = np.asarray(torch.as_tensor(clean).detach().cpu(), dtype=np.float32)
    degraded = np.asarray(torch.as_tensor(degraded).detach().cpu(), dtype=np.float32)
    scores = perceptual_scores(clean, degraded)
    sdr = float(si_sdr(torch.from_numpy(degraded), torch.from_numpy(clean)))
    return {"pesq": scores.pesq, "stoi": scores.stoi, "si_sdr": sdr}


def example_table(
    datamodule: ArcticDemandDataModule, stage: str, indices: Sequence[int], batch: Mapping
) -> list[dict[str, Any]]:
    """Per example of an ``EnhancementModule.enhance_grid`` batch: what it is, and its PESQ,
    STOI and SI-SDR, noisy → enhanced."""
    rows = []
    for j, index in enumerate(indices):
        noisy = clip_scores(batch["clean"][j], batch["noisy"][j])
        enhanced = clip_scores(batch["clean"][j], batch["enhanced"][j])
        rows.append(
            {
                "clip": index,
                "what": datamodule.describe(stage, index),
                "PESQ": f"{noisy['pesq']:.2f} → {enhanced['pesq']:.2f}",
                "STOI": f"{noisy['stoi']:.3f} → {enhanced['stoi']:.3f}",
                "SI-SDR (dB)": f"{noisy['si_sdr']:.1f} → {enhanced['si_sdr']:.1f}",
            }
        )
    return rows


def corpus_table(datamodule: ArcticDemandDataModule) -> list[dict[str, Any]]:
    """The splits of a set-up data module: utterances per speaker, seconds of speech and of
    noise, mixtures (per epoch for training) and SNRs."""
    sr, rows = datamodule.sample_rate, []
    for stage in STAGES:
        dataset = datamodule.datasets[stage]
        speakers = Counter(u.speaker for u in dataset.utterances)
        seconds = [len(u.audio) / sr for u in dataset.utterances]
        snrs = dataset.snrs_db if stage == "train" else sorted({i.snr_db for i in dataset.items})
        rows.append(
            {
                "split": stage,
                "utterances": ", ".join(f"{s} {n}" for s, n in speakers.items()),
                "speech (s)": f"{sum(seconds):.0f} ({min(seconds):.1f}–{max(seconds):.1f} each)",
                "noise per environment (s)": len(dataset.noise_regions[0]) / sr,
                "mixtures": len(dataset),
                "SNRs (dB)": ", ".join(f"{s:g}" for s in snrs),
            }
        )
    return rows


def mixing_check(
    datamodule: ArcticDemandDataModule, stage: str, indices: Sequence[int]
) -> list[dict[str, Any]]:
    """The RMS mixing rule checked on the data pipeline's own mixtures: per item, the SNR
    measured as 20·log10(rms(clean) / rms(noisy − clean)) next to the SNR asked for."""
    rows = []
    for index in indices:
        item = datamodule.datasets[stage][index]
        clean, noisy = item["clean"].numpy(), item["noisy"].numpy()
        asked, measured = float(item["snr_db"]), snr_db(clean, noisy - clean)
        rows.append(
            {
                "clip": index,
                "what": datamodule.describe(stage, index),
                "SNR asked (dB)": asked,
                "SNR measured (dB)": measured,
                "error (dB)": measured - asked,
                "rms clean": rms(clean),
                "rms noise": rms(noisy - clean),
                "peak noisy": float(np.abs(noisy).max()),
            }
        )
    return rows
