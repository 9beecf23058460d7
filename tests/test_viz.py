import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from crn_lightning import viz

SR, HOP = 16000, 160


def _render(fig) -> None:
    FigureCanvasAgg(fig).draw()  # layout and drawing must not fail


def test_spectrogram_panels_of_different_sizes_share_one_scale_and_zoom():
    loud, quiet = torch.full((161, 50), 10.0), np.full((481, 50), 0.1)
    fig = viz.spectrogram_figure({"a": loud, "b": quiet}, SR, HOP, title="t", max_freq_hz=4000)
    _render(fig)
    images = [ax.get_images()[0] for ax in fig.axes if ax.get_images()]
    assert len(images) == 2
    for image in images:  # one colour scale: 80 dB under the loudest bin of any panel
        assert image.get_clim() == pytest.approx((20 - 80, 20))
        assert image.get_extent() == pytest.approx((0, 50 * HOP / SR, 0, SR / 2))
    assert fig.axes[0].get_ylim() == (0, 4000)


def test_magnitudes_by_fft_size_read_a_sinusoid_at_the_same_level_and_frequency():
    t = np.arange(SR) / SR
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)
    mags = viz.magnitudes_by_fft_size(tone, SR, [256, 960, 2048], HOP)
    assert list(mags) == [viz.fft_size_label(n, SR) for n in (256, 960, 2048)]
    assert "n_fft 960: 60 ms, 16.7 Hz bins" in mags
    for n_fft, magnitude in zip((256, 960, 2048), mags.values(), strict=True):
        assert magnitude.shape == (n_fft // 2 + 1, SR // HOP + 1)
        middle = magnitude[:, magnitude.shape[1] // 2]
        assert np.argmax(middle) * SR / n_fft == pytest.approx(1000, abs=SR / n_fft)
        # Hann-windowed sinusoid of amplitude a, window-sum normalised: a/2 at its bin
        # (less when 1000 Hz falls between bins, by at most the Hann scalloping loss).
        assert 0.25 * 0.7 < middle.max() <= 0.25 * 1.001


def test_resolution_figure_draws_one_curve_per_fft_size_at_the_loudest_frame():
    rng = np.random.default_rng(0)
    signal = np.concatenate([0.01 * rng.standard_normal(8000), rng.standard_normal(1600)])
    fig = viz.resolution_figure(signal, SR, [256, 960], HOP)
    _render(fig)
    spectrum, energy = fig.axes
    assert len(spectrum.get_lines()) == 2 and len(energy.get_lines()) == 3  # + frame marker
    assert 0.5 <= energy.get_lines()[-1].get_xdata()[0] <= 0.6  # the loud burst


def test_waveforms_figure_has_a_row_per_signal():
    fig = viz.waveforms_figure({"clean": np.zeros(100), "noisy": torch.ones(100)}, SR)
    _render(fig)
    assert [ax.get_ylabel() for ax in fig.axes] == ["clean", "noisy"]


def test_curves_figure_draws_the_logged_tags_and_refuses_when_none_is_there():
    steps = np.arange(4)
    scalars = {"train/loss": (steps, steps * 0.1), "val/pesq": (steps[1:], steps[1:] + 1.0)}
    scalars["val/pesq_noisy"] = (steps[1:], np.ones(3))
    fig = viz.curves_figure(scalars)
    _render(fig)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "PESQ"]
    noisy = fig.axes[1].get_lines()[1]
    assert noisy.get_linestyle() == "--" and list(noisy.get_ydata()) == [1, 1, 1]
    with pytest.raises(ValueError, match="none of the tags"):
        viz.curves_figure({"other": (steps, steps)})


def _scores(pesq, noisy):
    return {"pesq": pesq, "pesq_noisy": noisy, "stoi": 0.9, "stoi_noisy": 0.8}


def test_scores_figure_puts_noisy_and_enhanced_bars_for_each_group():
    groups = {
        g: {**_scores(p, n), "si_sdr": 9.0, "si_sdr_noisy": 5.0}
        for g, p, n in (("0 dB", 1.5, 1.1), ("5 dB", 2.0, 1.3))
    }
    fig = viz.scores_figure(groups, "test SNR")
    _render(fig)
    pesq_bars = [bar.get_height() for bar in fig.axes[0].patches]
    assert pesq_bars == [1.1, 1.3, 1.5, 2.0]  # noisy for each group, then enhanced


def test_sweep_figures_draw_a_line_per_condition():
    conditions = {
        "a": {0.0: _scores(1.5, 1.1), 10.0: _scores(2.5, 1.4)},
        "b": {0.0: _scores(1.2, 1.1)},
    }
    fig = viz.pesq_vs_snr_figure(conditions)
    _render(fig)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 4 and list(lines[0].get_ydata()) == [1.5, 2.5]
    points = [
        {"x": 512, "label": "", "pesq": 2.0, "pesq_noisy": 1.3},
        {"x": 256, "label": "", "pesq": 1.8, "pesq_noisy": 1.3},
    ]
    fig = viz.metric_vs_parameter_figure(points, "stft.n_fft")
    _render(fig)
    assert list(fig.axes[0].get_lines()[0].get_xdata()) == [256, 512]  # sorted by x
