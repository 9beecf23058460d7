"""Export a trained model to ONNX (the export entry point).

    python -m crn_lightning.export ckpt=CKPT output=model.onnx

writes ``model.onnx`` (noisy magnitude → enhanced magnitude, batch and time axes dynamic) and,
with ``step=true``, ``model.step.onnx`` (the same with the network's state as explicit inputs
and outputs, for streaming); see crn_lightning.onnx_export for the graphs and the STFT around
them. ``check=true`` then compares ONNX Runtime with PyTorch (crn_lightning.onnx_runtime) and
fails above ``tolerance``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from crn_lightning.cli import load_checkpoint, required
from crn_lightning.compose import CONFIG_DIR
from crn_lightning.errors import ConfigError
from crn_lightning.onnx_export import export, step_model_path
from crn_lightning.onnx_runtime import check, onnxruntime


def run(cfg: DictConfig) -> dict[str, Any]:
    enhancer = load_checkpoint(cfg)
    path = Path(required(cfg, "output", "the .onnx file to write"))
    targets = [path, step_model_path(path)] if cfg.step else [path]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not cfg.overwrite:
        raise ConfigError(
            f"output={path}: {', '.join(existing)} exist(s) (overwrite=true replaces)"
        )
    if cfg.check:
        onnxruntime()  # fail before the export, not after it
    path.parent.mkdir(parents=True, exist_ok=True)
    written = export(enhancer, path, cfg.step)
    for p in written:
        print(f"wrote {p}", flush=True)
    result: dict[str, Any] = {"written": [str(p) for p in written]}
    if cfg.check:
        differences = check(enhancer, path, cfg.step)
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
