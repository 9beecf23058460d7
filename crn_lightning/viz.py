"""Plots shared by TensorBoard logging and the notebooks."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")  # no display on servers; notebooks render inline anyway
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

DYNAMIC_RANGE_DB = 80.0


def spectrogram_figure(
    magnitudes: Mapping[str, torch.Tensor | np.ndarray],
    sample_rate: int,
    hop_length: int,
    title: str | None = None,
) -> Figure:
    """Side-by-side spectrograms in dB on one shared colour scale, axes in s and Hz.

    ``magnitudes`` maps a panel name (e.g. noisy / enhanced / clean) to a (freq, frames)
    magnitude; the scale tops at the loudest bin over all panels, 80 dB deep.
    """
    db = {
        name: 20 * np.log10(np.maximum(np.asarray(torch.as_tensor(m).detach().cpu()), 1e-8))
        for name, m in magnitudes.items()
    }
    vmax = max(float(d.max()) for d in db.values())
    vmin = vmax - DYNAMIC_RANGE_DB
    fig, axes = plt.subplots(
        1, len(db), figsize=(4.2 * len(db), 3.4), sharey=True, constrained_layout=True
    )
    axes = np.atleast_1d(axes)
    for ax, (name, spec) in zip(axes, db.items(), strict=True):
        n_freqs, n_frames = spec.shape
        extent = (0, n_frames * hop_length / sample_rate, 0, sample_rate / 2)
        image = ax.imshow(
            spec,
            origin="lower",
            aspect="auto",
            extent=extent,
            vmin=vmin,
            vmax=vmax,
            cmap="magma",
            interpolation="nearest",
        )
        ax.set_title(name)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (Hz)")
    fig.colorbar(image, ax=list(axes), label="dB")
    if title:
        fig.suptitle(title)
    return fig
