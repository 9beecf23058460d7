"""The random generators' state, kept in a checkpoint so that a resumed run continues them.

Training mixtures are drawn from (seed, index), not from these generators; they are kept so
that anything else drawing random numbers continues as it would have.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def rng_state() -> dict[str, Any]:
    """torch (CPU and CUDA), numpy and Python generators, as tensors and plain lists (what a
    weights-only checkpoint load accepts)."""
    numpy_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": torch.from_numpy(numpy_state[1].astype(np.int64)),
        "numpy_pos": int(numpy_state[2]),
        "python": list(random.getstate()[1]),
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Set the generators to a ``rng_state()``."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"]))
    random.setstate((3, tuple(state["python"]), None))
