"""A validation epoch on this machine, split into its parts, then as Lightning runs it.

    python bench/validation.py [--workers 2] [--limit-batches N] [--no-lightning] [overrides ...]

``overrides`` are Hydra dot-list overrides of the training config (default: the seed
experiment, 1,485 validation mixtures of 4 s on the embedded corpus unless a real one is
present). The model has random weights: time does not depend on them.

1. Parts, one after the other in this process: mixing (the loader, 0 workers), STFT, the
   model, the iSTFT; then PESQ + STOI of every clip (enhanced and noisy) in ``--workers``
   processes, timed alone; and PESQ and STOI each, inline, on the first 30 clips (what one
   process spends per clip on each).
2. Lightning: ``trainer.validate`` twice on the same module, as training runs it (PESQ/STOI
   in ``--workers`` processes overlapped with the model). The first pass also scores the
   noisy input; the second reuses those scores (the grid is fixed).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import wait
from pathlib import Path

import lightning as L
import torch
from omegaconf import OmegaConf
from pesq import pesq
from pystoi import stoi
from record import write_record  # bench/record.py

from crn_lightning.compose import compose_config
from crn_lightning.metrics import PESQ_SAMPLE_RATE, PerceptualScorer
from crn_lightning.module import EnhancementModule
from crn_lightning.results import build_datamodule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="PESQ/STOI processes")
    parser.add_argument("--limit-batches", type=int, help="only the first N batches")
    parser.add_argument("--no-lightning", action="store_true", help="skip part 2")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data.corpus=embedded")
    args = parser.parse_args()

    cfg = compose_config([*args.overrides, f"module.metric_workers={args.workers}"])
    datamodule = build_datamodule(cfg)
    datamodule.num_workers = 0
    module = EnhancementModule.from_config(OmegaConf.to_container(cfg, resolve=True)).eval()
    enhancer = module.enhancer
    batches = len(datamodule.val_dataloader())
    if args.limit_batches:
        batches = min(batches, args.limit_batches)
    print(
        f"corpus {datamodule.corpus_info['kind']}; {enhancer.num_parameters():,} parameters, "
        f"n_fft {enhancer.stft.n_fft}; {batches} batches of {datamodule.eval_batch_size} × "
        f"{datamodule.clip_samples / datamodule.sample_rate:g} s; torch threads "
        f"{torch.get_num_threads()}, {args.workers} PESQ/STOI processes"
    )

    parts = dict.fromkeys(("mixing", "stft", "model", "istft"), 0.0)
    parts_inline: dict[str, float] = {}
    pairs = []
    loader = iter(datamodule.val_dataloader())
    with torch.no_grad():
        for _ in range(batches):
            started = time.perf_counter()
            batch = next(loader)
            parts["mixing"] += time.perf_counter() - started

            started = time.perf_counter()
            batch = datamodule.on_after_batch_transfer(batch, 0)
            parts["stft"] += time.perf_counter() - started

            started = time.perf_counter()
            noisy = enhancer.noisy_input(batch["noisy_mag"], batch["noisy_phase"])
            estimate = enhancer.decompress(enhancer.estimate(noisy))
            parts["model"] += time.perf_counter() - started

            started = time.perf_counter()
            spectrum = enhancer.output_spectrum(estimate, batch["noisy_phase"])
            enhanced = enhancer.resynthesise(spectrum, batch["noisy"].shape[-1])
            parts["istft"] += time.perf_counter() - started
            pairs += zip(
                batch["clean"].numpy(), batch["noisy"].numpy(), enhanced.numpy(), strict=True
            )
    clips = len(pairs)

    scorer = PerceptualScorer(args.workers)
    started = time.perf_counter()
    futures = [scorer.submit(clean, signal) for clean, *signals in pairs for signal in signals]
    wait(futures)
    parts["pesq_stoi_enhanced_and_noisy"] = time.perf_counter() - started
    scorer.close()
    sample = pairs[:30]
    for name, metric in (
        ("pesq_inline", lambda ref, deg: pesq(PESQ_SAMPLE_RATE, ref, deg, "wb")),
        ("stoi_inline", lambda ref, deg: stoi(ref, deg, PESQ_SAMPLE_RATE)),
    ):
        started = time.perf_counter()
        for clean, noisy, _ in sample:
            metric(clean, noisy)
        per_clip_ms = (time.perf_counter() - started) / len(sample) * 1e3
        print(f"{name} (one process, {len(sample)} noisy clips): {per_clip_ms:.1f} ms per clip")
        parts_inline[name + "_ms_per_clip"] = per_clip_ms
    print(f"\nparts, one after the other, {clips} clips:")
    for name, seconds in parts.items():
        print(f"  {name:30s} {seconds:8.1f} s  ({seconds / clips * 1e3:7.1f} ms per clip)")
    print(f"  {'sum':30s} {sum(parts.values()):8.1f} s")
    results = {"clips": clips, "batches": batches, "parts_s": parts, **parts_inline}

    if not args.no_lightning:
        trainer = L.Trainer(
            accelerator="cpu",
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            use_distributed_sampler=False,
            limit_val_batches=batches,
        )
        walls = []
        for run in ("first (scores noisy too)", "second (noisy scores reused)"):
            started = time.perf_counter()
            metrics = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
            walls.append(time.perf_counter() - started)
            print(
                f"Lightning validation, {run}: {walls[-1]:.1f} s "
                f"(val/clips {metrics['val/clips']:.0f}, val/pesq {metrics['val/pesq']:.3f}, "
                f"noisy {metrics['val/pesq_noisy']:.3f})"
            )
        results["lightning_validation_s"] = walls

    if args.json:
        write_record(args.json, args.overrides, results)


if __name__ == "__main__":
    main()
