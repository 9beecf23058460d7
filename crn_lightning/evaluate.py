"""Score a trained model on full-length utterances (the evaluate entry point).

    python -m crn_lightning.evaluate ckpt=CKPT               # the checkpoint's test grid
    python -m crn_lightning.evaluate ckpt=CKPT pairs=FOLDER  # FOLDER/clean/* + FOLDER/noisy/*

The test grid is the one training tested on (rebuilt from the config inside the checkpoint:
same utterances, noises, offsets and SNRs), each utterance mixed with its noise over its whole
length instead of a 4 s clip. Wideband PESQ, STOI, extended STOI and SI-SDR of the noisy and
the enhanced signal; per utterance in ``scores.csv``, means with gains in ``summary.json`` and
``summary.md`` (by SNR and noise environment for the grid), in a new run folder.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from crn_lightning.audio import AudioFileError, read_audio
from crn_lightning.cli import load_checkpoint
from crn_lightning.compose import CONFIG_DIR
from crn_lightning.errors import ConfigError, UserError
from crn_lightning.metrics import PerceptualScorer, si_sdr
from crn_lightning.module import EnhancementModule, aggregate_by, aggregate_scores
from crn_lightning.runs import fresh_run_dir, hydra_run_dir

log = logging.getLogger(__name__)

METRICS = ("pesq", "stoi", "estoi", "si_sdr")
LABELS = {"pesq": "PESQ", "stoi": "STOI", "estoi": "ESTOI", "si_sdr": "SI-SDR (dB)"}
COLUMNS = [
    "utterance",
    "environment",
    "snr_db",
    "seconds",
    "loss",
    *(f"{m}{kind}" for m in METRICS for kind in ("_noisy", "")),
    "pesq_error",
]


@dataclass
class Utterance:
    """One pair to score; ``load`` returns (clean, noisy) at the model's sample rate."""

    name: str
    load: Callable[[], tuple[np.ndarray, np.ndarray]]
    environment: str | None = None
    snr_db: float | None = None


def grid_utterances(
    module: EnhancementModule, overrides: Mapping[str, Any]
) -> tuple[list[Utterance], dict[str, Any]]:
    """The checkpoint's test grid at full length; ``overrides`` change its data config."""
    data_cfg = OmegaConf.merge(module.config["data"], overrides)
    datamodule = instantiate(data_cfg, stft=module.stft)
    datamodule.prepare_data()
    datamodule.setup("test")
    grid = datamodule.datasets["test"]

    def load(index: int) -> tuple[np.ndarray, np.ndarray]:
        example = grid.mixture(index, full_length=True)
        return example["clean"].numpy(), example["noisy"].numpy()

    utterances = [
        Utterance(
            datamodule.describe("test", index),
            functools.partial(load, index),
            datamodule.environments[item.environment],
            item.snr_db,
        )
        for index, item in enumerate(grid.items)
    ]
    return utterances, {"source": "test grid, full-length", "corpus": datamodule.corpus_info}


def folder_utterances(
    folder: Path, sample_rate: int
) -> tuple[list[Utterance], list[dict[str, str]]]:
    """Pairs ``folder/clean/NAME`` + ``folder/noisy/NAME``; unmatched names are failures."""
    dirs = {kind: folder / kind for kind in ("clean", "noisy")}
    for path in dirs.values():
        if not path.is_dir():
            raise ConfigError(
                f"pairs={folder}: expected a folder with clean/ and noisy/ subfolders of "
                f"audio files with matching names; {path} is not a folder"
            )
    names = {
        kind: {p.name for p in path.iterdir() if p.is_file() and not p.name.startswith(".")}
        for kind, path in dirs.items()
    }
    failures = [
        {"utterance": name, "error": f"no {other}/{name} to pair with {kind}/{name}"}
        for kind, other in (("noisy", "clean"), ("clean", "noisy"))
        for name in sorted(names[kind] - names[other])
    ]
    matched = sorted(names["clean"] & names["noisy"])
    if not matched:
        raise ConfigError(f"pairs={folder}: no file name is in both clean/ and noisy/")

    def load(name: str) -> tuple[np.ndarray, np.ndarray]:
        clean = read_audio(dirs["clean"] / name, sample_rate)
        noisy = read_audio(dirs["noisy"] / name, sample_rate)
        if len(clean) != len(noisy):
            raise AudioFileError(
                f"{dirs['clean'] / name} and {dirs['noisy'] / name}: lengths differ "
                f"({len(clean)} vs {len(noisy)} samples at {sample_rate} Hz)"
            )
        return clean, noisy

    return [Utterance(name, functools.partial(load, name)) for name in matched], failures


@torch.no_grad()
def _enhance(
    module: EnhancementModule, clean: np.ndarray, noisy: np.ndarray
) -> tuple[np.ndarray, dict[str, float]]:
    """The enhanced signal and what is scored in this process: loss and SI-SDR."""
    clean_t, noisy_t = torch.from_numpy(clean)[None], torch.from_numpy(noisy)[None]
    estimate, _, enhanced = module.enhance(*module.stft.magnitude_phase(noisy_t), len(noisy))
    target = module.stft(clean_t).abs().pow(module.compression)
    scores = {
        "seconds": len(noisy) / module.sample_rate,
        "loss": float(F.mse_loss(estimate, target)),
        "si_sdr": float(si_sdr(enhanced, clean_t)[0]),
        "si_sdr_noisy": float(si_sdr(noisy_t, clean_t)[0]),
    }
    return enhanced[0].numpy(), scores


def score(
    module: EnhancementModule, utterances: list[Utterance], workers: int | None
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Enhance every utterance here while worker processes score PESQ, STOI and ESTOI.
    An utterance that cannot be read or enhanced is a failure; the others go on."""
    scorer = PerceptualScorer(workers)
    pending, failures = [], []
    try:
        for utt in tqdm(utterances, desc="enhance", unit="utt"):
            try:
                clean, noisy = utt.load()
                enhanced, scores = _enhance(module, clean, noisy)
            except (AudioFileError, ValueError) as err:
                failures.append({"utterance": utt.name, "error": str(err)})
                continue
            record = {
                "utterance": utt.name,
                "environment": utt.environment,
                "snr_db": utt.snr_db,
                **scores,
            }
            futures = (
                scorer.submit(clean, noisy, extended=True),
                scorer.submit(clean, enhanced, extended=True),
            )
            pending.append((record, futures))
        records = []
        for record, (noisy_future, enhanced_future) in tqdm(
            pending, desc="score PESQ/STOI/ESTOI", unit="utt"
        ):
            noisy, enhanced = noisy_future.result(), enhanced_future.result()
            for m in ("pesq", "stoi", "estoi"):
                record[m], record[f"{m}_noisy"] = getattr(enhanced, m), getattr(noisy, m)
            record["pesq_error"] = "; ".join(
                f"{kind}: {s.error}"
                for kind, s in (("noisy", noisy), ("enhanced", enhanced))
                if s.error
            )
            records.append(record)
    finally:
        scorer.close()
    return records, failures


def _with_gains(summary: dict[str, float]) -> dict[str, float]:
    return {**summary, **{f"{m}_gain": summary[m] - summary[f"{m}_noisy"] for m in METRICS}}


def summarize(records: list[dict[str, Any]], grid: bool) -> dict[str, Any]:
    """Means (and gains) over all utterances and, for the grid, per SNR and per environment."""
    groups: dict[str, Any] = {"all": _with_gains(aggregate_scores(records))}
    if grid:
        groups["by_snr_db"] = {
            f"{snr:g}": _with_gains(s) for snr, s in aggregate_by(records, "snr_db").items()
        }
        groups["by_environment"] = {
            env: _with_gains(s) for env, s in aggregate_by(records, "environment").items()
        }
    return groups


def summary_table(groups: dict[str, Any]) -> str:
    """The summary as a Markdown table: noisy → enhanced (gain) for each metric."""
    rows = [("all", groups["all"])]
    rows += [(f"SNR {snr} dB", s) for snr, s in groups.get("by_snr_db", {}).items()]
    rows += list(groups.get("by_environment", {}).items())
    header = ["", "utterances", *(f"{LABELS[m]} noisy → enhanced (gain)" for m in METRICS)]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for label, s in rows:
        cells = [label, f"{s['clips']:.0f}"]
        for m in METRICS:
            digits = 3 if m in ("stoi", "estoi") else 2
            cells.append(
                f"{s[f'{m}_noisy']:.{digits}f} → {s[m]:.{digits}f} ({s[f'{m}_gain']:+.{digits}f})"
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _csv_value(value: Any) -> Any:
    return "" if value is None else value


def evaluate(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Score, write ``scores.csv``, ``summary.json`` and ``summary.md`` into ``run_dir`` (which
    must hold no earlier results); returns the summary."""
    run_dir = fresh_run_dir(run_dir)
    module = load_checkpoint(cfg)
    if cfg.pairs:
        folder = Path(cfg.pairs)
        utterances, failures = folder_utterances(folder, module.sample_rate)
        source: dict[str, Any] = {"source": str(folder.resolve())}
    else:
        utterances, source = grid_utterances(module, cfg.data)
        failures = []
    log.info("scoring %d utterances (%s)", len(utterances), source["source"])
    records, enhance_failures = score(module, utterances, cfg.metric_workers)
    failures += enhance_failures
    if not records:
        raise UserError(f"no utterance could be scored: {failures}")

    with (run_dir / "scores.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows({k: _csv_value(r[k]) for k in COLUMNS} for r in records)
    groups = summarize(records, grid=not cfg.pairs)
    table = summary_table(groups)
    summary = {
        "checkpoint": str(Path(cfg.ckpt).resolve()),
        **source,
        "utterances": len(records),
        "failures": failures,
        **groups,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    title = f"Evaluation of {summary['checkpoint']} on {summary['source']}"
    (run_dir / "summary.md").write_text(f"# {title}\n\n{table}\n")
    print(f"{title}\n\n{table}\n", flush=True)
    for failure in failures:
        print(f"FAILED {failure['utterance']}: {failure['error']}", flush=True)
    if any(r["pesq_error"] for r in records):
        print("PESQ failed on some utterances: see the pesq_error column", flush=True)
    print(f"scores: {run_dir / 'scores.csv'} | summary: {run_dir / 'summary.md'}", flush=True)
    return summary


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="evaluate")
def main(cfg: DictConfig) -> None:
    summary = evaluate(cfg, hydra_run_dir())
    if summary["failures"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
