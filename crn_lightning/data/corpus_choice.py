"""Which corpus a run uses: real CMU ARCTIC + DEMAND, the offline corpus of real recordings
built from Debian packages, or the generated (eSpeak) embedded stand-in."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crn_lightning.data.corpora import CorpusError, arctic_present, demand_present
from crn_lightning.data.embedded import EmbeddedCorpusSpec, ensure_embedded_corpus
from crn_lightning.data.offline import OfflineCorpus, ensure_offline_corpus
from crn_lightning.data.offline_spec import OfflineCorpusSpec
from crn_lightning.data.packages import PackageManagerUnavailable
from crn_lightning.errors import ConfigError, UserError

log = logging.getLogger(__name__)

CORPUS_KINDS = ("auto", "real", "offline", "embedded")
_RULE = "!" * 78
# The offline corpus's standard speaker-disjoint split (data.split_by=speaker with null
# data.val_speakers / data.test_speakers): two voices each from two packages, neither of the
# two large fillets-ng voices, so that training keeps most of the speech. Fixed rather than
# drawn, so that every offline run validates and tests on the same new voices.
OFFLINE_HELD_OUT_SPEAKERS = {
    "val": ("klettres_nl", "tuxpaint_ro"),
    "test": ("klettres_fr", "tuxpaint_bg"),
}


@dataclass(frozen=True)
class CorpusRoots:
    arctic_root: Path
    demand_root: Path
    speakers: list[str]
    environments: list[str]
    kind: str  # real, offline or embedded (a data.corpus value that reproduces the choice)
    sources: list[dict[str, Any]] = field(default_factory=list)  # offline: its packages
    # A corpus's standard validation and test speakers, where it has them (offline).
    held_out_speakers: dict[str, list[str]] | None = None


@dataclass(frozen=True)
class GeneratedCorpora:
    """Where the corpora this project makes itself lie, and what they hold."""

    embedded_dir: Path | None
    embedded_spec: EmbeddedCorpusSpec
    offline_dir: Path | None
    offline_spec: OfflineCorpusSpec
    offline_speakers: list[str] | None = None  # None: all of the offline corpus's
    offline_environments: list[str] | None = None


def choose_corpus(
    corpus: str,
    arctic_root: Path,
    demand_root: Path,
    speakers: Sequence[str],
    environments: Sequence[str],
    noise_channel: int,
    generated: GeneratedCorpora,
) -> CorpusRoots:
    """``corpus``: ``real`` (the roots given; an error later if absent), ``offline`` (built or
    verified in ``generated.offline_dir``; an error where it cannot be built), ``embedded``
    (generated or verified in ``generated.embedded_dir``) or ``auto``: real when present, else
    offline, else (no usable apt-get) embedded, with a banner in the log.
    """
    check_corpus_kind(corpus)
    real = arctic_present(arctic_root, speakers) and demand_present(
        demand_root, environments, noise_channel
    )
    if corpus == "real" or (corpus == "auto" and real):
        return CorpusRoots(arctic_root, demand_root, list(speakers), list(environments), "real")
    if corpus == "embedded":
        return _embedded(generated, environments, corpus)
    offline_dir = _folder(generated.offline_dir, "data.offline_dir", corpus)
    try:
        offline = ensure_offline_corpus(offline_dir, generated.offline_spec)
    except PackageManagerUnavailable as error:
        if corpus == "offline":
            raise ConfigError(
                f"data.corpus=offline: the offline corpus is not in {offline_dir} "
                f"(data.offline_dir) and cannot be built here: {error}. It needs apt-get with "
                "Debian package lists (Debian/Ubuntu; `apt-get update` as root) and the "
                "network once; or copy a built corpus into data.offline_dir, or use "
                "data.corpus=auto to fall back to the embedded corpus"
            ) from error
        _fallback_banner(arctic_root, demand_root, speakers, environments, offline_dir, error)
        return _embedded(generated, environments, corpus)
    except UserError:
        # A package that downloaded but is broken, or yields too little: worth stopping for.
        log.error(
            "data.corpus=%s: building the offline corpus in %s failed (below); "
            "data.corpus=embedded trains without it",
            corpus,
            offline_dir,
        )
        raise
    if corpus == "auto":
        log.info(
            "data.corpus=auto: no real CMU ARCTIC at %s (speakers %s) and DEMAND at %s (%s): "
            "using the offline corpus",
            arctic_root,
            list(speakers),
            demand_root,
            list(environments),
        )
    return _offline(offline, generated)


@dataclass(frozen=True)
class SpeakerSplit:
    """How a run splits its corpus's utterances: ``split_by`` and the named speakers."""

    split_by: str  # utterance or speaker
    val: list[str] | None
    test: list[str] | None


def speaker_split(
    split_by: str,
    corpus: str,
    roots: CorpusRoots,
    val_speakers: Sequence[str] | None,
    test_speakers: Sequence[str] | None,
) -> SpeakerSplit:
    """data.split_by and data.val_speakers / data.test_speakers for the corpus in use: null
    speaker lists take the corpus's standard held-out speakers where it has them; where
    data.corpus=auto fell back to a corpus with fewer than the three speakers a speaker split
    needs (the embedded corpus has two), the split is by utterance, with a warning."""
    val = None if val_speakers is None else list(val_speakers)
    test = None if test_speakers is None else list(test_speakers)
    if split_by != "speaker":
        return SpeakerSplit(split_by, val, test)
    if corpus == "auto" and len(roots.speakers) < 3:
        log.warning(
            "data.split_by=speaker, but the %s corpus that data.corpus=auto chose has only the "
            "speakers %s: splitting by utterance instead (validation and test hear voices "
            "trained on)",
            roots.kind,
            roots.speakers,
        )
        return SpeakerSplit("utterance", None, None)
    if val is None and test is None and roots.held_out_speakers:
        val, test = roots.held_out_speakers["val"], roots.held_out_speakers["test"]
        log.info(
            "speaker-disjoint split: the %s corpus's standard held-out speakers, validation "
            "%s, test %s (data.val_speakers / data.test_speakers name others)",
            roots.kind,
            val,
            test,
        )
    return SpeakerSplit("speaker", val, test)


def check_corpus_kind(corpus: str) -> None:
    if corpus not in CORPUS_KINDS:
        raise ConfigError(f"data.corpus must be auto, real, offline or embedded, got {corpus!r}")


def _folder(folder: Path | None, key: str, corpus: str) -> Path:
    if folder is None:
        raise ConfigError(
            f"{key} is not set: data.corpus={corpus} needs a folder to build its corpus in"
        )
    return folder


def _offline(offline: OfflineCorpus, generated: GeneratedCorpora) -> CorpusRoots:
    """The offline corpus's own speakers and environments, or the subsets the config names."""
    speakers = _subset(generated.offline_speakers, offline.speakers, "data.offline_speakers")
    environments = _subset(
        generated.offline_environments, offline.environments, "data.offline_environments"
    )
    log.info(
        "the offline corpus has its own speakers and noises: data.speakers and "
        "data.environments (ARCTIC and DEMAND names) do not apply; using speakers %s and "
        "environments %s (restrict them with data.offline_speakers / data.offline_environments)",
        speakers,
        environments,
    )
    return CorpusRoots(
        offline.arctic_root,
        offline.demand_root,
        speakers,
        environments,
        "offline",
        offline_sources(offline),
        offline_held_out(speakers),
    )


def offline_held_out(speakers: Sequence[str]) -> dict[str, list[str]] | None:
    """The standard split's speakers, while the speakers in use still include all of them."""
    wanted = {stage: list(names) for stage, names in OFFLINE_HELD_OUT_SPEAKERS.items()}
    if all(name in speakers for names in wanted.values() for name in names):
        return wanted
    return None


def _subset(chosen: Sequence[str] | None, available: Sequence[str], key: str) -> list[str]:
    if chosen is None:
        return list(available)
    unknown = sorted(set(chosen) - set(available))
    if unknown or not chosen:
        raise ConfigError(
            f"{key}={list(chosen)}: give null or a non-empty subset of the offline corpus's "
            f"{list(available)}" + (f" ({unknown} are not among them)" if unknown else "")
        )
    return [name for name in available if name in chosen]


def offline_sources(offline: OfflineCorpus) -> list[dict[str, Any]]:
    """What each package of the offline corpus gave, from its manifest: speech files kept and
    their minutes, and the noise environments it is part of."""
    return [
        {
            "package": source["package"],
            "version": source["version"],
            "licenses": source["licenses"],
            "speech_files": sum(s["files_kept"] for s in source["speech"].values()),
            "speech_minutes": round(sum(s["minutes"] for s in source["speech"].values()), 2),
            "noise": list(source["noise"]),
        }
        for source in offline.sources
    ]


def describe_sources(sources: Sequence[dict[str, Any]]) -> str:
    """One line per package, for the log."""
    lines = []
    for source in sources:
        uses = []
        if source["speech_files"]:
            uses.append(f"speech: {source['speech_files']} files, {source['speech_minutes']:g} min")
        if source["noise"]:
            uses.append(f"noise: {', '.join(source['noise'])}")
        lines.append(
            f"  {source['package']} {source['version']} ({'; '.join(uses)}; licences "
            f"{', '.join(source['licenses'])})"
        )
    return "\n".join(lines)


def _fallback_banner(
    arctic_root: Path,
    demand_root: Path,
    speakers: Sequence[str],
    environments: Sequence[str],
    offline_dir: Path,
    error: PackageManagerUnavailable,
) -> None:
    log.warning(
        "\n%s\n%s\n%s\n"
        "No real CMU ARCTIC at %s (speakers %s) or DEMAND at %s (%s), and the offline corpus\n"
        "of real recordings cannot be built in %s: %s\n"
        "This run trains on SYNTHETIC eSpeak speech and GENERATED noise: the model WILL NOT\n"
        "HELP REAL RECORDINGS, and its figures are not comparable with results on real data.\n"
        "To train on real speech and noise, either:\n"
        "  - run on Debian/Ubuntu with package lists (`apt-get update` as root) and the\n"
        "    network: data.corpus=auto (or offline) then builds the offline corpus (once), or\n"
        "  - copy a built offline corpus into data.offline_dir (%s), or\n"
        "  - python -m crn_lightning.download: CMU ARCTIC + DEMAND into paths.data_dir.\n%s",
        _RULE,
        "USING THE EMBEDDED CORPUS: SYNTHETIC SPEECH AND NOISE".center(78),
        _RULE,
        arctic_root,
        list(speakers),
        demand_root,
        list(environments),
        offline_dir,
        error,
        offline_dir,
        _RULE,
    )


def _embedded(generated: GeneratedCorpora, environments: Sequence[str], corpus: str) -> CorpusRoots:
    made = ensure_embedded_corpus(
        _folder(generated.embedded_dir, "data.embedded_dir", corpus), generated.embedded_spec
    )
    missing = sorted(set(environments) - set(made.environments))
    if missing:
        raise CorpusError(
            f"data.environments {missing} are not in the embedded corpus "
            f"(it has {list(made.environments)})"
        )
    return CorpusRoots(
        made.arctic_root, made.demand_root, list(made.speakers), list(environments), "embedded"
    )
