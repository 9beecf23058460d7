import re

import pytest
import torch

from crn_lightning.errors import ConfigError
from crn_lightning.stft import STFT


def test_report_stft_shape_481_bins_by_401_frames():
    stft = STFT(960, 160)
    magnitude, phase = stft.magnitude_phase(torch.randn(2, 64000))
    assert magnitude.shape == phase.shape == (2, 481, 401)
    assert stft.n_freqs == 481 and stft.n_frames(64000) == 401


@pytest.mark.parametrize("n_fft", [320, 512, 960, 1024])
def test_round_trip_with_its_own_phase(n_fft):
    stft = STFT(n_fft, 160)
    wave = torch.randn(3, 16000)
    magnitude, phase = stft.magnitude_phase(wave)
    assert torch.allclose(stft.inverse(magnitude, phase, 16000), wave, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_fft": 320, "hop_length": 400}, "stft.hop_length must be in (0, win_length=320]"),
        ({"n_fft": 256, "win_length": 512}, "stft.win_length (512) must not exceed"),
    ],
)
def test_bad_settings_name_the_key(kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        STFT(**kwargs)
