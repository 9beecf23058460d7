"""The report's causal convolutional recurrent network (CRN), for any number of frequency bins."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from crn_lightning.errors import ConfigError

KERNEL = (2, 3)  # (time, frequency), as in the report
STRIDE = (1, 2)


def encoder_freq_sizes(n_freqs: int, depth: int) -> list[int]:
    """Frequency sizes through the encoder: 481 → 240 → 119 → 59 → 29 → 14 for the report."""
    sizes = [n_freqs]
    for _ in range(depth):
        sizes.append((sizes[-1] - KERNEL[1]) // STRIDE[1] + 1)
    if sizes[-1] < 1:
        raise ConfigError(
            f"{n_freqs} frequency bins are too few for an encoder of depth {depth} "
            f"(sizes {sizes}): use a larger stft.n_fft or fewer model.channels"
        )
    return sizes


class CausalConvBlock(nn.Module):
    """Conv2d (2, 3) / stride (1, 2) with one past frame of padding, so frame t sees t-1 and t."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pad = nn.ZeroPad2d((0, 0, KERNEL[0] - 1, 0))  # (F left, F right, T past, T future)
        self.conv = nn.Conv2d(in_channels, out_channels, KERNEL, STRIDE)
        self.norm = nn.BatchNorm2d(out_channels)
        self.act = nn.ELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(self.pad(x))))


class CausalDeconvBlock(nn.Module):
    """ConvTranspose2d (2, 3) / stride (1, 2); the frame it adds at the end is cropped.

    A transposed convolution with kernel 2 in time writes input frame t into output frames t
    and t+1; keeping the first T frames keeps it causal and leaves no edge artefact.
    ``output_padding`` (0 or 1) restores odd/even frequency sizes of the matching encoder level.
    """

    def __init__(
        self, in_channels: int, out_channels: int, output_padding: int, final: bool
    ) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(
            in_channels, out_channels, KERNEL, STRIDE, output_padding=(0, output_padding)
        )
        self.norm = nn.BatchNorm2d(out_channels) if not final else None
        self.act = nn.ELU() if not final else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[2]
        x = self.deconv(x)[:, :, :frames]
        if self.norm is not None:
            x = self.act(self.norm(x))
        return x


class CRN(nn.Module):
    """Causal CRN: conv encoder → LSTM over time → transposed-conv decoder with skips.

    Input and output are magnitudes (B, 1, T, F). With ``output="mapping"`` (the report) the
    last layer is BatchNorm + ReLU and predicts the clean magnitude directly; with
    ``output="mask"`` it predicts a sigmoid mask that multiplies the input.
    ``lstm_hidden=None`` uses the flattened bottleneck size (the report: 256 × 14 = 3584).
    """

    def __init__(
        self,
        n_freqs: int,
        channels: Sequence[int] = (16, 32, 64, 128, 256),
        lstm_hidden: int | None = None,
        lstm_layers: int = 1,
        output: str = "mapping",
    ) -> None:
        super().__init__()
        if output not in ("mapping", "mask"):
            raise ConfigError(f"model.output must be 'mapping' or 'mask', got {output!r}")
        if not channels:
            raise ConfigError("model.channels must list at least one encoder layer")
        self.n_freqs, self.output = n_freqs, output
        self.freq_sizes = encoder_freq_sizes(n_freqs, len(channels))
        widths = [1, *channels]
        self.encoder = nn.ModuleList(
            CausalConvBlock(widths[i], widths[i + 1]) for i in range(len(channels))
        )
        bottleneck = channels[-1] * self.freq_sizes[-1]
        hidden = bottleneck if lstm_hidden is None else lstm_hidden
        self.lstm = nn.LSTM(bottleneck, hidden, num_layers=lstm_layers, batch_first=True)
        # The report's LSTM keeps the bottleneck width; a narrower one is projected back.
        self.project = nn.Linear(hidden, bottleneck) if hidden != bottleneck else nn.Identity()
        decoder = []
        for level in reversed(range(len(channels))):
            f_in, f_out = self.freq_sizes[level + 1], self.freq_sizes[level]
            output_padding = f_out - ((f_in - 1) * STRIDE[1] + KERNEL[1])
            decoder.append(
                CausalDeconvBlock(2 * widths[level + 1], widths[level], output_padding, level == 0)
            )
        self.decoder = nn.ModuleList(decoder)
        self.out_norm = nn.BatchNorm2d(1) if output == "mapping" else None

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        if magnitude.dim() != 4 or magnitude.shape[1] != 1 or magnitude.shape[3] != self.n_freqs:
            raise ConfigError(
                f"CRN expects (batch, 1, frames, {self.n_freqs}) magnitudes, "
                f"got {tuple(magnitude.shape)}"
            )
        x, skips = magnitude, []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        batch, width, frames, freqs = x.shape
        seq = x.permute(0, 2, 1, 3).reshape(batch, frames, width * freqs)
        seq, _ = self.lstm(seq)
        x = self.project(seq).reshape(batch, frames, width, freqs).permute(0, 2, 1, 3)
        for block, skip in zip(self.decoder, reversed(skips), strict=True):
            x = block(torch.cat([x, skip], dim=1))
        if self.output == "mask":
            return torch.sigmoid(x) * magnitude
        return torch.relu(self.out_norm(x))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
