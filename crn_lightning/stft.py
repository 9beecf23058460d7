"""The project's one STFT/iSTFT: torchaudio transforms wrapped in a module."""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

from crn_lightning.errors import ConfigError


class STFT(nn.Module):
    """Hann-window STFT and its inverse (report: n_fft 960, hop 160, centred).

    ``forward`` maps waveforms (B, L) to complex spectra (B, F, T) with F = n_fft // 2 + 1;
    ``magnitude_phase`` splits that into magnitude and phase; ``inverse`` rebuilds a waveform
    from a magnitude and a phase (the noisy phase, since the model estimates magnitude only).
    """

    def __init__(
        self,
        n_fft: int = 960,
        hop_length: int = 160,
        win_length: int | None = None,
        center: bool = True,
    ) -> None:
        super().__init__()
        win_length = n_fft if win_length is None else win_length
        if n_fft < 2:
            raise ConfigError(f"stft.n_fft must be at least 2, got {n_fft}")
        if not 0 < hop_length <= win_length:
            raise ConfigError(
                f"stft.hop_length must be in (0, win_length={win_length}], got {hop_length}"
            )
        if win_length > n_fft:
            raise ConfigError(f"stft.win_length ({win_length}) must not exceed n_fft ({n_fft})")
        self.n_fft, self.hop_length, self.win_length = n_fft, hop_length, win_length
        kwargs = dict(n_fft=n_fft, hop_length=hop_length, win_length=win_length, center=center)
        self.spectrogram = torchaudio.transforms.Spectrogram(power=None, **kwargs)
        self.inverse_spectrogram = torchaudio.transforms.InverseSpectrogram(**kwargs)

    @property
    def n_freqs(self) -> int:
        return self.n_fft // 2 + 1

    def n_frames(self, length: int) -> int:
        """Frames for a signal of ``length`` samples (centred framing)."""
        return length // self.hop_length + 1

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.spectrogram(waveform)

    def magnitude_phase(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        spec = self.spectrogram(waveform)
        return spec.abs(), spec.angle()

    def inverse(self, magnitude: torch.Tensor, phase: torch.Tensor, length: int) -> torch.Tensor:
        # Under bf16 mixed precision the network may hand back a bf16 magnitude; the phase
        # (from the STFT, outside autocast) sets the precision of the inverse.
        magnitude = magnitude.to(phase.dtype)
        return self.inverse_spectrogram(torch.polar(magnitude, phase), length=length)
