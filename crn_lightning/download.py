"""Fetch CMU ARCTIC and DEMAND into the layouts the loaders read (python -m crn_lightning.download).

Each archive is downloaded to ``<data_dir>/.downloads/<name>.part`` (resumed with an HTTP Range
request when a ``.part`` is there), checked against its size and sha256 (or, where no checksum is
known, read through completely so a damaged archive fails its CRCs), extracted into a temporary
folder, checked for the expected layout and only then renamed into place. An interrupted or
failed run therefore never leaves a half corpus that the loaders would accept.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import hydra
from omegaconf import DictConfig
from tqdm import tqdm

from crn_lightning.compose import CONFIG_DIR
from crn_lightning.data.corpora import arctic_wav_dir, demand_channel_file
from crn_lightning.errors import UserError

log = logging.getLogger(__name__)

# sha256 of the festvox archives, as published with torchaudio's CMUARCTIC dataset.
ARCTIC_SHA256 = {
    "aew": "645cb33c0f0b2ce41384fdd8d3db2c3f5fc15c1e688baeb74d2e08cab18ab406",
    "ahw": "024664adeb892809d646a3efd043625b46b5bfa3e6189b3500b2d0d59dfab06c",
    "aup": "2c55bc3050caa996758869126ad10cf42e1441212111db034b3a45189c18b6fc",
    "awb": "d74a950c9739a65f7bfc4dfa6187f2730fa03de5b8eb3f2da97a51b74df64d3c",
    "axb": "dd65c3d2907d1ee52f86e44f578319159e60f4bf722a9142be01161d84e330ff",
    "bdl": "26b91aaf48b2799b2956792b4632c2f926cd0542f402b5452d5adecb60942904",
    "clb": "3f16dc3f3b97955ea22623efb33b444341013fc660677b2e170efdcc959fa7c6",
    "eey": "8a0ee4e5acbd4b2f61a4fb947c1730ab3adcc9dc50b195981d99391d29928e8a",
    "fem": "3fcff629412b57233589cdb058f730594a62c4f3a75c20de14afe06621ef45e2",
    "gka": "dc82e7967cbd5eddbed33074b0699128dbd4482b41711916d58103707e38c67f",
    "jmk": "3a37c0e1dfc91e734fdbc88b562d9e2ebca621772402cdc693bbc9b09b211d73",
    "ksp": "8029cafce8296f9bed3022c44ef1e7953332b6bf6943c14b929f468122532717",
    "ljm": "b23993765cbf2b9e7bbc3c85b6c56eaf292ac81ee4bb887b638a24d104f921a0",
    "lnh": "4faf34d71aa7112813252fb20c5433e2fdd9a9de55a00701ffcbf05f24a5991a",
    "rms": "c6dc11235629c58441c071a7ba8a2d067903dfefbaabc4056d87da35b72ecda4",
    "rxr": "1fa4271c393e5998d200e56c102ff46fcfea169aaa2148ad9e9469616fbfdd9b",
    "slp": "54345ed55e45c23d419e9a823eef427f1cc93c83a710735ec667d068c916abf1",
    "slt": "7c173297916acf3cc7fcab2713be4c60b27312316765a90934651d367226b4ea",
}
# The 18 environments of the DEMAND record (Zenodo 1227121); no checksums are published with
# its 16 kHz zips, so their integrity is checked by reading every member (zip CRCs).
DEMAND_ENVIRONMENTS = (
    "DKITCHEN", "DLIVING", "DWASHING", "NFIELD", "NPARK", "NRIVER", "OHALLWAY", "OMEETING",
    "OOFFICE", "PCAFETER", "PRESTO", "PSTATION", "SCAFE", "SPSQUARE", "STRAFFIC", "TBUS",
    "TCAR", "TMETRO",
)  # fmt: skip
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

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1].split("?", 1)[0]


def plan(
    data_dir: Path,
    arctic_url: str,
    speakers: Sequence[str],
    demand_url: str,
    environments: Sequence[str],
    sha256: Mapping[str, str] | None = None,
) -> list[Archive]:
    """The archives to fetch for these speakers and environments (``sha256`` by speaker or
    environment name adds to or replaces the known checksums, e.g. for another archive)."""
    unknown = sorted(set(speakers) - set(ARCTIC_SHA256))
    if unknown:
        raise DownloadError(f"unknown ARCTIC speakers {unknown}; known: {sorted(ARCTIC_SHA256)}")
    unknown = sorted(set(environments) - set(DEMAND_ENVIRONMENTS))
    if unknown:
        raise DownloadError(
            f"unknown DEMAND environments {unknown}; known: {list(DEMAND_ENVIRONMENTS)}"
        )
    checksums = ARCTIC_SHA256 | dict(sha256 or {})
    arctic_root, demand_root = data_dir / "cmu_arctic", data_dir / "DEMAND"
    archives = []
    for speaker in speakers:
        name = f"cmu_us_{speaker}_arctic"
        archives.append(
            Archive(
                f"{arctic_url.rstrip('/')}/{name}.tar.bz2",
                checksums.get(speaker),
                name,
                arctic_root / name,
                arctic_wav_dir(arctic_root, speaker) / "arctic_a0001.wav",
            )
        )
    for env in environments:
        archives.append(
            Archive(
                f"{demand_url.rstrip('/')}/{env}_16k.zip",
                checksums.get(env),
                env,
                demand_root / env,
                demand_channel_file(demand_root, env, 1),
            )
        )
    return archives


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def verify(archive: Archive, path: Path) -> None:
    """Its sha256 when known; else read every member through (bz2 and zip CRCs)."""
    if archive.sha256 is not None:
        found = _sha256(path)
        if found != archive.sha256:
            raise DownloadError(
                f"{archive.url}: sha256 {found} does not match the expected {archive.sha256}"
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
    """Unpack into a temporary folder beside the target, check, then rename into place."""
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
        log.info("fetching %s -> %s", archive.url, archive.target)
        path = fetch(archive.url, data_dir / ".downloads" / f"{archive.name}.part", timeout_s)
        try:
            verify(archive, path)
            extract(archive, path)
        except DownloadError:
            path.unlink()  # a damaged archive is fetched afresh next time
            raise
        path.unlink()
        done.append(archive.name)
    return done


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="download")
def main(cfg: DictConfig) -> None:
    data_dir = Path(cfg.paths.data_dir).absolute()
    archives = plan(
        data_dir,
        cfg.arctic.base_url,
        cfg.arctic.speakers,
        cfg.demand.base_url,
        cfg.demand.environments,
        cfg.sha256,
    )
    if cfg.dry_run:
        for a in archives:
            state = "present" if a.marker.is_file() else "fetch"
            print(f"{state:8s} {a.url} -> {a.target} (sha256 {a.sha256 or 'unknown: CRC check'})")
        return
    fetched = download(archives, data_dir, cfg.timeout_s)
    log.info(
        "done: %d fetched, %d already present; train with paths.data_dir=%s",
        len(fetched),
        len(archives) - len(fetched),
        data_dir,
    )


if __name__ == "__main__":
    # "--dry-run" reads better on a command line than Hydra's "dry_run=true".
    sys.argv = ["dry_run=true" if a == "--dry-run" else a for a in sys.argv]
    main()
