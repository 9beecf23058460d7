"""Hydra multiruns as one table: job status and the sweep summary (the folder layout and run
names: ``crn_lightning.runs``).

A multirun folder holds numbered job folders (``<sweep>/<n>/``), each with its overrides in
``.hydra/overrides.yaml`` and, when it finished, ``metrics.json`` (written by the train entry
point) or, when it raised, ``failed.json`` (written by ``SweepCallback``). ``write_summary``
turns them into ``summary.csv``, ``summary.md`` and ``summary.png`` in the sweep folder; the
callback calls it after every job and at the end of the multirun, and
``python -m crn_lightning.summarize <folder>`` calls it on any finished sweep.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from crn_lightning.finished_runs import SweepJob, load_sweep
from crn_lightning.report_tables import sweep_table
from crn_lightning.results import (
    condition_labels,
    differing_overrides,
    overall_scores,
    scores_by_snr,
    sweep_by_snr,
    sweep_snrs,
)
from crn_lightning.runs import FAILED_FILE, override_key
from crn_lightning.tables import markdown_table

log = logging.getLogger(__name__)

SUMMARY_FILES = ("summary.csv", "summary.md", "summary.png")


# -- failed jobs and the summary ------------------------------------------------------------
def write_failure(folder: Path, error: BaseException) -> Path:
    """Record a job's exception in ``failed.json``: the first line of its root cause (e.g. the
    ValueError inside Hydra's InstantiationException), and the whole traceback."""
    cause = error
    while cause.__cause__ is not None:
        cause = cause.__cause__
    message = str(cause).strip().splitlines()
    path = Path(folder) / FAILED_FILE
    record = {
        "error": f"{type(cause).__name__}: {message[0] if message else ''}".rstrip(": "),
        "traceback": "".join(traceback.format_exception(error)),
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def summary_rows(jobs: Sequence[SweepJob]) -> list[dict[str, Any]]:
    """``summary.csv``: one row per job, its differing overrides as columns, every figure at
    full precision (empty for a job that did not finish), its problem and folder."""
    differing = differing_overrides(jobs)
    keys = list(dict.fromkeys(k for d in differing for k in d))
    snrs = sweep_snrs(jobs)
    rows = []
    for job, diff in zip(jobs, differing, strict=True):
        m = job.run.metrics if job.run else {}
        test = m.get("test", {})
        pesq, noisy = test.get("test/pesq"), test.get("test/pesq_noisy")
        row: dict[str, Any] = {"job": job.job_dir.name}
        row |= {override_key(k): diff.get(k) for k in keys}
        row |= {"status": job.status, "pesq": pesq, "pesq_noisy": noisy}
        row["pesq_gain"] = pesq - noisy if pesq is not None and noisy is not None else None
        for name in ("stoi", "stoi_noisy", "si_sdr", "si_sdr_noisy"):
            row[name] = test.get(f"test/{name}")
        by_snr = scores_by_snr(m) if job.run else {}
        for snr in snrs:
            for name in ("pesq", "pesq_noisy"):
                row[f"{name}@snr={snr:g}"] = by_snr[snr][name] if snr in by_snr else None
        for name in ("parameters", "best_val_pesq", "best_epoch", "epochs"):
            row[name] = m.get(name)
        for name in ("train_step_time_s", "wall_time_s"):
            row[name] = m.get(name)
        row |= {"error": job.problem, "folder": str(job.job_dir)}
        rows.append(row)
    return rows


def _atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    # Jobs on a cluster may summarize at the same time: readers never see a half-written file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_summary(sweep_dir: Path) -> list[SweepJob]:
    """Write ``summary.csv``, ``summary.md`` and ``summary.png`` into a sweep folder (derived
    files: rewritten each time from the job folders); returns the jobs read."""
    from crn_lightning.viz import sweep_figure  # matplotlib only when writing

    sweep_dir = Path(sweep_dir)
    jobs = load_sweep(sweep_dir)
    rows = summary_rows(jobs)

    def write_csv(path: Path) -> None:
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    differing = {k for d in differing_overrides(jobs) for k in d}
    common = [o for o in jobs[0].overrides if o.partition("=")[0] not in differing]
    done = sum(job.status == "ok" for job in jobs)
    text = [
        f"# Sweep summary: `{sweep_dir}`",
        "",
        f"{len(jobs)} jobs: {done} finished, {len(jobs) - done} failed or incomplete. Test "
        "figures on each job's test grid, noisy input → enhanced.",
        "",
        "Common overrides: " + (" ".join(f"`{o}`" for o in common) or "none"),
        "",
        markdown_table(sweep_table(jobs)),
        "",
    ]
    labels = [
        label or f"job {job.job_dir.name}"
        for job, label in zip(jobs, condition_labels(jobs), strict=True)
    ]
    figure = sweep_figure(
        {
            label: overall_scores(job.run.metrics) if job.run else None
            for label, job in zip(labels, jobs, strict=True)
        },
        sweep_by_snr(jobs),
        title=str(sweep_dir),
    )
    _atomic_write(sweep_dir / "summary.csv", write_csv)
    _atomic_write(sweep_dir / "summary.md", lambda p: p.write_text("\n".join(text)))
    _atomic_write(sweep_dir / "summary.png", lambda p: figure.savefig(p, dpi=120, format="png"))
    return jobs


# -- the Hydra callback ---------------------------------------------------------------------
def _is_rank_zero() -> bool:
    # Under SLURM/torchrun every task of a DDP job runs the job: only global rank 0 writes.
    from lightning.pytorch.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


class SweepCallback(Callback):
    """Hydra callback (``hydra.callbacks`` in conf/config.yaml) for multiruns: records a job
    that raised in its folder's ``failed.json``, and rewrites the sweep summary after every
    job and at the end, so a sweep stopped half-way still has its table."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN or not _is_rank_zero():
            return
        if job_return.status == JobStatus.FAILED:
            try:
                # Hydra's public way to the exception: reading a failed job's return value
                # re-raises it (and prints the job's overrides to stderr).
                _ = job_return.return_value
            except Exception as error:
                path = write_failure(Path(config.hydra.runtime.output_dir), error)
                log.error("job failed (recorded in %s); the sweep goes on", path, exc_info=error)
        self._write(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if _is_rank_zero() and self._write(config) is not None:
            log.info("sweep summary: %s", Path(config.hydra.sweep.dir) / "summary.md")

    @staticmethod
    def _write(config: DictConfig) -> list[SweepJob] | None:
        try:
            return write_summary(Path(config.hydra.sweep.dir))
        except Exception:  # the summary must never turn a finished job into a failed one
            log.exception("could not write the sweep summary")
            return None
