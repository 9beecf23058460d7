"""A fetched package's audio files: found by glob, decoded, hashed, in worker processes.

Shared by the offline corpus's speech (:mod:`.offline_speech`) and noise
(:mod:`.offline_noise`) extraction, which both decode every matching file of a package.
"""

from __future__ import annotations

import hashlib
import multiprocessing
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crn_lightning.audio import AudioFileError, read_channels
from crn_lightning.data.packages import FetchedPackage
from crn_lightning.errors import UserError


class OfflineCorpusError(UserError):
    """The packages were fetched but do not give a usable corpus; the message says why."""


# What runs a function over many files: the built-in map, or a process pool's (in order).
FileMapper = Callable[[Callable[[str], Any], Sequence[str]], Iterable[Any]]


@contextmanager
def file_mapper(workers: int) -> Iterator[FileMapper]:
    """Decoding, filtering and resampling file after file is the build's CPU time: spread over
    ``workers`` processes. Torch runs one thread per process: the resampler's convolutions
    are tiny, and on a busy machine its thread pool's waiting cost 20x their work."""
    if workers <= 1:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield lambda function, items: map(function, items)
        finally:
            torch.set_num_threads(threads)
        return
    # fork: workers start at once and need not import anything (spawn would re-run the
    # caller's main module in each). With fork all of them are started here, before the build
    # starts its helper threads, as DataLoader workers are forked before they are used.
    context = multiprocessing.get_context("fork")
    pool = ProcessPoolExecutor(workers, context, initializer=torch.set_num_threads, initargs=(1,))
    with pool:
        pool.submit(int).result()  # launches every worker process now

        def pool_map(function: Callable[[str], Any], items: Sequence[str]) -> Iterable[Any]:
            # Chunks: one round trip per ~50 files, yet enough of them to keep all workers busy.
            chunk = max(1, min(50, len(items) // (4 * workers)))
            return pool.map(function, items, chunksize=chunk)

        yield pool_map


def read_or_none(path: Path) -> tuple[np.ndarray, int] | None:
    """(channels, samples) and the sample rate of an audio file, or None when it cannot be
    read: one broken file in a package is counted or skipped, it does not stop the build."""
    try:
        return read_channels(path)
    except AudioFileError:
        return None


def matching_files(package: FetchedPackage, patterns: Sequence[str], user: str) -> list[Path]:
    """The files of ``package`` any of the globs match, each once, sorted (the order, and so
    the corpus, must not depend on the file system's listing order). None is an error: the
    package's layout is not what the spec's ``user`` (a source or layer) was written for."""
    found = {path for pattern in patterns for path in package.root.glob(pattern) if path.is_file()}
    if not found:
        raise OfflineCorpusError(
            f"package {package.name} {package.version}: no file matches {list(patterns)} "
            f"({user}); the package's layout has changed"
        )
    return sorted(found)


def content_hash(channels: np.ndarray) -> str:
    """sha256 of the decoded samples: the same recording in two files or encodings is one."""
    return hashlib.sha256(np.ascontiguousarray(channels).tobytes()).hexdigest()
