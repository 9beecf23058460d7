"""Plots shared by TensorBoard logging and the notebooks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # no display on servers; notebooks render inline anyway
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from crn_lightning.sweep import Summary

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


def sweep_figure(summary: Summary) -> Figure:
    """A sweep's main figure: test PESQ of each job next to its noisy input and, when the jobs
    were tested at several SNRs, PESQ against test SNR (one line per job, noisy dashed)."""
    rows = summary.rows
    labels = [
        "\n".join(f"{k.rsplit('.', 1)[-1]}={row[k]}" for k in summary.varying)
        or f"job {row['job']}"
        for row in rows
    ]
    per_snr = len(summary.snrs) > 1
    fig, axes = plt.subplots(
        1, 2 if per_snr else 1, figsize=(12 if per_snr else 7, 4.2), constrained_layout=True
    )
    axes = np.atleast_1d(axes)
    x, width = np.arange(len(rows)), 0.38
    nan = float("nan")
    enhanced = [row["pesq"] if row["pesq"] is not None else nan for row in rows]
    noisy = [row["pesq_noisy"] if row["pesq_noisy"] is not None else nan for row in rows]
    axes[0].bar(x - width / 2, noisy, width, label="noisy input", color="0.7")
    bars = axes[0].bar(x + width / 2, enhanced, width, label="enhanced", color="tab:blue")
    axes[0].bar_label(bars, fmt="%.2f", fontsize=8)
    for i, row in enumerate(rows):
        if row["status"] != "ok":
            axes[0].text(i, 1.02, row["status"], ha="center", va="bottom", color="tab:red")
    axes[0].set_xticks(x, labels, fontsize=8)
    axes[0].set_ylabel("test PESQ (wideband, MOS-LQO)")
    # The PESQ scale starts near 1: bars from 1.0, the top a little above the best job.
    finite = [v for v in enhanced + noisy if np.isfinite(v)]
    axes[0].set_ylim(1.0, min(4.65, max(finite, default=2.0) + 0.3))
    axes[0].legend(loc="upper right")
    axes[0].set_title("test PESQ per job")
    if per_snr:
        snrs = [float(s) for s in summary.snrs]
        for i, row in enumerate(rows):
            if row["status"] != "ok":
                continue
            color = f"C{i % 10}"

            def at(key: str, row: dict = row) -> list[float]:
                return [
                    row[f"{key}@snr={s}"] if row[f"{key}@snr={s}"] is not None else nan
                    for s in summary.snrs
                ]

            axes[1].plot(snrs, at("pesq"), "o-", color=color, label=labels[i].replace("\n", " "))
            axes[1].plot(snrs, at("pesq_noisy"), "--", color=color, alpha=0.5)
        axes[1].set_xlabel("test SNR (dB)")
        axes[1].set_ylabel("test PESQ")
        axes[1].set_title("PESQ by test SNR (dashed: noisy input)")
        axes[1].legend(fontsize=8)
        axes[1].grid(alpha=0.3)
    fig.suptitle(str(summary.sweep_dir), fontsize=9)
    return fig
