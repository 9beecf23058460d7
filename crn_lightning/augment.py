"""Training-pair augmentation: PLACEHOLDER until the real module (gain, reverberation, EQ) lands.

It exists so the data module's call site is final: with no options it mixes exactly as
training always did; any option raises, since none is implemented here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from crn_lightning.mixing import mix_at_snr, prevent_clipping


def augment_training_pair(
    clean: np.ndarray,
    noise: np.ndarray,
    snr_db: float,
    rng: np.random.Generator,
    sample_rate: int,
    **options: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, target) of one training clip: ``clean`` mixed with ``noise`` at ``snr_db``."""
    if options:
        raise NotImplementedError(
            f"data.augment options {sorted(options)} are not implemented in this build"
        )
    noisy, target, _ = mix_at_snr(clean, noise, snr_db)
    return prevent_clipping(noisy, target)
