"""VoiceBank+DEMAND (Valentini-Botinhao et al., SSW 2016): the field's benchmark of paired
noisy and clean speech, from Edinburgh DataShare (handle 10283/2791, doi:10.7488/ds/2117).

The 28-speaker training set (11,572 pairs) and the test set (824 pairs of 2 other speakers),
unpacked into the layout ``data=pairs`` reads and resampled once from 48 kHz:

    <data_dir>/voicebank_demand/train/clean/p226_001.wav   (and train/noisy, test/clean, test/noisy)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from crn_lightning.audio import audio_files, read_channels, resample, write_audio
from crn_lightning.data.archives import Archive, DownloadError

log = logging.getLogger(__name__)

VOICEBANK_URL = "https://datashare.ed.ac.uk/bitstream/handle/10283/2791"
# (split, kind) -> the archive's stem, which is also the folder it unpacks to.
VOICEBANK_ARCHIVES = {
    ("train", "clean"): "clean_trainset_28spk_wav",
    ("train", "noisy"): "noisy_trainset_28spk_wav",
    ("test", "clean"): "clean_testset_wav",
    ("test", "noisy"): "noisy_testset_wav",
}
# The MD5s Edinburgh DataShare publishes with each file of the record (its DSpace bitstream
# checksums); it publishes no sha256.
VOICEBANK_MD5 = {
    "clean_trainset_28spk_wav": "d2d5a45ec32f8fcbf201bde0447e20ba",
    "noisy_trainset_28spk_wav": "1fca9e8bafb8cd069f6653c6d92f9e9c",
    "clean_testset_wav": "34eb1c0ba7ef667e9b966866c542fc16",
    "noisy_testset_wav": "fb1b86caa31e8ba5b506c0c64da9aab5",
}
FIRST_FILE = {"train": "p226_001.wav", "test": "p232_001.wav"}  # each split's archives hold it
VOICEBANK_PARTS = ("train", "test")


def voicebank_root(data_dir: Path) -> Path:
    return Path(data_dir) / "voicebank_demand"


def resample_folder(folder: Path, sample_rate: int) -> None:
    """Rewrite every audio file under ``folder`` at ``sample_rate`` in its own subtype (16-bit
    PCM for VoiceBank), with the project's resampler. A resampled peak beyond full scale (the
    sinc filter's overshoot) cannot be stored in PCM: it is clipped, and the files are counted."""
    files, clipped = audio_files(folder), []
    for path in tqdm(files, desc=f"resample {folder.name}", unit="file"):
        audio, rate = read_channels(path)
        if rate == sample_rate:
            continue
        if audio.shape[0] != 1:
            raise DownloadError(f"{path}: expected mono audio, found {audio.shape[0]} channels")
        out = resample(audio[0], rate, sample_rate)
        if np.abs(out).max() > 1.0:
            clipped.append(path.name)
            out = np.clip(out, -1.0, 1.0)
        write_audio(path, out, sample_rate)
    log.info(
        "%s: %d files resampled to %d Hz; %d clipped at full scale%s",
        folder.name,
        len(files),
        sample_rate,
        len(clipped),
        f" ({', '.join(clipped[:5])}{' ...' if len(clipped) > 5 else ''})" if clipped else "",
    )


def voicebank_plan(
    data_dir: Path,
    base_url: str,
    parts: Sequence[str],
    sample_rate: int,
    sha256: Mapping[str, str] | None = None,
) -> list[Archive]:
    """The archives of the ``parts`` (train, test), each unpacked into
    ``voicebank_demand/<part>/<clean|noisy>`` and resampled to ``sample_rate`` before it is
    moved there. ``sha256`` by archive stem (e.g. clean_testset_wav) is checked instead of the
    published MD5 (a mirror's own archives)."""
    unknown = sorted(set(parts) - set(VOICEBANK_PARTS))
    if unknown or not parts:
        raise DownloadError(
            f"voicebank_demand.parts={list(parts)}: expected some of {list(VOICEBANK_PARTS)}"
        )
    root, checksums = voicebank_root(data_dir), dict(sha256 or {})

    def prepare(folder: Path) -> None:
        resample_folder(folder, sample_rate)

    archives = []
    for (part, kind), stem in VOICEBANK_ARCHIVES.items():
        if part not in parts:
            continue
        target = root / part / kind
        archives.append(
            Archive(
                f"{base_url.rstrip('/')}/{stem}.zip",
                checksums.get(stem),
                stem,
                target,
                target / FIRST_FILE[part],
                md5=None if stem in checksums else VOICEBANK_MD5[stem],
                prepare=prepare,
            )
        )
    return archives
