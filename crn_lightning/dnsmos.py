"""DNSMOS P.835 (Reddy et al., ICASSP 2022): speech quality without a clean reference.

Microsoft's DNSMOS networks predict the P.835 ratings of a noisy or enhanced clip from the clip
alone: SIG (speech signal), BAK (background noise), OVRL (overall), each on the 1-5 MOS scale,
plus the P.808 overall MOS of its companion model. They run through the ``speechmos`` package,
whose wheel ships the ONNX models (so nothing is downloaded at run time); it follows the
DNS Challenge's ``dnsmos_local.py``: 9.01 s windows hopped by 1 s (shorter clips are repeated
to that length), the P.835 outputs mapped by the challenge's polynomials, the windows averaged.
It needs the optional extra: ``pip install 'crn-lightning[dnsmos]'`` (in a checkout:
``pip install -e '.[dnsmos]'``).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from crn_lightning.audio import read_channels, resample
from crn_lightning.errors import UserError

DNSMOS_SAMPLE_RATE = 16000
# What evaluate and enhance report (the P.808 MOS of the companion model stays in dnsmos_scores).
DNSMOS_MEASURES = ("sig", "bak", "ovrl")


def require_dnsmos() -> ModuleType:
    """speechmos's ``dnsmos`` module, or a ``UserError`` naming the extra to install: called
    before any work by what will score DNSMOS, so a missing extra stops a run at its start."""
    try:
        from speechmos import dnsmos
    except ImportError as err:  # speechmos itself, or librosa / requests that it imports
        raise UserError(
            f"DNSMOS needs the 'dnsmos' extra ({err.name or err} is missing): "
            "pip install 'crn-lightning[dnsmos]' (in a checkout: pip install -e '.[dnsmos]')"
        ) from err
    return dnsmos


def dnsmos_scores(waveform: np.ndarray | torch.Tensor, sample_rate: int) -> dict[str, float]:
    """DNSMOS ``sig``, ``bak``, ``ovrl`` (P.835) and ``p808`` of one mono clip in [-1, 1].

    A clip at another rate is resampled to 16 kHz first (torchaudio's band-limited sinc).
    """
    if isinstance(waveform, torch.Tensor):
        waveform = waveform.detach().cpu().numpy()
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1 or waveform.size == 0:
        # speechmos repeats a short clip until it is 9.01 s long: an empty one never would be.
        raise ValueError(f"DNSMOS scores one non-empty mono clip, got shape {waveform.shape}")
    if not np.isfinite(waveform).all() or np.abs(waveform).max() > 1.0:
        raise ValueError(
            "DNSMOS needs float samples in [-1, 1] (the scale its models were trained on); got "
            f"peak {np.abs(waveform).max():.3g}"
        )
    dnsmos = require_dnsmos()
    if sample_rate != DNSMOS_SAMPLE_RATE:
        # The sinc filter can overshoot a full-scale peak slightly; speechmos rejects that.
        waveform = np.clip(resample(waveform, sample_rate, DNSMOS_SAMPLE_RATE), -1.0, 1.0)
    scores = dnsmos.run(waveform, DNSMOS_SAMPLE_RATE)
    return {
        "sig": float(scores["sig_mos"]),
        "bak": float(scores["bak_mos"]),
        "ovrl": float(scores["ovrl_mos"]),
        "p808": float(scores["p808_mos"]),
    }


def file_dnsmos(path: str | Path) -> dict[str, float]:
    """``dnsmos_scores`` of an audio file at its own rate; several channels are mixed down
    (their mean) first, as a listener of a mono playback would hear them."""
    audio, rate = read_channels(path)
    return dnsmos_scores(audio.mean(axis=0), rate)
