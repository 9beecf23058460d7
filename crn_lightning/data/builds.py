"""Building a corpus folder atomically and verifying it against its manifest.

Shared by the generated corpora (:mod:`crn_lightning.data.embedded`, :mod:`.offline`): a build
is written into a temporary folder next to its destination, described by a manifest (recipe +
size and sha256 of every file) and then renamed into place, manifest last, so an interrupted
build never verifies; a lock file keeps parallel processes from building twice.
:func:`ensure_built` is the whole cycle: verify, else build, verify again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

_Corpus = TypeVar("_Corpus")


@dataclass(frozen=True)
class CorpusLayout:
    """How a generated corpus lies under its root, and what its builds and messages call it.

    ``tag`` names its hidden files: ``.<tag>-corpus`` (the marker in each top folder, which
    lets a build replace that folder), ``.<tag>-build-*`` (temporary build folders) and
    ``.<tag>.lock``."""

    tag: str  # "embedded", "offline"
    name: str  # "embedded corpus": in log lines and errors
    maker: str  # "embedded corpus generator": who made the folders a build may replace
    top_folders: tuple[str, ...]  # what a build writes and installs under the root
    manifest_name: str = "manifest.json"

    @property
    def marker(self) -> str:
        return f".{self.tag}-corpus"

    @property
    def build_prefix(self) -> str:
        return f".{self.tag}-build-"

    @property
    def lock_name(self) -> str:
        return f".{self.tag}.lock"


@dataclass(frozen=True)
class BuiltCorpus:
    """Where a verified generated corpus lies: roots in CMU ARCTIC's and DEMAND's layouts."""

    arctic_root: Path
    demand_root: Path
    speakers: tuple[str, ...]
    environments: tuple[str, ...]
    manifest_path: Path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed) while the block runs."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def file_records(build: Path, skip_names: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The manifest's ``files`` list: every file under ``build`` with its size and sha256."""
    return [
        {
            "path": path.relative_to(build).as_posix(),
            "bytes": path.stat().st_size,
            "sha256": sha256_file(path),
        }
        for path in sorted(build.rglob("*"))
        if path.is_file() and path.name not in skip_names
    ]


def verify_manifest(manifest_path: Path, wanted: Mapping[str, Any]) -> str | None:
    """Why the corpus described by ``manifest_path`` cannot be used, or None when it can.

    ``wanted`` holds the manifest entries the files depend on (the recipe); each must be equal,
    and each listed file must exist next to the manifest with its recorded size and sha256.
    """
    root = manifest_path.parent
    if not manifest_path.is_file():
        return "no manifest"
    try:
        manifest = json.loads(manifest_path.read_text())
        recipe = {key: manifest[key] for key in wanted}
        files = [(e["path"], int(e["bytes"]), str(e["sha256"])) for e in manifest["files"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"unreadable manifest: {error!r}"
    changed = [f"{k} {recipe[k]} (wanted {wanted[k]})" for k in wanted if recipe[k] != wanted[k]]
    if changed:
        return "made with another " + "; ".join(changed)
    for relative, size, sha256 in files:
        path = root / relative
        if not path.is_file():
            return f"missing {relative}"
        if path.stat().st_size != size:
            return f"{relative} has {path.stat().st_size} bytes, manifest says {size}"
        # Hashing is ~1 GB/s: cheap enough for every call on corpora of a few hundred MB.
        if sha256_file(path) != sha256:
            return f"{relative} does not match its sha256 in the manifest"
    return None


def refuse_foreign_folders(root: Path, top_folders: Sequence[str], marker: str, maker: str) -> None:
    """Stop before replacing a folder that a generator did not make (most likely real data)."""
    for name in top_folders:
        target = root / name
        if target.exists() and not (target / marker).is_file():
            raise RuntimeError(
                f"refusing to replace {target}: it was not made by the {maker} (no {marker} "
                f"in it); move it away or pick another root"
            )


def install_build(
    root: Path,
    build: Path,
    top_folders: Sequence[str],
    manifest_name: str,
    manifest: Mapping[str, Any],
) -> None:
    """Move the finished ``build/<top_folders>`` into ``root``, replacing older ones, and write
    the manifest last. The old manifest goes first (each step an atomic rename), so an
    interruption anywhere in between leaves a corpus that fails verification. The replaced
    folders are left in ``build`` for the caller to delete with it."""
    (build / manifest_name).write_text(json.dumps(manifest, indent=1))
    (root / manifest_name).unlink(missing_ok=True)
    for name in top_folders:
        if (root / name).exists():
            (root / name).rename(build / f"replaced-{name}")
        (build / name).rename(root / name)
    os.replace(build / manifest_name, root / manifest_name)


def seeded_rng(seed: int, key: str) -> np.random.Generator:
    """An independent stream per task, stable across runs, processes and task order."""
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def build_corpus(
    root: Path, layout: CorpusLayout, generate: Callable[[Path], Mapping[str, Any]]
) -> None:
    """Run ``generate(build)`` (which returns the manifest) in a fresh temporary folder under
    ``root``, after removing builds an interrupted run left, and install what it wrote with
    ``install_build``; the temporary folder is deleted whatever happens."""
    refuse_foreign_folders(root, layout.top_folders, layout.marker, layout.maker)
    for stale in root.glob(f"{layout.build_prefix}*"):  # left by an interrupted build
        shutil.rmtree(stale, ignore_errors=True)
    build = Path(tempfile.mkdtemp(prefix=layout.build_prefix, dir=root))
    try:
        install_build(root, build, layout.top_folders, layout.manifest_name, generate(build))
    finally:
        shutil.rmtree(build, ignore_errors=True)


def ensure_built(
    root: Path,
    layout: CorpusLayout,
    recipe: Mapping[str, Any],
    generate: Callable[[Path], Mapping[str, Any]],
    load: Callable[[], _Corpus],
    first_build: str,
    logger: logging.Logger,
) -> _Corpus:
    """``load()`` the corpus under ``root`` once its manifest verifies against ``recipe``,
    building it with ``generate`` (see :func:`build_corpus`) first if it does not.

    ``first_build`` ends the log line of a build where there was no corpus yet ("building it
    from ..."); ``logger`` is the calling module's, so its log level governs these lines.
    """
    root.mkdir(parents=True, exist_ok=True)
    manifest = root / layout.manifest_name
    # Several processes (DDP ranks, parallel runs) may ask at once: one builds, the rest wait;
    # ``load`` reads the manifest under the lock too, so no other build can replace it meanwhile.
    with exclusive_lock(root / layout.lock_name):
        started = time.perf_counter()
        problem = verify_manifest(manifest, recipe)
        if problem is None:
            elapsed = time.perf_counter() - started
            logger.info("%s at %s verified in %.2f s", layout.name, root, elapsed)
            return load()
        if problem == "no manifest" and not any((root / n).exists() for n in layout.top_folders):
            logger.info("no %s at %s yet: %s", layout.name, root, first_build)
        else:
            logger.warning("%s at %s is not usable (%s): rebuilding it", layout.name, root, problem)
        build_corpus(root, layout, generate)
        problem = verify_manifest(manifest, recipe)
        if problem is not None:
            raise RuntimeError(f"the {layout.name} just built at {root} fails to verify: {problem}")
        elapsed = time.perf_counter() - started
        logger.info("%s built and verified at %s in %.1f s", layout.name, root, elapsed)
        return load()
