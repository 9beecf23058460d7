"""How a trained model fares on real speech and real noise (a report, not a tuning target).

Scores the six VoiceBank+DEMAND pairs of ``shared/real_dev`` (speaker p287, real DEMAND noise,
16 kHz, 2–7 s) at full length: wideband PESQ, STOI and SI-SDR of the noisy input and of the
enhanced signal. Usage::

    python bench/real_dev.py CHECKPOINT [--pairs ../shared/real_dev/voicebank_demand_p287]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from crn_lightning.audio import read_audio
from crn_lightning.checkpoint import load_enhancer
from crn_lightning.metrics import perceptual_scores, si_sdr

DEFAULT_PAIRS = Path(__file__).resolve().parents[2] / "shared/real_dev/voicebank_demand_p287"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--pairs", type=Path, default=DEFAULT_PAIRS, help="has clean/ and noisy/")
    args = parser.parse_args()
    module = load_enhancer(args.checkpoint)
    rate = module.sample_rate
    rows = []
    for noisy_path in sorted((args.pairs / "noisy").glob("*.wav")):
        clean = read_audio(args.pairs / "clean" / noisy_path.name, rate)
        noisy = read_audio(noisy_path, rate)
        with torch.no_grad():
            enhanced = module(torch.from_numpy(noisy)[None])[0].numpy()
        row = {"file": noisy_path.name, "seconds": len(noisy) / rate}
        for kind, signal in (("noisy", noisy), ("enhanced", enhanced)):
            scores = perceptual_scores(clean, signal)
            row[f"pesq_{kind}"], row[f"stoi_{kind}"] = scores.pesq, scores.stoi
            row[f"si_sdr_{kind}"] = float(si_sdr(torch.from_numpy(signal), torch.from_numpy(clean)))
        rows.append(row)
    if not rows:
        raise SystemExit(f"no noisy/*.wav under {args.pairs}")
    columns = [f"{m}_{k}" for m in ("pesq", "stoi", "si_sdr") for k in ("noisy", "enhanced")]
    print("| file | s | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 2) + "|")
    for row in rows:
        cells = " | ".join(f"{row[c]:.3f}" for c in columns)
        print(f"| {row['file']} | {row['seconds']:.1f} | {cells} |")
    means = " | ".join(f"{np.mean([r[c] for r in rows]):.3f}" for c in columns)
    print(f"| **mean** | | {means} |")


if __name__ == "__main__":
    main()
