"""Plots shared by TensorBoard logging and the notebooks; every function returns a Figure.

Figures are built without pyplot: no global backend is touched (servers have no display), no
figure stays registered (nothing to close), and a notebook shows the one it gets once
(``%matplotlib inline``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from crn_lightning.stft import STFT

DYNAMIC_RANGE_DB = 80.0
METRICS = (("pesq", "PESQ"), ("stoi", "STOI"), ("si_sdr", "SI-SDR (dB)"))
# Training curves: panel title -> TensorBoard tags drawn in it (noisy baselines dashed).
CURVE_PANELS = {
    "loss": ("train/loss", "val/loss"),
    "PESQ": ("val/pesq", "val/pesq_noisy"),
    "STOI": ("val/stoi", "val/stoi_noisy"),
    "SI-SDR (dB)": ("val/si_sdr", "val/si_sdr_noisy"),
}


def _db(magnitude: torch.Tensor | np.ndarray) -> np.ndarray:
    return 20 * np.log10(np.maximum(np.asarray(torch.as_tensor(magnitude).detach().cpu()), 1e-8))


def spectrogram_figure(
    magnitudes: Mapping[str, torch.Tensor | np.ndarray],
    sample_rate: int,
    hop_length: int,
    title: str | None = None,
    max_freq_hz: float | None = None,
    stacked: bool = False,
) -> Figure:
    """Side-by-side spectrograms in dB on one shared colour scale, axes in s and Hz.

    ``magnitudes`` maps a panel name (e.g. noisy / enhanced / clean) to a (freq, frames)
    magnitude; panels may have different numbers of bins (other FFT sizes). The scale tops
    at the loudest bin over all panels, 80 dB deep. ``max_freq_hz`` zooms on low frequencies.
    ``stacked``: panels one above the other in a narrow, tall figure (TensorBoard's image
    cards), sharing the time axis.
    """
    db = {name: _db(m) for name, m in magnitudes.items()}
    vmax = max(float(d.max()) for d in db.values())
    vmin = vmax - DYNAMIC_RANGE_DB
    if stacked:
        fig = Figure(figsize=(6.4, 1.9 * len(db) + 0.9), dpi=100, layout="constrained")
        axes = np.atleast_1d(fig.subplots(len(db), 1, sharex=True))
    else:
        fig = Figure(figsize=(4.2 * len(db), 3.4), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(db), sharey=True))
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
        ax.set_title(name, fontsize=10 if stacked else None, loc="left" if stacked else "center")
        if stacked:
            ax.set_ylabel("Hz")
        if not stacked or ax is axes[-1]:
            ax.set_xlabel("time (s)")
    if max_freq_hz is not None:
        axes[0].set_ylim(0, max_freq_hz)
    if not stacked:
        axes[0].set_ylabel("frequency (Hz)")
    # Constrained layout keeps the colour bar inside the figure.
    fig.colorbar(image, ax=list(axes), label="dB", shrink=0.9 if stacked else 1.0)
    if title:
        fig.suptitle(title, fontsize=10 if stacked else None)
    return fig


def fft_size_label(n_fft: int, sample_rate: int) -> str:
    return f"n_fft {n_fft}: {1000 * n_fft / sample_rate:.0f} ms, {sample_rate / n_fft:.1f} Hz bins"


def magnitudes_by_fft_size(
    signal: np.ndarray | torch.Tensor, sample_rate: int, n_ffts: Sequence[int], hop_length: int
) -> dict[str, np.ndarray]:
    """|STFT| of ``signal`` with the project's STFT at each FFT size (window = n_fft, one
    hop), divided by the window's sum so that a sinusoid reads the same level at every size
    and the spectrograms share one colour scale fairly. Keys: ``fft_size_label``."""
    waveform = torch.as_tensor(np.asarray(signal, dtype=np.float32))
    out = {}
    for n_fft in n_ffts:
        stft = STFT(n_fft, hop_length)
        with torch.no_grad():
            magnitude = stft(waveform).abs() / stft.spectrogram.window.sum()
        out[fft_size_label(n_fft, sample_rate)] = magnitude.numpy()
    return out


def resolution_figure(
    signal: np.ndarray | torch.Tensor,
    sample_rate: int,
    n_ffts: Sequence[int],
    hop_length: int,
    frame_time_s: float | None = None,
    max_freq_hz: float = 2000.0,
) -> Figure:
    """The frequency vs time resolution trade-off of the FFT size, on one signal.

    Left: the spectrum of one frame (default: the loudest frame) at each FFT size: long
    windows resolve the voice's harmonics, short ones blur them together. Right: the frame
    energy over time: short windows keep onsets and pauses sharp, long ones smear them.
    """
    mags = magnitudes_by_fft_size(signal, sample_rate, n_ffts, hop_length)
    energies = {k: 10 * np.log10(np.maximum((m**2).sum(0), 1e-12)) for k, m in mags.items()}
    if frame_time_s is None:
        frame_time_s = float(np.argmax(next(iter(energies.values())))) * hop_length / sample_rate
    frame = round(frame_time_s * sample_rate / hop_length)
    fig = Figure(figsize=(12, 3.8), layout="constrained")
    ax_f, ax_t = fig.subplots(1, 2)
    for offset, (label, magnitude) in enumerate(mags.items()):
        freqs = np.linspace(0, sample_rate / 2, magnitude.shape[0])
        keep = freqs <= max_freq_hz
        # Curves are shifted by 20 dB each so their harmonic combs can be told apart.
        ax_f.plot(freqs[keep], _db(magnitude[keep, frame]) - 20 * offset, label=label, lw=1)
        times = np.arange(len(energies[label])) * hop_length / sample_rate
        ax_t.plot(times, energies[label], label=label, lw=1)
    ax_f.set(
        xlabel="frequency (Hz)",
        ylabel="dB (each curve 20 dB below the last)",
        title=f"one frame's spectrum at {frame_time_s:.2f} s",
    )
    ax_t.set(xlabel="time (s)", ylabel="frame energy (dB)", title="frame energy over time")
    ax_t.axvline(frame_time_s, color="grey", lw=0.8, ls=":")
    ax_f.legend(fontsize=8)
    ax_t.legend(fontsize=8)
    return fig


def waveforms_figure(
    signals: Mapping[str, np.ndarray | torch.Tensor], sample_rate: int, title: str | None = None
) -> Figure:
    """Waveforms stacked on shared time and amplitude axes."""
    fig = Figure(figsize=(10, 1.1 * len(signals) + 0.6), layout="constrained")
    axes = fig.subplots(len(signals), 1, sharex=True, sharey=True, squeeze=False)[:, 0]
    for ax, (name, signal) in zip(axes, signals.items(), strict=True):
        signal = np.asarray(torch.as_tensor(signal).detach().cpu())
        ax.plot(np.arange(len(signal)) / sample_rate, signal, lw=0.4)
        ax.set_ylabel(name, rotation=0, ha="right", va="center")
    axes[-1].set_xlabel("time (s)")
    if title:
        fig.suptitle(title)
    return fig


def curves_figure(
    scalars: Mapping[str, tuple[np.ndarray, np.ndarray]],
    panels: Mapping[str, Sequence[str]] = CURVE_PANELS,
) -> Figure:
    """Training and validation curves against the training step, one panel per entry of
    ``panels`` that has data; ``scalars`` maps a tag to (steps, values)."""
    shown = {name: [t for t in tags if t in scalars] for name, tags in panels.items()}
    shown = {name: tags for name, tags in shown.items() if tags}
    if not shown:
        raise ValueError(
            f"none of the tags {sorted({t for v in panels.values() for t in v})} "
            f"is among the logged scalars {sorted(scalars)}"
        )
    fig = Figure(figsize=(4 * len(shown), 3.2), layout="constrained")
    axes = fig.subplots(1, len(shown), squeeze=False)[0]
    for ax, (name, tags) in zip(axes, shown.items(), strict=True):
        for tag in tags:
            steps, values = scalars[tag]
            style = "--" if tag.endswith("_noisy") else "-"
            ax.plot(steps, values, style, marker="o" if len(steps) < 30 else None, ms=3, label=tag)
        ax.set(title=name, xlabel="step")
        ax.legend(fontsize=8)
    return fig


def scores_figure(
    groups: Mapping[str, Mapping[str, float]], group_label: str, title: str | None = None
) -> Figure:
    """PESQ, STOI and SI-SDR of the noisy input and the enhanced output side by side for each
    group (e.g. each SNR or noise environment); ``groups`` maps a group to its scores
    (``pesq``, ``pesq_noisy``, ...: one entry of a run's ``test_breakdown``)."""
    names = list(groups)
    x = np.arange(len(names))
    fig = Figure(figsize=(13, 3.4), layout="constrained")
    axes = fig.subplots(1, len(METRICS))
    for ax, (key, label) in zip(axes, METRICS, strict=True):
        for shift, (kind, suffix) in ((-0.2, ("noisy", "_noisy")), (0.2, ("enhanced", ""))):
            values = [groups[n][key + suffix] for n in names]
            ax.bar(x + shift, values, width=0.4, label=kind)
        ax.set_xticks(x, names, rotation=30 if len(names) > 4 else 0)
        ax.set(title=label, xlabel=group_label)
    axes[0].set_ylim(bottom=1.0)  # the wideband PESQ scale starts near 1.04
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def _plot_pesq_vs_snr(
    ax: Any, conditions: Mapping[str, Mapping[float, Mapping[str, float]]]
) -> None:
    for label, by_snr in conditions.items():
        snrs = sorted(by_snr)
        (line,) = ax.plot(snrs, [by_snr[s]["pesq"] for s in snrs], "-o", ms=4, label=label)
        ax.plot(snrs, [by_snr[s]["pesq_noisy"] for s in snrs], "--", color=line.get_color())
    ax.set_xticks(sorted({snr for by_snr in conditions.values() for snr in by_snr}))
    ax.set(xlabel="test SNR (dB)", ylabel="PESQ (wideband)", title="PESQ vs SNR (dashed: noisy)")
    ax.legend(fontsize=8)


def pesq_vs_snr_figure(conditions: Mapping[str, Mapping[float, Mapping[str, float]]]) -> Figure:
    """Test PESQ against the test SNR for each training condition (a sweep's jobs): enhanced
    solid, the noisy input dashed in the same colour. ``conditions`` maps a condition label to
    {snr: scores} (a run's ``test_breakdown['by_snr_db']`` with float keys)."""
    fig = Figure(figsize=(6.5, 4), layout="constrained")
    _plot_pesq_vs_snr(fig.subplots(), conditions)
    return fig


def sweep_figure(
    jobs: Mapping[str, Mapping[str, float] | None],
    conditions: Mapping[str, Mapping[float, Mapping[str, float]]],
    title: str | None = None,
) -> Figure:
    """A sweep's main figure (its ``summary.png``): test PESQ of each job next to its noisy
    input, and, when the jobs were tested at several SNRs, PESQ against the test SNR.
    ``jobs`` maps a job label to its test scores (None: the job did not finish);
    ``conditions`` is the input of ``pesq_vs_snr_figure``."""
    per_snr = any(len(by_snr) > 1 for by_snr in conditions.values())
    fig = Figure(figsize=(12.5 if per_snr else 7, 4.4), layout="constrained")
    axes = fig.subplots(1, 2 if per_snr else 1, squeeze=False)[0]
    labels = list(jobs)
    x, width, nan = np.arange(len(labels)), 0.38, float("nan")
    enhanced = [jobs[k]["pesq"] if jobs[k] else nan for k in labels]
    noisy = [jobs[k]["pesq_noisy"] if jobs[k] else nan for k in labels]
    axes[0].bar(x - width / 2, noisy, width, label="noisy input", color="0.7")
    bars = axes[0].bar(x + width / 2, enhanced, width, label="enhanced", color="tab:blue")
    axes[0].bar_label(bars, fmt="%.2f", fontsize=8)
    for i, label in enumerate(labels):
        if jobs[label] is None:
            axes[0].text(i, 1.02, "did not\nfinish", ha="center", va="bottom", color="tab:red")
    axes[0].set_xticks(x, [label.replace(" ", "\n") for label in labels], fontsize=8)
    # The wideband PESQ scale starts near 1: bars from 1.0, the top a little above the best.
    finite = [v for v in enhanced + noisy if np.isfinite(v)]
    axes[0].set_ylim(1.0, min(4.65, max(finite, default=2.0) + 0.3))
    axes[0].set(ylabel="test PESQ (wideband)", title="test PESQ per job")
    axes[0].legend(fontsize=8, loc="upper left")
    if per_snr:
        _plot_pesq_vs_snr(axes[1], conditions)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def metric_vs_parameter_figure(
    points: Sequence[Mapping[str, Any]], parameter: str, metric: str = "pesq"
) -> Figure:
    """A test metric against a swept parameter (e.g. stft.n_fft): one line per ``label`` (the
    other overrides), enhanced solid and noisy dashed. Each point: x, label, metric, noisy."""
    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.subplots()
    for label in dict.fromkeys(p["label"] for p in points):
        mine = sorted((p for p in points if p["label"] == label), key=lambda p: p["x"])
        xs = [p["x"] for p in mine]
        (line,) = ax.plot(xs, [p[metric] for p in mine], "-o", ms=4, label=label or "all jobs")
        ax.plot(xs, [p[f"{metric}_noisy"] for p in mine], "--", color=line.get_color())
    ax.set_xticks(sorted({p["x"] for p in points}))
    name = dict(METRICS).get(metric, metric)
    ax.set(xlabel=parameter, ylabel=f"test {name}", title=f"{name} vs {parameter} (dashed: noisy)")
    ax.legend(fontsize=8)
    return fig
