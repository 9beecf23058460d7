"""Scoring a trained model on full-length utterances (what crn_lightning.evaluate runs).

The utterances come from the checkpoint's test grid, each mixed with its noise over its whole
length (``grid_utterances``), or from a folder of clean/noisy pairs (``folder_utterances``);
``score_utterances`` enhances them and scores them through the one scoring pipeline
(crn_lightning.scoring), extended STOI included.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from tqdm import tqdm

from crn_lightning.audio import AudioFileError, read_audio
from crn_lightning.enhancer import Enhancer
from crn_lightning.errors import ConfigError
from crn_lightning.losses import Loss, loss_from_config
from crn_lightning.metrics import PerceptualScorer
from crn_lightning.scoring import (
    ClipScores,
    aggregate_scores,
    breakdown,
    enhance_and_score,
    with_gains,
)

METRICS = ("pesq", "stoi", "estoi", "si_sdr")
LABELS = {"pesq": "PESQ", "stoi": "STOI", "estoi": "ESTOI", "si_sdr": "SI-SDR (dB)"}
# The columns of scores.csv, one row per utterance.
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
    enhancer: Enhancer, overrides: Mapping[str, Any]
) -> tuple[list[Utterance], dict[str, Any]]:
    """The checkpoint's test grid at full length; ``overrides`` change its data config."""
    data_cfg = OmegaConf.merge(enhancer.config["data"], overrides)
    datamodule = instantiate(data_cfg, stft=enhancer.stft)
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
    enhancer: Enhancer, loss: Loss, clean: np.ndarray, noisy: np.ndarray
) -> tuple[np.ndarray, dict[str, float]]:
    """The enhanced signal and what is scored in this process: loss and SI-SDR."""
    clean_t, noisy_t = torch.from_numpy(clean)[None], torch.from_numpy(noisy)[None]
    noisy_mag, noisy_phase = enhancer.stft.magnitude_phase(noisy_t)
    enhanced, scores = enhance_and_score(enhancer, loss, noisy_mag, noisy_phase, clean_t, noisy_t)
    return enhanced[0].numpy(), {name: float(values[0]) for name, values in scores.items()}


def score_utterances(
    enhancer: Enhancer, utterances: list[Utterance], workers: int | None
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Enhance every utterance here while worker processes score PESQ, STOI and ESTOI.
    An utterance that cannot be read or enhanced is a failure; the others go on."""
    scorer = PerceptualScorer(workers)
    scores, failures = ClipScores(scorer, extended=True), []
    loss = loss_from_config(enhancer.config)  # the run's own training objective
    try:
        for utt in tqdm(utterances, desc="enhance", unit="utt"):
            try:
                clean, noisy = utt.load()
                enhanced, torch_scores = _enhance(enhancer, loss, clean, noisy)
            except (AudioFileError, ValueError) as err:
                failures.append({"utterance": utt.name, "error": str(err)})
                continue
            record = {
                "utterance": utt.name,
                "environment": utt.environment,
                "snr_db": utt.snr_db,
                "seconds": len(noisy) / enhancer.sample_rate,
                **torch_scores,
            }
            scores.add(record, clean, noisy, enhanced)
        records = scores.collect(progress="score PESQ/STOI/ESTOI")
    finally:
        scorer.close()
    return records, failures


def summarize(records: list[dict[str, Any]], grid: bool) -> dict[str, Any]:
    """Means (and gains) over all utterances and, for the grid, per SNR and per environment."""
    groups: dict[str, Any] = {"all": with_gains(aggregate_scores(records), METRICS)}
    if grid:
        for name, by in breakdown(records).items():
            groups[name] = {key: with_gains(s, METRICS) for key, s in by.items()}
    return groups


def summary_rows(groups: Mapping[str, Any]) -> list[dict[str, str]]:
    """The summary's rows for ``tables.markdown_table``: noisy → enhanced (gain) per metric."""
    rows = [("all", groups["all"])]
    rows += [(f"SNR {snr} dB", s) for snr, s in groups.get("by_snr_db", {}).items()]
    rows += list(groups.get("by_environment", {}).items())
    table = []
    for label, s in rows:
        row = {"": label, "utterances": f"{s['clips']:.0f}"}
        for m in METRICS:
            digits = 3 if m in ("stoi", "estoi") else 2
            row[f"{LABELS[m]} noisy → enhanced (gain)"] = (
                f"{s[f'{m}_noisy']:.{digits}f} → {s[m]:.{digits}f} ({s[f'{m}_gain']:+.{digits}f})"
            )
        table.append(row)
    return table
