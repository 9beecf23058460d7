"""The inference module: STFT, magnitude compression, the CRN, resynthesis with the noisy phase.

Training (``crn_lightning.module``), evaluation, file enhancement, streaming and the ONNX export
all run the enhancement through an ``Enhancer``; none of them needs Lightning.

The steps, each a method, so that another kind of network output changes the ``Enhancer``
alone and not its callers:

- ``estimate`` / ``estimate_stream``: noisy magnitude → the network's estimate (here the
  compressed clean magnitude |Ŝ|^c),
- ``target``: the clean magnitude in the estimate's domain (what the loss compares it with),
- ``decompress`` and ``enhance_spectrum``: the estimate → enhanced magnitude and waveform,
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
from crn_lightning.models.crn import CRN, CRNState
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


class Enhancer(nn.Module):
    """Waveforms in, enhanced waveforms out: the network sees the compressed noisy magnitude
    |X|^c and estimates |Ŝ|^c; the decompressed estimate is resynthesised with the noisy phase.

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
    ) -> None:
        super().__init__()
        if not 0 < compression <= 1:
            raise ConfigError(f"module.compression must be in (0, 1], got {compression}")
        self.network, self.stft = network, stft
        self.compression, self.sample_rate = compression, sample_rate
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
    def estimate(self, noisy_mag: torch.Tensor, block_frames: int | None = None) -> torch.Tensor:
        """(B, F, T) noisy magnitude → (B, F, T) estimate in the compressed domain.

        ``block_frames``: run the network over blocks of that many frames, carrying its state
        from block to block: the same result, with memory bounded by a block (long recordings).
        """
        if block_frames is None:
            return self.estimate_stream(noisy_mag)[0]
        blocks, state = [], None
        for start in range(0, noisy_mag.shape[-1], block_frames):
            block, state = self.estimate_stream(noisy_mag[..., start : start + block_frames], state)
            blocks.append(block)
        return torch.cat(blocks, dim=-1)

    def estimate_stream(
        self, noisy_mag: torch.Tensor, state: CRNState | None = None
    ) -> tuple[torch.Tensor, CRNState]:
        """``estimate`` of frames that follow those ``state`` was returned for (``CRN.stream``;
        ``None`` starts a signal)."""
        features = noisy_mag.pow(self.compression).transpose(1, 2).unsqueeze(1)
        compiled = state is None and self._compiled_stream is not None
        estimate, state = (self._compiled_stream if compiled else self.network.stream)(
            features, state
        )
        return estimate.squeeze(1).transpose(1, 2), state

    def target(self, clean_mag: torch.Tensor) -> torch.Tensor:
        """The clean magnitude in the estimate's domain: what ``estimate`` is trained towards."""
        return clean_mag.pow(self.compression)

    def decompress(self, estimate: torch.Tensor) -> torch.Tensor:
        """The enhanced magnitude of an ``estimate``."""
        return estimate.clamp_min(0).pow(1.0 / self.compression)

    def enhance_spectrum(
        self,
        noisy_mag: torch.Tensor,
        noisy_phase: torch.Tensor,
        length: int,
        block_frames: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(estimate, enhanced magnitude, enhanced waveform of ``length`` samples) for a noisy
        STFT: the estimated magnitude resynthesised with the noisy phase."""
        estimate = self.estimate(noisy_mag, block_frames)
        magnitude = self.decompress(estimate)
        return estimate, magnitude, self.stft.inverse(magnitude, noisy_phase, length)

    def stream_spectrum(
        self, noisy_spectrum: torch.Tensor, state: CRNState | None
    ) -> tuple[torch.Tensor, CRNState]:
        """(B, F, K) complex spectra of frames that follow ``state``'s → enhanced complex
        spectra and the new state (the streaming enhancer's step)."""
        estimate, state = self.estimate_stream(noisy_spectrum.abs(), state)
        return torch.polar(self.decompress(estimate), noisy_spectrum.angle()), state

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
