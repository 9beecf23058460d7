"""Summarize a finished (or half-finished) multirun folder: python -m crn_lightning.summarize
outputs/multirun/<name>/<date_time>. Writes summary.csv, summary.md and summary.png there, the
same files a multirun writes at its end, and prints the Markdown table."""

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
        summary = write_summary(args.sweep_dir)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print((summary.sweep_dir / "summary.md").read_text())
    print("wrote " + ", ".join(str(summary.sweep_dir / name) for name in SUMMARY_FILES))
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
