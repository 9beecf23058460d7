"""The training objectives (config group ``loss``), in one place: training, validation, test
and evaluate all use the run's own.

Every loss takes one ``LossInputs`` (what it may compare for a batch) and gives the batch
value, or with ``per_clip=True`` one value per clip (the scored records):

- ``CompressedMagnitudeMSE`` (``loss=mse``, the report): MSE between the ``Enhancer``'s
  estimate and target in its compressed domain;
- ``CompressedSpectrumLoss`` (``loss=compressed``, Braun & Tashev 2021): power-law
  compressed magnitudes and compressed complex spectra, mixed;
- ``NegativeSISDR`` (``loss=si_sdr``): minus the SI-SDR of the resynthesised waveform;
- ``NegativeSTOI`` (``loss=stoi``): minus a differentiable STOI of the resynthesised waveform;
- ``MultiResolutionSTFTLoss`` (``loss=multires_stft``): spectral convergence and log-magnitude
  L1 over several STFT resolutions (as facebookresearch/denoiser);
- ``WeightedSum`` (``loss=combo``): weighted terms of the above.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
import torchaudio
from hydra.utils import instantiate
from pystoi.stoi import FS as STOI_RATE  # STOI's own rate, 10 kHz
from pystoi.stoi import N_FRAME, N
from torch_stoi import NegSTOILoss

from crn_lightning.enhancer import power_law
from crn_lightning.errors import ConfigError
from crn_lightning.metrics import si_sdr
from crn_lightning.stft import STFT

if TYPE_CHECKING:
    from crn_lightning.enhancer import Enhancer


class LossInputs:
    """What a loss may compare for a batch of B clips, each computed when a loss first asks
    for it (an MSE never resynthesises):

    - ``estimate``, ``target``: the ``Enhancer``'s estimate and the clean speech in its
      compressed domain ((B, F, T) magnitudes, or (B, 2, F, T) real and imaginary parts);
    - ``enhanced_spectrum``, ``clean_spectrum``: complex STFTs (B, F, T), decompressed;
    - ``enhanced``, ``clean``: waveforms (B, L).

    ``enhanced``: the enhanced waveform where it is at hand already (validation).
    """

    def __init__(
        self,
        enhancer: Enhancer,
        estimate: torch.Tensor,
        noisy_phase: torch.Tensor,
        clean: torch.Tensor,
        enhanced: torch.Tensor | None = None,
    ) -> None:
        self.enhancer, self.estimate, self.noisy_phase, self.clean = (
            enhancer,
            estimate,
            noisy_phase,
            clean,
        )
        if enhanced is not None:
            self.__dict__["enhanced"] = enhanced  # cached_property's own slot

    @cached_property
    def clean_spectrum(self) -> torch.Tensor:
        return self.enhancer.stft(self.clean)

    @cached_property
    def target(self) -> torch.Tensor:
        return self.enhancer.target(self.clean_spectrum)

    @cached_property
    def enhanced_spectrum(self) -> torch.Tensor:
        enhanced = self.enhancer.decompress(self.estimate)
        return self.enhancer.output_spectrum(enhanced, self.noisy_phase)

    @cached_property
    def enhanced(self) -> torch.Tensor:
        return self.enhancer.resynthesise(self.enhanced_spectrum, self.clean.shape[-1])


def _per_clip_mean(values: torch.Tensor) -> torch.Tensor:
    return values.mean(dim=tuple(range(1, values.dim())))


class Loss(ABC):
    """A training objective: ``loss(inputs)`` for the batch, ``loss(inputs, per_clip=True)``
    per clip (B,). The batch value is the mean over clips unless a loss says otherwise."""

    def __call__(self, inputs: LossInputs, per_clip: bool = False) -> torch.Tensor:
        return self.per_clip(inputs) if per_clip else self.batch(inputs)

    @abstractmethod
    def per_clip(self, inputs: LossInputs) -> torch.Tensor: ...

    def batch(self, inputs: LossInputs) -> torch.Tensor:
        return self.per_clip(inputs).mean()

    @property
    def label(self) -> str:
        """A short name for tables and TensorBoard's HPARAMS: the class name."""
        return type(self).__name__


class CompressedMagnitudeMSE(Loss):
    """The report's loss: mean squared error between the ``Enhancer``'s estimate and target in
    its compressed domain (|Ŝ|^c vs |S|^c; real and imaginary parts for complex outputs)."""

    def per_clip(self, inputs: LossInputs) -> torch.Tensor:
        return _per_clip_mean((inputs.estimate - inputs.target).square())

    def batch(self, inputs: LossInputs) -> torch.Tensor:
        # As it always was computed: the report's runs stay reproducible bit for bit.
        return F.mse_loss(inputs.estimate, inputs.target)


def _compressed(spectrum: torch.Tensor, exponent: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(|X|^e, the real and imaginary parts of |X|^e·e^{jφ}) of a complex (B, F, T) spectrum,
    with finite gradients at 0 (``power_law``)."""
    parts = torch.view_as_real(spectrum).movedim(-1, 1)
    magnitude = parts.square().sum(dim=1).clamp_min(1e-20).pow(exponent / 2)
    return magnitude, power_law(parts[:, :1], parts[:, 1:], exponent)


class CompressedSpectrumLoss(Loss):
    """Braun & Tashev (2021): (1 − α)·MSE(|S|^c, |Ŝ|^c) + α·MSE(|S|^c·e^{jφ_S}, |Ŝ|^c·e^{jφ_Ŝ})
    on the project's STFT of the enhanced and clean speech, c = ``exponent``, α =
    ``complex_weight``; the complex MSE is the mean of |difference|². Independent of the
    network's own ``module.compression``: it compares the decompressed spectra.

    ``over_suppression_weight`` w ≥ 1 makes the magnitude term asymmetric, as VoiceFilter-Lite's
    loss (Wang et al. 2020): a bin whose estimate falls short of the clean speech counts w²
    times, so the network learns to remove less speech with the noise; 1 is Braun & Tashev."""

    def __init__(
        self,
        exponent: float = 0.3,
        complex_weight: float = 0.3,
        over_suppression_weight: float = 1.0,
    ) -> None:
        if not 0 < exponent <= 1:
            raise ConfigError(f"loss.exponent must be in (0, 1], got {exponent}")
        if not 0 <= complex_weight <= 1:
            raise ConfigError(f"loss.complex_weight must be in [0, 1], got {complex_weight}")
        if not over_suppression_weight >= 1:
            raise ConfigError(
                f"loss.over_suppression_weight must be >= 1 (1: symmetric), got "
                f"{over_suppression_weight}"
            )
        self.exponent, self.complex_weight = exponent, complex_weight
        self.over_suppression_weight = over_suppression_weight

    def per_clip(self, inputs: LossInputs) -> torch.Tensor:
        enhanced_mag, enhanced = _compressed(inputs.enhanced_spectrum, self.exponent)
        clean_mag, clean = _compressed(inputs.clean_spectrum, self.exponent)
        shortfall = clean_mag - enhanced_mag  # > 0: speech removed with the noise
        if self.over_suppression_weight != 1:
            shortfall = torch.where(shortfall > 0, self.over_suppression_weight, 1.0) * shortfall
        magnitude = _per_clip_mean(shortfall.square())
        # Summed over real and imaginary parts: the mean of |difference|² over bins.
        spectrum = _per_clip_mean((enhanced - clean).square().sum(dim=1))
        return (1 - self.complex_weight) * magnitude + self.complex_weight * spectrum


class NegativeSISDR(Loss):
    """Minus the scale-invariant SDR (dB, zero-mean: ``metrics.si_sdr``, torchmetrics) of the
    resynthesised waveform against the clean one; at its minimum for a perfect estimate."""

    def per_clip(self, inputs: LossInputs) -> torch.Tensor:
        return -si_sdr(inputs.enhanced, inputs.clean)


# The shortest clip STOI is defined on: N frames of N_FRAME samples, hop N_FRAME / 2.
_STOI_MIN_SAMPLES = N_FRAME + N * (N_FRAME // 2)


class NegativeSTOI(Loss):
    """Minus the short-time objective intelligibility (Taal et al. 2011; ESTOI, Jensen & Taal
    2016, with ``extended``) of the resynthesised waveform, made differentiable by asteroid's
    ``torch_stoi`` (pystoi's third-octave bands, 256-sample frames, VAD), after resampling to
    STOI's 10 kHz with torchaudio. A term that rewards keeping the speech envelopes that
    intelligibility rests on, which spectral losses trade away (Kolbæk et al. 2018).
    Evaluation keeps pystoi (``metrics``): torch_stoi's figure differs from it by up to ~0.01
    (another resampler)."""

    def __init__(self, sample_rate: int = 16000, extended: bool = False) -> None:
        self.sample_rate = sample_rate
        # The transform builds its sinc kernel once (torchaudio.functional.resample rebuilds it
        # on every call: ~17 times slower on a training batch), as crn_lightning.audio does.
        self.resample = torchaudio.transforms.Resample(sample_rate, STOI_RATE)
        self.stoi = NegSTOILoss(STOI_RATE, extended=extended, do_resample=False)

    def per_clip(self, inputs: LossInputs) -> torch.Tensor:
        enhanced, clean = inputs.enhanced, inputs.clean.to(inputs.enhanced.dtype)
        # Their kernel, window and band matrix on the batch's device and in its dtype (as
        # torchaudio.functional.resample builds its kernel); a no-op once there.
        self.resample.to(enhanced.device, enhanced.dtype)
        self.stoi.to(enhanced.device, enhanced.dtype)
        enhanced, clean = self.resample(enhanced), self.resample(clean)
        if clean.shape[-1] < _STOI_MIN_SAMPLES:
            raise ValueError(
                f"loss=stoi needs clips of at least {_STOI_MIN_SAMPLES / STOI_RATE:.2f} s (STOI "
                f"correlates {N} frames of {N_FRAME} samples at {STOI_RATE} Hz), got "
                f"{inputs.clean.shape[-1] / self.sample_rate:.2f} s: raise "
                "data.train_clip_seconds (or data.clip_seconds)"
            )
        # A clip without speech frames (STOI's VAD: 40 dB below its loudest) counts 0.
        return self.stoi(enhanced, clean)


class MultiResolutionSTFTLoss(Loss):
    """Spectral convergence ‖|S| − |Ŝ|‖_F / ‖|S|‖_F and the L1 distance of log magnitudes,
    averaged over STFT resolutions (``fft_sizes``, ``hop_sizes``, ``win_lengths``; defaults
    those of facebookresearch/denoiser and auraloss), weighted ``sc_weight``, ``mag_weight``.
    Magnitudes as there: sqrt(max(|X|², 1e-7)). Written on the project's ``STFT`` (centred,
    periodic Hann window, reflect padding: auraloss's framing too), per clip: auraloss gives
    one batch value only, and the scored records need one per clip."""

    def __init__(
        self,
        fft_sizes: Sequence[int] = (1024, 2048, 512),
        hop_sizes: Sequence[int] = (120, 240, 50),
        win_lengths: Sequence[int] = (600, 1200, 240),
        sc_weight: float = 0.5,
        mag_weight: float = 0.5,
    ) -> None:
        if not len(fft_sizes) == len(hop_sizes) == len(win_lengths) > 0:
            raise ConfigError(
                "loss.fft_sizes, loss.hop_sizes and loss.win_lengths must be lists of one "
                f"length (one entry per resolution), got {list(fft_sizes)}, "
                f"{list(hop_sizes)}, {list(win_lengths)}"
            )
        self.stfts = [
            STFT(n_fft, hop, win)
            for n_fft, hop, win in zip(fft_sizes, hop_sizes, win_lengths, strict=True)
        ]
        self.sc_weight, self.mag_weight = sc_weight, mag_weight

    def per_clip(self, inputs: LossInputs) -> torch.Tensor:
        enhanced, clean = inputs.enhanced, inputs.clean.to(inputs.enhanced.dtype)
        total = enhanced.new_zeros(enhanced.shape[0])
        for stft in self.stfts:
            stft.to(enhanced.device)  # its window; a no-op once there
            enhanced_mag = stft(enhanced).abs().square().clamp_min(1e-7).sqrt()
            clean_mag = stft(clean).abs().square().clamp_min(1e-7).sqrt()
            convergence = torch.linalg.vector_norm(clean_mag - enhanced_mag, dim=(1, 2))
            convergence = convergence / torch.linalg.vector_norm(clean_mag, dim=(1, 2))
            log_distance = _per_clip_mean((clean_mag.log() - enhanced_mag.log()).abs())
            total = total + self.sc_weight * convergence + self.mag_weight * log_distance
        return total / len(self.stfts)


class WeightedSum(Loss):
    """Σ weight · loss over ``terms``, each a mapping {weight: float, loss: Loss}."""

    def __init__(self, terms: Sequence[Mapping[str, Any]]) -> None:
        if not terms:
            raise ConfigError("loss.terms must list at least one {weight, loss}")
        self.terms: list[tuple[float, Loss]] = []
        for i, term in enumerate(terms):
            if set(term) != {"weight", "loss"} or not isinstance(term["loss"], Loss):
                raise ConfigError(
                    f"loss.terms[{i}] must be {{weight: <float>, loss: <a loss with "
                    f"_target_>}}, got {dict(term)}"
                )
            self.terms.append((float(term["weight"]), term["loss"]))

    def per_clip(self, inputs: LossInputs) -> torch.Tensor:
        return sum(weight * loss.per_clip(inputs) for weight, loss in self.terms)

    def batch(self, inputs: LossInputs) -> torch.Tensor:
        return sum(weight * loss.batch(inputs) for weight, loss in self.terms)

    @property
    def label(self) -> str:
        """The terms, e.g. ``CompressedSpectrumLoss + 0.5·NegativeSTOI``."""
        return " + ".join(
            loss.label if weight == 1 else f"{weight:g}·{loss.label}" for weight, loss in self.terms
        )


def loss_from_config(config: Mapping[str, Any]) -> Loss:
    """The training objective of a resolved training config (its ``loss``; the report's MSE
    for a config written before the ``loss`` group existed)."""
    if "loss" not in config:
        return CompressedMagnitudeMSE()
    return instantiate(config["loss"])
