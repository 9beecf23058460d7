"""Downloading corpus archives with guarantees (what crn_lightning.download runs).

Each archive is downloaded to ``<data_dir>/.downloads/<name>.part`` (resumed with an HTTP Range
request when a ``.part`` is there), checked against its published checksum (sha256 or MD5; where
none is known, read through completely so a damaged archive fails its CRCs), extracted into a
temporary folder, checked for the expected layout, prepared there (e.g. resampled) and only then
renamed into place. An interrupted or failed run therefore never leaves a half corpus that the
loaders would accept; a completed archive whose extraction was interrupted is not fetched again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from crn_lightning.errors import UserError

log = logging.getLogger(__name__)

CHUNK = 1 << 20


class DownloadError(UserError):
    """A failed download, check or extraction; the message names the archive and the URL."""


@dataclass(frozen=True)
class Archive:
    url: str
    sha256: str | None
    top: str  # the folder the archive unpacks to
    target: Path  # where that folder goes
    marker: Path  # a file that exists once the corpus part is in place
    md5: str | None = None  # where only an MD5 is published (used when sha256 is None)
    # Run on the unpacked folder before it is renamed into place (e.g. resampling its files).
    prepare: Callable[[Path], None] | None = None

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1].split("?", 1)[0]

    @property
    def checksum(self) -> str:
        """What verifies it, as a dry run lists it."""
        if self.sha256:
            return f"sha256 {self.sha256}"
        return f"md5 {self.md5}" if self.md5 else "no published checksum: CRC check"


def fetch(url: str, part: Path, timeout_s: float) -> Path:
    """Download ``url`` to ``part`` (resuming what is there); returns the completed file."""
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the .part is already whole
            return _complete(part)
        raise DownloadError(f"{url}: the server answered {err.code} {err.reason}") from err
    except (urllib.error.URLError, OSError) as err:
        raise DownloadError(f"{url}: cannot connect ({err})") from err
    with response:
        if have and response.status != 206:
            have = 0  # the server ignores Range: start again
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with (
            part.open("ab" if have else "wb") as out,
            tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=part.stem) as bar,
        ):
            try:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
            except (OSError, ValueError) as err:  # http.client.IncompleteRead is an OSError
                log.warning("%s: connection broke off (%s)", url, err)
    size = part.stat().st_size
    if total is not None and size != total:
        raise DownloadError(
            f"{url}: truncated download ({size:,} of {total:,} bytes); run the command again "
            f"to resume from {part}"
        )
    return _complete(part)


def _complete(part: Path) -> Path:
    done = part.with_suffix("")
    part.replace(done)
    return done


def _digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def verify(archive: Archive, path: Path) -> None:
    """Its sha256 or MD5 when known; else read every member through (bz2 and zip CRCs)."""
    for algorithm, expected in (("sha256", archive.sha256), ("md5", archive.md5)):
        if expected is None:
            continue
        found = _digest(path, algorithm)
        if found != expected.lower():
            raise DownloadError(
                f"{archive.url}: {algorithm} {found} does not match the expected {expected}"
            )
        return
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
            if bad is not None:
                raise DownloadError(f"{archive.url}: member {bad} is damaged (CRC mismatch)")
        else:
            with tarfile.open(path, "r:*") as tar:
                for member in tar:
                    if member.isfile():
                        tar.extractfile(member).read()
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        raise DownloadError(f"{archive.url}: not a valid archive ({err})") from err


def extract(archive: Archive, path: Path) -> None:
    """Unpack into a temporary folder beside the target, check, prepare, then rename into
    place."""
    archive.target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=archive.target.parent, prefix=".extract-") as tmp:
        try:
            if archive.name.endswith(".zip"):
                with zipfile.ZipFile(path) as z:
                    z.extractall(tmp)
            else:
                with tarfile.open(path, "r:*") as tar:
                    tar.extractall(tmp, filter="data")
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
            raise DownloadError(f"{archive.url}: cannot extract ({err})") from err
        unpacked = Path(tmp) / archive.top
        marker = unpacked / archive.marker.relative_to(archive.target)
        if not marker.is_file():
            raise DownloadError(
                f"{archive.url}: unexpected layout, no {archive.top}/"
                f"{archive.marker.relative_to(archive.target)} in the archive"
            )
        if archive.prepare is not None:
            archive.prepare(unpacked)
        if archive.target.exists():  # an incomplete earlier copy (its marker is missing)
            shutil.rmtree(archive.target)
        os.replace(unpacked, archive.target)


def download(archives: Sequence[Archive], data_dir: Path, timeout_s: float = 60.0) -> list[str]:
    """Fetch, verify and unpack every archive not yet in place; returns their names. Stops at
    the first failure, leaving what is in place untouched and no partial corpus."""
    done = []
    for archive in archives:
        if archive.marker.is_file():
            log.info("%s: already in %s", archive.name, archive.target)
            continue
        part = data_dir / ".downloads" / f"{archive.name}.part"
        if part.with_suffix("").is_file():  # fetched whole, then interrupted while unpacking
            log.info("%s: downloaded before, not fetched again", archive.name)
            path = part.with_suffix("")
        else:
            log.info("fetching %s -> %s", archive.url, archive.target)
            path = fetch(archive.url, part, timeout_s)
        try:
            verify(archive, path)
            extract(archive, path)
        except DownloadError:
            path.unlink()  # a damaged archive is fetched afresh next time
            raise
        path.unlink()
        done.append(archive.name)
    return done
