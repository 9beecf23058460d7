"""Reading and writing audio: soundfile for I/O, torchaudio for resampling."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

from crn_lightning.errors import UserError

log = logging.getLogger(__name__)
_resample_logged: set[tuple[int, int]] = set()

# Extensions of the formats libsndfile reads and writes, looked for in folders of audio.
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au", ".caf", ".w64"}


def audio_files(folder: Path) -> list[Path]:
    """The audio files under ``folder`` (subfolders included; hidden files left out), sorted."""
    return sorted(
        p
        for p in Path(folder).rglob("*")
        if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith(".")
    )


class AudioFileError(UserError, ValueError):
    """An audio file that cannot be used, with the file named in the message."""


@functools.cache
def _resampler(orig_rate: int, new_rate: int) -> torchaudio.transforms.Resample:
    # torchaudio.functional.resample rebuilds its sinc kernel on every call, which costs more
    # than resampling a whole utterance; the transform builds it once.
    return torchaudio.transforms.Resample(orig_rate, new_rate)


def resample(audio: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Band-limited resampling (torchaudio's windowed sinc) of a mono float signal."""
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if orig_rate == new_rate:
        return audio
    with torch.no_grad():
        return _resampler(orig_rate, new_rate)(torch.from_numpy(audio)).numpy()


def read_channels(path: str | Path) -> tuple[np.ndarray, int]:
    """Every channel of an audio file as float32 (channels, samples), and its sample rate."""
    path = Path(path)
    try:
        data, file_rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise AudioFileError(f"{path}: not a readable audio file ({err})") from err
    if data.size == 0:
        raise AudioFileError(f"{path}: the file holds no samples")
    if not np.isfinite(data).all():
        raise AudioFileError(f"{path}: the audio contains NaN or infinite samples")
    return np.ascontiguousarray(data.T), file_rate


def read_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Read a mono audio file as float32 at ``sample_rate`` (resampled if needed)."""
    path = Path(path)
    data, file_rate = read_channels(path)
    if data.shape[0] != 1:
        raise AudioFileError(f"{path}: expected mono audio, found {data.shape[0]} channels")
    if file_rate != sample_rate and (file_rate, sample_rate) not in _resample_logged:
        _resample_logged.add((file_rate, sample_rate))
        log.info("resampling audio from %d Hz to %d Hz (first: %s)", file_rate, sample_rate, path)
    return resample(data[0], file_rate, sample_rate)


def write_audio(
    path: str | Path,
    audio: np.ndarray,
    sample_rate: int,
    subtype: str = "PCM_16",
    format: str | None = None,
) -> None:
    """Write (samples,) or (samples, channels) audio; ``format`` (e.g. WAV, FLAC) defaults to
    the one the file extension names."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.asarray(audio, dtype=np.float32), sample_rate, subtype=subtype, format=format)
