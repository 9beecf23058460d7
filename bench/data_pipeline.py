"""Training-data throughput: on-the-fly mixtures per second through the real DataLoader.

    python bench/data_pipeline.py [overrides ...] [--workers 0 1 2] [--batches 200]

Builds the seed config's data module (``overrides`` are Hydra dot-list overrides, e.g.
``data.corpus=embedded``), then times ``--batches`` batches of its training loader for each
worker count, after a warm-up that starts the workers. Each clip is a fresh random mixture:
utterance, crop, noise environment, offset and SNR drawn from (seed, index), mixed by RMS.
Also times the dataset alone (``__getitem__`` in this process, no collation), the same loader
over a dataset that returns one ready clip (no mixing: what moving batches from worker
processes costs by itself) and the STFT of a batch, which runs on the device in
``on_after_batch_transfer``, not in the workers.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from record import write_record  # bench/record.py
from torch.utils.data import DataLoader, Dataset

from crn_lightning.compose import compose_config
from crn_lightning.results import build_datamodule


def clips_per_second(loader, batches: int, warmup: int = 5) -> float:
    iterator = iter(loader)
    for _ in range(warmup):
        next(iterator)
    clips, started = 0, time.perf_counter()
    for _ in range(batches):
        clips += next(iterator)["noisy"].shape[0]
    return clips / (time.perf_counter() - started)


class ReadyClip(Dataset):
    """Returns one prepared example for every index: the loader's cost without mixing."""

    def __init__(self, example: dict, length: int) -> None:
        self.example, self.length = example, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return self.example


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batches", type=int, default=200, help="timed batches per setting")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data.corpus=embedded")
    args = parser.parse_args()

    cfg = compose_config(args.overrides)
    datamodule = build_datamodule(cfg)
    dataset = datamodule.datasets["train"]
    # Enough mixtures for every setting to read fresh ones (the sampler's epoch stays 0).
    dataset.length = max(dataset.length, (args.batches + 10) * datamodule.batch_size)
    print(
        f"corpus {datamodule.corpus_info['kind']}: {datamodule.corpus_info['utterances']} "
        f"utterances, {len(datamodule.environments)} noises; batch {datamodule.batch_size} × "
        f"{dataset.clip_samples / datamodule.sample_rate:g} s; torch threads "
        f"{torch.get_num_threads()}"
    )
    results: dict[str, float] = {}

    started = time.perf_counter()
    count = 2000
    for index in range(count):
        dataset[index]
    rate = results["dataset_only_clips_per_s"] = count / (time.perf_counter() - started)
    print(f"dataset alone (this process, no collation): {rate:,.0f} clips/s")

    for workers in args.workers:
        datamodule.num_workers = workers
        rate = clips_per_second(datamodule.train_dataloader(), args.batches)
        per_worker = rate / max(workers, 1)
        results[f"loader_{workers}_workers_clips_per_s"] = rate
        print(
            f"num_workers={workers}: {rate:,.0f} clips/s "
            f"({per_worker:,.0f} per {'worker' if workers else 'main process'})"
        )

    ready = ReadyClip(dataset[0], len(dataset))
    for workers in args.workers:
        if workers == 0:
            continue
        loader = DataLoader(ready, datamodule.batch_size, num_workers=workers)
        rate = results[f"ready_clip_{workers}_workers_clips_per_s"] = clips_per_second(
            loader, args.batches
        )
        print(f"num_workers={workers}, no mixing (transfer from workers only): {rate:,.0f} clips/s")

    batch = next(iter(DataLoader(dataset, batch_size=datamodule.batch_size)))
    datamodule.on_after_batch_transfer(dict(batch), 0)  # warm-up
    repeats, started = 20, time.perf_counter()
    for _ in range(repeats):
        datamodule.on_after_batch_transfer(dict(batch), 0)
    stft_ms = (time.perf_counter() - started) / repeats * 1e3
    results["stft_batch_ms_cpu"] = stft_ms
    print(f"STFT of a batch (noisy + clean, on CPU): {stft_ms:.1f} ms")

    if args.json:
        write_record(args.json, args.overrides, results)


if __name__ == "__main__":
    main()
