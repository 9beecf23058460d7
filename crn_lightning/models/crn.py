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


# The state a CRN carries from one block of frames to the next (see ``CRN.stream``): for each
# encoder layer its last input frame, the LSTM's (h, c), for each decoder layer the part of its
# last output that spills into the next frame. A flat tuple of tensors, so that it can be an
# ONNX model's explicit inputs and outputs.
CRNState = tuple[torch.Tensor, ...]


class CausalConvBlock(nn.Module):
    """Conv2d (2, 3) / stride (1, 2) over the previous and the current frame.

    Before the first frame the previous frame is zeros (one past frame of zero padding);
    ``past`` continues from an earlier block of frames instead.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, KERNEL, STRIDE)
        self.norm = nn.BatchNorm2d(out_channels)
        self.act = nn.ELU()

    def forward(
        self, x: torch.Tensor, past: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(output, the last input frame: the next block's ``past``)."""
        if past is None:
            past = x.new_zeros(x.shape[0], x.shape[1], KERNEL[0] - 1, x.shape[3])
        y = self.act(self.norm(self.conv(torch.cat([past, x], dim=2))))
        return y, x[:, :, -(KERNEL[0] - 1) :]


class CausalDeconvBlock(nn.Module):
    """ConvTranspose2d (2, 3) / stride (1, 2); the frame it adds at the end is cropped.

    A transposed convolution with kernel 2 in time writes input frame t into output frames t
    and t+1; keeping the first T frames keeps it causal and leaves no edge artefact.
    ``output_padding`` (0 or 1) restores odd/even frequency sizes of the matching encoder level.
    The cropped frame, less the bias, is what the last input frame adds to the next frame:
    ``spill`` returns it and ``carry`` adds it to the first frame of the next block.
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

    def forward(
        self, x: torch.Tensor, carry: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(output, ``spill``: the next block's ``carry``)."""
        frames = x.shape[2]
        full = self.deconv(x)
        out = full[:, :, :frames]
        if carry is not None:
            out = torch.cat([out[:, :, :1] + carry, out[:, :, 1:]], dim=2)
        spill = full[:, :, frames:] - self.deconv.bias.view(1, -1, 1, 1)
        if self.norm is not None:
            out = self.act(self.norm(out))
        return out, spill


# What the CRN's last layer predicts (``model.output``). The magnitude outputs take and give
# one channel, the compressed magnitude; the complex ones give two, the real and imaginary
# parts of the compressed clean spectrum |Ŝ|^c·e^{jφ̂}, from the compressed noisy spectrum's
# real and imaginary parts (and optionally its magnitude) in their first input channels.
MAGNITUDE_OUTPUTS = ("mapping", "mask")
COMPLEX_OUTPUTS = ("complex_mapping", "complex_mask")
OUTPUTS = MAGNITUDE_OUTPUTS + COMPLEX_OUTPUTS


def is_complex(output: str) -> bool:
    """Whether ``model.output`` estimates the complex spectrum (else the magnitude)."""
    return output in COMPLEX_OUTPUTS


def input_channels_for(output: str, input_channels: int | None) -> int:
    """The network's input channels: 1 (compressed magnitude) for the magnitude outputs; for
    the complex ones 2 (real, imaginary) or 3 (with the compressed magnitude; the default)."""
    allowed = (2, 3) if is_complex(output) else (1,)
    channels = allowed[-1] if input_channels is None else input_channels
    if channels not in allowed:
        raise ConfigError(
            f"model.input_channels={input_channels} does not fit model.output={output}: "
            f"{' or '.join(map(str, allowed))} (or null)"
        )
    return channels


class CRN(nn.Module):
    """Causal CRN: conv encoder → LSTM over time → transposed-conv decoder with skips.

    Input (B, input_channels, T, F), output (B, 1 or 2, T, F); ``output`` (``OUTPUTS``):

    - ``mapping`` (the report): BatchNorm + ReLU, the clean (compressed) magnitude directly;
    - ``mask``: a sigmoid mask, times ``mask_bound``, multiplying the input magnitude;
    - ``complex_mapping`` (GCRN-style): the real and imaginary parts of the compressed clean
      spectrum, a linear output;
    - ``complex_mask`` (DCCRN's "E" form): a complex ratio mask M of magnitude
      ``mask_bound``·tanh(|m|) and the phase of the two output channels m (atan2(m_i, m_r),
      applied as m/|m|), multiplying the compressed noisy spectrum (input channels 0, 1).

    One decoder serves both channels of the complex outputs (its last layer has two output
    channels) rather than GCRN's two decoders: the decoder, the network's costliest part per
    frame after the LSTM, keeps its size, so every output has (nearly) the same parameters
    and time per hop and a comparison of outputs compares formulations, not capacities.
    ``lstm_hidden=None`` uses the flattened bottleneck size (the report: 256 × 14 = 3584).
    """

    def __init__(
        self,
        n_freqs: int,
        channels: Sequence[int] = (16, 32, 64, 128, 256),
        lstm_hidden: int | None = None,
        lstm_layers: int = 1,
        output: str = "mapping",
        input_channels: int | None = None,
        mask_bound: float = 1.0,
    ) -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise ConfigError(f"model.output must be one of {', '.join(OUTPUTS)}; got {output!r}")
        if not channels:
            raise ConfigError("model.channels must list at least one encoder layer")
        if not mask_bound > 0:
            raise ConfigError(f"model.mask_bound must be positive, got {mask_bound}")
        self.n_freqs, self.output, self.mask_bound = n_freqs, output, mask_bound
        self.input_channels = input_channels_for(output, input_channels)
        self.output_channels = 2 if is_complex(output) else 1
        self.freq_sizes = encoder_freq_sizes(n_freqs, len(channels))
        widths = [self.input_channels, *channels]
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
            out_width = widths[level] if level > 0 else self.output_channels
            decoder.append(
                CausalDeconvBlock(2 * widths[level + 1], out_width, output_padding, level == 0)
            )
        self.decoder = nn.ModuleList(decoder)
        self.out_norm = nn.BatchNorm2d(1) if output == "mapping" else None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.stream(features)[0]

    def stream(
        self, features: torch.Tensor, state: CRNState | None = None
    ) -> tuple[torch.Tensor, CRNState]:
        """The CRN over frames that follow the ones ``state`` was returned for.

        ``state=None`` starts a signal. Since the network is causal, running a signal block by
        block (even frame by frame), passing each returned state to the next block, gives the
        same output as one run over all its frames (in eval mode: batch norm uses its running
        statistics). The streaming enhancer and the ONNX step model run it one frame at a time.
        """
        expected = (self.input_channels, self.n_freqs)
        if features.dim() != 4 or (features.shape[1], features.shape[3]) != expected:
            raise ConfigError(
                f"CRN expects (batch, {self.input_channels}, frames, {self.n_freqs}) inputs, "
                f"got {tuple(features.shape)}"
            )
        depth = len(self.encoder)
        if state is None:
            pasts, hidden, carries = [None] * depth, None, [None] * depth
        else:
            if len(state) != 2 * depth + 2:
                raise ValueError(f"CRN state must hold {2 * depth + 2} tensors, got {len(state)}")
            pasts, hidden, carries = state[:depth], state[depth : depth + 2], state[depth + 2 :]
        x, skips, new_pasts = features, [], []
        for block, past in zip(self.encoder, pasts, strict=True):
            x, past = block(x, past)
            skips.append(x)
            new_pasts.append(past)
        batch, width, frames, freqs = x.shape
        seq = x.permute(0, 2, 1, 3).reshape(batch, frames, width * freqs)
        seq, (h, c) = self.lstm(seq, hidden)
        x = self.project(seq).reshape(batch, frames, width, freqs).permute(0, 2, 1, 3)
        new_carries = []
        for block, skip, carry in zip(self.decoder, reversed(skips), carries, strict=True):
            x, spill = block(torch.cat([x, skip], dim=1), carry)
            new_carries.append(spill)
        return self._output(x, features), (*new_pasts, h, c, *new_carries)

    def _output(self, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        if self.output == "mapping":
            return torch.relu(self.out_norm(x))
        if self.output == "mask":
            mask = torch.sigmoid(x)
            return (mask if self.mask_bound == 1 else self.mask_bound * mask) * features
        if self.output == "complex_mapping":
            return x
        # complex_mask: M = bound·tanh(|m|)·m/|m|; tanh(r)/r → 1 as r → 0, so the small
        # constant only keeps the division (and its gradient) finite at m = 0.
        radius = (x.square().sum(dim=1, keepdim=True) + 1e-12).sqrt()
        mask = x * (self.mask_bound * torch.tanh(radius) / radius)
        noisy_real, noisy_imag = features[:, :1], features[:, 1:2]
        return torch.cat(
            [
                mask[:, :1] * noisy_real - mask[:, 1:] * noisy_imag,
                mask[:, :1] * noisy_imag + mask[:, 1:] * noisy_real,
            ],
            dim=1,
        )

    def initial_state(self, batch: int = 1) -> CRNState:
        """The state before a signal's first frame, as zeros: ``stream`` with it equals
        ``stream`` with ``None`` (for a step model with explicit state inputs)."""
        weight = self.lstm.weight_ih_l0
        pasts = [
            (batch, block.conv.in_channels, KERNEL[0] - 1, self.freq_sizes[i])
            for i, block in enumerate(self.encoder)
        ]
        hidden = [(self.lstm.num_layers, batch, self.lstm.hidden_size)] * 2
        depth = len(self.encoder)
        carries = [
            (batch, block.deconv.out_channels, 1, self.freq_sizes[depth - 1 - j])
            for j, block in enumerate(self.decoder)
        ]
        return tuple(weight.new_zeros(shape) for shape in (*pasts, *hidden, *carries))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
