import pytest
import torch

from crn_lightning.errors import ConfigError
from crn_lightning.models.crn import CRN, OUTPUTS
from crn_lightning.stft import STFT

SMALL = dict(channels=(4, 8, 8, 16, 16), lstm_hidden=32)


def test_seed_config_reproduces_the_report_shapes():
    model = CRN(481)
    assert model.freq_sizes == [481, 240, 119, 59, 29, 14]
    assert (model.lstm.input_size, model.lstm.hidden_size) == (3584, 3584)
    # 4·(2·3584² + 2·3584) LSTM weights dominate: about 103.6 M in all.
    assert 103_000_000 < model.num_parameters() < 104_000_000


@pytest.mark.parametrize("n_fft", [320, 512, 960, 1024])
@pytest.mark.parametrize("frames", [1, 37, 401])
@pytest.mark.parametrize("output", OUTPUTS)
def test_output_shape_follows_the_output_for_any_fft_and_length(n_fft, frames, output):
    n_freqs = STFT(n_fft, 160).n_freqs
    model = CRN(n_freqs, output=output, **SMALL).eval()
    channels_in, channels_out = (3, 2) if output.startswith("complex") else (1, 1)
    assert (model.input_channels, model.output_channels) == (channels_in, channels_out)
    x = torch.rand(2, channels_in, frames, n_freqs)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, channels_out, frames, n_freqs)
    if channels_out == 1:  # magnitudes
        assert (y >= 0).all()
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("bound", [1.0, 2.5])
def test_masks_are_bounded_by_mask_bound(bound):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 20, 161) * 3
    x[:, 2] = x[:, :2].square().sum(1).sqrt()  # the magnitude channel
    for output in ("mask", "complex_mask"):
        model = CRN(161, output=output, mask_bound=bound, **SMALL).eval()
        # Large last-layer weights drive the masks towards their bound.
        with torch.no_grad():
            model.decoder[-1].deconv.weight.mul_(1000)
            features = x[:, 2:] if output == "mask" else x
            y = model(features)
        gain = y.square().sum(1).sqrt() / features[:, :2].square().sum(1).sqrt()
        assert gain.max() <= bound * (1 + 1e-5)
        assert gain.max() > 0.9 * bound


def test_input_channels_follow_the_output():
    assert CRN(161, output="complex_mask", input_channels=2, **SMALL).input_channels == 2
    for output, channels in [("mapping", 3), ("mask", 2), ("complex_mapping", 1)]:
        with pytest.raises(ConfigError, match=f"model.input_channels={channels}"):
            CRN(161, output=output, input_channels=channels, **SMALL)
    with pytest.raises(ConfigError, match="model.output must be one of"):
        CRN(161, output="complex", **SMALL)
    with pytest.raises(ConfigError, match="model.mask_bound"):
        CRN(161, output="mask", mask_bound=0, **SMALL)


def _model(n_freqs=161, output="mapping"):
    torch.manual_seed(0)
    model = CRN(n_freqs, output=output, **SMALL)
    # Make batch norm non-trivial so that a causality leak through it would show.
    model.train()
    with torch.no_grad():
        model(torch.rand(4, model.input_channels, 50, n_freqs))
    return model.eval()


@pytest.mark.parametrize("output", OUTPUTS)
def test_causal_future_frames_change_no_earlier_output(output):
    model = _model(output=output)
    x = torch.rand(1, model.input_channels, 120, 161)
    with torch.no_grad():
        y = model(x)
        for t in (0, 30, 119):
            changed = x.clone()
            changed[:, :, t + 1 :] = torch.rand_like(changed[:, :, t + 1 :]) * 5
            y2 = model(changed)
            assert torch.equal(y[:, :, : t + 1], y2[:, :, : t + 1])
            if t < 119:
                assert not torch.allclose(y[:, :, t + 1 :], y2[:, :, t + 1 :])


def test_no_right_edge_artefact():
    # The report's output lost its right edge. Here the last 0.5 s (50 frames at hop 160) of a
    # signal is processed exactly as it would be anywhere else: compare with a longer input.
    model = _model()
    x = torch.rand(1, 1, 451, 161) + 0.1
    with torch.no_grad():
        short = model(x[:, :, :401])
        long = model(x)
        tail = short[:, :, -50:]
    assert torch.allclose(tail, long[:, :, 351:401], atol=1e-6)
    assert tail.abs().mean() > 0.1 * short.abs().mean()


def test_too_few_bins_for_the_depth_is_a_clear_error():
    with pytest.raises(ValueError, match="n_fft"):
        CRN(33)


def test_wrong_input_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\(batch, 1, frames, 161\)"):
        CRN(161, **SMALL)(torch.rand(2, 161, 10))
    with pytest.raises(ValueError, match=r"\(batch, 3, frames, 161\)"):
        CRN(161, output="complex_mask", **SMALL)(torch.rand(2, 1, 10, 161))
