"""Audio files at the data's sample rate, resampled once.

A file already at the rate is read where it lies; one at another rate is resampled (the
project's one resampler, ``crn_lightning.audio.resample``) into a cache folder the first time
and read from there after, so a corpus at 48 kHz is not resampled again at every run start.
A cached copy is named by the source's path, size and modification time: a changed source
gets a new copy, never a stale one.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import soundfile as sf

from crn_lightning.audio import AudioFileError, read_audio, write_audio
from crn_lightning.errors import ConfigError


def file_rate(path: Path) -> int:
    """The sample rate in ``path``'s header; ``AudioFileError`` when it is not audio."""
    try:
        return sf.info(str(path)).samplerate
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise AudioFileError(f"{path}: not a readable audio file ({err})") from err


def cached_copy(path: Path, sample_rate: int, cache_dir: Path) -> Path:
    """Where the copy of ``path`` at ``sample_rate`` lies (or will lie) in ``cache_dir``."""
    stat = path.stat()
    key = f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\0{sample_rate}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir / f"{sample_rate}" / f"{path.stem}-{digest}.wav"


def at_rate(path: Path, sample_rate: int, cache_dir: Path | None, cache_key: str) -> Path:
    """``path`` itself when it is at ``sample_rate``, else its resampled copy in ``cache_dir``
    (made now if missing; written beside its name and renamed, so never half-written).
    ``cache_key`` names the config key of ``cache_dir`` for the error when it is null."""
    rate = file_rate(path)
    if rate == sample_rate:
        return path
    if cache_dir is None:
        raise ConfigError(
            f"{path} is at {rate} Hz, not {sample_rate} Hz, and {cache_key} is null: set it to "
            "a folder for the resampled copies"
        )
    target = cached_copy(path, sample_rate, Path(cache_dir))
    if not target.is_file():
        audio = read_audio(path, sample_rate)  # mono, finite: an AudioFileError otherwise
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        # Float samples: the resampler's overshoot beyond full scale is kept, not clipped.
        write_audio(partial, audio, sample_rate, subtype="FLOAT", format="WAV")
        os.replace(partial, target)
    return target
