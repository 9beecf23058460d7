"""The attenuation limit (``module.attenuation_limit_db``): a share of the noisy spectrum mixed
back into the enhanced one at inference, the same in every path (offline, blocks, streaming),
set by the training config and overridable by the entry points."""

import pytest
import torch
from omegaconf import OmegaConf

from crn_lightning.compose import compose_config
from crn_lightning.enhancer import Enhancer
from crn_lightning.errors import ConfigError
from crn_lightning.models.crn import CRN, OUTPUTS
from crn_lightning.stft import STFT
from crn_lightning.streaming import StreamingEnhancer

SR = 16000


def _enhancer(output: str, limit_db: float | None) -> Enhancer:
    torch.manual_seed(0)
    stft = STFT(320, 160)
    network = CRN(stft.n_freqs, channels=(4, 8, 8, 16, 16), lstm_hidden=32, output=output)
    enhancer = Enhancer(network, stft, compression=0.5, attenuation_limit_db=limit_db)
    enhancer.train()  # non-trivial batch-norm statistics
    with torch.no_grad():
        enhancer(0.1 * torch.randn(4, SR))
    return enhancer.eval()


@pytest.mark.parametrize("output", OUTPUTS)
def test_the_limit_mixes_the_noisy_signal_back_in(output):
    noisy = 0.1 * torch.randn(2, 12345)
    unlimited, limited = _enhancer(output, None), _enhancer(output, 12.0)
    share = 10 ** (-12 / 20)
    with torch.no_grad():
        free, bounded = unlimited(noisy), limited(noisy)
        magnitude, phase = limited.stft.magnitude_phase(noisy)
        bounded_magnitude = limited.enhance_spectrum(magnitude, phase, noisy.shape[-1])[1]
    # The inverse STFT is linear and gives the noisy signal back from its own spectrum.
    assert (bounded - ((1 - share) * free + share * noisy)).abs().max() <= 1e-4
    assert (bounded - free).abs().max() > 1e-3  # the limit did change the output
    if not limited.complex:  # same phase: no bin falls below share × the noisy magnitude
        assert (bounded_magnitude >= share * magnitude - 1e-6).all()


def test_streaming_and_blocks_apply_the_same_limit():
    enhancer = _enhancer("complex_mask", 9.0)
    noisy = 0.1 * torch.randn(2, 16000)
    with torch.no_grad():
        offline = enhancer(noisy)
        blocks = enhancer(noisy, block_frames=7)
    assert (blocks - offline).abs().max() <= 1e-5
    assert (StreamingEnhancer(enhancer, batch=2).enhance(noisy) - offline).abs().max() <= 1e-4


@pytest.mark.parametrize("bad", [0, -6.0, "loud", True])
def test_a_bad_limit_is_named(bad):
    with pytest.raises(ConfigError, match=r"module\.attenuation_limit_db must be a positive"):
        _enhancer("mask", bad)


def test_the_training_config_sets_the_limit_and_null_means_none():
    default = compose_config(["experiment=quickstart"])
    limited = compose_config(["experiment=quickstart", "module.attenuation_limit_db=12"])
    for cfg, expected in ((default, default.module.attenuation_limit_db), (limited, 12.0)):
        enhancer = Enhancer.from_config(OmegaConf.to_container(cfg, resolve=True))
        assert enhancer.attenuation_limit_db == expected
    seed = Enhancer.from_config(OmegaConf.to_container(compose_config(), resolve=True))
    assert seed.attenuation_limit_db is None  # the report's CRN has none
