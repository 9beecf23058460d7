"""The inference module: STFT, compression, the CRN, resynthesis.

Training (``crn_lightning.module``), evaluation, file enhancement, streaming and the ONNX export
all run the enhancement through an ``Enhancer``; none of them needs Lightning.

The network works in one of two domains, set by ``model.output`` (crn_lightning.models.crn):
the magnitude outputs see the compressed noisy magnitude |X|^c and estimate |Ŝ|^c (the noisy
phase resynthesises it); the complex outputs see the compressed noisy spectrum |X|^c·e^{jφ}
(real, imaginary and optionally |X|^c as channels) and estimate |Ŝ|^c·e^{jφ̂}. The steps, each
a method, hide the domain from their callers:

- ``noisy_input``: the noisy STFT (magnitude, phase) → the enhancer's input ``noisy``: the
  magnitude (B, F, T), or for complex outputs real and imaginary parts (B, 2, F, T);
- ``estimate`` / ``estimate_stream``: ``noisy`` → the network's estimate in the compressed
  domain ((B, F, T) or (B, 2, F, T));
- ``target``: the clean spectrum in the estimate's domain (what an MSE compares it with);
- ``decompress``: the estimate → the enhanced STFT in ``noisy``'s domain (real tensors only:
  the ONNX graphs are ``decompress(estimate(noisy))``);
- ``output_spectrum``, ``resynthesise``, ``enhance_spectrum``: the enhanced complex spectrum
  and waveform; ``limit_attenuation`` mixes a share of the noisy spectrum back in at inference
  (``module.attenuation_limit_db``; training losses see the network's output alone);
- ``stream_spectrum``: noisy complex frames → enhanced complex frames (streaming).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from torch import nn

from crn_lightning.errors import ConfigError
from crn_lightning.models.crn import CRN, CRNState, is_complex
from crn_lightning.stft import STFT
from crn_lightning.streaming import StreamingEnhancer

# Where a checkpoint keeps the resolved training config (written by crn_lightning.module).
CHECKPOINT_CONFIG_KEY = "crn_lightning_config"
# The prefix of the Enhancer's weights in a training checkpoint's state_dict.
STATE_DICT_PREFIX = "enhancer."


def build_network(config: Mapping[str, Any]) -> tuple[CRN, STFT]:
    """The freshly initialised network and STFT of a resolved training config (``model``,
    ``stft``)."""
    stft = instantiate(config["stft"])
    return instantiate(config["model"], n_freqs=stft.n_freqs), stft


def power_law(real: torch.Tensor, imag: torch.Tensor, exponent: float) -> torch.Tensor:
    """The complex values (real, imag) with their magnitude raised to ``exponent``, their phase
    kept: (real, imag)·|·|^(exponent − 1), stacked as (..., 2, ...) along ``real``'s dim 1.

    Real arithmetic only (the ONNX graphs run it), and finite with finite gradients at 0: the
    squared magnitude is clamped at 1e-20 (a magnitude of 1e-10, some 200 dB below speech).
    """
    scale = (real.square() + imag.square()).clamp_min(1e-20).pow((exponent - 1) / 2)
    return torch.cat([real * scale, imag * scale], dim=1)


class Enhancer(nn.Module):
    """Waveforms in, enhanced waveforms out (see the module docstring for the two domains):
    the magnitude models resynthesise the decompressed |Ŝ| with the noisy phase, the complex
    ones the decompressed complex estimate with its own phase.

    ``compile``: torch.compile the network for whole signals (``estimate`` without a state);
    streaming (with a state) runs eagerly. Compilation happens on the first call.
    ``config``: the resolved training config it was built from (empty when built by hand).
    """

    def __init__(
        self,
        network: CRN,
        stft: STFT,
        compression: float = 1.0,
        sample_rate: int = 16000,
        compile: bool = False,
        config: Mapping[str, Any] | None = None,
        attenuation_limit_db: float | None = None,
    ) -> None:
        super().__init__()
        if not 0 < compression <= 1:
            raise ConfigError(f"module.compression must be in (0, 1], got {compression}")
        self.network, self.stft = network, stft
        self.compression, self.sample_rate = compression, sample_rate
        self.set_attenuation_limit(attenuation_limit_db, "module.attenuation_limit_db")
        self.config = dict(config or {})
        self._compiled_stream = torch.compile(network.stream) if compile else None

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Enhancer:
        """A freshly initialised ``Enhancer`` for a resolved training config (its stft, model,
        module.compression and data.sample_rate). It runs eagerly: ``module.compile`` is a
        training option (streaming and the ONNX export trace the plain network)."""
        network, stft = build_network(config)
        return cls(
            network,
            stft,
            compression=config["module"]["compression"],
            sample_rate=config["data"]["sample_rate"],
            config=config,
            # Checkpoints written before the key existed had no limit.
            attenuation_limit_db=config["module"].get("attenuation_limit_db"),
        )

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, map_location: str | torch.device = "cpu"
    ) -> Enhancer:
        """The ``Enhancer`` saved in a training checkpoint (config and weights), in eval mode."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint not found: {path}")
        # weights_only: tensors and plain containers only, never arbitrary pickled objects.
        try:
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as err:  # a file that is no checkpoint fails in many ways (KeyError, ...)
            raise ValueError(
                f"{path}: not a readable PyTorch checkpoint ({type(err).__name__}: {err})"
            ) from err
        config = checkpoint.get(CHECKPOINT_CONFIG_KEY) if isinstance(checkpoint, dict) else None
        if not config:
            raise ValueError(
                f"{path}: no '{CHECKPOINT_CONFIG_KEY}' in it; "
                "was it written by crn_lightning.train?"
            )
        state = {
            key.removeprefix(STATE_DICT_PREFIX): value
            for key, value in checkpoint.get("state_dict", {}).items()
            if key.startswith(STATE_DICT_PREFIX)
        }
        if not state:
            raise ValueError(
                f"{path}: its state_dict holds no '{STATE_DICT_PREFIX}*' weights (written by an "
                "older crn_lightning.train, before the Enhancer?)"
            )
        enhancer = cls.from_config(config)
        enhancer.load_state_dict(state)
        return enhancer.eval()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def num_parameters(self) -> int:
        return self.network.num_parameters()

    # -- the steps ---------------------------------------------------------------------------
    @property
    def complex(self) -> bool:
        """Whether the network estimates the complex spectrum (``model.output`` complex_*)."""
        return is_complex(self.network.output)

    def noisy_input(self, noisy_mag: torch.Tensor, noisy_phase: torch.Tensor) -> torch.Tensor:
        """The noisy STFT (B, F, T) as ``estimate`` takes it: the magnitude itself, or for
        complex outputs its real and imaginary parts (B, 2, F, T)."""
        if not self.complex:
            return noisy_mag
        return torch.stack([noisy_mag * noisy_phase.cos(), noisy_mag * noisy_phase.sin()], 1)

    def spectrum_input(self, noisy_spectrum: torch.Tensor) -> torch.Tensor:
        """``noisy_input`` of a complex spectrum (B, F, K) (streaming, ONNX Runtime)."""
        if not self.complex:
            return noisy_spectrum.abs()
        return torch.view_as_real(noisy_spectrum).movedim(-1, 1)

    def _features(self, noisy: torch.Tensor) -> torch.Tensor:
        """``noisy`` → the network's input (B, C, T, F): |X|^c, or the real and imaginary
        parts of |X|^c·e^{jφ} (and |X|^c when the network takes 3 channels)."""
        if not self.complex:
            return noisy.pow(self.compression).transpose(1, 2).unsqueeze(1)
        compressed = power_law(noisy[:, :1], noisy[:, 1:], self.compression)
        if self.network.input_channels == 3:
            magnitude = compressed.square().sum(dim=1, keepdim=True).sqrt()
            compressed = torch.cat([compressed, magnitude], dim=1)
        return compressed.transpose(2, 3)

    def estimate(self, noisy: torch.Tensor, block_frames: int | None = None) -> torch.Tensor:
        """``noisy_input`` → the estimate in the compressed domain: |Ŝ|^c (B, F, T), or the
        real and imaginary parts of |Ŝ|^c·e^{jφ̂} (B, 2, F, T) for complex outputs.

        ``block_frames``: run the network over blocks of that many frames, carrying its state
        from block to block: the same result, with memory bounded by a block (long recordings).
        """
        if block_frames is None:
            return self.estimate_stream(noisy)[0]
        blocks, state = [], None
        for start in range(0, noisy.shape[-1], block_frames):
            block, state = self.estimate_stream(noisy[..., start : start + block_frames], state)
            blocks.append(block)
        return torch.cat(blocks, dim=-1)

    def estimate_stream(
        self, noisy: torch.Tensor, state: CRNState | None = None
    ) -> tuple[torch.Tensor, CRNState]:
        """``estimate`` of frames that follow those ``state`` was returned for (``CRN.stream``;
        ``None`` starts a signal)."""
        compiled = state is None and self._compiled_stream is not None
        estimate, state = (self._compiled_stream if compiled else self.network.stream)(
            self._features(noisy), state
        )
        if not self.complex:
            return estimate.squeeze(1).transpose(1, 2), state
        return estimate.transpose(2, 3), state

    def target(self, clean_spectrum: torch.Tensor) -> torch.Tensor:
        """The clean complex spectrum (B, F, T) in the estimate's domain: what ``estimate``
        is trained towards (|S|^c, or the real and imaginary parts of |S|^c·e^{jφ_S})."""
        if not self.complex:
            return clean_spectrum.abs().pow(self.compression)
        clean = torch.view_as_real(clean_spectrum).movedim(-1, 1)
        return power_law(clean[:, :1], clean[:, 1:], self.compression)

    def decompress(self, estimate: torch.Tensor) -> torch.Tensor:
        """The enhanced STFT of an ``estimate``, in ``noisy_input``'s domain: the magnitude,
        or the real and imaginary parts."""
        if not self.complex:
            return estimate.clamp_min(0).pow(1.0 / self.compression)
        return power_law(estimate[:, :1], estimate[:, 1:], 1.0 / self.compression)

    def output_spectrum(self, enhanced: torch.Tensor, noisy_phase: torch.Tensor) -> torch.Tensor:
        """The complex spectrum (B, F, T) of ``decompress``'s output: an enhanced magnitude
        with the noisy phase, or the enhanced real and imaginary parts. Under bf16 mixed
        precision the network may hand back bf16: the noisy phase (from the STFT, outside
        autocast) sets the precision."""
        enhanced = enhanced.to(noisy_phase.dtype)
        if not self.complex:
            return torch.polar(enhanced, noisy_phase)
        return torch.complex(enhanced[:, 0], enhanced[:, 1])

    def set_attenuation_limit(self, limit_db: float | None, key: str) -> None:
        """Set ``limit_attenuation``'s limit (dB > 0, or None: no limit); ``key`` names the
        config key it came from in the error."""
        if limit_db is not None and (
            isinstance(limit_db, bool) or not isinstance(limit_db, int | float) or limit_db <= 0
        ):
            raise ConfigError(
                f"{key} must be a positive number of dB or null (no limit), got {limit_db!r}"
            )
        self.attenuation_limit_db = None if limit_db is None else float(limit_db)

    def limit_attenuation(
        self, spectrum: torch.Tensor, noisy_spectrum: torch.Tensor
    ) -> torch.Tensor:
        """The enhanced complex spectrum with ``10^(-limit/20)`` of the noisy one mixed back in
        (DeepFilterNet's attenuation limit): no bin of a magnitude model's output lies more than
        the limit below the noisy bin, and residual noise stays natural instead of being carved
        into musical noise. Unchanged without ``attenuation_limit_db``."""
        if self.attenuation_limit_db is None:
            return spectrum
        share = 10.0 ** (-self.attenuation_limit_db / 20.0)
        return (1.0 - share) * spectrum + share * noisy_spectrum.to(spectrum.dtype)

    def resynthesise(self, spectrum: torch.Tensor, length: int) -> torch.Tensor:
        """The waveform (B, ``length``) of a complex spectrum (B, F, T): the inverse STFT."""
        return self.stft.inverse_spectrogram(spectrum, length=length)

    def enhance_spectrum(
        self,
        noisy_mag: torch.Tensor,
        noisy_phase: torch.Tensor,
        length: int,
        block_frames: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(estimate, enhanced magnitude, enhanced waveform of ``length`` samples) for a noisy
        STFT."""
        estimate = self.estimate(self.noisy_input(noisy_mag, noisy_phase), block_frames)
        enhanced = self.decompress(estimate)
        spectrum = self.limit_attenuation(
            self.output_spectrum(enhanced, noisy_phase), torch.polar(noisy_mag, noisy_phase)
        )
        return estimate, spectrum.abs(), self.resynthesise(spectrum, length)

    def stream_spectrum(
        self, noisy_spectrum: torch.Tensor, state: CRNState | None
    ) -> tuple[torch.Tensor, CRNState]:
        """(B, F, K) complex spectra of frames that follow ``state``'s → enhanced complex
        spectra and the new state (the streaming enhancer's step)."""
        estimate, state = self.estimate_stream(self.spectrum_input(noisy_spectrum), state)
        spectrum = self.output_spectrum(self.decompress(estimate), noisy_spectrum.angle())
        return self.limit_attenuation(spectrum, noisy_spectrum), state

    # -- waveforms ---------------------------------------------------------------------------
    def enhance(self, waveform: torch.Tensor, block_frames: int | None = None) -> torch.Tensor:
        """Enhance an (L,) or (B, L) waveform (see ``estimate`` for ``block_frames``)."""
        if waveform.dim() not in (1, 2):
            raise ValueError(
                f"expected (samples,) or (batch, samples) audio, got {tuple(waveform.shape)}"
            )
        batch = waveform if waveform.dim() == 2 else waveform.unsqueeze(0)
        spectrum = self.stft.magnitude_phase(batch)
        enhanced = self.enhance_spectrum(*spectrum, batch.shape[-1], block_frames)[2]
        return enhanced if waveform.dim() == 2 else enhanced.squeeze(0)

    def forward(self, waveform: torch.Tensor, block_frames: int | None = None) -> torch.Tensor:
        return self.enhance(waveform, block_frames)

    def stream(self, batch: int = 1) -> StreamingEnhancer:
        """A real-time enhancer of ``batch`` parallel streams, one hop at a time."""
        return StreamingEnhancer(self, batch)
