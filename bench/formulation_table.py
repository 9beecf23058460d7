"""The formulation sweep's table with the real pairs (issue 15's comparison).

Each finished job's best checkpoint (chosen by validation PESQ) is scored on the real pairs by
``crn_lightning.evaluate`` (into ``<job>/real_dev/``; a job already scored there is read back,
not scored again), and one table of the test grid (all SNRs, 0 dB) and the real pairs is
written to ``real_dev.md`` and ``real_dev.csv`` in the sweep folder, with the comparison the
issue asks for: the best phase-aware job against the best magnitude-only one.

    python bench/formulation_table.py SWEEP_DIR [--pairs FOLDER]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from crn_lightning.finished_runs import SweepJob, load_sweep
from crn_lightning.tables import markdown_table

ROOT = Path(__file__).resolve().parent.parent
PHASE_AWARE = ("complex_mask", "complex_mapping")


def real_dev_summary(job: SweepJob, pairs: Path) -> dict[str, Any]:
    """The ``all`` row of the job's real-pairs evaluation, scoring it first if needed."""
    out = job.job_dir / "real_dev"
    summary = out / "summary.json"
    if not summary.is_file():
        command = [
            sys.executable,
            "-m",
            "crn_lightning.evaluate",
            f"ckpt={job.run.metrics['best_checkpoint']}",
            f"pairs={pairs}",
            "measures=[pesq,stoi,si_sdr]",
            f"hydra.run.dir={out}",
        ]
        subprocess.run(command, cwd=ROOT, check=True)
    return json.loads(summary.read_text())["all"]


def job_row(job: SweepJob, pairs: Path) -> dict[str, Any]:
    overrides = dict(o.split("=", 1) for o in job.overrides)
    test, metrics = job.run.metrics["test"], job.run.metrics
    real = real_dev_summary(job, pairs)
    return {
        "job": job.job_dir.name,
        "output": overrides.get("model.output", "?"),
        "loss": overrides.get("loss", "?"),
        "test_pesq_noisy": test["test/pesq_noisy"],
        "test_pesq": test["test/pesq"],
        "test_pesq_noisy_0db": test["test/pesq_noisy@snr=0"],
        "test_pesq_0db": test["test/pesq@snr=0"],
        "test_stoi_noisy": test["test/stoi_noisy"],
        "test_stoi": test["test/stoi"],
        "test_si_sdr": test["test/si_sdr"],
        "real_pesq_noisy": real["pesq_noisy"],
        "real_pesq": real["pesq"],
        "real_stoi_noisy": real["stoi_noisy"],
        "real_stoi": real["stoi"],
        "real_si_sdr": real["si_sdr"],
        "parameters": metrics["parameters"],
        "step_ms": 1000 * metrics["train_step_time_s"],
        "best_epoch": f"{metrics['best_epoch']}/{metrics['epochs']}",
    }


def markdown_rows(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {
            "job": r["job"],
            "model.output": r["output"],
            "loss": r["loss"],
            "test PESQ": f"{r['test_pesq_noisy']:.2f} → {r['test_pesq']:.2f}",
            "test PESQ 0 dB": f"{r['test_pesq_noisy_0db']:.2f} → {r['test_pesq_0db']:.2f}",
            "test STOI": f"{r['test_stoi_noisy']:.3f} → {r['test_stoi']:.3f}",
            "test SI-SDR (dB)": f"{r['test_si_sdr']:.1f}",
            "real_dev PESQ": f"{r['real_pesq_noisy']:.2f} → {r['real_pesq']:.2f} "
            f"({r['real_pesq'] - r['real_pesq_noisy']:+.2f})",
            "real_dev STOI": f"{r['real_stoi_noisy']:.3f} → {r['real_stoi']:.3f}",
            "real_dev SI-SDR (dB)": f"{r['real_si_sdr']:.1f}",
            "parameters": f"{r['parameters']:,}",
            "step (ms)": f"{r['step_ms']:.0f}",
            "best epoch": r["best_epoch"],
        }
        for r in rows
    ]


def comparison(rows: list[dict[str, Any]]) -> list[str]:
    """Best phase-aware vs best magnitude-only job, each measure's best chosen separately."""
    phase = [r for r in rows if r["output"] in PHASE_AWARE]
    magnitude = [r for r in rows if r["output"] not in PHASE_AWARE]
    if not phase or not magnitude:
        return ["(the comparison needs a phase-aware and a magnitude-only job)"]
    lines = []
    for key, what in (("test_pesq_0db", "test grid PESQ at 0 dB"), ("real_pesq", "real_dev PESQ")):
        p, m = max(phase, key=lambda r: r[key]), max(magnitude, key=lambda r: r[key])
        lines.append(
            f"- {what}: best phase-aware {p[key]:.2f} (job {p['job']}: {p['output']} + "
            f"{p['loss']}) vs best magnitude-only {m[key]:.2f} (job {m['job']}: {m['output']} + "
            f"{m['loss']}): {p[key] - m[key]:+.2f}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument(
        "--pairs", type=Path, default=ROOT.parent / "shared/real_dev/voicebank_demand_p287"
    )
    args = parser.parse_args()
    jobs = load_sweep(args.sweep_dir)
    rows = [job_row(job, args.pairs.resolve()) for job in jobs if job.status == "ok"]
    unfinished = [f"{j.job_dir.name} ({j.status}: {j.problem})" for j in jobs if j.status != "ok"]
    text = "\n".join(
        [
            f"# Formulation sweep {args.sweep_dir}: test grid and real pairs ({args.pairs})",
            "",
            markdown_table(markdown_rows(rows)),
            "",
            *comparison(rows),
            *([f"- not finished: {', '.join(unfinished)}"] if unfinished else []),
            "",
        ]
    )
    (args.sweep_dir / "real_dev.md").write_text(text)
    with (args.sweep_dir / "real_dev.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["job"])
        writer.writeheader()
        writer.writerows(rows)
    print(text)


if __name__ == "__main__":
    main()
