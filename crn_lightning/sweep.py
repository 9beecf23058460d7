"""Hydra multiruns as one table: job status, readable run names, the sweep summary.

A multirun folder holds numbered job folders (``<sweep>/<n>/``), each with its overrides in
``.hydra/overrides.yaml`` and, when it finished, ``metrics.json`` (written by the train entry
point) or, when it raised, ``failed.json`` (written by ``SweepCallback``). ``write_summary``
turns them into ``summary.csv``, ``summary.md`` and ``summary.png`` in the sweep folder; the
callback calls it after every job and at the end of the multirun, and
``python -m crn_lightning.summarize <folder>`` calls it on any finished sweep.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import re
import tempfile
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
FAILED_FILE = "failed.json"
SUMMARY_FILES = ("summary.csv", "summary.md", "summary.png")
# A run name stays far below the 255-byte file-name limit; longer ones end in a hash.
MAX_RUN_NAME_BYTES = 120


# -- overrides and run names --------------------------------------------------------------
def override_key(override: str) -> str:
    """``+data.snr_db=[0,5]`` → ``data.snr_db`` (the key an override sets)."""
    return override.partition("=")[0].lstrip("+~")


def override_value(override: str) -> str:
    return override.partition("=")[2]


def swept_keys(sweep_dir: Path, sweeper_params: Mapping[str, Any] | None = None) -> set[str] | None:
    """Keys a multirun sweeps over: its sweeper's ``params`` (which every job's config carries)
    and its command-line sweeps (``key=a,b``), read from the ``multirun.yaml`` that Hydra's
    basic sweeper saves before launching (the Optuna sweeper saves none). None when neither
    says anything."""
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


# -- job folders ----------------------------------------------------------------------------
@dataclass
class Job:
    folder: Path
    overrides: list[str]
    status: str  # ok | failed | incomplete (killed, timed out, or still running)
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def num(self) -> str:
        return self.folder.name

    def setting(self, key: str) -> str | None:
        values = [override_value(o) for o in self.overrides if override_key(o) == key]
        return values[-1] if values else None


def _last_log_line(folder: Path) -> str | None:
    logs = sorted(folder.glob("*.log"))
    lines = logs[0].read_text(errors="replace").strip().splitlines() if logs else []
    return lines[-1] if lines else None


def find_jobs(sweep_dir: Path) -> list[Job]:
    """The job folders of a multirun, in job order; a clear error when there are none."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep folder {sweep_dir} does not exist")
    folders = [p.parent.parent for p in sweep_dir.glob("*/.hydra/overrides.yaml")]
    if not folders:
        raise FileNotFoundError(
            f"{sweep_dir} holds no job folders (<n>/.hydra/overrides.yaml): expected a Hydra "
            "multirun folder such as outputs/multirun/<name>/<date_time>"
        )
    folders.sort(key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0))
    jobs = []
    for folder in folders:
        overrides = [str(o) for o in OmegaConf.load(folder / ".hydra" / "overrides.yaml")]
        if (folder / METRICS_FILE).is_file():
            metrics = json.loads((folder / METRICS_FILE).read_text())
            jobs.append(Job(folder, overrides, "ok", metrics))
        elif (folder / FAILED_FILE).is_file():
            failure = json.loads((folder / FAILED_FILE).read_text())
            jobs.append(Job(folder, overrides, "failed", error=failure["error"]))
        else:
            jobs.append(Job(folder, overrides, "incomplete", error=_last_log_line(folder)))
    return jobs


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


# -- the summary ------------------------------------------------------------------------------
@dataclass
class Summary:
    sweep_dir: Path
    jobs: list[Job]
    varying: list[str]  # override keys whose value differs between jobs
    common: list[str]  # overrides every job shares
    snrs: list[str]  # test SNRs (dB) over all jobs, ascending
    rows: list[dict[str, Any]]  # one per job: the CSV's columns

    @property
    def failed(self) -> list[Job]:
        return [j for j in self.jobs if j.status != "ok"]


def _varying_and_common(jobs: list[Job]) -> tuple[list[str], list[str]]:
    keys: list[str] = []
    for job in jobs:
        keys += [override_key(o) for o in job.overrides if override_key(o) not in keys]
    varying = [k for k in keys if len({job.setting(k) for job in jobs}) > 1]
    common = [o for o in jobs[0].overrides if override_key(o) not in varying]
    return varying, common


def _row(job: Job, varying: list[str], snrs: list[str]) -> dict[str, Any]:
    m, test = job.metrics, job.metrics.get("test", {})

    def value(key: str) -> float | None:
        return test.get(f"test/{key}")

    pesq, noisy = value("pesq"), value("pesq_noisy")
    row: dict[str, Any] = {"job": job.num}
    row |= {key: job.setting(key) for key in varying}
    row |= {
        "status": job.status,
        "pesq": pesq,
        "pesq_noisy": noisy,
        "pesq_gain": pesq - noisy if pesq is not None and noisy is not None else None,
        "stoi": value("stoi"),
        "stoi_noisy": value("stoi_noisy"),
        "si_sdr": value("si_sdr"),
        "si_sdr_noisy": value("si_sdr_noisy"),
    }
    for snr in snrs:
        row[f"pesq@snr={snr}"] = value(f"pesq@snr={snr}")
        row[f"pesq_noisy@snr={snr}"] = value(f"pesq_noisy@snr={snr}")
    row |= {
        "parameters": m.get("parameters"),
        "best_val_pesq": m.get("best_val_pesq"),
        "best_epoch": m.get("best_epoch"),
        "epochs": m.get("epochs"),
        "train_step_time_s": m.get("train_step_time_s"),
        "wall_time_s": m.get("wall_time_s"),
        "error": job.error,
        "folder": str(job.folder),
    }
    return row


def summarize(sweep_dir: Path) -> Summary:
    """Read every job of a multirun folder into one table (nothing is written)."""
    jobs = find_jobs(sweep_dir)
    varying, common = _varying_and_common(jobs)
    snrs = {
        k.removeprefix("test/pesq@snr=")
        for job in jobs
        for k in job.metrics.get("test", {})
        if k.startswith("test/pesq@snr=")
    }
    ordered = sorted(snrs, key=float)
    rows = [_row(job, varying, ordered) for job in jobs]
    return Summary(Path(sweep_dir), jobs, varying, common, ordered, rows)


def _fmt(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.{digits}f}"


def _minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{int(seconds // 60)}:{round(seconds % 60):02d}"


def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|")


def markdown_table(summary: Summary) -> str:
    """The summary as a Markdown table; noisy figures in parentheses next to enhanced ones."""
    header = ["job", *summary.varying, "status", "PESQ", "noisy PESQ", "gain"]
    header += ["STOI (noisy)", "SI-SDR dB (noisy)"]
    header += [f"PESQ @{snr} dB (noisy)" for snr in summary.snrs]
    header += ["parameters", "best epoch", "step ms", "wall time"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary.rows:
        ok = row["status"] == "ok"
        status = "ok" if ok else f"{row['status']}: {row['error'] or '(no log)'}"
        best = f"{row['best_epoch']}/{row['epochs']}" if row["best_epoch"] is not None else "—"
        step = row["train_step_time_s"]
        cells = [row["job"], *(row[k] if row[k] is not None else "—" for k in summary.varying)]
        cells += [
            status,
            _fmt(row["pesq"], 2),
            _fmt(row["pesq_noisy"], 2),
            (f"{row['pesq_gain']:+.2f}" if row["pesq_gain"] is not None else "—"),
            f"{_fmt(row['stoi'], 3)} ({_fmt(row['stoi_noisy'], 3)})" if ok else "—",
            f"{_fmt(row['si_sdr'], 1)} ({_fmt(row['si_sdr_noisy'], 1)})" if ok else "—",
        ]
        cells += [
            f"{_fmt(row[f'pesq@snr={s}'], 2)} ({_fmt(row[f'pesq_noisy@snr={s}'], 2)})"
            if row[f"pesq@snr={s}"] is not None
            else "—"
            for s in summary.snrs
        ]
        cells += [
            f"{row['parameters']:,}" if row["parameters"] is not None else "—",
            best,
            _fmt(step * 1000 if step is not None else None, 0),
            _minutes(row["wall_time_s"]),
        ]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, write: Any) -> None:
    # Jobs on a cluster may summarize at the same time: readers never see a half-written file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_summary(sweep_dir: Path) -> Summary:
    """Write ``summary.csv``, ``summary.md`` and ``summary.png`` into the sweep folder
    (derived files: they are rewritten each time from the job folders)."""
    from crn_lightning.viz import sweep_figure  # matplotlib only when writing

    summary = summarize(sweep_dir)
    sweep_dir = summary.sweep_dir

    def write_csv(path: Path) -> None:
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(summary.rows[0]))
            writer.writeheader()
            writer.writerows(summary.rows)

    done = sum(j.status == "ok" for j in summary.jobs)
    text = [
        f"# Sweep summary: `{sweep_dir}`",
        "",
        f"{len(summary.jobs)} jobs: {done} ok, {len(summary.jobs) - done} failed or incomplete. "
        "Test figures on each job's test grid; noisy-input figures in parentheses.",
        "",
        "Common overrides: " + (" ".join(f"`{o}`" for o in summary.common) or "none"),
        "",
        markdown_table(summary),
    ]
    _atomic_write(sweep_dir / "summary.csv", write_csv)
    _atomic_write(sweep_dir / "summary.md", lambda p: p.write_text("\n".join(text)))
    figure = sweep_figure(summary)
    try:
        _atomic_write(sweep_dir / "summary.png", lambda p: figure.savefig(p, dpi=120))
    finally:
        import matplotlib.pyplot as plt

        plt.close(figure)
    return summary


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
            error = job_return._return_value  # the exception; .return_value would re-raise it
            path = write_failure(Path(config.hydra.runtime.output_dir), error)
            log.error("job failed (recorded in %s); the sweep goes on", path, exc_info=error)
        self._write(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if _is_rank_zero():
            summary = self._write(config)
            if summary is not None:
                log.info("sweep summary: %s", summary.sweep_dir / "summary.md")

    @staticmethod
    def _write(config: DictConfig) -> Summary | None:
        try:
            return write_summary(Path(config.hydra.sweep.dir))
        except Exception:  # the summary must never turn a finished job into a failed one
            log.exception("could not write the sweep summary")
            return None
