"""A corpus of real speech and real noise taken from Debian packages, built without root.

Where CMU ARCTIC and DEMAND cannot be downloaded, the machine's Debian package lists usually
still serve games and teaching programs that ship recorded human voices and recorded sounds.
:func:`ensure_offline_corpus` fetches them with ``apt-get download`` (nothing is installed, see
:mod:`crn_lightning.data.packages`), keeps the clean speech, builds five 5-minute noise
"environments", and writes them in the real corpora's layouts, so the loader reads them
unchanged::

    root/cmu_arctic/cmu_us_<speaker>_arctic/wav/utt_00000.wav ...  (16 kHz mono PCM_16)
    root/DEMAND/<ENV>/ch01.wav                                     (16 kHz mono, noise_seconds)
    root/licenses/<package>.copyright                              (each package's terms)
    root/manifest.json     (spec, package versions and .deb sha256s, filter counts, sha256s)

What it is made of (packages, speakers, noise environments, thresholds): the spec, in
:mod:`.offline_spec`; a run's ``data.offline`` settings change its fields in
:data:`CONFIG_FIELDS` (:func:`spec_from_config`). How speech is chosen: :mod:`.offline_speech`
and :mod:`.speech_quality`; how noise is made: :mod:`.offline_noise`; both read the packages'
files through :mod:`.package_audio`. This module runs the build and writes the manifest.

The build runs in a temporary folder under ``root`` (downloads included, deleted as soon as
each package has been used), is verified, and is renamed into place with the manifest last; a
later call only verifies it (sha256 of every file, ~1 s for the default corpus) and needs
neither the network nor apt-get. A lock file serialises parallel callers.

The default corpus, as built on 2026-12-05 from Debian bookworm's lists: 599 MB of packages
(10), 83 s wall on 2 cores with downloads; 17 speakers, 4,394 utterances, 182 min of speech
(``festvox-ru``'s read sentences cut at their labelled pauses: 1,641 clips, 89 min); 5 x 300 s
of recorded noise and 5 generated; 437 MB on disk.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import re
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crn_lightning.data.builds import (
    BuiltCorpus,
    CorpusLayout,
    ensure_built,
    file_records,
)
from crn_lightning.data.noise_synth import write_generated_noise
from crn_lightning.data.offline_noise import layer_pieces, write_environment
from crn_lightning.data.offline_spec import SYNTHETIC_PREFIX, NoisePart, OfflineCorpusSpec
from crn_lightning.data.offline_speech import write_speech
from crn_lightning.data.package_audio import FileMapper, OfflineCorpusError, file_mapper
from crn_lightning.data.packages import FetchedPackage, fetch_package
from crn_lightning.errors import ConfigError

LOGGER = logging.getLogger(__name__)

# Bump when a change to the processing changes the files, so that old corpora are rebuilt.
FORMAT_VERSION = 1

_LAYOUT = CorpusLayout(
    "offline", "offline corpus", "offline corpus builder", ("cmu_arctic", "DEMAND", "licenses")
)


# The spec fields a run's config may change (``data.offline.<field>``); the package and file
# lists stay in code: changing them means checking what the new packages hold.
CONFIG_FIELDS = (
    "min_seconds",
    "max_seconds",
    "min_dynamic_range_db",
    "max_clipped_fraction",
    "min_speaker_utterances",
    "noise_seconds",
    "babble_talkers",
    "synthetic_noise",
    "seed",
)


def spec_from_config(options: Mapping[str, Any]) -> OfflineCorpusSpec:
    """The default spec with the ``data.offline`` settings in ``options`` applied."""
    unknown = sorted(set(options) - set(CONFIG_FIELDS))
    if unknown:
        raise ConfigError(
            f"data.offline: {unknown} cannot be set from the config (settable: "
            f"{list(CONFIG_FIELDS)})"
        )
    try:
        return dataclasses.replace(OfflineCorpusSpec(), **options)
    except ConfigError as error:
        raise ConfigError(f"data.offline: {error}") from error


@dataclass(frozen=True)
class OfflineCorpus(BuiltCorpus):
    """Where a verified offline corpus lies, and what it was made from."""

    sources: list[dict[str, Any]] = field(default_factory=list)  # package, version, kept, ...


def ensure_offline_corpus(
    root: Path, spec: OfflineCorpusSpec = OfflineCorpusSpec(), workers: int | None = None
) -> OfflineCorpus:
    """Return the offline corpus under ``root``, building it first if it is not valid there.

    A build decodes and filters the files in ``workers`` processes (None: one per CPU core
    this process may use; 1: in this process); the corpus is the same, byte for byte,
    whatever their number.

    Raises :class:`~crn_lightning.data.packages.PackageManagerUnavailable` when a build is
    needed and apt-get cannot deliver a package (the caller's cue to fall back), and a
    :class:`~crn_lightning.data.packages.PackageError` or
    :class:`~crn_lightning.data.package_audio.OfflineCorpusError` when a package is broken or
    yields too little; in all cases ``root`` is left as it was.
    """
    root = Path(root)
    processes = len(os.sched_getaffinity(0)) if workers is None else workers

    def generate(build: Path) -> dict[str, Any]:
        with file_mapper(processes) as mapper:
            return _generate(build, spec, mapper)

    return ensure_built(
        root,
        _LAYOUT,
        _recipe(spec),
        generate,
        lambda: _corpus(root),
        f"building it from {len(spec.packages())} Debian packages (minutes)",
        LOGGER,
    )


def _recipe(spec: OfflineCorpusSpec) -> dict[str, Any]:
    """Everything the files depend on, as stored in (and compared with) the manifest."""
    # Through JSON so that tuples compare equal to the lists a stored manifest reads back as.
    return json.loads(
        json.dumps({"format_version": FORMAT_VERSION, "spec": dataclasses.asdict(spec)})
    )


def _corpus(root: Path) -> OfflineCorpus:
    manifest = json.loads((root / _LAYOUT.manifest_name).read_text())
    return OfflineCorpus(
        arctic_root=root / "cmu_arctic",
        demand_root=root / "DEMAND",
        speakers=tuple(manifest["speakers"]),
        environments=tuple(manifest["environments"]),
        manifest_path=root / _LAYOUT.manifest_name,
        sources=manifest["sources"],
    )


def _licenses(package: FetchedPackage, build: Path) -> list[str]:
    """Keep the package's copyright file in the corpus; return its License: names."""
    copyright_file = package.root / "usr" / "share" / "doc" / package.name / "copyright"
    if not copyright_file.is_file():
        return ["unknown: the package has no copyright file"]
    text = copyright_file.read_text(errors="replace")
    shutil.copyfile(copyright_file, build / "licenses" / f"{package.name}.copyright")
    names = re.findall(r"^License:\s*(\S.*?)\s*$", text, flags=re.MULTILINE)
    # Copyright files in free-form text name the licence by Debian's copy of its text.
    names = names or re.findall(r"/usr/share/common-licenses/([A-Za-z0-9.+-]*[A-Za-z0-9+])", text)
    return list(dict.fromkeys(names)) or [f"see licenses/{package.name}.copyright"]


def _generate(build: Path, spec: OfflineCorpusSpec, mapper: FileMapper) -> dict[str, Any]:
    """Fetch each package, take what the spec wants from it, write the corpus under ``build``
    and return the manifest describing it."""
    for name in _LAYOUT.top_folders:
        (build / name).mkdir()
        (build / name / _LAYOUT.marker).write_text("built by crn_lightning.data.offline\n")
    work = build / "packages"
    gathered, sources = _Gathered(), []
    names = spec.packages()
    # The next package downloads and unpacks (network, dpkg-deb) while this one is worked on;
    # a used package's files are deleted in the background.
    with ThreadPoolExecutor(1) as fetcher, ThreadPoolExecutor(1) as cleaner:
        upcoming = fetcher.submit(fetch_package, names[0], work / names[0])
        for position, name in enumerate(names):
            started = time.perf_counter()
            package = upcoming.result()
            waited = time.perf_counter() - started
            if position + 1 < len(names):
                following = names[position + 1]
                upcoming = fetcher.submit(fetch_package, following, work / following)
            sources.append(_use_package(package, build, spec, mapper, gathered))
            cleaner.submit(shutil.rmtree, work / name)
            LOGGER.info(
                "package %s %s used in %.1f s (of which %.1f s waiting for its download)",
                package.name,
                package.version,
                time.perf_counter() - started,
                waited,
            )
    return _finish(build, spec, sources, gathered, mapper)


@dataclass
class _Gathered:
    """What the packages used so far have given."""

    seen: set[str] = field(default_factory=set)  # content hashes of the speech files read
    utterances: list[dict[str, Any]] = field(default_factory=list)
    # The noise pieces and distinct files of each (environment, layer index).
    pieces: dict[tuple[str, int], list[np.ndarray]] = field(
        default_factory=lambda: defaultdict(list)
    )
    noise_files: Counter[tuple[str, int]] = field(default_factory=Counter)


def _use_package(
    package: FetchedPackage,
    build: Path,
    spec: OfflineCorpusSpec,
    mapper: FileMapper,
    gathered: _Gathered,
) -> dict[str, Any]:
    """Write ``package``'s speech, add its noise pieces to ``gathered`` and return its
    manifest record."""
    name = package.name
    source: dict[str, Any] = {
        "package": package.name,
        "version": package.version,
        "deb_sha256": package.deb_sha256,
        "deb_bytes": package.deb_bytes,
        "licenses": _licenses(package, build),
        "speech": {},
        "noise": [],
    }
    for speech in (s for s in spec.speech if s.package == name):
        records, counts = write_speech(build, package, speech, spec, gathered.seen, mapper)
        gathered.utterances += records
        source["speech"][speech.tag] = {
            "filters": dict(sorted(counts.items())),
            "files_kept": len(records),
            "minutes": round(sum(r["seconds"] for r in records) / 60.0, 2),
            "speakers": sorted({r["speaker"] for r in records}),
        }
    # A part used by several layers (lincity's sounds: CITY, KEYBOARD) is decoded once.
    decoded: dict[tuple[str, NoisePart], tuple[list[np.ndarray], int]] = {}
    for env in spec.noise:
        for index, layer in enumerate(env.layers):
            for part in (p for p in layer.parts if p.package == name):
                if (layer.method, part) not in decoded:
                    decoded[layer.method, part] = layer_pieces(
                        layer.method, package, part, spec, env.name, mapper
                    )
                found, files = decoded[layer.method, part]
                gathered.pieces[env.name, index] += found
                gathered.noise_files[env.name, index] += files
                if env.name not in source["noise"]:
                    source["noise"].append(env.name)
    return source


def _write_generated(spec: OfflineCorpusSpec, build: Path, name: str) -> str:
    folder_name = f"{SYNTHETIC_PREFIX}{name}"
    folder = build / "DEMAND" / folder_name
    write_generated_noise(folder, name, spec.noise_seconds, spec.sample_rate, spec.seed)
    return folder_name


def _finish(
    build: Path,
    spec: OfflineCorpusSpec,
    sources: list[dict[str, Any]],
    gathered: _Gathered,
    mapper: FileMapper,
) -> dict[str, Any]:
    """Render the noise environments from their pieces, add the generated ones and return the
    manifest."""
    utterances = gathered.utterances
    speakers = sorted({r["speaker"] for r in utterances})
    if not speakers:
        raise OfflineCorpusError("no speaker kept enough clean utterances; see the filter counts")
    environments = [
        write_environment(build, env, gathered.pieces, gathered.noise_files, spec)
        for env in spec.noise
    ]
    # Through the mapper: one torch thread, as in the embedded corpus's build. The two noises
    # with eSpeak babble (PRESTO, NFIELD) still differ a little from build to build: eSpeak NG's
    # output is not the same from call to call.
    written = mapper(functools.partial(_write_generated, spec, build), spec.synthetic_noise)
    environments += [
        {"name": name, "generated_by": "crn_lightning.data.noise_synth"} for name in written
    ]
    per_speaker = Counter(r["speaker"] for r in utterances)
    seconds = defaultdict(float)
    for record in utterances:
        seconds[record["speaker"]] += record["seconds"]
    return {
        **_recipe(spec),
        "speakers": speakers,
        "speaker_utterances": {s: per_speaker[s] for s in speakers},
        "speaker_minutes": {s: round(seconds[s] / 60.0, 2) for s in speakers},
        "environments": [env.name for env in spec.noise] + spec.synthetic_names(),
        "noise": environments,
        "sources": sources,
        "files": file_records(build, skip_names=(_LAYOUT.marker,)),
        "utterances": utterances,
    }
