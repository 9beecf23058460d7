"""The training objectives (crn_lightning.losses) on real enhancer outputs: finite values and
gradients, per-clip values, their minimum at a perfect estimate, and the identity of every
output's domain (the clean spectrum as the estimate gives back the clean signal)."""

import functools

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from pystoi import stoi

from crn_lightning.compose import compose_config
from crn_lightning.enhancer import Enhancer
from crn_lightning.errors import ConfigError
from crn_lightning.losses import (
    CompressedMagnitudeMSE,
    CompressedSpectrumLoss,
    LossInputs,
    MultiResolutionSTFTLoss,
    NegativeSISDR,
    NegativeSTOI,
    WeightedSum,
    loss_from_config,
)
from crn_lightning.models.crn import CRN, OUTPUTS
from crn_lightning.stft import STFT

SR = 16000
LOSS_NAMES = ["mse", "compressed", "si_sdr", "stoi", "multires_stft", "combo", "compressed_stoi"]


def _enhancer(output: str, compression: float = 0.5) -> Enhancer:
    torch.manual_seed(0)
    stft = STFT(320, 160)
    network = CRN(stft.n_freqs, channels=(4, 8, 8, 16, 16), lstm_hidden=32, output=output)
    return Enhancer(network, stft, compression=compression)


def _clips(batch: int = 3, seconds: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Voiced 'speech' (harmonics of a gliding f0 under an envelope) and its noisy mixture."""
    rng = np.random.default_rng(0)
    t = np.arange(round(seconds * SR)) / SR
    clean = []
    for b in range(batch):
        f0 = 110 + 40 * b + 20 * np.sin(2 * np.pi * 0.8 * t)
        voice = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / SR) / k for k in range(1, 8))
        clean.append(0.1 * voice * np.clip(np.sin(np.pi * t / seconds) * 3, 0, 1))
    clean = torch.tensor(np.array(clean), dtype=torch.float32)
    noise = torch.from_numpy(rng.standard_normal(clean.shape).astype(np.float32))
    return clean, clean + 0.03 * noise


@functools.cache  # the losses hold no state between calls
def _loss(name: str):
    return instantiate(compose_config([f"loss={name}"]).loss)


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_every_loss_is_finite_with_gradients_for_every_output(name, output):
    enhancer, loss = _enhancer(output), _loss(name)
    clean, noisy = _clips()
    magnitude, phase = enhancer.stft.magnitude_phase(noisy)
    estimate = enhancer.estimate(enhancer.noisy_input(magnitude, phase))
    inputs = LossInputs(enhancer, estimate, phase, clean)
    value, per_clip = loss(inputs), loss(inputs, per_clip=True)
    assert value.dim() == 0 and torch.isfinite(value)
    assert per_clip.shape == (3,) and torch.isfinite(per_clip).all()
    # The batch value is the clips' mean (the MSE over equal-sized clips too).
    assert value.item() == pytest.approx(per_clip.mean().item(), rel=1e-5)
    value.backward()
    grads = [p.grad for p in enhancer.network.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def _perfect(enhancer: Enhancer, clean: torch.Tensor) -> LossInputs:
    """The estimate a perfect network gives: the clean speech in its own domain (the clean
    phase in place of the noisy one for the magnitude outputs)."""
    spectrum = enhancer.stft(clean)
    return LossInputs(enhancer, enhancer.target(spectrum), spectrum.angle(), clean)


@pytest.mark.parametrize("output", OUTPUTS)
def test_the_clean_spectrum_as_estimate_gives_back_the_clean_signal(output):
    # The identity through decompress, the output spectrum and the inverse STFT.
    enhancer = _enhancer(output)
    clean, _ = _clips()
    inputs = _perfect(enhancer, clean)
    assert (inputs.enhanced_spectrum - inputs.clean_spectrum).abs().max() < 1e-4
    assert (inputs.enhanced - clean).abs().max() < 1e-5


@pytest.mark.parametrize("output", ["mask", "complex_mask"])
def test_perfect_estimates_minimise_every_loss(output):
    enhancer = _enhancer(output)
    clean, noisy = _clips()
    perfect = _perfect(enhancer, clean)
    magnitude, phase = enhancer.stft.magnitude_phase(noisy)
    # The noisy speech as the estimate: what an identity network gives.
    noisy_estimate = enhancer.target(enhancer.stft(noisy))
    as_noisy = LossInputs(enhancer, noisy_estimate, phase, clean)
    for name in ("mse", "compressed", "multires_stft"):
        loss = _loss(name)
        assert float(loss(perfect)) < 1e-6 * float(loss(as_noisy)), name
        assert float(loss(as_noisy)) > 0, name
    si_sdr = _loss("si_sdr")
    # SI-SDR has no zero: a perfect waveform scores beyond 60 dB (the iSTFT's rounding).
    assert float(si_sdr(perfect)) < -60 < float(si_sdr(as_noisy))
    for name in ("combo", "stoi", "compressed_stoi"):
        assert float(_loss(name)(perfect)) < float(_loss(name)(as_noisy)), name
    # STOI's maximum is 1: a perfect waveform's negative STOI is -1.
    assert float(_loss("stoi")(perfect)) == pytest.approx(-1.0, abs=1e-3)


@pytest.mark.parametrize("extended", [False, True])
def test_negative_stoi_is_minus_pystois_score(extended):
    # torch_stoi resamples to 10 kHz here with torchaudio, pystoi with its own polyphase
    # filter: the two agree to about 0.01 (the figures evaluation reports are pystoi's).
    enhancer = _enhancer("mask")
    clean, noisy = _clips(seconds=2.0)
    magnitude, phase = enhancer.stft.magnitude_phase(noisy)
    inputs = LossInputs(enhancer, enhancer.target(enhancer.stft(noisy)), phase, clean)
    ours = -NegativeSTOI(SR, extended=extended)(inputs, per_clip=True)
    enhanced = inputs.enhanced.detach().numpy()
    reference = [
        stoi(c, e, SR, extended=extended) for c, e in zip(clean.numpy(), enhanced, strict=True)
    ]
    np.testing.assert_allclose(ours.detach().numpy(), reference, atol=0.01)
    assert min(reference) > 0.3 and max(reference) < 0.99  # neither trivial end of the scale


def test_negative_stoi_names_the_key_for_a_clip_too_short_for_stoi():
    enhancer = _enhancer("mask")
    clean, noisy = _clips(seconds=0.3)  # STOI needs 0.41 s
    magnitude, phase = enhancer.stft.magnitude_phase(noisy)
    inputs = LossInputs(enhancer, enhancer.target(enhancer.stft(noisy)), phase, clean)
    with pytest.raises(ValueError, match=r"at least 0\.41 s .* got 0\.30 s.*train_clip_seconds"):
        NegativeSTOI(SR)(inputs)


def test_a_weighted_sum_is_labelled_by_its_terms():
    assert _loss("compressed").label == "CompressedSpectrumLoss"
    assert _loss("compressed_stoi").label == "CompressedSpectrumLoss + 0.5·NegativeSTOI"
    assert _loss("combo").label == "CompressedSpectrumLoss + 0.001·NegativeSISDR"


def test_mse_is_the_reports_loss_exactly():
    enhancer = _enhancer("mapping", compression=1.0)
    clean, noisy = _clips()
    magnitude, phase = enhancer.stft.magnitude_phase(noisy)
    estimate = enhancer.estimate(magnitude)  # the magnitude outputs take the magnitude itself
    inputs = LossInputs(enhancer, estimate, phase, clean)
    expected = torch.nn.functional.mse_loss(estimate, enhancer.stft(clean).abs())
    assert torch.equal(CompressedMagnitudeMSE()(inputs), expected)


def test_compressed_loss_follows_braun_and_tashev():
    enhancer = _enhancer("complex_mapping")
    clean, noisy = _clips()
    spectrum = enhancer.stft(noisy)
    inputs = LossInputs(enhancer, enhancer.target(spectrum), spectrum.angle(), clean)
    c, alpha = 0.3, 0.3
    enhanced, target = spectrum, enhancer.stft(clean)
    magnitude = (enhanced.abs() ** c - target.abs() ** c).square().mean(dim=(1, 2))
    compressed = (
        (
            (enhanced.abs() ** c * torch.exp(1j * enhanced.angle()))
            - (target.abs() ** c * torch.exp(1j * target.angle()))
        )
        .abs()
        .square()
        .mean(dim=(1, 2))
    )
    expected = (1 - alpha) * magnitude + alpha * compressed
    got = CompressedSpectrumLoss(c, alpha)(inputs, per_clip=True)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-7)


def test_over_suppression_weight_counts_a_shortfall_w_squared_times():
    enhancer = _enhancer("complex_mapping")
    clean, noisy = _clips()
    spectrum = enhancer.stft(noisy)
    c, w = 0.3, 2.0
    inputs = LossInputs(enhancer, enhancer.target(spectrum), spectrum.angle(), clean)
    shortfall = enhancer.stft(clean).abs() ** c - spectrum.abs() ** c
    assert (shortfall > 0).any() and (shortfall < 0).any()  # both sides occur in this pair
    weights = torch.where(shortfall > 0, w**2, 1.0)
    expected = (weights * shortfall.square()).mean(dim=(1, 2))
    got = CompressedSpectrumLoss(c, complex_weight=0.0, over_suppression_weight=w)
    torch.testing.assert_close(got(inputs, per_clip=True), expected, rtol=1e-4, atol=1e-7)
    symmetric = CompressedSpectrumLoss(c, complex_weight=0.0)(inputs, per_clip=True)
    assert (got(inputs, per_clip=True) > symmetric).all()


def test_combo_is_the_weighted_sum_of_its_terms():
    enhancer = _enhancer("complex_mask")
    clean, noisy = _clips()
    magnitude, phase = enhancer.stft.magnitude_phase(noisy)
    with torch.no_grad():
        estimate = enhancer.estimate(enhancer.noisy_input(magnitude, phase))
    inputs = LossInputs(enhancer, estimate, phase, clean)
    combo = _loss("combo")
    expected = sum(w * loss(inputs, per_clip=True) for w, loss in combo.terms)
    torch.testing.assert_close(combo(inputs, per_clip=True), expected)
    assert [type(loss) for _, loss in combo.terms] == [CompressedSpectrumLoss, NegativeSISDR]
    compressed_stoi = _loss("compressed_stoi")
    assert [type(loss) for _, loss in compressed_stoi.terms] == [
        CompressedSpectrumLoss,
        NegativeSTOI,
    ]


def test_loss_arguments_are_checked_by_key():
    with pytest.raises(ConfigError, match="loss.exponent"):
        CompressedSpectrumLoss(exponent=0)
    with pytest.raises(ConfigError, match="loss.complex_weight"):
        CompressedSpectrumLoss(complex_weight=1.5)
    with pytest.raises(ConfigError, match="loss.over_suppression_weight"):
        CompressedSpectrumLoss(over_suppression_weight=0.5)
    with pytest.raises(ConfigError, match="one length"):
        MultiResolutionSTFTLoss(fft_sizes=[512, 1024], hop_sizes=[128], win_lengths=[512])
    with pytest.raises(ConfigError, match=r"loss.terms\[0\]"):
        WeightedSum([{"weight": 1.0, "los": NegativeSISDR()}])


def test_a_config_without_a_loss_group_trains_the_reports_mse():
    # Checkpoints written before the loss group: evaluate scores them with their MSE.
    assert isinstance(loss_from_config({"module": {}}), CompressedMagnitudeMSE)
    assert isinstance(
        loss_from_config({"loss": {"_target_": NegativeSISDR.__module__ + ".NegativeSISDR"}}),
        NegativeSISDR,
    )
