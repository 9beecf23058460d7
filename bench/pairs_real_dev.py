"""The pairs loader (data=pairs) and the evaluation measures on real VoiceBank+DEMAND pairs:
does the project reproduce the noisy baseline of a known set? (a check, not a tuning target)

    python bench/pairs_real_dev.py [PAIRS_FOLDER] [--expect-pesq 1.41] [--json FILE]

``PAIRS_FOLDER`` (default ``../shared/real_dev/voicebank_demand_p287``) holds ``clean/`` and
``noisy/`` with the same file names. The pairs go through ``scan_pairs`` and ``WholePairs``
(what ``data=pairs`` validates and tests on: checks, resampling, whole utterances), then the
noisy signal of each is scored against its clean twin by the one scoring pipeline: wideband
PESQ, STOI, extended STOI, the composite CSIG/CBAK/COVL/SSNR, and DNSMOS of noisy and clean
(when the dnsmos extra is installed). Exits 1 when the mean noisy PESQ, rounded to 2 decimals,
is not ``--expect-pesq``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
from record import write_record  # bench/record.py

from crn_lightning.composite import COMPOSITE_MEASURES, perceptual_and_composite_scores
from crn_lightning.data.pairs import scan_pairs
from crn_lightning.data.pairs_datamodule import WholePairs
from crn_lightning.data.speakers import compile_speaker_pattern
from crn_lightning.dnsmos import DNSMOS_MEASURES, dnsmos_scores
from crn_lightning.metrics import PESQ_SAMPLE_RATE, PerceptualScorer

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ("pesq", "stoi", "estoi", *COMPOSITE_MEASURES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "pairs", nargs="?", type=Path, default=ROOT.parent / "shared/real_dev/voicebank_demand_p287"
    )
    parser.add_argument("--expect-pesq", type=float, default=1.41)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    pattern = compile_speaker_pattern(r"^([^_/]+)_", "speaker_pattern")
    pairs, skipped = scan_pairs(args.pairs, "pairs", pattern, PESQ_SAMPLE_RATE, None, 0)
    whole = WholePairs(pairs, snr_bin_db=5.0)
    with_dnsmos = importlib.util.find_spec("speechmos") is not None
    scorer = PerceptualScorer()
    jobs, rows = [], {}
    for index, pair in enumerate(whole.utterances):
        item = whole[index]
        clean, noisy = item["clean"].numpy(), item["noisy"].numpy()
        jobs.append(scorer.submit(clean, noisy, extended=True, job=perceptual_and_composite_scores))
        rows[pair.name] = {"seconds": pair.samples / PESQ_SAMPLE_RATE, "snr_db": pair.snr_db}
        if with_dnsmos:
            for kind, signal in (("noisy", noisy), ("clean", clean)):
                scores = dnsmos_scores(signal, PESQ_SAMPLE_RATE)
                rows[pair.name] |= {f"dnsmos_{m}_{kind}": scores[m] for m in DNSMOS_MEASURES}
    for row, job in zip(rows.values(), jobs, strict=True):
        scores = job.result()
        row |= {"pesq": scores.pesq, "stoi": scores.stoi, "estoi": scores.estoi}
        row |= dict(scores.composite)
    scorer.close()

    columns = ["seconds", "snr_db", *REFERENCE]
    if with_dnsmos:
        columns += [f"dnsmos_{m}_{kind}" for kind in ("noisy", "clean") for m in DNSMOS_MEASURES]
    mean = {c: float(np.mean([row[c] for row in rows.values()])) for c in columns}
    print(f"{len(rows)} pairs from {args.pairs} ({len(skipped)} skipped); noisy vs clean")
    print(f"{'file':<14}" + "".join(f"{c.removeprefix('dnsmos_'):>11}" for c in columns))
    for name, row in [*rows.items(), ("mean", mean)]:
        print(f"{name:<14}" + "".join(f"{row[c]:>11.3f}" for c in columns))
    if not with_dnsmos:
        print("DNSMOS not scored: pip install -e '.[dnsmos]'")
    verdict = round(mean["pesq"], 2) == args.expect_pesq
    print(f"mean noisy PESQ {mean['pesq']:.4f}: {'matches' if verdict else 'DIFFERS FROM'} "
          f"the expected {args.expect_pesq}")  # fmt: skip
    if args.json:
        write_record(args.json, [str(args.pairs)], {"per_file": rows, "mean": mean})
    sys.exit(0 if verdict else 1)


if __name__ == "__main__":
    main()
