"""Enhancement with the exported ONNX graphs in ONNX Runtime (see crn_lightning.onnx_export),
the STFT around them from the ``Enhancer``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from crn_lightning.enhancer import Enhancer
from crn_lightning.errors import UserError
from crn_lightning.models.crn import CRNState
from crn_lightning.onnx_export import SpectrumModel, io_names, step_model_path
from crn_lightning.streaming import StreamingEnhancer


def onnxruntime() -> Any:
    """The ``onnxruntime`` package, or a ``UserError`` saying how to install it."""
    try:
        import onnxruntime
    except ImportError as err:
        raise UserError("ONNX Runtime is not installed: pip install 'crn-lightning[onnx]'") from err
    return onnxruntime


def session(path: Path, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session (``threads``: intra-op threads; None = its default)."""
    ort = onnxruntime()
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxEnhancer:
    """Waveform enhancement with the exported graph in ONNX Runtime, the STFT around it from
    the ``enhancer`` (``__call__``: a whole signal); ``streaming`` runs the step graph in the
    ``StreamingEnhancer``."""

    def __init__(self, enhancer: Enhancer, path: Path, threads: int | None = None) -> None:
        self.enhancer, self.path, self.threads = enhancer, path, threads
        self.session = session(path, threads)
        self._step_session = None
        self.input_name = io_names(enhancer)[0]

    def run_graph(self, noisy: torch.Tensor) -> torch.Tensor:
        """The whole-signal graph on a noisy STFT in ``Enhancer.noisy_input``'s domain."""
        (enhanced,) = self.session.run(None, {self.input_name: noisy.numpy()})
        return torch.from_numpy(enhanced)

    @torch.inference_mode()
    def __call__(self, noisy: torch.Tensor) -> torch.Tensor:
        """Enhance (B, L) waveforms."""
        magnitude, phase = self.enhancer.stft.magnitude_phase(noisy)
        enhanced = self.run_graph(self.enhancer.noisy_input(magnitude, phase))
        spectrum = self.enhancer.limit_attenuation(
            self.enhancer.output_spectrum(enhanced, phase), torch.polar(magnitude, phase)
        )
        return self.enhancer.resynthesise(spectrum, noisy.shape[-1])

    def streaming(self, batch: int = 1) -> StreamingEnhancer:
        if self._step_session is None:
            self._step_session = session(step_model_path(self.path), self.threads)
        return StreamingEnhancer(self.enhancer, batch, step=self._step)

    def _step(
        self, spectrum: torch.Tensor, state: CRNState | None
    ) -> tuple[torch.Tensor, CRNState]:
        if state is None:
            state = self.enhancer.network.initial_state(spectrum.shape[0])
        feeds = {self.input_name: self.enhancer.spectrum_input(spectrum).numpy()}
        feeds |= {f"state_in_{i}": s.numpy() for i, s in enumerate(state)}
        enhanced, *new_state = self._step_session.run(None, feeds)
        enhanced = self.enhancer.output_spectrum(torch.from_numpy(enhanced), spectrum.angle())
        return self.enhancer.limit_attenuation(enhanced, spectrum), tuple(
            torch.from_numpy(s) for s in new_state
        )


def check(enhancer: Enhancer, path: Path, step: bool, seconds: float = 3.0) -> dict[str, float]:
    """Max abs differences between ONNX Runtime and PyTorch on a noise signal: the graph's
    output (enhanced ``magnitude`` or ``spectrum``) and waveforms of the whole-signal graph;
    streamed waveforms of the step graph."""
    generator = torch.Generator().manual_seed(0)
    noisy = 0.1 * torch.randn(2, round(seconds * enhancer.sample_rate), generator=generator)
    onnx_enhancer = OnnxEnhancer(enhancer, path)
    with torch.inference_mode():
        noisy_input = enhancer.noisy_input(*enhancer.stft.magnitude_phase(noisy))
        reference_output = SpectrumModel(enhancer)(noisy_input)
        reference = enhancer(noisy)
    output_ort = onnx_enhancer.run_graph(noisy_input)
    result = {
        "spectrum" if enhancer.complex else "magnitude": float(
            (output_ort - reference_output).abs().max()
        ),
        "waveform": float((onnx_enhancer(noisy) - reference).abs().max()),
    }
    if step:
        streamed = onnx_enhancer.streaming(batch=2).enhance(noisy)
        result["streamed_waveform"] = float((streamed - reference).abs().max())
    return result
