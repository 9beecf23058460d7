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
        if self.spectrogram.center and waveform.shape[-1] <= self.n_fft // 2:
            # The centred STFT mirrors n_fft/2 samples at each end (torch's error is cryptic).
            raise ValueError(
                f"{waveform.shape[-1]} samples are too short for the STFT (stft.n_fft "
                f"{self.n_fft}): a signal needs more than {self.n_fft // 2}"
            )
        return self.spectrogram(waveform)

    def magnitude_phase(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        spec = self(waveform)
        return spec.abs(), spec.angle()

    def inverse(self, magnitude: torch.Tensor, phase: torch.Tensor, length: int) -> torch.Tensor:
        # Under bf16 mixed precision the network may hand back a bf16 magnitude; the phase
        # (from the STFT, outside autocast) sets the precision of the inverse.
        magnitude = magnitude.to(phase.dtype)
        return self.inverse_spectrogram(torch.polar(magnitude, phase), length=length)

    # -- frame by frame (crn_lightning.streaming): the same window and transforms ----------
    @property
    def window(self) -> torch.Tensor:
        """The window as applied to an ``n_fft`` frame (zero-padded on both sides when
        ``win_length < n_fft``, as ``torch.stft`` does)."""
        window = self.spectrogram.window
        left = (self.n_fft - self.win_length) // 2
        return torch.nn.functional.pad(window, (left, self.n_fft - self.win_length - left))

    def frame_spectra(self, padded: torch.Tensor) -> torch.Tensor:
        """Spectra (B, F, K) of the K whole frames of ``padded`` (B, n_fft + (K-1)·hop), a
        stretch of the signal as the centred STFT pads it: ``forward``'s frames, K at a time."""
        return torch.stft(
            padded,
            self.n_fft,
            self.hop_length,
            self.win_length,
            window=self.spectrogram.window,
            center=False,
            return_complex=True,
        )

    def frame_waveforms(self, spectra: torch.Tensor) -> torch.Tensor:
        """Windowed inverse FFTs (B, K, n_fft) of spectra (B, F, K): what ``inverse``
        overlap-adds (and divides by the overlap-added squared window)."""
        return torch.fft.irfft(spectra.transpose(1, 2), n=self.n_fft) * self.window
