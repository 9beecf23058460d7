"""Scores of runs and sweeps, and the data of a run (for the notebooks and the sweep summary).

Runs and sweeps are located and read by ``crn_lightning.finished_runs``; the tables the
notebooks show are made by ``crn_lightning.report_tables``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from crn_lightning.data.datamodule import ArcticDemandDataModule
from crn_lightning.finished_runs import Run, RunError, SweepJob
from crn_lightning.metrics import perceptual_scores, si_sdr


# -- scores of runs and sweeps ---------------------------------------------------------------
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


def overall_scores(metrics: Mapping[str, Any]) -> dict[str, float]:
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


def sweep_snrs(jobs: Sequence[SweepJob]) -> list[float]:
    """Every test SNR of a sweep's finished jobs, ascending."""
    return sorted({snr for job in jobs if job.run for snr in scores_by_snr(job.run.metrics)})


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
        points.append({"x": x, "label": label, **overall_scores(job.run.metrics)})
    return points


# -- data of a run ----------------------------------------------------------------------
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
