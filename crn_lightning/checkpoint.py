"""Rebuild a trained enhancer from a checkpoint alone (the resolved config travels inside)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate

from crn_lightning.module import CHECKPOINT_CONFIG_KEY, EnhancementModule


def load_enhancer(path: str | Path, map_location: str | torch.device = "cpu") -> EnhancementModule:
    """The ``EnhancementModule`` saved in a training checkpoint, in eval mode."""
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
            f"{path}: no '{CHECKPOINT_CONFIG_KEY}' in it; was it written by crn_lightning.train?"
        )
    module = build_enhancer(config)
    module.load_state_dict(checkpoint["state_dict"])
    return module.eval()


def build_enhancer(config: Mapping[str, Any], compile: bool = False) -> EnhancementModule:
    """A freshly initialised ``EnhancementModule`` for a resolved training config (its stft,
    model, module and data.sample_rate): what a checkpoint's weights are loaded into. It runs
    eagerly unless ``compile`` (the config's ``module.compile`` is ignored: streaming and ONNX
    export trace the plain CRN)."""
    stft = instantiate(config["stft"])
    model = instantiate(config["model"], n_freqs=stft.n_freqs)
    options = {k: v for k, v in config["module"].items() if k != "_target_"}
    options["compile"] = compile
    return EnhancementModule(
        model, stft, sample_rate=config["data"]["sample_rate"], config=config, **options
    )
