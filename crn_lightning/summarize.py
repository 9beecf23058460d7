"""Summarize a multirun folder, finished or not: python -m crn_lightning.summarize
outputs/multirun/<name>/<date_time>. Writes summary.csv, summary.md and summary.png there (the
files a multirun writes after each job) and prints the Markdown summary; the exit status is 1
when a job failed or did not finish."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from crn_lightning.sweep import SUMMARY_FILES, write_summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crn_lightning.summarize", description=__doc__)
    parser.add_argument("sweep_dir", type=Path, help="a multirun folder (numbered job folders)")
    args = parser.parse_args(argv)
    try:
        jobs = write_summary(args.sweep_dir)
    except FileNotFoundError as error:  # not a sweep folder: say which and what was expected
        print(f"error: {error}", file=sys.stderr)
        return 2
    print((args.sweep_dir / "summary.md").read_text())
    print("wrote " + ", ".join(str(args.sweep_dir / name) for name in SUMMARY_FILES))
    return 0 if all(job.status == "ok" for job in jobs) else 1


if __name__ == "__main__":
    sys.exit(main())
