"""Peak GPU memory of a training step, and the largest batch that fits (needs CUDA).

    python bench/gpu_memory.py [--precision 32-true bf16-mixed] [--batch 16] [overrides ...]

For the seed config (or ``overrides``): one training step (STFT, forward, MSE, backward, Adam)
on random 4 s clips at ``--batch``, reporting ``torch.cuda.max_memory_allocated``; then the
batch size is doubled until CUDA runs out of memory and bisected between the last that fitted
and the first that did not. Not yet run: no GPU machine was lent to this project so far.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from omegaconf import OmegaConf

from crn_lightning.compose import compose_config
from crn_lightning.enhancer import Enhancer
from crn_lightning.losses import CompressedMagnitudeMSE, LossInputs


def peak_bytes(enhancer, optimizer, batch: int, samples: int, precision: str) -> int:
    """Peak memory of one training step at ``batch``; raises torch.OutOfMemoryError."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    noisy = torch.randn(batch, samples, device="cuda") * 0.1
    clean = torch.randn(batch, samples, device="cuda") * 0.1
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16-mixed")
    with autocast:
        noisy_mag, noisy_phase = enhancer.stft.magnitude_phase(noisy)
        estimate = enhancer.estimate(enhancer.noisy_input(noisy_mag, noisy_phase))
        loss = CompressedMagnitudeMSE()(LossInputs(enhancer, estimate, noisy_phase, clean))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated()


def fits(enhancer, optimizer, batch: int, samples: int, precision: str) -> int | None:
    try:
        return peak_bytes(enhancer, optimizer, batch, samples, precision)
    except torch.OutOfMemoryError:
        optimizer.zero_grad(set_to_none=True)
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", nargs="+", default=["32-true", "bf16-mixed"])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--max-batch", type=int, default=4096, help="stop doubling here")
    parser.add_argument("--json", type=Path)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench/gpu_memory.py needs a CUDA GPU; torch sees none")

    cfg = compose_config(args.overrides)
    samples = round(cfg.data.clip_seconds * cfg.data.sample_rate)
    enhancer = Enhancer.from_config(OmegaConf.to_container(cfg, resolve=True)).cuda().train()
    optimizer = torch.optim.Adam(enhancer.network.parameters(), lr=1e-4)
    print(f"{torch.cuda.get_device_name()}; {enhancer.num_parameters():,} parameters")
    rows = []
    for precision in args.precision:
        at_batch = fits(enhancer, optimizer, args.batch, samples, precision)
        good, bad = (args.batch, None) if at_batch else (0, args.batch)
        while bad is None and good < args.max_batch:
            bad = None if fits(enhancer, optimizer, good * 2, samples, precision) else good * 2
            good = good * 2 if bad is None else good
        while bad is not None and bad - good > 1:
            middle = (good + bad) // 2
            good, bad = (
                (middle, bad)
                if fits(enhancer, optimizer, middle, samples, precision)
                else (good, middle)
            )
        row = {
            "precision": precision,
            "batch": args.batch,
            "peak_gib": at_batch / 2**30 if at_batch else None,
            "largest_batch": good,
            "limit_reached": bad is None,
        }
        rows.append(row)
        print(row)
    if args.json:
        args.json.write_text(
            json.dumps({"device": torch.cuda.get_device_name(), "rows": rows}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
