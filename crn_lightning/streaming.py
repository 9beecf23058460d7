"""Real-time enhancement: the causal CRN run one hop of audio at a time.

``StreamingEnhancer.process`` takes the next ``hop_length`` samples (10 ms at hop 160 and
16 kHz) and returns ``hop_length`` enhanced samples. Inside, the same STFT window and
transforms as training (``STFT.frame_spectra`` / ``frame_waveforms``), the enhancer's own
step (``Enhancer.stream_spectrum``: compression, the CRN with its convolution buffers and LSTM
state carried from frame to frame, decompression, the noisy phase for magnitude outputs or the
estimated one for complex outputs) and an overlap-add buffer.

Timing, for the centred STFT of training (frame t covers samples t·hop − n_fft/2 to
t·hop + n_fft/2): frame t can be analysed once sample t·hop + n_fft/2 − 1 has arrived, and
after it the overlap-add has finished the hop of output that starts at t·hop − n_fft/2. With
hop-sized chunks this makes the output stream the offline enhancement delayed by

    delay_samples = (ceil(n_fft/2 / hop) − 1) · hop + n_fft/2

samples, and a sample's **algorithmic latency**, from its arrival to its output (the wait for
its chunk to fill included, computing time excluded), ``latency_samples = delay_samples + hop``
= hop · ceil(n_fft/2 / hop) + n_fft/2. That is the window length n_fft when n_fft/2 is a
multiple of the hop: 320 samples = 20 ms for the quickstart (n_fft 320), 960 samples = 60 ms
for the report's n_fft 960. A real-time system adds the time to compute a chunk, at most one
hop (the 10 ms budget): at most window + hop in all.

``flush`` ends the signal (its last, shorter chunk, then the end reflection the offline STFT
uses), after which the whole output equals the ``Enhancer``'s offline enhancement of the same
signal delayed by ``delay_samples`` (tested to 1e-4).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

from crn_lightning.errors import ConfigError
from crn_lightning.models.crn import CRNState

if TYPE_CHECKING:
    from crn_lightning.enhancer import Enhancer


@contextlib.contextmanager
def _without_onednn() -> Iterator[None]:
    """oneDNN's LSTM spends milliseconds setting up each call, ruinous at one frame per call;
    PyTorch's own kernels run a frame several times faster (same results to 1e-7)."""
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before


# (noisy complex spectra (B, F, K), state or None at the start) → (enhanced spectra, state)
SpectrumStep = Callable[[torch.Tensor, CRNState | None], tuple[torch.Tensor, CRNState]]


class StreamingEnhancer:
    """Frame-by-frame enhancement of ``batch`` parallel streams (e.g. channels) with a fixed
    delay; see the module docstring for the latency. Call ``reset`` to start a new signal.

    ``step`` maps the frames' noisy spectra to enhanced ones, carrying the state; by default
    the enhancer's own (``Enhancer.stream_spectrum``); the ONNX step graph
    (crn_lightning.onnx_runtime) plugs in here.
    """

    def __init__(
        self, enhancer: Enhancer, batch: int = 1, step: SpectrumStep | None = None
    ) -> None:
        stft = enhancer.stft
        if not stft.spectrogram.center:
            raise ConfigError("streaming follows the centred STFT of training: stft.center=true")
        self.enhancer, self.stft = enhancer.eval(), stft
        self.n_fft, self.hop, self.half = stft.n_fft, stft.hop_length, stft.n_fft // 2
        if self.hop > self.half:
            raise ConfigError(
                f"streaming needs overlapping frames: stft.hop_length ({self.hop}) must not "
                f"exceed n_fft / 2 ({self.half})"
            )
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        self.batch = batch
        self.step = step or self._enhancer_step
        self.delay_samples = (math.ceil(self.half / self.hop) - 1) * self.hop + self.half
        self.latency_samples = self.delay_samples + self.hop
        parameter = next(enhancer.parameters())
        self._device, self._dtype = parameter.device, parameter.dtype
        self._window_sq = stft.window.to(self._device, self._dtype).square()
        self.reset()

    @property
    def latency_seconds(self) -> float:
        return self.latency_samples / self.enhancer.sample_rate

    def reset(self) -> None:
        """Forget the current signal: the next chunk starts a new one."""
        empty = torch.zeros(self.batch, 0, device=self._device, dtype=self._dtype)
        self._head = empty  # the first samples, until the start reflection can be built
        self._tail = empty  # the last n_fft/2 + 1 samples, for the end reflection
        self._padded: torch.Tensor | None = None  # padded signal from frame self._frame on
        self._frame = 0
        self._received = 0
        self._state: CRNState | None = None
        # Overlap-add of frames and of squared windows, from padded position self._frame · hop.
        self._ola = torch.zeros(self.batch, self.n_fft, device=self._device, dtype=self._dtype)
        self._norm = torch.zeros(self.n_fft, device=self._device, dtype=self._dtype)
        # Finished output not yet returned, from signal position self._out_start on (the
        # first frame's hop starts n_fft/2 before the signal, in the start reflection).
        self._out, self._out_start = empty, -self.half
        self._emitted = 0
        self._finished = False

    # -- public API ------------------------------------------------------------------------
    @torch.inference_mode()
    def process(self, chunk: torch.Tensor | np.ndarray) -> torch.Tensor:
        """The next ``hop_length`` samples, (batch, hop) or (hop,) for one stream → as many
        enhanced samples, ``delay_samples`` behind the input."""
        chunk = self._as_batch(chunk)
        if chunk.shape[-1] != self.hop:
            raise ValueError(
                f"process takes chunks of hop_length = {self.hop} samples, got {chunk.shape[-1]} "
                "(pass a signal's shorter last chunk to flush)"
            )
        self._receive(chunk)
        self._run_frames()
        return self._take(self.hop)

    @torch.inference_mode()
    def flush(self, last: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """End the signal, whose last samples (fewer than a hop) are ``last``; returns the rest
        of the output: ``delay_samples`` + len(last) samples."""
        last = self._as_batch(last if last is not None else torch.zeros(self.batch, 0))
        if last.shape[-1] >= self.hop:
            raise ValueError(f"flush takes fewer than {self.hop} samples, got {last.shape[-1]}")
        if self._received + last.shape[-1] <= self.half:
            raise ValueError(
                f"the signal is too short to enhance: {self._received + last.shape[-1]} samples, "
                f"the STFT needs more than n_fft / 2 = {self.half}"
            )
        self._receive(last)
        # The centred STFT's end: the last n_fft/2 samples mirrored about the last one.
        self._padded = torch.cat([self._padded, self._tail[:, :-1].flip(-1)], dim=-1)
        self._run_frames()
        # Frames have ended: what the overlap-add holds up to the signal's end is final.
        left = self.half + self._received - self._frame * self.hop
        self._out = torch.cat([self._out, self._ola[:, :left] / self._norm[:left]], dim=-1)
        self._finished = True
        return self._take(self._received + self.delay_samples - self._emitted)

    def enhance(
        self, signal: torch.Tensor | np.ndarray, timings: list[float] | None = None
    ) -> torch.Tensor:
        """A whole signal (batch, samples) or (samples,), streamed chunk by chunk; returns it
        enhanced and aligned (the delay removed): equal to the offline enhancement.
        ``timings`` receives the compute time of each ``process`` call in seconds."""
        self.reset()
        signal = self._as_batch(signal)
        whole = signal.shape[-1] // self.hop * self.hop
        out = []
        for i in range(0, whole, self.hop):
            started = time.perf_counter()
            out.append(self.process(signal[:, i : i + self.hop]))
            if timings is not None:
                timings.append(time.perf_counter() - started)
        out.append(self.flush(signal[:, whole:] if whole < signal.shape[-1] else None))
        return torch.cat(out, dim=-1)[:, self.delay_samples :]

    # -- internals -------------------------------------------------------------------------
    def _enhancer_step(
        self, spectrum: torch.Tensor, state: CRNState | None
    ) -> tuple[torch.Tensor, CRNState]:
        with _without_onednn():
            return self.enhancer.stream_spectrum(spectrum, state)

    def _as_batch(self, samples: torch.Tensor | np.ndarray) -> torch.Tensor:
        if self._finished:
            raise RuntimeError("this signal was flushed: call reset() to start another")
        samples = torch.as_tensor(samples, device=self._device, dtype=self._dtype)
        if samples.dim() == 1:
            samples = samples.unsqueeze(0)
        if samples.dim() != 2 or samples.shape[0] != self.batch:
            raise ValueError(
                f"expected ({self.batch}, samples) audio for {self.batch} stream(s), "
                f"got shape {tuple(samples.shape)}"
            )
        return samples

    def _receive(self, samples: torch.Tensor) -> None:
        self._received += samples.shape[-1]
        self._tail = torch.cat([self._tail, samples], dim=-1)[:, -(self.half + 1) :]
        if self._padded is not None:
            self._padded = torch.cat([self._padded, samples], dim=-1)
            return
        self._head = torch.cat([self._head, samples], dim=-1)
        if self._head.shape[-1] > self.half:
            # The centred STFT's start: samples n_fft/2 .. 1 mirrored before the first one.
            start = self._head[:, 1 : self.half + 1].flip(-1)
            self._padded = torch.cat([start, self._head], dim=-1)

    def _run_frames(self) -> None:
        """Enhance every frame whose samples have all arrived; finish their output hops."""
        if self._padded is None or self._padded.shape[-1] < self.n_fft:
            return
        frames = (self._padded.shape[-1] - self.n_fft) // self.hop + 1
        used = self.n_fft + (frames - 1) * self.hop
        spectra = self.stft.frame_spectra(self._padded[:, :used])
        enhanced, self._state = self.step(spectra, self._state)
        waves = self.stft.frame_waveforms(enhanced)
        finished = []
        for k in range(frames):
            self._ola += waves[:, k]
            self._norm += self._window_sq
            finished.append(self._ola[:, : self.hop] / self._norm[: self.hop])
            self._ola = torch.cat(
                [self._ola[:, self.hop :], self._ola.new_zeros(self.batch, self.hop)], -1
            )
            self._norm = torch.cat([self._norm[self.hop :], self._norm.new_zeros(self.hop)])
        self._out = torch.cat([self._out, *finished], dim=-1)
        self._padded = self._padded[:, frames * self.hop :]
        self._frame += frames

    def _take(self, count: int) -> torch.Tensor:
        """The next ``count`` samples of the delayed output stream."""
        start = self._emitted - self.delay_samples  # signal position of the first one
        end = start + count
        ready = self._out_start + self._out.shape[-1]
        if end > 0 and ready < end:
            raise RuntimeError(f"internal: output ready up to {ready}, {end} due")
        # Before the signal the delayed stream is silence; there the overlap-add holds only
        # the STFT's start reflection, which the offline inverse cuts off too.
        out = self._out.new_zeros(self.batch, count)
        lo, hi = max(start, 0, self._out_start), min(end, ready)
        if hi > lo:
            out[:, lo - start : hi - start] = self._out[
                :, lo - self._out_start : hi - self._out_start
            ]
        used = min(max(end - self._out_start, 0), self._out.shape[-1])
        self._out, self._out_start = self._out[:, used:], self._out_start + used
        self._emitted += count
        return out
