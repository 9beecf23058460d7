"""Speech-quality metrics: wideband PESQ and STOI (in worker processes), SI-SDR (torch).

``pesq`` returns MOS-LQO on the P.862.2 wideband scale (about 1.04 to 4.64); it needs 16 kHz.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from pesq import pesq
from pystoi import stoi
from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio

from crn_lightning.graceful_stop import ignore_stop_signals

PESQ_SAMPLE_RATE = 16000


@dataclass(frozen=True)
class PerceptualScores:
    pesq: float
    stoi: float
    estoi: float | None = None  # extended STOI (Jensen & Taal 2016), when asked for
    error: str | None = None
    # CSIG, CBAK, COVL, SSNR (crn_lightning.composite), when the job computed them
    composite: Mapping[str, float] | None = None


def perceptual_scores(
    reference: np.ndarray, degraded: np.ndarray, extended: bool = False
) -> PerceptualScores:
    """Wideband PESQ and STOI (and, with ``extended``, extended STOI) of ``degraded`` against
    ``reference`` (16 kHz).

    PESQ fails on silent or very short references; that clip gets NaN and the error text
    instead of stopping a whole evaluation.
    """
    try:
        pesq_score, error = float(pesq(PESQ_SAMPLE_RATE, reference, degraded, "wb")), None
    except Exception as err:  # pesq raises its own classes, with bytes messages
        pesq_score, error = math.nan, f"{type(err).__name__}: {err}"
    stoi_score = float(stoi(reference, degraded, PESQ_SAMPLE_RATE))
    estoi = float(stoi(reference, degraded, PESQ_SAMPLE_RATE, extended=True)) if extended else None
    return PerceptualScores(pesq_score, stoi_score, estoi, error)


def si_sdr(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Scale-invariant SDR in dB over the last axis (zero-mean, as usual)."""
    return scale_invariant_signal_distortion_ratio(estimate, reference, zero_mean=True)


class _InlineExecutor(Executor):
    """Runs each job at once in this process (``workers=0``: debugging, tiny tests)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as err:
            future.set_exception(err)
        return future


class PerceptualScorer:
    """Scores clips in a pool of worker processes while the model keeps running.

    ``submit`` returns at once with a future; the pool starts on first use and is reused
    for the whole run. ``workers=None`` uses every CPU core, ``0`` scores inline.
    ``ignore_stop_signals``: the workers ignore SIGTERM and SIGINT, which a training run
    handles in its main process (crn_lightning.graceful_stop).
    """

    def __init__(self, workers: int | None = None, ignore_stop_signals: bool = False) -> None:
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        self.ignore_stop_signals = ignore_stop_signals
        self._executor: Executor | None = None

    def submit(
        self,
        reference: np.ndarray,
        degraded: np.ndarray,
        extended: bool = False,
        job: Callable[..., PerceptualScores] = perceptual_scores,
    ) -> Future:
        """Score ``degraded`` against ``reference`` with ``job`` (``perceptual_scores``, or a
        function taking the same arguments that computes more, e.g.
        ``composite.perceptual_and_composite_scores``)."""
        if self._executor is None:
            if self.workers == 0:
                self._executor = _InlineExecutor()
            else:
                # fork: workers need only numpy, pesq and pystoi, and start in milliseconds;
                # spawn would re-import torch and Lightning in each of them.
                context = multiprocessing.get_context("fork")
                initializer = ignore_stop_signals if self.ignore_stop_signals else None
                self._executor = ProcessPoolExecutor(
                    self.workers, mp_context=context, initializer=initializer
                )
        return self._executor.submit(job, reference, degraded, extended)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
            self._executor = None

    def __getstate__(self) -> dict:
        # A pool cannot be pickled (e.g. into a checkpoint or a DDP spawn); workers restart.
        return {
            "workers": self.workers,
            "ignore_stop_signals": self.ignore_stop_signals,
            "_executor": None,
        }
