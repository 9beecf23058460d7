"""Noise recordings split by time into train / val / test regions, and audible windows of them.

Real recordings (engines, keyboards) have silent stretches; a clip window drawn there cannot be
scaled to an SNR (``mix_at_snr`` refuses it), so offsets landing there are redrawn, and a
recording that is mostly silent is refused at setup.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crn_lightning.audio import read_audio
from crn_lightning.data.corpora import STAGES, CorpusError
from crn_lightning.errors import ConfigError
from crn_lightning.mixing import is_silent, silent_window_fraction

log = logging.getLogger(__name__)

# Redraws before giving up on a region. Setup refuses regions with more than
# data.max_silent_noise_fraction (< 1) of silent windows, so at 50 % silent the chance of
# reaching this is 2**-1000: the error is a guard, not a path a run takes.
MAX_OFFSET_DRAWS = 1000


@dataclass(frozen=True)
class NoiseRegion:
    """One split's time region of one noise recording."""

    file: Path
    audio: np.ndarray
    window_samples: int  # the clip length its windows are checked at
    silent_fraction: float  # of those windows (mixing.silent_window_fraction)


def window_is_audible(audio: np.ndarray, start: int, length: int) -> bool:
    return not is_silent(audio[start : start + length])


def draw_audible_offset(
    rng: np.random.Generator,
    region: NoiseRegion,
    length: int,
    also_audible: Callable[[int], bool] | None = None,
) -> tuple[int, int]:
    """A uniformly drawn start of an audible ``length``-sample window of ``region`` (for which
    ``also_audible(offset)`` holds too, when given), redrawn from ``rng`` while not.

    Returns (offset, redraws). Without silence the first draw is taken, so recordings with no
    silent stretch give the offsets they always gave.
    """
    high = len(region.audio) - length + 1
    for redraws in range(MAX_OFFSET_DRAWS):
        offset = int(rng.integers(high))
        if window_is_audible(region.audio, offset, length) and (
            also_audible is None or also_audible(offset)
        ):
            return offset, redraws
    raise CorpusError(
        f"{region.file}: no audible {length}-sample noise window found in {MAX_OFFSET_DRAWS} "
        f"draws ({region.silent_fraction:.1%} of its region's clip windows are silent)"
    )


def check_noise_settings(noise_split: Sequence[float], max_silent_fraction: float) -> None:
    """Refuse noise keys that cannot work, naming the key, before any file is read."""
    if len(noise_split) != 3 or abs(sum(noise_split) - 1.0) > 1e-6:
        raise ConfigError(
            f"data.noise_split must be 3 fractions summing to 1, got {list(noise_split)}"
        )
    if not 0.0 <= max_silent_fraction < 1.0:
        raise ConfigError(
            "data.max_silent_noise_fraction must be at least 0 and below 1 (some windows must "
            f"be audible), got {max_silent_fraction}"
        )


def split_noise_file(
    path: Path,
    noise_split: Sequence[float],
    sample_rate: int,
    window_samples: Mapping[str, int],
    max_silent_fraction: float,
) -> dict[str, NoiseRegion]:
    """The train / val / test time regions (``noise_split`` fractions) of one noise recording.

    Policy: a bad noise file stops the run, since each is a whole test condition: unreadable,
    a region shorter than its clip (``window_samples[stage]``), or more than
    ``max_silent_fraction`` of a region's clip windows silent.
    """
    noise = read_audio(path, sample_rate)
    bounds = np.round(np.cumsum([0, *noise_split]) * len(noise)).astype(int)
    regions = {}
    for i, stage in enumerate(STAGES):
        audio, need = noise[bounds[i] : bounds[i + 1]], window_samples[stage]
        if len(audio) < need:
            raise CorpusError(
                f"{path}: its {stage} region ({len(audio) / sample_rate:.2f} s of "
                f"{len(noise) / sample_rate:.2f} s, data.noise_split={list(noise_split)}) is "
                f"shorter than a clip ({need / sample_rate} s)"
            )
        fraction = silent_window_fraction(audio, need)
        if fraction > max_silent_fraction:
            raise CorpusError(
                f"{path}: {fraction:.1%} of the {need / sample_rate:g} s clip windows of its "
                f"{stage} region are silent (more than data.max_silent_noise_fraction="
                f"{max_silent_fraction:g}); a silent noise cannot be scaled to an SNR"
            )
        regions[stage] = NoiseRegion(path, audio, need, fraction)
    silent = {stage: r.silent_fraction for stage, r in regions.items() if r.silent_fraction}
    if silent:
        log.warning(
            "noise file %s has silent stretches (fraction of silent clip windows per region: "
            "%s); offsets landing on them are redrawn",
            path,
            ", ".join(f"{stage} {100 * f:.3g}%" for stage, f in silent.items()),
        )
    return regions


def load_noise_regions(
    noise_files: Mapping[str, Path],
    noise_split: Sequence[float],
    sample_rate: int,
    window_samples: Mapping[str, int],
    max_silent_fraction: float,
) -> dict[str, list[NoiseRegion]]:
    """Each split's regions of the noise files, in the order of ``noise_files``."""
    split = [
        split_noise_file(path, noise_split, sample_rate, window_samples, max_silent_fraction)
        for path in noise_files.values()
    ]
    return {stage: [regions[stage] for regions in split] for stage in STAGES}


def silent_fractions(noise: Mapping[str, Sequence[NoiseRegion]]) -> dict[str, dict[str, float]]:
    """{noise file: {split: fraction of its region's clip windows silent}}, for the files with
    any silence (``corpus_info``)."""
    fractions: dict[str, dict[str, float]] = {}
    for stage, regions in noise.items():
        for region in regions:
            if region.silent_fraction:
                fractions.setdefault(str(region.file), {})[stage] = region.silent_fraction
    return fractions
