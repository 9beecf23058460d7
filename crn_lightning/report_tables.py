"""The tables the notebooks and the sweep summary show: records (one dict per row) of a run's
test scores, a sweep's jobs, examples, the corpus splits and the mixing check, for
``markdown_table``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from crn_lightning.data.corpora import STAGES
from crn_lightning.data.datamodule import ArcticDemandDataModule
from crn_lightning.finished_runs import SweepJob
from crn_lightning.mixing import rms, snr_db
from crn_lightning.results import (
    breakdown,
    clip_scores,
    condition_labels,
    overall_scores,
    scores_by_snr,
    sweep_snrs,
)


def _score_record(name: str, s: Mapping[str, float]) -> dict[str, str]:
    return {
        "": name,
        "clips": f"{s['clips']:.0f}",
        "PESQ noisy → enhanced": f"{s['pesq_noisy']:.2f} → {s['pesq']:.2f}",
        "gain": f"{s['pesq'] - s['pesq_noisy']:+.2f}",
        "STOI": f"{s['stoi_noisy']:.3f} → {s['stoi']:.3f}",
        "SI-SDR (dB)": f"{s['si_sdr_noisy']:.1f} → {s['si_sdr']:.1f}",
    }


def scores_table(metrics: Mapping[str, Any]) -> list[dict[str, str]]:
    """The run's test figures: all clips, then each SNR, then each noise environment."""
    rows = [_score_record("all", overall_scores(metrics))]
    rows += [_score_record(k, v) for k, v in breakdown(metrics, "snr").items()]
    rows += [_score_record(k, v) for k, v in breakdown(metrics, "environment").items()]
    return rows


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
        m, s, by_snr = (
            job.run.metrics,
            overall_scores(job.run.metrics),
            scores_by_snr(job.run.metrics),
        )
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
