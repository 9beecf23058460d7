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

Speech (default :data:`DEFAULT_SPEECH`, ~240 MB of packages):

- ``fillets-ng-data-cs``: Czech game dialogue, two main actors. Files are named
  ``<level>-<who>-<line>.ogg``; ``who`` is ``m`` (the small fish) or ``v`` (the big fish), each
  voiced by one actor throughout: speakers ``fillets_cs_m`` and ``fillets_cs_v``. The ~15 minor
  characters (some with voice effects) are left out.
- ``klettres-data``: letters and syllables read in ~20 languages: speaker ``klettres_<lang>``.
- ``tuxpaint-stamps-default``: 1-2 s descriptions of drawing stamps, ``*_desc_<lang>.ogg``
  (``*_desc.ogg``: English): speaker ``tuxpaint_<lang>``.

Speaker identities: ``<source tag>_<voice tag>``, where the voice tag is taken from the file's
path by the source's ``voice_regex``. For fillets it names a character voiced by one actor (a
real identity); for klettres and tuxpaint it is the *language*, a **proxy**: each language was
recorded by one or a few volunteers, not verified per file. So a speaker-disjoint split by
these names keeps each language's volunteers on one side; two "speakers" may not be two people
only where one volunteer read two languages.

Quality filter, per file, in this order (the manifest counts what each removed): a file
whose path names no voice the source keeps ("other voice"); unreadable; a duplicate of an
earlier file (sha256 of the decoded samples); too short already before trimming; near-silent
(peak below ``silent_peak``); clipped (more than ``max_clipped_fraction`` of the samples at
``|x| >= 0.99``); noisy (95th - 5th percentile of the 20 ms frame energies below
``min_dynamic_range_db``, digital-zero frames left out: a clean recording's pauses are far
quieter than its speech); then leading and trailing silence is trimmed to
``trim_margin_seconds`` (frames ``trim_threshold_db`` below the loudest), and a trimmed clip
outside ``[min_seconds, max_seconds]`` is too short or too long. Kept clips are resampled to
16 kHz (torchaudio) and averaged to mono. A speaker left with fewer than
``min_speaker_utterances`` clips is dropped ("speaker too small").

Noise (default :data:`DEFAULT_NOISE`, ~180 MB of packages; all of it game or music sound
effects, a **proxy** for DEMAND's microphone recordings of real places, and mostly recorded at
11 kHz, so it holds little above 5.5 kHz):

- ``CITY``: lincity-ng's city and industry sounds (traffic, factories, crowds, markets).
- ``ENGINE``: helicopter and jet engine loops (searchandrescue-data, scorched3d-data).
- ``KEYBOARD``: typing made of bucklespring's recorded key clicks at typing rhythm, over the
  city sounds 20 dB lower (an office by a street), so that it is not mostly silence.
- ``MUSIC``: lincity-ng's and scorched3d's music and sonic-pi's loops and ambient samples.
- ``BABBLE``: six talkers summed, each a stream of Dutch utterances from fillets-ng-data-nl; no
  speaker of it is a speech speaker, so babble never shares a voice with validation or test.

A ``concatenate`` layer cuts each recording into its non-silent stretches, levels them, and
joins them in a seeded random order with short crossfades until ``noise_seconds``; the
manifest records how many seconds of distinct material it had (``unique_seconds``): where that
is less than ``noise_seconds`` the material repeats, and the time-split validation/test parts
of that noise may hear stretches the training part heard.

The build runs in a temporary folder under ``root`` (downloads included, deleted as soon as
each package has been used), is verified, and is renamed into place with the manifest last; a
later call only verifies it (sha256 of every file, ~1 s for the default corpus) and needs
neither the network nor apt-get. A lock file serialises parallel callers.

The default corpus, as built on 2026-12-03 from Debian bookworm's lists: 420 MB of packages
(9), ~6.5 min of CPU; 16 speakers, 2,753 utterances, 94 min of speech; 5 x 300 s of noise;
225 MB on disk. ``festvox-ru`` (one studio speaker, 179 MB) is not a default source: only 9
of its 620 utterances are short enough, and cutting long ones at pauses is not implemented.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import multiprocessing
import os
import re
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch

from crn_lightning.audio import AudioFileError, read_channels, resample
from crn_lightning.data.builds import (
    build_corpus,
    exclusive_lock,
    file_records,
    seeded_rng,
    verify_manifest,
)
from crn_lightning.data.noise_synth import ENVIRONMENT_GENERATORS
from crn_lightning.data.packages import FetchedPackage, fetch_package
from crn_lightning.errors import ConfigError, UserError

LOGGER = logging.getLogger(__name__)

# Bump when a change to the processing changes the files, so that old corpora are rebuilt.
FORMAT_VERSION = 1

MANIFEST_NAME = "manifest.json"
_MARKER_NAME = ".offline-corpus"  # marks folders this module may delete and replace
_BUILD_PREFIX = ".offline-build-"
_TOP_FOLDERS = ("cmu_arctic", "DEMAND", "licenses")
SYNTHETIC_NOISE = tuple(ENVIRONMENT_GENERATORS)
SYNTHETIC_PREFIX = "SYNTH_"
_FRAME_SECONDS = 0.02
_DIGITAL_ZERO_ENERGY = 1e-10  # -100 dB: digital zero (padding), below any room's noise floor
_CLIP_LEVEL = 0.99
_NOISE_RMS = 10.0 ** (-26.0 / 20.0)  # each environment's level (DEMAND's are about as quiet)
_NOISE_PEAK = 0.99
_NOISE_SILENCE_DB = 40.0  # a noise recording's frames this far below its loudest are cut out
_NOISE_MIN_SEGMENT_SECONDS = 0.1
_LAYER_METHODS = ("concatenate", "typing", "babble")


class OfflineCorpusError(UserError):
    """The packages were fetched but do not give a usable corpus; the message says why."""


@dataclass(frozen=True)
class SpeechSource:
    """Recorded speech in a package: which files, and whose voice each one is."""

    package: str
    tag: str  # the speaker prefix: speakers are "<tag>_<voice>"
    pattern: str  # glob, relative to the unpacked package root
    voice_regex: str  # searched in the path relative to the package root; group "voice"
    default_voice: str = ""  # the voice when the regex matches without the "voice" group


@dataclass(frozen=True)
class NoisePart:
    """Recordings in a package, by globs relative to the unpacked package root."""

    package: str
    patterns: tuple[str, ...]


@dataclass(frozen=True)
class NoiseLayer:
    """One layer of a noise environment: the recordings of its parts, pooled, and arranged
    by ``method`` into one ``noise_seconds`` stream."""

    method: str  # concatenate | typing | babble (see the module docstring)
    parts: tuple[NoisePart, ...]
    level_db: float = 0.0  # relative to the environment's other layers (each levelled first)


@dataclass(frozen=True)
class NoiseEnvironment:
    name: str  # in capitals, like DEMAND's (CITY, ENGINE, ...)
    layers: tuple[NoiseLayer, ...]


_LINCITY_SOUNDS = NoisePart("lincity-ng-data", ("usr/share/games/lincity-ng/sounds/*.wav",))
_SCORCHED = "usr/share/games/scorched3d/data/globalmods/none/data"

DEFAULT_SPEECH: tuple[SpeechSource, ...] = (
    SpeechSource(
        "fillets-ng-data-cs",
        "fillets_cs",
        "usr/share/games/fillets-ng/sound/*/cs/*.ogg",
        r"/cs/[^/-]+-(?P<voice>[mv])-[^/]*\.ogg$",
    ),
    SpeechSource(
        "klettres-data",
        "klettres",
        "usr/share/klettres/*/*/*.ogg",
        r"^usr/share/klettres/(?P<voice>[^/]+)/",
    ),
    SpeechSource(
        "tuxpaint-stamps-default",
        "tuxpaint",
        "usr/share/tuxpaint/stamps/**/*_desc*.ogg",
        r"_desc(?:_(?P<voice>[a-z]{2,3}(?:_[A-Z]{2})?))?\.ogg$",
        default_voice="en",
    ),
)

DEFAULT_NOISE: tuple[NoiseEnvironment, ...] = (
    NoiseEnvironment("CITY", (NoiseLayer("concatenate", (_LINCITY_SOUNDS,)),)),
    NoiseEnvironment(
        "ENGINE",
        (
            NoiseLayer(
                "concatenate",
                (
                    NoisePart(
                        "searchandrescue-data",
                        (
                            "usr/share/games/searchandrescue/sounds/*engine*.wav",
                            "usr/share/games/searchandrescue/sounds/hh6*/*.wav",
                        ),
                    ),
                    NoisePart(  # apache, f16, f18, t38 and jet fly-bys, tank movement
                        "scorched3d-data",
                        (
                            f"{_SCORCHED}/wav/misc/[aft]*[0-9].wav",
                            f"{_SCORCHED}/wav/misc/jet.wav",
                            f"{_SCORCHED}/wav/movement/*.wav",
                        ),
                    ),
                ),
            ),
        ),
    ),
    NoiseEnvironment(
        "KEYBOARD",
        (
            NoiseLayer(
                "typing", (NoisePart("bucklespring-data", ("usr/share/buckle/wav/*.wav",)),)
            ),
            NoiseLayer("concatenate", (_LINCITY_SOUNDS,), level_db=-20.0),
        ),
    ),
    NoiseEnvironment(
        "MUSIC",
        (
            NoiseLayer(
                "concatenate",
                (
                    NoisePart("lincity-ng-data", ("usr/share/games/lincity-ng/music/*/*.ogg",)),
                    NoisePart("scorched3d-data", (f"{_SCORCHED}/music/*.ogg",)),
                    NoisePart(
                        "sonic-pi-samples",
                        (
                            "usr/share/sonic-pi/samples/ambi_*.flac",
                            "usr/share/sonic-pi/samples/loop_*.flac",
                        ),
                    ),
                ),
            ),
        ),
    ),
    NoiseEnvironment(
        "BABBLE",
        (
            NoiseLayer(
                "babble",
                (
                    NoisePart(
                        "fillets-ng-data-nl", ("usr/share/games/fillets-ng/sound/*/nl/*.ogg",)
                    ),
                ),
            ),
        ),
    ),
)


@dataclass(frozen=True)
class OfflineCorpusSpec:
    """What to build; part of the manifest, so any change triggers a rebuild."""

    speech: tuple[SpeechSource, ...] = DEFAULT_SPEECH
    noise: tuple[NoiseEnvironment, ...] = DEFAULT_NOISE
    min_seconds: float = 1.0
    max_seconds: float = 4.9  # the project's ARCTIC filter keeps utterances shorter than 5 s
    min_dynamic_range_db: float = 30.0
    max_clipped_fraction: float = 1e-3
    silent_peak: float = 10.0 ** (-40.0 / 20.0)
    trim_threshold_db: float = 45.0
    trim_margin_seconds: float = 0.1
    min_speaker_utterances: int = 20
    noise_seconds: float = 300.0  # DEMAND recordings are 5 min long
    crossfade_seconds: float = 0.05
    babble_talkers: int = 6
    # Generated noises added to the recorded ones (crn_lightning.data.noise_synth, the embedded
    # corpus's restaurant / living room / washing machine / field / park models), as
    # SYNTH_<name>: the packages hold no recorded cafe, kitchen, office or street.
    synthetic_noise: tuple[str, ...] = SYNTHETIC_NOISE
    sample_rate: int = 16000
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "synthetic_noise", tuple(self.synthetic_noise))
        unknown = sorted(set(self.synthetic_noise) - set(ENVIRONMENT_GENERATORS))
        if unknown:
            raise ConfigError(
                f"offline corpus: synthetic_noise names {unknown}; the generated noises are "
                f"{sorted(ENVIRONMENT_GENERATORS)}"
            )
        if not self.speech:
            raise ConfigError("offline corpus: speech sources are empty")
        if not self.noise:
            raise ConfigError("offline corpus: noise environments are empty")
        if not 0 < self.min_seconds < self.max_seconds:
            raise ConfigError(
                "offline corpus: need 0 < min_seconds < max_seconds, got "
                f"min_seconds={self.min_seconds}, max_seconds={self.max_seconds}"
            )
        if self.noise_seconds <= 0 or self.crossfade_seconds < 0:
            raise ConfigError(
                "offline corpus: noise_seconds must be > 0 and crossfade_seconds >= 0, got "
                f"{self.noise_seconds} and {self.crossfade_seconds}"
            )
        if self.min_speaker_utterances < 1 or self.babble_talkers < 1 or self.seed < 0:
            raise ConfigError(
                "offline corpus: min_speaker_utterances and babble_talkers must be >= 1 and "
                f"seed >= 0, got {self.min_speaker_utterances}, {self.babble_talkers} and "
                f"{self.seed}"
            )
        names = [env.name for env in self.noise] + self.synthetic_names()
        if len(set(names)) != len(names):
            raise ConfigError(f"offline corpus: noise environment names repeat: {names}")
        for env in self.noise:
            for layer in env.layers:
                if layer.method not in _LAYER_METHODS:
                    raise ConfigError(
                        f"offline corpus: noise layer method {layer.method!r} in {env.name} "
                        f"is not one of {_LAYER_METHODS}"
                    )
        tags = [source.tag for source in self.speech]
        if len(set(tags)) != len(tags):
            raise ConfigError(f"offline corpus: speech source tags repeat: {tags}")
        for source in self.speech:
            if "voice" not in re.compile(source.voice_regex).groupindex:
                raise ConfigError(
                    f"offline corpus: {source.tag}'s voice_regex has no 'voice' group"
                )

    def synthetic_names(self) -> list[str]:
        return [f"{SYNTHETIC_PREFIX}{name}" for name in self.synthetic_noise]

    def packages(self) -> list[str]:
        """Every package the corpus needs, each once, speech first."""
        names = [s.package for s in self.speech]
        names += [
            part.package for env in self.noise for layer in env.layers for part in layer.parts
        ]
        return list(dict.fromkeys(names))


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
class OfflineCorpus:
    """Where a verified offline corpus lies, and what it was made from."""

    arctic_root: Path
    demand_root: Path
    speakers: tuple[str, ...]
    environments: tuple[str, ...]
    manifest_path: Path
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
    :class:`~crn_lightning.data.packages.PackageError` or :class:`OfflineCorpusError` when a
    package is broken or yields too little; in all cases ``root`` is left as it was.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(root / ".offline.lock"):
        started = time.perf_counter()
        problem = verify_manifest(root / MANIFEST_NAME, _recipe(spec))
        if problem is None:
            LOGGER.info(
                "offline corpus at %s verified in %.2f s", root, time.perf_counter() - started
            )
            return _corpus(root)
        if problem != "no manifest" or any((root / n).exists() for n in _TOP_FOLDERS):
            LOGGER.warning("offline corpus at %s is not usable (%s): rebuilding it", root, problem)
        else:
            LOGGER.info(
                "no offline corpus at %s yet: building it from %d Debian packages (minutes)",
                root,
                len(spec.packages()),
            )
        _build(root, spec, len(os.sched_getaffinity(0)) if workers is None else workers)
        problem = verify_manifest(root / MANIFEST_NAME, _recipe(spec))
        if problem is not None:
            raise RuntimeError(
                f"the offline corpus just built at {root} fails to verify: {problem}"
            )
        LOGGER.info("offline corpus built at %s in %.1f s", root, time.perf_counter() - started)
        return _corpus(root)


def _recipe(spec: OfflineCorpusSpec) -> dict[str, Any]:
    """Everything the files depend on, as stored in (and compared with) the manifest."""
    # Through JSON so that tuples compare equal to the lists a stored manifest reads back as.
    return json.loads(
        json.dumps({"format_version": FORMAT_VERSION, "spec": dataclasses.asdict(spec)})
    )


def _corpus(root: Path) -> OfflineCorpus:
    manifest = json.loads((root / MANIFEST_NAME).read_text())
    return OfflineCorpus(
        arctic_root=root / "cmu_arctic",
        demand_root=root / "DEMAND",
        speakers=tuple(manifest["speakers"]),
        environments=tuple(manifest["environments"]),
        manifest_path=root / MANIFEST_NAME,
        sources=manifest["sources"],
    )


def _build(root: Path, spec: OfflineCorpusSpec, workers: int) -> None:
    def generate(build: Path) -> dict[str, Any]:
        with _file_mapper(workers) as mapper:
            return _generate(build, spec, mapper)

    build_corpus(
        root,
        _TOP_FOLDERS,
        _MARKER_NAME,
        "offline corpus builder",
        _BUILD_PREFIX,
        MANIFEST_NAME,
        generate,
    )


# What runs a function over many files: the built-in map, or a process pool's (in order).
FileMapper = Callable[[Callable[[str], Any], Sequence[str]], Iterable[Any]]


@contextmanager
def _file_mapper(workers: int) -> Iterator[FileMapper]:
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


# -- measuring audio ------------------------------------------------------------------------


def frame_energies_db(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mean-square energy (dB) of consecutive 20 ms frames of a mono signal."""
    size = max(1, round(_FRAME_SECONDS * sample_rate))
    frames = audio[: len(audio) // size * size].astype(np.float64).reshape(-1, size)
    return 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-20)


def dynamic_range_db(energies_db: np.ndarray) -> float:
    """95th - 5th percentile of the frame energies, digital-zero frames left out (zero padding
    would otherwise make any recording look quiet between its words)."""
    live = energies_db[energies_db > 10.0 * np.log10(_DIGITAL_ZERO_ENERGY)]
    if len(live) < 2:
        return 0.0
    return float(np.percentile(live, 95) - np.percentile(live, 5))


def assess_speech(
    channels: np.ndarray, sample_rate: int, spec: OfflineCorpusSpec
) -> tuple[np.ndarray | None, str]:
    """The clean 16 kHz mono clip of a (channels, samples) recording and "kept", or None and
    why it was rejected (too short, silent, clipped, noisy, too long)."""
    if channels.shape[1] < spec.min_seconds * sample_rate:
        return None, "too short"  # before trimming already: not worth resampling
    magnitude = np.max(np.abs(channels), axis=0)
    if magnitude.max() < spec.silent_peak:
        return None, "silent"
    if np.mean(magnitude >= _CLIP_LEVEL) > spec.max_clipped_fraction:
        return None, "clipped"
    mono = resample(channels.mean(axis=0), sample_rate, spec.sample_rate)
    energies = frame_energies_db(mono, spec.sample_rate)
    if dynamic_range_db(energies) < spec.min_dynamic_range_db:
        return None, "noisy"
    active = np.flatnonzero(energies >= energies.max() - spec.trim_threshold_db)
    frame = round(_FRAME_SECONDS * spec.sample_rate)
    margin = round(spec.trim_margin_seconds * spec.sample_rate)
    start = max(0, active[0] * frame - margin)
    stop = min(len(mono), (active[-1] + 1) * frame + margin)
    clip = mono[start:stop]
    seconds = len(clip) / spec.sample_rate
    if seconds < spec.min_seconds:
        return None, "too short"
    if seconds > spec.max_seconds:
        return None, "too long"
    return clip, "kept"


def _read(path: Path) -> tuple[np.ndarray, int] | None:
    try:
        return read_channels(path)
    except AudioFileError:
        return None


def _matching(root: Path, patterns: Sequence[str]) -> list[Path]:
    found = {path for pattern in patterns for path in root.glob(pattern) if path.is_file()}
    return sorted(found)


def _content_hash(channels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(channels).tobytes()).hexdigest()


# -- speech ---------------------------------------------------------------------------------


def _write_speech(
    build: Path,
    package: FetchedPackage,
    source: SpeechSource,
    spec: OfflineCorpusSpec,
    seen: set[str],
    mapper: FileMapper,
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Write the clean clips of ``source`` under ``build/cmu_arctic``, one folder per speaker;
    return the utterance records and the counts of every filter's verdicts. ``seen`` holds the
    content hashes of the files already looked at (from any source); ``mapper`` runs the
    per-file work."""
    voice_regex = re.compile(source.voice_regex)
    records: dict[str, list[dict[str, Any]]] = defaultdict(list)
    counts: Counter[str] = Counter()
    files = _matching(package.root, (source.pattern,))
    if not files:
        raise OfflineCorpusError(
            f"package {package.name} {package.version}: no file matches {source.pattern!r} "
            f"(speech source {source.tag}); the package's layout has changed"
        )
    voiced: list[tuple[str, str]] = []  # (path relative to the package, voice)
    for path in files:
        relative = path.relative_to(package.root).as_posix()
        match = voice_regex.search(relative)
        if match is None:
            counts["other voice"] += 1
        else:
            voiced.append((relative, match.group("voice") or source.default_voice))
    assessed = mapper(
        functools.partial(_assess_speech_file, spec=spec),
        [str(package.root / relative) for relative, _ in voiced],
    )
    # In file order, whatever the workers' timing: the same duplicates, names and files.
    for (relative, voice), (digest, verdict, clip) in zip(voiced, assessed, strict=True):
        if digest is None:
            counts[verdict] += 1
            continue
        if digest in seen:
            counts["duplicate"] += 1
            continue
        seen.add(digest)
        counts[verdict] += 1
        if clip is None:
            continue
        speaker = f"{source.tag}_{voice}"
        folder = _speaker_folder(build, speaker)
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / f"utt_{len(records[speaker]):05d}.wav"
        soundfile.write(out, clip, spec.sample_rate, subtype="PCM_16")
        records[speaker].append(
            {
                "speaker": speaker,
                "path": out.relative_to(build).as_posix(),
                "package": package.name,
                "source": relative,
                "seconds": round(len(clip) / spec.sample_rate, 3),
            }
        )
    kept = []
    for speaker, items in sorted(records.items()):
        if len(items) < spec.min_speaker_utterances:
            # Too few to be worth a speaker of their own in speaker-disjoint splits.
            shutil.rmtree(_speaker_folder(build, speaker).parent)
            counts["kept"] -= len(items)
            counts["speaker too small"] += len(items)
        else:
            kept += items
    return kept, counts


def _assess_speech_file(
    path: str, spec: OfflineCorpusSpec
) -> tuple[str | None, str, np.ndarray | None]:
    """One speech file's (content hash, verdict, clean clip); the hash is None when the file
    cannot be read. Runs in a worker process."""
    read = _read(Path(path))
    if read is None:
        return None, "unreadable", None
    channels, rate = read
    clip, verdict = assess_speech(channels, rate, spec)
    return _content_hash(channels), verdict, clip


def _speaker_folder(build: Path, speaker: str) -> Path:
    return build / "cmu_arctic" / f"cmu_us_{speaker}_arctic" / "wav"


# -- noise ----------------------------------------------------------------------------------


def _noise_segments(channels: np.ndarray, rate: int, spec: OfflineCorpusSpec) -> list[np.ndarray]:
    """The non-silent stretches of a recording, 16 kHz mono, each levelled to unit RMS."""
    mono = resample(channels.mean(axis=0), rate, spec.sample_rate)
    energies = frame_energies_db(mono, spec.sample_rate)
    if len(energies) == 0 or energies.max() < 20 * np.log10(spec.silent_peak):
        return []
    active = energies >= energies.max() - _NOISE_SILENCE_DB
    frame = round(_FRAME_SECONDS * spec.sample_rate)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(int), [0]])))
    segments = []
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        piece = mono[start * frame : stop * frame]
        if len(piece) >= _NOISE_MIN_SEGMENT_SECONDS * spec.sample_rate:
            segments.append(_level(piece))
    return segments


def _level(audio: np.ndarray) -> np.ndarray:
    """``audio`` at unit RMS, kept in float32 (an hour of babble material in float64: 0.5 GB)."""
    return (audio / np.sqrt(np.mean(audio.astype(np.float64) ** 2))).astype(np.float32)


def _join(
    pieces: Sequence[np.ndarray], total: int, crossfade: int, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """Pieces in random order, joined with equal-power crossfades, repeated (reshuffled) until
    ``total`` samples; also how many passes over the material that took."""
    out = np.zeros(total + max(len(p) for p in pieces) + crossfade, dtype=np.float64)
    fade = np.linspace(0.0, np.pi / 2, crossfade, endpoint=False)
    fade_in, fade_out = np.sin(fade), np.cos(fade)
    position, passes = 0, 0
    while position < total:
        passes += 1
        for index in rng.permutation(len(pieces)):
            piece = pieces[index].astype(np.float64)
            if position > 0 and len(piece) > 2 * crossfade and crossfade > 0:
                out[position - crossfade : position] *= fade_out
                piece = piece.copy()
                piece[:crossfade] *= fade_in
                start = position - crossfade
            else:
                start = position
            out[start : start + len(piece)] += piece
            position = start + len(piece)
            if position >= total:
                break
    return out[:total], passes


def _typing(
    clicks: Sequence[np.ndarray], total: int, rate: int, rng: np.random.Generator
) -> np.ndarray:
    """Key clicks at a typing rhythm: words of 2-9 keys ~0.12 s apart, gaps between words and
    now and then a pause to think. Clicks keep their recorded levels relative to each other."""
    out = np.zeros(total + max(len(c) for c in clicks), dtype=np.float64)
    time_s = 0.0
    while time_s * rate < total:
        for _ in range(int(rng.integers(2, 10))):
            click = clicks[int(rng.integers(len(clicks)))]
            start = int(time_s * rate)
            if start >= total:
                break
            out[start : start + len(click)] += click
            time_s += float(rng.lognormal(np.log(0.12), 0.35))
        time_s += float(rng.uniform(0.15, 0.45)) + (
            float(rng.uniform(1, 3)) if rng.random() < 0.08 else 0.0
        )
    return out[:total]


def _layer_pieces(
    method: str,
    package: FetchedPackage,
    part: NoisePart,
    spec: OfflineCorpusSpec,
    key: str,
    mapper: FileMapper,
) -> tuple[list[np.ndarray], int]:
    """The 16 kHz pieces a layer's ``method`` arranges, from one part; and how many distinct
    files they came from."""
    files = _matching(package.root, part.patterns)
    if not files:
        raise OfflineCorpusError(
            f"package {package.name} {package.version}: no file matches {list(part.patterns)} "
            f"(noise layer {key}); the package's layout has changed"
        )
    pieces: list[np.ndarray] = []
    seen: set[str] = set()
    # Each worker decodes one file at a time and sends back only its pieces (all of a
    # package's files decoded at once would take GBs).
    found = mapper(
        functools.partial(_noise_file_pieces, method=method, spec=spec), [str(f) for f in files]
    )
    for digest, file_pieces in found:
        if digest is None or digest in seen:
            continue
        seen.add(digest)
        pieces += file_pieces
    return pieces, len(seen)


def _noise_file_pieces(
    path: str, method: str, spec: OfflineCorpusSpec
) -> tuple[str | None, list[np.ndarray]]:
    """One noise file's content hash (None: unreadable) and the pieces ``method`` takes from
    it. Runs in a worker process."""
    read = _read(Path(path))
    if read is None:
        return None, []
    channels, rate = read
    if method == "typing":
        # Clicks are kept whole and at their own levels: their loudness varies like keys'.
        pieces = [resample(channels.mean(axis=0), rate, spec.sample_rate)]
    elif method == "concatenate":
        pieces = _noise_segments(channels, rate, spec)
    else:  # babble: clean utterances of any length, levelled
        clip, _ = assess_speech(channels, rate, dataclasses.replace(spec, max_seconds=60.0))
        pieces = [] if clip is None else [_level(clip)]
    return _content_hash(channels), pieces


def _render_layer(
    layer: NoiseLayer, pieces: list[np.ndarray], spec: OfflineCorpusSpec, key: str
) -> tuple[np.ndarray, dict[str, Any]]:
    """A layer's ``noise_seconds`` of sound, at its level_db, and a record of what it used."""
    total = round(spec.noise_seconds * spec.sample_rate)
    rng = seeded_rng(spec.seed, key)
    if not pieces:
        raise OfflineCorpusError(f"noise layer {key}: its files hold no usable sound")
    unique_seconds = sum(len(p) for p in pieces) / spec.sample_rate
    if layer.method == "typing":
        audio, passes = _typing(pieces, total, spec.sample_rate, rng), 0
    elif layer.method == "concatenate":
        audio, passes = _join(pieces, total, round(spec.crossfade_seconds * spec.sample_rate), rng)
    else:  # babble: several talkers, each a stream of utterances with short gaps
        if len(pieces) < spec.babble_talkers:
            raise OfflineCorpusError(f"noise layer {key}: only {len(pieces)} usable utterances")
        gaps = [
            np.zeros(int(rng.uniform(0.05, 0.4) * spec.sample_rate), np.float32) for _ in pieces
        ]
        # Replaced, not kept alongside: an hour of material is ~0.3 GB in float32.
        pieces = [np.concatenate([piece, gap]) for piece, gap in zip(pieces, gaps, strict=True)]
        audio, passes = _join(pieces, total, 0, rng)
        for _ in range(spec.babble_talkers - 1):
            stream, stream_passes = _join(pieces, total, 0, rng)
            audio += stream
            passes = max(passes, stream_passes)
    if passes > 1 and layer.method == "concatenate":
        LOGGER.warning(
            "noise layer %s has %.0f s of material for %.0f s: it repeats, so its validation "
            "and test parts may hear noise the training part heard",
            key,
            unique_seconds,
            spec.noise_seconds,
        )
    audio = audio / np.sqrt(np.mean(audio**2)) * 10.0 ** (layer.level_db / 20.0)
    record = {
        "method": layer.method,
        "packages": sorted({part.package for part in layer.parts}),
        "pieces": len(pieces),
        "unique_seconds": round(unique_seconds, 1),
        "passes": passes,
        "level_db": layer.level_db,
    }
    return audio, record


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
    for name in _TOP_FOLDERS:
        (build / name).mkdir()
        (build / name / _MARKER_NAME).write_text("built by crn_lightning.data.offline\n")
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
        records, counts = _write_speech(build, package, speech, spec, gathered.seen, mapper)
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
                    decoded[layer.method, part] = _layer_pieces(
                        layer.method, package, part, spec, env.name, mapper
                    )
                found, files = decoded[layer.method, part]
                gathered.pieces[env.name, index] += found
                gathered.noise_files[env.name, index] += files
                if env.name not in source["noise"]:
                    source["noise"].append(env.name)
    return source


def _synthetic_noise(spec: OfflineCorpusSpec, name: str) -> np.ndarray:
    """A generated noise, seeded as the embedded corpus seeds it."""
    rng = seeded_rng(spec.seed, f"noise/{name}")
    return ENVIRONMENT_GENERATORS[name](spec.noise_seconds, spec.sample_rate, rng)


def _finish(
    build: Path,
    spec: OfflineCorpusSpec,
    sources: list[dict[str, Any]],
    gathered: _Gathered,
    mapper: FileMapper,
) -> dict[str, Any]:
    """Render the noise environments from their pieces and return the manifest."""
    utterances, pieces, noise_files = gathered.utterances, gathered.pieces, gathered.noise_files
    speakers = sorted({r["speaker"] for r in utterances})
    if not speakers:
        raise OfflineCorpusError("no speaker kept enough clean utterances; see the filter counts")
    environments = []
    for env in spec.noise:
        layers, records = [], []
        for index, layer in enumerate(env.layers):
            key = f"{env.name}/{index}"
            audio, record = _render_layer(layer, pieces.pop((env.name, index)), spec, key)
            layers.append(audio)
            records.append({**record, "files": noise_files[env.name, index]})
        audio = np.sum(layers, axis=0)
        audio *= min(_NOISE_RMS / np.sqrt(np.mean(audio**2)), _NOISE_PEAK / np.max(np.abs(audio)))
        folder = build / "DEMAND" / env.name
        folder.mkdir()
        soundfile.write(
            folder / "ch01.wav", audio.astype(np.float32), spec.sample_rate, subtype="PCM_16"
        )
        environments.append({"name": env.name, "layers": records})
    # Through the mapper: one torch thread, as the generators' filters give the same bytes
    # for the same number of threads only.
    generated = mapper(functools.partial(_synthetic_noise, spec), spec.synthetic_noise)
    for audio, folder_name in zip(generated, spec.synthetic_names(), strict=True):
        (build / "DEMAND" / folder_name).mkdir()
        soundfile.write(
            build / "DEMAND" / folder_name / "ch01.wav", audio, spec.sample_rate, subtype="PCM_16"
        )
        environments.append({"name": folder_name, "generated_by": "crn_lightning.data.noise_synth"})
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
        "files": file_records(build, skip_names=(_MARKER_NAME,)),
        "utterances": utterances,
    }
