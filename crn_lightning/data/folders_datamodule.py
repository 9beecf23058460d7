"""Your own speech and noise folders mixed on the fly (``data=folders``).

Any number of speech folders and noise folders, any layout (subfolders included), any format
libsndfile reads, any sample rate (resampled once into ``resample_dir``, crn_lightning.data.
rate_cache). The utterances and noise recordings then go through the same mixing as ARCTIC and
DEMAND (crn_lightning.data.mixing_datamodule): fresh training draws, seeded grids, each noise
recording split by time so evaluation never hears training noise, silent stretches redrawn.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from crn_lightning.audio import audio_files, read_audio
from crn_lightning.data.corpora import CorpusError
from crn_lightning.data.mixing_datamodule import MixingDataModule
from crn_lightning.data.rate_cache import at_rate
from crn_lightning.data.speakers import compile_speaker_pattern, speaker_of
from crn_lightning.errors import ConfigError
from crn_lightning.stft import STFT

log = logging.getLogger(__name__)

# Every usable utterance of each split's speakers (speaker-disjoint splits).
ALL_UTTERANCES = MappingProxyType({"train": None, "val": None, "test": None})


def _folders(dirs: Sequence[str], key: str) -> list[Path]:
    if not dirs:
        raise ConfigError(f"{key} is empty: give at least one folder")
    folders = [Path(d) for d in dirs]
    for folder in folders:
        if not folder.is_dir():
            raise CorpusError(f"{key}: {folder} is not a folder")
        if not audio_files(folder):
            raise CorpusError(f"{key}: {folder} holds no audio files (subfolders included)")
    return folders


def find_speech(speech_dirs: Sequence[str], speaker_pattern: str | None) -> dict[str, list[Path]]:
    """The audio files of each speaker under the speech folders: the speaker is a file's parent
    folder (the speech folder's own name for files directly in it) or, with
    ``speaker_pattern``, what that regex finds in the file's path under its speech folder.
    The same speaker name in two folders is one speaker."""
    pattern = None
    if speaker_pattern is not None:
        pattern = compile_speaker_pattern(speaker_pattern, "data.speaker_pattern")
    files: dict[str, list[Path]] = {}
    for folder in _folders(speech_dirs, "data.speech_dirs"):
        for path in audio_files(folder):
            if pattern is None:
                speaker = path.parent.name
            else:
                relative = path.relative_to(folder).as_posix()
                speaker = speaker_of(relative, pattern, "data.speaker_pattern")
            files.setdefault(speaker, []).append(path)
    return {speaker: sorted(paths) for speaker, paths in sorted(files.items())}


def find_noise(noise_dirs: Sequence[str]) -> dict[str, Path]:
    """Every audio file under the noise folders, each a noise environment named
    ``<folder name>/<path under it, without suffix>``."""
    noise = {}
    for folder in _folders(noise_dirs, "data.noise_dirs"):
        for path in audio_files(folder):
            name = f"{folder.name}/{path.relative_to(folder).with_suffix('').as_posix()}"
            if name in noise:
                raise CorpusError(
                    f"data.noise_dirs: {path} and {noise[name]} are both named {name!r} (two "
                    "noise folders of the same name, or one file in two formats); rename one"
                )
            noise[name] = path
    return noise


class FoldersDataModule(MixingDataModule):
    """Speech folders mixed on the fly with noise folders; speaker-disjoint splits by default,
    every usable utterance of each split's speakers (``split`` values null). ``mixing``: the
    other mixing keys (``MixingDataModule``, with its defaults). The defaults are those of
    ``conf/data/folders.yaml``."""

    def __init__(
        self,
        stft: STFT,
        speech_dirs: Sequence[str],
        noise_dirs: Sequence[str],
        speaker_pattern: str | None = None,
        resample_dir: str | None = None,
        max_utterance_seconds: float = 20.0,
        split: Mapping[str, int | None] = ALL_UTTERANCES,
        split_by: str = "speaker",
        **mixing: Any,
    ) -> None:
        super().__init__(
            stft,
            max_utterance_seconds=max_utterance_seconds,
            split=split,
            split_by=split_by,
            **mixing,
        )
        self.speech_dirs, self.noise_dirs = list(speech_dirs), list(noise_dirs)
        self.speaker_pattern = speaker_pattern
        self.resample_dir = None if resample_dir is None else Path(resample_dir)

    def _at_rate(self, path: Path) -> Path:
        return at_rate(path, self.sample_rate, self.resample_dir, "data.resample_dir")

    def _read(self, path: Path) -> np.ndarray:
        """An utterance at the data's rate, through the resampling cache."""
        return read_audio(self._at_rate(path), self.sample_rate)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        files = find_speech(self.speech_dirs, self.speaker_pattern)
        # Policy: a bad noise file stops the run, its AudioFileError naming it (each noise is a
        # whole test condition), here when it is resampled or later when it is split.
        found = find_noise(self.noise_dirs)
        noise_files = {name: self._at_rate(path) for name, path in found.items()}
        self.environments = list(noise_files)
        info, skipped = self.mix(files, list(files), noise_files, self._read)
        self.corpus_info = {
            "kind": "folders",
            "speech_dirs": [str(Path(d)) for d in self.speech_dirs],
            "noise_dirs": [str(Path(d)) for d in self.noise_dirs],
            "speakers": list(files),
        } | info
        log.info(
            "corpus: folders (speech %s, noise %s); speakers %s; utterances %s; mixtures per "
            "epoch %s; unusable files skipped: %d",
            self.speech_dirs,
            self.noise_dirs,
            info["stage_speakers"],
            info["utterances"],
            info["mixtures"],
            len(skipped),
        )
