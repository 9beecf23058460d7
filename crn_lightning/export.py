"""Export a trained model to ONNX (the export entry point), and run it with ONNX Runtime.

    python -m crn_lightning.export ckpt=CKPT output=model.onnx

writes two graphs, in the magnitude domain (the STFT stays outside, see below):

- ``model.onnx``: ``noisy_magnitude`` (batch, freqs, frames) → ``enhanced_magnitude``, both
  axes dynamic: a whole signal at once.
- ``model.step.onnx`` (``step=true``): the same with the CRN's state as explicit inputs
  ``state_in_*`` and outputs ``state_out_*`` (convolution buffers, LSTM h and c): feed a frame
  (or a few) at a time with the previous call's state, zeros to start, for streaming.

To enhance, take the centred STFT of the noisy signal (``n_fft``, ``hop_length``,
``win_length``, periodic Hann window; recorded in the file's metadata), run the graph on its
magnitude, and invert the enhanced magnitude with the noisy phase (``OnnxEnhancer`` does so
with the project's STFT). The STFT is outside because the exporter cannot write complex STFTs.

Exporter: the TorchScript-based ``torch.onnx.export(dynamo=False)``. The torch.export-based
default of torch 2.11 fixes the LSTM's time axis to the example's length (it unrolls it), which
defeats a dynamic time axis; the TorchScript exporter writes an ONNX ``LSTM`` node instead and
needs neither ``onnxscript`` nor anything beyond the ``onnx`` extra (onnx, onnxruntime).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from crn_lightning.cli import load_checkpoint, required
from crn_lightning.compose import CONFIG_DIR
from crn_lightning.errors import ConfigError, UserError
from crn_lightning.models.crn import CRNState
from crn_lightning.module import EnhancementModule
from crn_lightning.streaming import StreamingEnhancer

log = logging.getLogger(__name__)

OPSET = 17
INPUT, OUTPUT = "noisy_magnitude", "enhanced_magnitude"


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as err:
        raise UserError("ONNX Runtime is not installed: pip install 'crn-lightning[onnx]'") from err
    return onnxruntime


class MagnitudeModel(nn.Module):
    """The module's enhancement in the magnitude domain: compression, CRN, decompression."""

    def __init__(self, module: EnhancementModule) -> None:
        super().__init__()
        self.module = module

    def forward(self, noisy_magnitude: torch.Tensor) -> torch.Tensor:
        return self.module.decompress(self.module.estimate(noisy_magnitude))


class MagnitudeStepModel(MagnitudeModel):
    """``MagnitudeModel`` continuing from an explicit state; returns (magnitude, *state)."""

    def forward(self, noisy_magnitude: torch.Tensor, *state: torch.Tensor) -> tuple:
        estimate, new_state = self.module.estimate_stream(noisy_magnitude, state)
        return (self.module.decompress(estimate), *new_state)


def metadata(module: EnhancementModule) -> dict[str, str]:
    """What a user of the graph needs to reproduce the STFT around it."""
    stft = module.stft
    return {
        "sample_rate": str(module.sample_rate),
        "n_fft": str(stft.n_fft),
        "hop_length": str(stft.hop_length),
        "win_length": str(stft.win_length),
        "window": "hann (periodic)",
        "center": "true (reflect padding)",
        "phase": "resynthesise with the noisy phase",
        "crn_lightning_config": json.dumps(module.config),
    }


def _export(model: nn.Module, args: tuple, path: Path, names: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        # The legacy exporter is chosen on purpose (module docstring); its notice is noise.
        warnings.filterwarnings(
            "ignore", "You are using the legacy TorchScript", DeprecationWarning
        )
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # A caution about LSTMs traced with implicit zero states at another batch size: this
        # one is traced at batch 1, and ``check`` runs it at batch 2.
        warnings.filterwarnings("ignore", "Exporting a model to ONNX with a batch_size other")
        torch.onnx.export(model, args, str(path), dynamo=False, opset_version=OPSET, **names)


def _add_metadata(path: Path, module: EnhancementModule) -> None:
    import onnx

    graph = onnx.load(str(path))
    onnx.helper.set_model_props(graph, metadata(module))
    onnx.save(graph, str(path))


def export(module: EnhancementModule, path: Path, step: bool) -> list[Path]:
    """Write the whole-signal graph to ``path`` and, with ``step``, the step graph beside it."""
    module = module.eval()
    frames = torch.rand(1, module.stft.n_freqs, 7)  # an example; every axis stays dynamic
    dims = {0: "batch", 2: "frames"}
    _export(
        MagnitudeModel(module).eval(),
        (frames,),
        path,
        dict(input_names=[INPUT], output_names=[OUTPUT], dynamic_axes={INPUT: dims, OUTPUT: dims}),
    )
    written = [path]
    if step:
        state = module.model.initial_state(1)
        ins = [f"state_in_{i}" for i in range(len(state))]
        outs = [f"state_out_{i}" for i in range(len(state))]
        # Every state tensor is batch-first except the LSTM's (layers, batch, hidden).
        batch_axis = [1 if s.dim() == 3 else 0 for s in state]
        axes = {INPUT: dims, OUTPUT: dims}
        axes |= {name: {b: "batch"} for name, b in zip(ins + outs, batch_axis * 2, strict=True)}
        step_path = step_model_path(path)
        _export(
            MagnitudeStepModel(module).eval(),
            (frames[:, :, :1], *state),
            step_path,
            dict(input_names=[INPUT, *ins], output_names=[OUTPUT, *outs], dynamic_axes=axes),
        )
        written.append(step_path)
    for p in written:
        _add_metadata(p, module)
    return written


def step_model_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.step{path.suffix}")


def session(path: Path, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session (``threads``: intra-op threads; None = its default)."""
    ort = _onnxruntime()
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxEnhancer:
    """Waveform enhancement with the exported graph in ONNX Runtime, the STFT around it from
    the module (``__call__``: a whole signal); ``streaming`` runs the step graph in the
    ``StreamingEnhancer``."""

    def __init__(self, module: EnhancementModule, path: Path, threads: int | None = None) -> None:
        self.module, self.path, self.threads = module, path, threads
        self.session = session(path, threads)
        self._step_session = None

    @torch.inference_mode()
    def __call__(self, noisy: torch.Tensor) -> torch.Tensor:
        """Enhance (B, L) waveforms."""
        magnitude, phase = self.module.stft.magnitude_phase(noisy)
        (enhanced,) = self.session.run(None, {INPUT: magnitude.numpy()})
        return self.module.stft.inverse(torch.from_numpy(enhanced), phase, noisy.shape[-1])

    def streaming(self, batch: int = 1) -> StreamingEnhancer:
        if self._step_session is None:
            self._step_session = session(step_model_path(self.path), self.threads)
        return StreamingEnhancer(self.module, batch, step=self._step)

    def _step(
        self, magnitude: torch.Tensor, state: CRNState | None
    ) -> tuple[torch.Tensor, CRNState]:
        if state is None:
            state = self.module.model.initial_state(magnitude.shape[0])
        feeds = {INPUT: magnitude.numpy()}
        feeds |= {f"state_in_{i}": s.numpy() for i, s in enumerate(state)}
        enhanced, *new_state = self._step_session.run(None, feeds)
        return torch.from_numpy(enhanced), tuple(torch.from_numpy(s) for s in new_state)


def check(module: EnhancementModule, path: Path, step: bool, seconds: float = 3.0) -> dict:
    """Max abs differences between ONNX Runtime and PyTorch on a noise signal: enhanced
    magnitudes and waveforms of the whole-signal graph; streamed waveforms of the step graph."""
    generator = torch.Generator().manual_seed(0)
    noisy = 0.1 * torch.randn(2, round(seconds * module.sample_rate), generator=generator)
    onnx_enhancer = OnnxEnhancer(module, path)
    with torch.inference_mode():
        magnitude = module.stft.magnitude_phase(noisy)[0]
        reference_magnitude = MagnitudeModel(module)(magnitude)
        reference = module(noisy)
    (magnitude_ort,) = onnx_enhancer.session.run(None, {INPUT: magnitude.numpy()})
    result = {
        "magnitude": float(np.abs(magnitude_ort - reference_magnitude.numpy()).max()),
        "waveform": float((onnx_enhancer(noisy) - reference).abs().max()),
    }
    if step:
        streamed = onnx_enhancer.streaming(batch=2).enhance(noisy)
        result["streamed_waveform"] = float((streamed - reference).abs().max())
    return result


def run(cfg: DictConfig) -> dict[str, Any]:
    module = load_checkpoint(cfg)
    path = Path(required(cfg, "output", "the .onnx file to write"))
    targets = [path, step_model_path(path)] if cfg.step else [path]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not cfg.overwrite:
        raise ConfigError(
            f"output={path}: {', '.join(existing)} exist(s) (overwrite=true replaces)"
        )
    if cfg.check:
        _onnxruntime()  # fail before the export, not after it
    path.parent.mkdir(parents=True, exist_ok=True)
    written = export(module, path, cfg.step)
    for p in written:
        print(f"wrote {p}", flush=True)
    result: dict[str, Any] = {"written": [str(p) for p in written]}
    if cfg.check:
        differences = check(module, path, cfg.step)
        result["max_abs_difference"] = differences
        print(
            "ONNX Runtime vs PyTorch, max abs difference: "
            + ", ".join(f"{k} {v:.2e}" for k, v in differences.items()),
            flush=True,
        )
        if max(differences.values()) > cfg.tolerance:
            raise SystemExit(f"ONNX Runtime differs from PyTorch by more than {cfg.tolerance}")
    return result


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="export")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
