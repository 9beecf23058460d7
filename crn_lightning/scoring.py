"""The one scoring pipeline of enhanced speech: validation, test and the evaluate entry point.

Per clip: the loss and SI-SDR (torch, where the enhancement runs), wideband PESQ and STOI
(and extended STOI for evaluate) of the enhanced and of the noisy signal in worker processes
(``metrics.PerceptualScorer``) while the model keeps running. Then means over clips
(``aggregate_scores``) and per test SNR and noise environment (``breakdown``).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from crn_lightning.composite import COMPOSITE_MEASURES, perceptual_and_composite_scores
from crn_lightning.enhancer import Enhancer
from crn_lightning.losses import Loss, LossInputs
from crn_lightning.metrics import PerceptualScorer, PerceptualScores, perceptual_scores, si_sdr


def enhance_and_score(
    enhancer: Enhancer,
    loss: Loss,
    noisy_mag: torch.Tensor,
    noisy_phase: torch.Tensor,
    clean: torch.Tensor,
    noisy: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Enhance a batch of noisy clips (B, L) from their STFT; returns the enhanced waveforms
    and, per clip (B,), the ``loss`` and the SI-SDR of the enhanced and of the noisy signal."""
    estimate, _, enhanced = enhancer.enhance_spectrum(noisy_mag, noisy_phase, noisy.shape[-1])
    inputs = LossInputs(enhancer, estimate, noisy_phase, clean, enhanced=enhanced)
    scores = {
        "loss": loss(inputs, per_clip=True),
        "si_sdr": si_sdr(enhanced, clean),
        "si_sdr_noisy": si_sdr(noisy, clean),
    }
    return enhanced, scores


@dataclass
class _Pending:
    record: dict[str, Any]
    enhanced: Future | None  # None: PESQ/STOI not scored for this clip
    noisy: Future | None  # None: the noisy scores are in the cache (or not scored)
    noisy_key: Hashable | None


class ClipScores:
    """Collects the records of scored clips: ``add`` each clip (its labels and torch-side
    scores, and its signals for PESQ/STOI), then ``collect`` them once the workers are done.

    ``extended``: extended STOI too; ``composite``: CSIG, CBAK, COVL and SSNR too, in the same
    worker job (crn_lightning.composite). A clip added with a ``noisy_key`` (a fixed grid's
    index) has its noisy signal scored once: later passes reuse those scores.
    """

    def __init__(
        self, scorer: PerceptualScorer, extended: bool = False, composite: bool = False
    ) -> None:
        self.scorer, self.extended = scorer, extended
        self.metrics = ("pesq", "stoi", "estoi") if extended else ("pesq", "stoi")
        self.job = perceptual_scores
        if composite:
            self.metrics += COMPOSITE_MEASURES
            self.job = perceptual_and_composite_scores
        self._pending: list[_Pending] = []
        self._noisy: dict[Hashable, PerceptualScores] = {}

    def add(
        self,
        record: dict[str, Any],
        clean: np.ndarray,
        noisy: np.ndarray,
        enhanced: np.ndarray,
        noisy_key: Hashable | None = None,
        perceptual: bool = True,
    ) -> None:
        """Queue one clip; ``perceptual=False`` keeps ``record`` as it is (no PESQ/STOI)."""
        if not perceptual:
            self._pending.append(_Pending(record, None, None, None))
            return
        cached = noisy_key is not None and noisy_key in self._noisy
        noisy_future = None if cached else self._submit(clean, noisy)
        enhanced_future = self._submit(clean, enhanced)
        self._pending.append(_Pending(record, enhanced_future, noisy_future, noisy_key))

    def _submit(self, clean: np.ndarray, signal: np.ndarray) -> Future:
        return self.scorer.submit(clean, signal, extended=self.extended, job=self.job)

    def collect(self, progress: str | None = None) -> list[dict[str, Any]]:
        """Wait for the scores; the records in the order added, with PESQ/STOI (enhanced and
        ``*_noisy``) and ``pesq_error`` filled in. ``progress``: a progress bar's label."""
        pending, self._pending = self._pending, []
        items = tqdm(pending, desc=progress, unit="clip") if progress else pending
        records = []
        for item in items:
            record = item.record
            if item.enhanced is not None:
                enhanced = item.enhanced.result()
                if item.noisy is None:
                    noisy = self._noisy[item.noisy_key]
                else:
                    noisy = item.noisy.result()
                    if item.noisy_key is not None:
                        self._noisy[item.noisy_key] = noisy
                for m in self.metrics:
                    record[m], record[f"{m}_noisy"] = _value(enhanced, m), _value(noisy, m)
                record["pesq_error"] = "; ".join(
                    f"{kind}: {s.error}"
                    for kind, s in (("noisy", noisy), ("enhanced", enhanced))
                    if s.error
                )
            records.append(record)
        return records


def _value(scores: PerceptualScores, metric: str) -> float:
    if metric in COMPOSITE_MEASURES:
        return scores.composite[metric]
    return getattr(scores, metric)


def _mean(values: Iterable[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def aggregate_scores(
    records: Sequence[Mapping[str, Any]], extra: Iterable[str] = ()
) -> dict[str, float]:
    """Means over scored clips of what every record holds: loss, SI-SDR, PESQ (with its
    failures), STOI and extended STOI, each for enhanced and noisy; and of each of ``extra``
    (e.g. the composite measures, DNSMOS) with its ``_noisy`` and, where records hold it, its
    ``_clean`` value.

    A clip where PESQ (or one of ``extra``) failed for the enhanced or the noisy signal is left
    out of both of its means, so the enhanced and noisy figures always cover the same clips.
    """

    def everywhere(name: str) -> bool:
        return bool(records) and all(name in r for r in records)

    summary = {"clips": float(len(records))}
    if everywhere("loss"):  # records scored without a clean reference have no loss
        summary["loss"] = _mean(r["loss"] for r in records)
    # Validations between module.pesq_every_n_epochs skip PESQ and STOI; extended STOI is
    # scored by the evaluate entry point only (training skips its cost).
    for name in ("si_sdr", "stoi", "estoi"):
        if everywhere(name):
            summary[name] = _mean(r[name] for r in records)
            summary[f"{name}_noisy"] = _mean(r[f"{name}_noisy"] for r in records)
    for name in ("pesq", *extra):
        if not everywhere(name):
            continue
        ok = [r for r in records if math.isfinite(r[name]) and math.isfinite(r[f"{name}_noisy"])]
        summary[name] = _mean(r[name] for r in ok)
        summary[f"{name}_noisy"] = _mean(r[f"{name}_noisy"] for r in ok)
        summary[f"{name}_failures"] = float(len(records) - len(ok))
        if everywhere(f"{name}_clean"):
            summary[f"{name}_clean"] = _mean(r[f"{name}_clean"] for r in ok)
    return summary


def _aggregate_by(
    records: Sequence[Mapping[str, Any]], key: str, extra: Iterable[str]
) -> dict[Any, dict[str, float]]:
    return {
        value: aggregate_scores([r for r in records if r[key] == value], extra)
        for value in sorted({r[key] for r in records})
    }


def breakdown(
    records: Sequence[Mapping[str, Any]],
    environments: Sequence[str] | None = None,
    extra: Iterable[str] = (),
) -> dict[str, dict[str, dict[str, float]]]:
    """``aggregate_scores`` (of ``extra`` too) per test SNR (``by_snr_db``, keyed '0', '5',
    ...) and per noise environment (``by_environment``), each in sorted order. A record's
    ``environment`` is its index into ``environments`` (named by it) or, without
    ``environments``, its name."""
    extra = tuple(extra)
    by_environment = _aggregate_by(records, "environment", extra)
    return {
        "by_snr_db": {f"{snr:g}": s for snr, s in _aggregate_by(records, "snr_db", extra).items()},
        "by_environment": {
            (environments[e] if environments is not None else e): s
            for e, s in by_environment.items()
        },
    }


def with_gains(summary: Mapping[str, float], metrics: Iterable[str]) -> dict[str, float]:
    """``summary`` with ``<metric>_gain`` = enhanced − noisy for each of ``metrics``."""
    return {**summary, **{f"{m}_gain": summary[m] - summary[f"{m}_noisy"] for m in metrics}}
