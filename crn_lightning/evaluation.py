"""Scoring a trained model on full-length utterances (what crn_lightning.evaluate runs).

The utterances come from the checkpoint's test grid, each mixed with its noise over its whole
length (``grid_utterances``), from a folder of clean/noisy pairs (``folder_utterances``), or
from a folder of recordings without clean references (``recording_utterances``);
``score_utterances`` enhances them and scores the ``measures`` asked for through the one
scoring pipeline (crn_lightning.scoring): PESQ, STOI, extended STOI and the composite measures
in its worker processes, SI-SDR where the model runs, DNSMOS (no reference needed) here too.
"""

from __future__ import annotations

import csv
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from tqdm import tqdm

from crn_lightning.audio import AudioFileError, read_audio
from crn_lightning.composite import COMPOSITE_MEASURES
from crn_lightning.data.pairs import match_names, read_pair
from crn_lightning.dnsmos import DNSMOS_MEASURES, dnsmos_scores, require_dnsmos
from crn_lightning.enhancer import Enhancer
from crn_lightning.errors import ConfigError
from crn_lightning.file_enhancement import find_inputs
from crn_lightning.losses import Loss, loss_from_config
from crn_lightning.metrics import PerceptualScorer
from crn_lightning.scoring import (
    ClipScores,
    aggregate_scores,
    breakdown,
    enhance_and_score,
    with_gains,
)

# What ``measures`` can name, and the columns each one reports.
MEASURE_COLUMNS = {
    "pesq": ("pesq",),
    "stoi": ("stoi",),
    "estoi": ("estoi",),
    "si_sdr": ("si_sdr",),
    "composite": COMPOSITE_MEASURES,
    "dnsmos": tuple(f"dnsmos_{m}" for m in DNSMOS_MEASURES),
}
REFERENCE_FREE = ("dnsmos",)  # the measures that need no clean signal
# ``measures: null``: everything that needs no extra, with a reference; DNSMOS without one.
DEFAULT_MEASURES = {True: ("pesq", "stoi", "estoi", "si_sdr", "composite"), False: ("dnsmos",)}
_WORKER_MEASURES = ("pesq", "stoi", "estoi", "composite")  # scored in the worker processes
LABELS = {
    "pesq": "PESQ",
    "stoi": "STOI",
    "estoi": "ESTOI",
    "si_sdr": "SI-SDR (dB)",
    "csig": "CSIG",
    "cbak": "CBAK",
    "covl": "COVL",
    "ssnr": "SSNR (dB)",
    **{f"dnsmos_{m}": f"DNSMOS {m.upper()}" for m in DNSMOS_MEASURES},
}
_LABEL_COLUMNS = ["utterance", "environment", "snr_db", "seconds"]


def check_measures(measures: Sequence[str] | None, references: bool) -> list[str]:
    """The ``measures`` to score (null: ``DEFAULT_MEASURES``), refused with the reason when one
    is unknown, needs a clean reference the source lacks, or needs an extra not installed."""
    if measures is None:
        measures = DEFAULT_MEASURES[references]
    chosen = list(dict.fromkeys(measures))  # in the order given, each once
    unknown = [m for m in chosen if m not in MEASURE_COLUMNS]
    if unknown or not chosen:
        raise ConfigError(
            f"measures={list(measures)}: expected a non-empty list of {', '.join(MEASURE_COLUMNS)}"
            + (f" ({unknown} are not among them)" if unknown else "")
        )
    needing = [m for m in chosen if m not in REFERENCE_FREE]
    if needing and not references:
        raise ConfigError(
            f"measures={chosen}: {needing} compare with a clean reference, and recordings= has "
            f"none; without references score {', '.join(REFERENCE_FREE)} alone, e.g. "
            "measures=[dnsmos]"
        )
    if "dnsmos" in chosen:
        require_dnsmos()  # a missing extra stops here, before any enhancement
    return chosen


def reported_columns(measures: Sequence[str]) -> list[str]:
    """The per-utterance columns the ``measures`` report (e.g. composite: csig ... ssnr)."""
    return [column for m in measures for column in MEASURE_COLUMNS[m]]


def csv_columns(measures: Sequence[str], references: bool) -> list[str]:
    """The columns of scores.csv, one row per utterance."""
    columns = [*_LABEL_COLUMNS, *(["loss"] if references else [])]
    for column in reported_columns(measures):
        columns += [f"{column}_noisy", column]
        if column.startswith("dnsmos_") and references:
            columns.append(f"{column}_clean")
    if any(m in _WORKER_MEASURES for m in measures):
        columns.append("pesq_error")
    if "dnsmos" in measures:
        columns.append("dnsmos_error")
    return columns


def write_scores(path: Path, records: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """scores.csv: one row per utterance, blank where a record has no value."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows({k: "" if r.get(k) is None else r[k] for k in columns} for r in records)


@dataclass
class Utterance:
    """One utterance to score; ``load`` returns (clean, noisy) at the model's sample rate,
    clean None for a recording without a reference."""

    name: str
    load: Callable[[], tuple[np.ndarray | None, np.ndarray]]
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
    """Pairs ``folder/clean/NAME`` + ``folder/noisy/NAME`` (matched as data=pairs matches
    them, subfolders included); names in one folder only are failures, as are pairs whose
    lengths differ (when read)."""
    matched, unmatched = match_names(folder, "pairs")
    failures = [  # named as the pairs are: by the path under clean/ or noisy/
        {"utterance": Path(*path.relative_to(folder).parts[1:]).as_posix(), "error": why}
        for path, why in unmatched
    ]
    return [
        Utterance(name, functools.partial(read_pair, clean, noisy, sample_rate))
        for name, (clean, noisy) in matched.items()
    ], failures


def recording_utterances(folder: Path, sample_rate: int) -> list[Utterance]:
    """Every audio file under ``folder`` (subfolders included; e.g. a ``noisy/`` folder
    alone), named by its path relative to it, without a clean reference."""

    def load(path: Path) -> tuple[None, np.ndarray]:
        return None, read_audio(path, sample_rate)

    return [
        Utterance(relative.as_posix(), functools.partial(load, path))
        for path, relative in find_inputs(folder, key="recordings")
    ]


def utterances_to_score(
    enhancer: Enhancer,
    pairs: str | None,
    recordings: str | None,
    data_overrides: Mapping[str, Any],
) -> tuple[list[Utterance], dict[str, Any], list[dict[str, str]]]:
    """What ``evaluate`` scores: the pairs under ``pairs``, the recordings under
    ``recordings`` (no references) or else the checkpoint's test grid (``data_overrides``
    change its data config); with where they come from and the pairs that failed to match.
    At most one of ``pairs`` and ``recordings`` is set (``evaluate`` checks)."""
    if not (pairs or recordings):
        return *grid_utterances(enhancer, data_overrides), []
    folder = Path(pairs or recordings)
    source = {"source": str(folder.resolve())}
    if pairs:
        utterances, failures = folder_utterances(folder, enhancer.sample_rate)
        return utterances, source, failures
    return recording_utterances(folder, enhancer.sample_rate), source, []


@torch.no_grad()
def _enhance(
    enhancer: Enhancer, loss: Loss, clean: np.ndarray | None, noisy: np.ndarray
) -> tuple[np.ndarray, dict[str, float]]:
    """The enhanced signal and what is scored in this process: loss and SI-SDR (none of them
    without a clean reference)."""
    noisy_t = torch.from_numpy(noisy)[None]
    if clean is None:
        return enhancer(noisy_t)[0].numpy(), {}
    noisy_mag, noisy_phase = enhancer.stft.magnitude_phase(noisy_t)
    clean_t = torch.from_numpy(clean)[None]
    enhanced, scores = enhance_and_score(enhancer, loss, noisy_mag, noisy_phase, clean_t, noisy_t)
    return enhanced[0].numpy(), {name: float(values[0]) for name, values in scores.items()}


def _dnsmos_record(signals: Mapping[str, np.ndarray], sample_rate: int) -> dict[str, Any]:
    """DNSMOS SIG/BAK/OVRL of each of ``signals`` ('' enhanced, '_noisy', '_clean'); a signal
    DNSMOS refuses (samples beyond full scale) gets NaN and the reason in ``dnsmos_error``."""
    record: dict[str, Any] = {}
    errors = []
    for suffix, signal in signals.items():
        try:
            scores = dnsmos_scores(signal, sample_rate)
        except ValueError as err:
            scores = dict.fromkeys(DNSMOS_MEASURES, math.nan)
            errors.append(f"{suffix.removeprefix('_') or 'enhanced'}: {err}")
        for m in DNSMOS_MEASURES:
            record[f"dnsmos_{m}{suffix}"] = scores[m]
    record["dnsmos_error"] = "; ".join(errors)
    return record


def _reported(record: Mapping[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    """``record`` without what was computed alongside but not asked for (PESQ and STOI come
    with the composite measures, SI-SDR with the loss)."""
    return {key: value for key, value in record.items() if key in columns}


def score_utterances(
    enhancer: Enhancer,
    utterances: list[Utterance],
    workers: int | None,
    measures: Sequence[str] = DEFAULT_MEASURES[True],
    references: bool = True,
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Enhance every utterance here while worker processes score PESQ, STOI, ESTOI and the
    composite measures (those of ``measures``); DNSMOS here too. An utterance that cannot be
    read or enhanced is a failure; the others go on. Without clean ``references`` (recordings)
    only reference-free ``measures`` can be scored (``check_measures``)."""
    on_workers = any(m in _WORKER_MEASURES for m in measures)
    scorer = PerceptualScorer(workers)
    scores = ClipScores(scorer, extended="estoi" in measures, composite="composite" in measures)
    failures: list[dict[str, str]] = []
    loss = loss_from_config(enhancer.config)  # the run's own training objective
    try:
        for utt in tqdm(utterances, desc="enhance", unit="utt"):
            try:
                clean, noisy = utt.load()  # clean is None exactly when not references
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
            if "dnsmos" in measures:
                signals = {"": enhanced, "_noisy": noisy} | (
                    {"_clean": clean} if references else {}
                )
                record |= _dnsmos_record(signals, enhancer.sample_rate)
            scores.add(record, clean, noisy, enhanced, perceptual=on_workers and references)
        records = scores.collect(progress="score on workers" if on_workers else None)
    finally:
        scorer.close()
    columns = csv_columns(measures, references)
    return [_reported(r, columns) for r in records], failures


def summarize(records: list[dict[str, Any]], grid: bool, measures: Sequence[str]) -> dict[str, Any]:
    """Means (and gains) of ``measures`` over all utterances and, for the grid, per SNR and per
    environment."""
    columns = reported_columns(measures)
    extra = [c for c in columns if c not in ("pesq", "stoi", "estoi", "si_sdr")]
    groups: dict[str, Any] = {"all": with_gains(aggregate_scores(records, extra), columns)}
    if grid:
        for name, by in breakdown(records, extra=extra).items():
            groups[name] = {key: with_gains(s, columns) for key, s in by.items()}
    return groups


def summary_rows(groups: Mapping[str, Any], measures: Sequence[str]) -> list[dict[str, str]]:
    """The summary's rows for ``tables.markdown_table``: noisy → enhanced (gain) per measure
    (and the clean signal's DNSMOS where there is one)."""
    rows = [("all", groups["all"])]
    rows += [(f"SNR {snr} dB", s) for snr, s in groups.get("by_snr_db", {}).items()]
    rows += list(groups.get("by_environment", {}).items())
    table = []
    for label, s in rows:
        row = {"": label, "utterances": f"{s['clips']:.0f}"}
        for m in reported_columns(measures):
            digits = 3 if m in ("stoi", "estoi") else 2
            row[f"{LABELS[m]} noisy → enhanced (gain)"] = (
                f"{s[f'{m}_noisy']:.{digits}f} → {s[m]:.{digits}f} ({s[f'{m}_gain']:+.{digits}f})"
            )
            if f"{m}_clean" in s:
                row[f"{LABELS[m]} clean"] = f"{s[f'{m}_clean']:.2f}"
        table.append(row)
    return table
