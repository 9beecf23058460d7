"""Real-time factor on this CPU: offline PyTorch, streaming PyTorch (time per 10 ms chunk
against its budget), and ONNX Runtime (offline and streaming with the step graph).

    python bench/rtf.py --ckpt CKPT [--threads 1 2] [--seconds 10]
    python bench/rtf.py --seed [--seconds 5]   # the report's CRN, random weights
    python bench/rtf.py --seed --overrides experiment=quickstart --output complex_mask

RTF = compute time / audio duration (below 1: faster than real time). ``--seed`` builds the
default config's model (n_fft 960, channels 16..256, LSTM 3584: 103.6 M parameters) with
random weights: the time does not depend on the weights. ``--overrides`` are Hydra overrides
of that config (e.g. ``experiment=quickstart`` for the quickstart size), ``--output`` the
network's output variant (``model.output``: mapping, mask, complex_mapping, complex_mask).
The ONNX graphs are exported into a temporary folder with crn_lightning.onnx_export. Prints a
Markdown table and writes ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from crn_lightning.compose import compose_config
from crn_lightning.enhancer import Enhancer
from crn_lightning.models.crn import OUTPUTS
from crn_lightning.onnx_export import export
from crn_lightning.onnx_runtime import OnnxEnhancer
from crn_lightning.streaming import StreamingEnhancer


def seed_enhancer(overrides: list[str] = ()) -> Enhancer:
    """The default (seed) config's STFT and CRN with ``overrides``, randomly initialised."""
    config = OmegaConf.to_container(compose_config(overrides), resolve=True)
    return Enhancer.from_config(config).eval()


def offline_rtf(enhance, noisy: torch.Tensor, seconds: float, repeats: int) -> float:
    enhance(noisy)  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        enhance(noisy)
        times.append(time.perf_counter() - started)
    return statistics.median(times) / seconds


def streaming_times(streamer: StreamingEnhancer, noisy: torch.Tensor) -> dict[str, float]:
    streamer.enhance(noisy[:, : 50 * streamer.hop])  # warm-up
    chunks: list[float] = []
    streamer.enhance(noisy, timings=chunks)
    ms = np.array(chunks) * 1e3
    budget = streamer.hop / streamer.enhancer.sample_rate * 1e3
    return {
        "chunks": len(ms),
        "mean_ms": float(ms.mean()),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "over_budget": float((ms > budget).mean()),
        "rtf": float(ms.mean() / budget),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--ckpt", type=Path, help="a checkpoint written by crn_lightning.train")
    which.add_argument("--seed", action="store_true", help="the seed config's CRN, random weights")
    parser.add_argument(
        "--overrides", nargs="+", default=[], help="with --seed: Hydra overrides of the config"
    )
    parser.add_argument("--output", choices=OUTPUTS, help="with --seed: model.output")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the test signal")
    parser.add_argument("--repeats", type=int, default=3, help="offline runs (median)")
    parser.add_argument("--no-onnx", action="store_true", help="skip ONNX Runtime")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    overrides = args.overrides + ([f"model.output={args.output}"] if args.output else [])
    if overrides and not args.seed:
        parser.error("--overrides and --output build a random model: use them with --seed")

    if args.seed:
        enhancer = seed_enhancer(overrides)
        name = f"{' '.join(['seed CRN', *overrides])} (random weights)"
    else:
        enhancer = Enhancer.from_checkpoint(args.ckpt)
        name = str(args.ckpt)
    rate = enhancer.sample_rate
    noisy = 0.1 * torch.randn(
        1, round(args.seconds * rate), generator=torch.Generator().manual_seed(0)
    )
    result = {
        "model": name,
        "output": enhancer.network.output,
        "parameters": enhancer.num_parameters(),
        "n_fft": enhancer.stft.n_fft,
        "hop": enhancer.stft.hop_length,
        "latency_ms": enhancer.stream().latency_seconds * 1e3,
        "budget_ms": enhancer.stft.hop_length / rate * 1e3,
        "signal_seconds": args.seconds,
        "date": datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "torch": torch.__version__,
        "load_before": os.getloadavg(),
        "runs": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        if not args.no_onnx:
            export(enhancer, onnx_path, step=True)
        for threads in args.threads:
            torch.set_num_threads(threads)
            run: dict = {}
            with torch.inference_mode():
                run["offline_rtf"] = offline_rtf(enhancer, noisy, args.seconds, args.repeats)
            run["streaming"] = streaming_times(enhancer.stream(), noisy)
            if not args.no_onnx:
                onnx_enhancer = OnnxEnhancer(enhancer, onnx_path, threads=threads)
                run["onnx_offline_rtf"] = offline_rtf(
                    onnx_enhancer, noisy, args.seconds, args.repeats
                )
                run["onnx_streaming"] = streaming_times(onnx_enhancer.streaming(), noisy)
            result["runs"][threads] = run
            print(f"threads {threads}: {json.dumps(run)}", flush=True)
    result["load_after"] = os.getloadavg()
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


def table(result: dict) -> str:
    budget = result["budget_ms"]
    lines = [
        f"{result['model']}: {result['parameters']:,} parameters, n_fft {result['n_fft']}, "
        f"hop {result['hop']} ({budget:g} ms chunks), algorithmic latency "
        f"{result['latency_ms']:g} ms; {result['signal_seconds']:g} s signal; load average "
        f"{result['load_before'][0]:.2f} before, {result['load_after'][0]:.2f} after",
        "",
        "| threads | engine | offline RTF | streaming chunk mean / p99 / max (ms) | "
        "streaming RTF | chunks over budget |",
        "|---|---|---|---|---|---|",
    ]
    for threads, run in result["runs"].items():
        engines = [("PyTorch", run["offline_rtf"], run["streaming"])]
        if "onnx_offline_rtf" in run:
            engines.append(("ONNX Runtime", run["onnx_offline_rtf"], run["onnx_streaming"]))
        for engine, offline, s in engines:
            lines.append(
                f"| {threads} | {engine} | {offline:.3f} | {s['mean_ms']:.2f} / "
                f"{s['p99_ms']:.2f} / {s['max_ms']:.2f} | {s['rtf']:.3f} | "
                f"{100 * s['over_budget']:.1f} % |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
