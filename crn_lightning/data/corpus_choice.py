"""Which corpus a run uses: real CMU ARCTIC + DEMAND, or the generated embedded stand-in."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from crn_lightning.data.corpora import CorpusError, arctic_present, demand_present
from crn_lightning.data.embedded import EmbeddedCorpusSpec, ensure_embedded_corpus
from crn_lightning.errors import ConfigError

log = logging.getLogger(__name__)

CORPUS_KINDS = ("auto", "real", "embedded")


@dataclass(frozen=True)
class CorpusRoots:
    arctic_root: Path
    demand_root: Path
    speakers: list[str]
    kind: str  # real or embedded


def choose_corpus(
    corpus: str,
    arctic_root: Path,
    demand_root: Path,
    speakers: Sequence[str],
    environments: Sequence[str],
    noise_channel: int,
    embedded_dir: Path | None,
    embedded_spec: EmbeddedCorpusSpec,
) -> CorpusRoots:
    """``corpus``: ``real`` (the roots given; an error later if absent), ``embedded`` (generated
    or verified in ``embedded_dir``) or ``auto`` (real when present, else embedded, said loudly).
    """
    real = arctic_present(arctic_root, speakers) and demand_present(
        demand_root, environments, noise_channel
    )
    if corpus == "real" or (corpus == "auto" and real):
        return CorpusRoots(arctic_root, demand_root, list(speakers), "real")
    if embedded_dir is None:
        raise ConfigError(
            f"data.embedded_dir is not set: data.corpus={corpus} uses the embedded corpus "
            "here, which needs a folder to be generated in"
        )
    generated = ensure_embedded_corpus(embedded_dir, embedded_spec)
    missing = sorted(set(environments) - set(generated.environments))
    if missing:
        raise CorpusError(
            f"data.environments {missing} are not in the embedded corpus "
            f"(it has {list(generated.environments)})"
        )
    if corpus == "auto":
        log.warning(
            "\n%s\nUSING THE EMBEDDED CORPUS (synthetic eSpeak speech + generated noise) in "
            "%s:\nno real CMU ARCTIC at %s (speakers %s) and DEMAND at %s (%s).\n"
            "Figures from this run are NOT comparable with results on real data.\n%s",
            "=" * 78,
            embedded_dir,
            arctic_root,
            list(speakers),
            demand_root,
            list(environments),
            "=" * 78,
        )
    return CorpusRoots(
        generated.arctic_root, generated.demand_root, list(generated.speakers), "embedded"
    )
