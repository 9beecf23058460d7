"""DNSMOS and the composite measures on real VoiceBank+DEMAND pairs (a check, not a tuning target).

    python bench/dnsmos_real_dev.py [PAIRS_FOLDER] [--json FILE]

``PAIRS_FOLDER`` (default ``../shared/real_dev/voicebank_demand_p287``) holds ``clean/`` and
``noisy/`` with the same file names. Prints, per file and as the mean, DNSMOS P.835 SIG, BAK
and OVRL of the clean and of the noisy signal (no reference needed), and CSIG, CBAK, COVL and
segmental SNR of the noisy signal against the clean one. DNSMOS must rate every clean file
above its noisy mixture on BAK and OVRL; the script exits 1 where it does not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from record import write_record  # bench/record.py

from crn_lightning.audio import read_audio
from crn_lightning.composite import composite_scores
from crn_lightning.dnsmos import DNSMOS_SAMPLE_RATE, dnsmos_scores

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = (
    ("clean", "sig"), ("clean", "bak"), ("clean", "ovrl"),
    ("noisy", "sig"), ("noisy", "bak"), ("noisy", "ovrl"),
    ("composite", "csig"), ("composite", "cbak"), ("composite", "covl"), ("composite", "ssnr"),
)  # fmt: skip


def score_pair(clean_path: Path, noisy_path: Path) -> dict[str, dict[str, float]]:
    clean = read_audio(clean_path, DNSMOS_SAMPLE_RATE)
    noisy = read_audio(noisy_path, DNSMOS_SAMPLE_RATE)
    return {
        "clean": dnsmos_scores(clean, DNSMOS_SAMPLE_RATE),
        "noisy": dnsmos_scores(noisy, DNSMOS_SAMPLE_RATE),
        "composite": composite_scores(clean, noisy, DNSMOS_SAMPLE_RATE),
    }


def print_row(name: str, scores: dict[str, dict[str, float]]) -> None:
    cells = " ".join(f"{scores[group][key]:>6.2f}" for group, key in COLUMNS)
    print(f"{name:<10} {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "pairs", nargs="?", type=Path, default=ROOT.parent / "shared/real_dev/voicebank_demand_p287"
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    clean_files = sorted((args.pairs / "clean").glob("*.wav"))
    if not clean_files:
        sys.exit(f"{args.pairs / 'clean'}: no .wav files")
    per_file = {
        path.stem: score_pair(path, args.pairs / "noisy" / path.name) for path in clean_files
    }

    print(f"{len(per_file)} pairs from {args.pairs}; DNSMOS of clean and noisy, composite of noisy")
    print(f"{'file':<10} " + " ".join(f"{key:>6}" for _, key in COLUMNS))
    print(f"{'':<10} " + " ".join(f"{group[:6]:>6}" for group, _ in COLUMNS))
    for name, scores in per_file.items():
        print_row(name, scores)
    mean = {
        group: {key: float(np.mean([s[group][key] for s in per_file.values()])) for key in keys}
        for group, keys in (
            ("clean", ("sig", "bak", "ovrl", "p808")),
            ("noisy", ("sig", "bak", "ovrl", "p808")),
            ("composite", ("csig", "cbak", "covl", "ssnr", "pesq", "llr", "wss")),
        )
    }
    print_row("mean", mean)

    failures = [
        f"{name} {key}: clean {s['clean'][key]:.2f} <= noisy {s['noisy'][key]:.2f}"
        for name, s in per_file.items()
        for key in ("bak", "ovrl")
        if s["clean"][key] <= s["noisy"][key]
    ]
    verdict = "yes" if not failures else "NO\n  " + "\n  ".join(failures)
    print(f"DNSMOS rates clean above noisy on BAK and OVRL for every file: {verdict}")
    if args.json:
        write_record(
            args.json, [str(args.pairs)], {"per_file": per_file, "mean": mean, "failures": failures}
        )
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
