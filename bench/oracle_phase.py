"""Oracle ceilings: what would a perfect magnitude estimate reach with the noisy phase?

    python bench/oracle_phase.py [PAIRS_FOLDER] [--overrides KEY=VALUE ...] [--json FILE]

For every clip of the test grid that ``--overrides`` compose (default: the quickstart's, per
SNR) and every pair in ``PAIRS_FOLDER`` (default ``../shared/real_dev/voicebank_demand_p287``),
three signals are scored against the clean speech with the one scoring pipeline (wideband PESQ,
STOI): the noisy mixture; the clean magnitude with the noisy phase (the ceiling of any
magnitude-only output: an unbounded ideal mask); and the ideal mask bounded at 1 (clean
magnitude capped at the noisy one, the ceiling of ``model.output=mask``). All through the
project's STFT at the composed ``stft`` settings. If the ceilings are far above what the
trained models reach, the noisy phase is not what limits them (issue 15's question).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from record import write_record  # bench/record.py

from crn_lightning.compose import compose_config
from crn_lightning.evaluation import folder_utterances
from crn_lightning.metrics import PESQ_SAMPLE_RATE, perceptual_scores
from crn_lightning.results import build_datamodule
from crn_lightning.stft import STFT

ROOT = Path(__file__).resolve().parents[1]
SIGNALS = ("noisy", "oracle_magnitude", "oracle_mask_bound1")


def oracle_signals(stft: STFT, clean: np.ndarray, noisy: np.ndarray) -> dict[str, np.ndarray]:
    clean_magnitude, _ = stft.magnitude_phase(torch.as_tensor(clean)[None])
    noisy_magnitude, phase = stft.magnitude_phase(torch.as_tensor(noisy)[None])
    bounded = torch.minimum(clean_magnitude, noisy_magnitude)
    return {
        "noisy": noisy,
        "oracle_magnitude": stft.inverse(clean_magnitude, phase, len(clean))[0].numpy(),
        "oracle_mask_bound1": stft.inverse(bounded, phase, len(clean))[0].numpy(),
    }


def scores_of(stft: STFT, clean: np.ndarray, noisy: np.ndarray) -> dict[str, float]:
    row, clean = {}, clean.astype(np.float32)
    for name, signal in oracle_signals(stft, clean, noisy).items():
        scores = perceptual_scores(clean, signal.astype(np.float32))
        row |= {f"pesq_{name}": scores.pesq, f"stoi_{name}": scores.stoi}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "pairs", nargs="?", type=Path, default=ROOT.parent / "shared/real_dev/voicebank_demand_p287"
    )
    parser.add_argument("--overrides", nargs="*", default=["experiment=quickstart"])
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    cfg = compose_config(args.overrides)
    stft: STFT = instantiate(cfg.stft)
    test = build_datamodule(cfg).datasets["test"]
    groups: dict[str, list[dict[str, float]]] = defaultdict(list)
    for index in range(len(test)):
        item = test[index]
        snr = test.items[index].snr_db
        groups[f"test {snr:g} dB"].append(
            scores_of(stft, item["clean"].numpy(), item["noisy"].numpy())
        )
    # The pairs as crn_lightning.evaluate pairs=... reads them (the real_dev figures' path).
    utterances, failures = folder_utterances(args.pairs, PESQ_SAMPLE_RATE)
    if failures:
        raise SystemExit(f"{args.pairs}: unmatched or unreadable pairs: {failures}")
    for utterance in utterances:
        groups[args.pairs.name].append(scores_of(stft, *utterance.load()))

    header = "| set | clips | " + " | ".join(f"PESQ {s}" for s in SIGNALS)
    print(header + " | " + " | ".join(f"STOI {s}" for s in SIGNALS) + " |")
    print("|---" * (2 + 2 * len(SIGNALS)) + "|")
    figures = {}
    for name, rows in groups.items():
        mean = {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}
        figures[name] = {"clips": len(rows), **mean}
        pesq = " | ".join(f"{mean[f'pesq_{s}']:.2f}" for s in SIGNALS)
        stoi = " | ".join(f"{mean[f'stoi_{s}']:.3f}" for s in SIGNALS)
        print(f"| {name} | {len(rows)} | {pesq} | {stoi} |")
    if args.json:
        write_record(args.json, args.overrides, figures)


if __name__ == "__main__":
    main()
