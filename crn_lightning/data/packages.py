"""Fetching and unpacking Debian packages without root: ``apt-get download`` + ``dpkg-deb -x``.

``apt-get download NAME`` needs no root: it writes ``NAME_<version>_<arch>.deb`` into the
current folder using the package lists the machine already has. The archive is unpacked into a
folder of our choosing (nothing is installed): with ``dpkg-deb -x`` when it is on PATH, else by
reading it here. A ``.deb`` is an ``ar`` archive of ``debian-binary``, ``control.tar.*`` (the
package's metadata, whose ``control`` file names its version) and ``data.tar.*`` (the files).

Where ``apt-get`` is missing, or its package lists do not know the package (an empty or
unconfigured list: "Unable to locate package"), or the download fails (no network),
:class:`PackageManagerUnavailable` is raised so that a caller can fall back to another corpus;
an archive that cannot be read raises :class:`PackageError` naming the package.
"""

from __future__ import annotations

import io
import lzma
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from crn_lightning.data.builds import sha256_file
from crn_lightning.errors import UserError

# How tarfile opens each compression a data.tar member can have; zstd needs Python >= 3.14.
_TAR_MODES = {"": "r:", ".gz": "r:gz", ".xz": "r:xz", ".bz2": "r:bz2"}
_AR_MAGIC = b"!<arch>\n"
_AR_HEADER_BYTES = 60
_DOWNLOAD_TIMEOUT_SECONDS = 1800


class PackageError(UserError):
    """A package that was downloaded but cannot be read; the message names the package."""


class PackageManagerUnavailable(PackageError):
    """apt-get is missing, its package lists lack the package, or the download failed.

    Callers that can do without the package (e.g. by using the generated corpus) catch this one;
    any other :class:`PackageError` means a broken archive and is worth stopping for.
    """


@dataclass(frozen=True)
class FetchedPackage:
    """A package downloaded and unpacked: what it is, and where its files lie."""

    name: str
    version: str
    deb_sha256: str
    deb_bytes: int
    root: Path  # the unpacked file tree (``root/usr/share/...``)


def download_package(name: str, folder: Path) -> Path:
    """Run ``apt-get download NAME`` in ``folder`` and return the ``.deb`` it wrote."""
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        raise PackageManagerUnavailable(
            f"cannot fetch Debian package {name!r}: apt-get is not on PATH"
        )
    folder.mkdir(parents=True, exist_ok=True)
    before = set(folder.glob("*.deb"))
    try:
        done = subprocess.run(
            [apt_get, "download", name],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=_DOWNLOAD_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PackageManagerUnavailable(f"apt-get download {name} failed: {error}") from error
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        detail = message[-1] if message else f"exit status {done.returncode}"
        hint = (
            " (the package lists do not know it: run `apt-get update` as root, or the "
            "machine has no Debian package lists)"
            if "Unable to locate package" in (done.stderr + done.stdout)
            else ""
        )
        raise PackageManagerUnavailable(f"apt-get download {name} failed: {detail}{hint}")
    written = sorted(set(folder.glob(f"{name}_*.deb")) - before)
    if len(written) != 1:
        raise PackageManagerUnavailable(
            f"apt-get download {name} succeeded but left {len(written)} new {name}_*.deb files "
            f"in {folder} (expected one)"
        )
    return written[0]


def _ar_members(deb: Path, package: str) -> dict[str, tuple[int, int]]:
    """(offset, size) of each member of an ``ar`` archive, by name; every header is checked,
    so a truncated download is caught here, before anything is unpacked."""
    total = deb.stat().st_size
    members: dict[str, tuple[int, int]] = {}
    with open(deb, "rb") as handle:
        if handle.read(len(_AR_MAGIC)) != _AR_MAGIC:
            raise PackageError(f"package {package}: {deb} is not a Debian archive (no ar header)")
        offset = len(_AR_MAGIC)
        while offset < total:
            handle.seek(offset)
            header = handle.read(_AR_HEADER_BYTES)
            if len(header) < _AR_HEADER_BYTES or header[58:60] != b"`\n":
                raise PackageError(f"package {package}: {deb} is truncated or corrupt (ar header)")
            # GNU ar ends names with "/"; the size field is decimal ASCII.
            name = header[:16].decode("ascii", "replace").strip().rstrip("/")
            try:
                size = int(header[48:58].decode("ascii").strip())
            except ValueError as error:
                raise PackageError(f"package {package}: {deb} has a corrupt ar header") from error
            start = offset + _AR_HEADER_BYTES
            if start + size > total:
                raise PackageError(f"package {package}: {deb} is truncated (member {name})")
            members[name] = (start, size)
            offset = start + size + (size % 2)  # members are padded to an even length
    return members


def _open_tar_member(deb: Path, stem: str, package: str) -> tarfile.TarFile:
    """Open ``control.tar*`` or ``data.tar*`` whatever its compression, or say why not."""
    members = _ar_members(deb, package)
    found = [name for name in members if name == stem or name.startswith(stem + ".")]
    if not found:
        raise PackageError(
            f"package {package}: the archive has no {stem}.* member (members: {sorted(members)})"
        )
    name = found[0]
    suffix = name[len(stem) :]
    if suffix not in _TAR_MODES:
        raise PackageError(
            f"package {package}: {name} uses a compression this Python cannot read "
            f"({suffix.lstrip('.')}; readable: none, gz, xz, bz2); install dpkg-deb "
            f"(package dpkg) to unpack it"
        )
    start, size = members[name]
    with open(deb, "rb") as handle:
        handle.seek(start)
        data = handle.read(size)
    try:
        return tarfile.open(fileobj=io.BytesIO(data), mode=_TAR_MODES[suffix])
    except (tarfile.TarError, lzma.LZMAError, OSError, EOFError) as error:
        raise PackageError(f"package {package}: {name} is corrupt ({error})") from error


def read_control(deb: Path, package: str) -> dict[str, str]:
    """The fields of the package's ``control`` file (Package, Version, ...)."""
    with _open_tar_member(deb, "control.tar", package) as archive:
        try:
            member = next(
                m for m in archive.getmembers() if m.name.lstrip("./") == "control" and m.isfile()
            )
            raw = archive.extractfile(member)
            text = raw.read().decode("utf-8", "replace") if raw else ""
        except StopIteration:
            raise PackageError(f"package {package}: control.tar has no control file") from None
        except (tarfile.TarError, lzma.LZMAError, OSError, EOFError) as error:
            raise PackageError(f"package {package}: control.tar is corrupt ({error})") from error
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line[0].isspace() and ":" in line:
            key, value = line.split(":", 1)
            fields[key.strip()] = value.strip()
    if "Version" not in fields:
        raise PackageError(f"package {package}: its control file names no Version")
    return fields


def extract_deb(deb: Path, destination: Path, package: str, use_dpkg: bool | None = None) -> None:
    """Unpack the files of ``deb`` under ``destination``; ``use_dpkg`` None: when on PATH."""
    destination.mkdir(parents=True, exist_ok=True)
    dpkg_deb = shutil.which("dpkg-deb") if use_dpkg in (None, True) else None
    if use_dpkg and dpkg_deb is None:
        raise PackageError(f"package {package}: dpkg-deb was asked for but is not on PATH")
    if dpkg_deb is not None:
        done = subprocess.run(
            [dpkg_deb, "-x", str(deb), str(destination)], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise PackageError(
                f"package {package}: dpkg-deb -x {deb} failed: {done.stderr.strip()}"
            )
        return
    with _open_tar_member(deb, "data.tar", package) as archive:
        try:
            # The "data" filter refuses absolute paths, links leaving the tree and device files.
            archive.extractall(destination, filter="data")
        except (tarfile.TarError, lzma.LZMAError, OSError, EOFError) as error:
            raise PackageError(f"package {package}: data.tar is corrupt ({error})") from error


def fetch_package(name: str, workdir: Path, use_dpkg: bool | None = None) -> FetchedPackage:
    """Download ``name`` into ``workdir`` and unpack it there (``workdir/<name>/``)."""
    deb = download_package(name, workdir / "debs")
    control = read_control(deb, name)
    if control.get("Package", name) != name:
        raise PackageError(f"package {name}: {deb} holds package {control['Package']!r}")
    root = workdir / "unpacked" / name
    if root.exists():
        shutil.rmtree(root)
    extract_deb(deb, root, name, use_dpkg)
    return FetchedPackage(
        name=name,
        version=control["Version"],
        deb_sha256=sha256_file(deb),
        deb_bytes=deb.stat().st_size,
        root=root,
    )
