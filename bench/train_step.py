"""Training steps per second: precision × torch.compile, and the real loader vs one batch
held in memory.

    python bench/train_step.py [overrides ...] [--steps 20] [--warmup 3]
        [--precision 32-true bf16-mixed] [--compile off on] [--loader real memory]

``overrides`` (before the options, which take several values) are Hydra dot-list overrides
of the training config (default: the seed experiment; e.g. ``experiment=quickstart``). Each
setting is a real ``Trainer.fit`` of ``--warmup + --steps`` optimizer steps (no validation)
on a freshly initialised module. A step's time is the wall time from one batch's start to the
next one's: waiting for the loader, the STFT, forward, backward and the optimizer.
``--loader memory`` feeds the very batches the real loader yields, collated into memory
beforehand (no mixing, no worker; the same data, so the same computation and the same final
loss): the ratio real / memory is what the loader costs.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from pathlib import Path

import lightning as L
import torch
from omegaconf import OmegaConf
from record import write_record  # bench/record.py
from torch.utils.data import DataLoader, Dataset

from crn_lightning.compose import compose_config
from crn_lightning.module import EnhancementModule
from crn_lightning.results import build_datamodule


class StepWall(L.Callback):
    """Wall time between consecutive training-batch starts (the loader's wait included)."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_train_batch_start(self, *args) -> None:
        self.starts.append(time.perf_counter())

    def on_train_end(self, *args) -> None:
        self.starts.append(time.perf_counter())

    def steps(self, warmup: int) -> list[float]:
        return [b - a for a, b in itertools.pairwise(self.starts)][warmup:]


class HeldBatches(Dataset):
    """Batches collated beforehand, one per index (``batch_size=None`` loader)."""

    def __init__(self, batches: list[dict]) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> dict:
        return self.batches[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per setting")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps")
    parser.add_argument("--precision", nargs="+", default=["32-true", "bf16-mixed"])
    parser.add_argument("--compile", nargs="+", default=["off", "on"], choices=["off", "on"])
    parser.add_argument(
        "--loader", nargs="+", default=["real", "memory"], choices=["real", "memory"]
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=quickstart")
    args = parser.parse_args()

    cfg = compose_config(args.overrides)
    datamodule = build_datamodule(cfg)
    total = args.warmup + args.steps
    dataset = datamodule.datasets["train"]
    dataset.length = max(dataset.length, total * datamodule.batch_size)
    # The first epoch's batches, as the real loader yields them (its sampler starts at epoch 0).
    held = list(itertools.islice(datamodule.train_dataloader(), total))
    resolved = OmegaConf.to_container(cfg, resolve=True)
    print(
        f"corpus {datamodule.corpus_info['kind']}; batch {datamodule.batch_size} × "
        f"{dataset.clip_samples / datamodule.sample_rate:g} s, {datamodule.num_workers} loader "
        f"workers; torch threads {torch.get_num_threads()}; {total} steps per setting"
    )

    real_loader = datamodule.train_dataloader
    rows = []
    for precision, compiled, loader in itertools.product(args.precision, args.compile, args.loader):
        torch.manual_seed(0)
        torch._dynamo.reset()  # each setting compiles afresh (a new module is a new guard)
        module = EnhancementModule.from_config(resolved, compile=compiled == "on")
        timer = StepWall()
        trainer = L.Trainer(
            accelerator=cfg.trainer.accelerator,
            devices=1,
            precision=precision,
            max_steps=total,
            limit_val_batches=0,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            use_distributed_sampler=False,
            callbacks=[timer],
        )
        if loader == "memory":
            datamodule.train_dataloader = lambda: DataLoader(HeldBatches(held), batch_size=None)
        else:
            datamodule.train_dataloader = real_loader
        started = time.perf_counter()
        trainer.fit(module, datamodule=datamodule)
        wall = time.perf_counter() - started
        steps = timer.steps(args.warmup)
        row = {
            "precision": precision,
            "compile": compiled,
            "loader": loader,
            "median_step_s": statistics.median(steps),
            "mean_step_s": statistics.mean(steps),
            "steps_per_s": len(steps) / sum(steps),
            "fit_wall_s": wall,
            "final_loss": float(trainer.callback_metrics["train/loss"]),
        }
        rows.append(row)
        print(
            f"{precision:>10} compile {compiled:3} loader {loader:6}: median step "
            f"{row['median_step_s'] * 1e3:8.1f} ms, {row['steps_per_s']:6.2f} steps/s "
            f"(whole fit {wall:.1f} s, first {args.warmup} steps included); "
            f"loss {row['final_loss']:.4f}"
        )

    for row in rows:
        if row["loader"] != "real":
            continue
        twin = [
            r
            for r in rows
            if r["loader"] == "memory"
            and (r["precision"], r["compile"]) == (row["precision"], row["compile"])
        ]
        if twin:
            ratio = row["steps_per_s"] / twin[0]["steps_per_s"]
            print(
                f"real loader / in-memory batch, {row['precision']} compile {row['compile']}: "
                f"{ratio:.3f}"
            )
    if args.json:
        write_record(args.json, args.overrides, {"rows": rows})


if __name__ == "__main__":
    main()
