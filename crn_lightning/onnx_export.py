"""Write an ``Enhancer`` as ONNX graphs of the STFT domain (the STFT stays outside).

- the whole-signal graph: the noisy STFT → the enhanced STFT, batch and frame axes dynamic.
  Magnitude models (``model.output`` mapping, mask): ``noisy_magnitude`` (batch, freqs,
  frames) → ``enhanced_magnitude``; complex models (complex_mapping, complex_mask):
  ``noisy_spectrum`` (batch, 2, freqs, frames), the real and imaginary parts as channels, →
  ``enhanced_spectrum`` likewise.
- the step graph (``<stem>.step<suffix>``): the same with the network's state as explicit
  inputs ``state_in_*`` and outputs ``state_out_*`` (convolution buffers, LSTM h and c): feed a
  frame (or a few) at a time with the previous call's state, zeros to start, for streaming.

To enhance, take the centred STFT of the noisy signal (``n_fft``, ``hop_length``,
``win_length``, periodic Hann window; recorded in the file's metadata with ``input``,
``output`` and ``phase``), run the graph, and invert its output: an enhanced magnitude with the
noisy phase, or the enhanced real and imaginary parts (``OnnxEnhancer`` in
crn_lightning.onnx_runtime does so with the project's STFT). The STFT is outside because the
exporter cannot write complex STFTs (nor complex tensors: the graphs are real throughout).

Exporter: the TorchScript-based ``torch.onnx.export(dynamo=False)``. The torch.export-based
default of torch 2.11 fixes the LSTM's time axis to the example's length (it unrolls it), which
defeats a dynamic time axis; the TorchScript exporter writes an ONNX ``LSTM`` node instead and
needs neither ``onnxscript`` nor anything beyond the ``onnx`` extra (onnx, onnxruntime).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from crn_lightning.enhancer import CHECKPOINT_CONFIG_KEY, Enhancer

OPSET = 17


def io_names(enhancer: Enhancer) -> tuple[str, str]:
    """The graphs' input and output names for this enhancer's domain."""
    if enhancer.complex:
        return "noisy_spectrum", "enhanced_spectrum"
    return "noisy_magnitude", "enhanced_magnitude"


class SpectrumModel(nn.Module):
    """The enhancer in the STFT domain (``Enhancer.noisy_input``'s): compression, network,
    decompression."""

    def __init__(self, enhancer: Enhancer) -> None:
        super().__init__()
        self.enhancer = enhancer

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        return self.enhancer.decompress(self.enhancer.estimate(noisy))


class SpectrumStepModel(SpectrumModel):
    """``SpectrumModel`` continuing from an explicit state; returns (enhanced, *state)."""

    def forward(self, noisy: torch.Tensor, *state: torch.Tensor) -> tuple:
        estimate, new_state = self.enhancer.estimate_stream(noisy, state)
        return (self.enhancer.decompress(estimate), *new_state)


def step_model_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.step{path.suffix}")


def metadata(enhancer: Enhancer) -> dict[str, str]:
    """What a user of the graph needs to reproduce the STFT around it."""
    stft = enhancer.stft
    name_in, name_out = io_names(enhancer)
    if enhancer.complex:
        shape, phase = "(batch, 2 = real/imaginary, freqs, frames)", "the output's own"
    else:
        shape, phase = "(batch, freqs, frames)", "resynthesise with the noisy phase"
    return {
        "sample_rate": str(enhancer.sample_rate),
        "n_fft": str(stft.n_fft),
        "hop_length": str(stft.hop_length),
        "win_length": str(stft.win_length),
        "window": "hann (periodic)",
        "center": "true (reflect padding)",
        "model_output": enhancer.network.output,
        "input": f"{name_in} {shape}: the noisy STFT",
        "output": f"{name_out} {shape}: the enhanced STFT",
        "phase": phase,
        CHECKPOINT_CONFIG_KEY: json.dumps(enhancer.config),
    }


def _export(model: nn.Module, args: tuple, path: Path, names: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        # The legacy exporter is chosen on purpose (module docstring); its notice is noise.
        warnings.filterwarnings(
            "ignore", "You are using the legacy TorchScript", DeprecationWarning
        )
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # A caution about LSTMs traced with implicit zero states at another batch size: this
        # one is traced at batch 1, and the check runs it at batch 2.
        warnings.filterwarnings("ignore", "Exporting a model to ONNX with a batch_size other")
        torch.onnx.export(model, args, str(path), dynamo=False, opset_version=OPSET, **names)


def _add_metadata(path: Path, enhancer: Enhancer) -> None:
    import onnx

    graph = onnx.load(str(path))
    onnx.helper.set_model_props(graph, metadata(enhancer))
    onnx.save(graph, str(path))


def export(enhancer: Enhancer, path: Path, step: bool) -> list[Path]:
    """Write the whole-signal graph to ``path`` and, with ``step``, the step graph beside it."""
    enhancer = enhancer.eval()
    name_in, name_out = io_names(enhancer)
    # An example (every axis but the channels and bins stays dynamic).
    channels = (2,) if enhancer.complex else ()
    frames = torch.rand(1, *channels, enhancer.stft.n_freqs, 7)
    dims = {0: "batch", frames.dim() - 1: "frames"}
    axes = {name_in: dims, name_out: dims}
    _export(
        SpectrumModel(enhancer).eval(),
        (frames,),
        path,
        dict(input_names=[name_in], output_names=[name_out], dynamic_axes=axes),
    )
    written = [path]
    if step:
        state = enhancer.network.initial_state(1)
        ins = [f"state_in_{i}" for i in range(len(state))]
        outs = [f"state_out_{i}" for i in range(len(state))]
        # Every state tensor is batch-first except the LSTM's (layers, batch, hidden).
        batch_axis = [1 if s.dim() == 3 else 0 for s in state]
        axes |= {name: {b: "batch"} for name, b in zip(ins + outs, batch_axis * 2, strict=True)}
        step_path = step_model_path(path)
        _export(
            SpectrumStepModel(enhancer).eval(),
            (frames[..., :1], *state),
            step_path,
            dict(input_names=[name_in, *ins], output_names=[name_out, *outs], dynamic_axes=axes),
        )
        written.append(step_path)
    for p in written:
        _add_metadata(p, enhancer)
    return written
