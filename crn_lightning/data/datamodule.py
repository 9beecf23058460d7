"""CMU ARCTIC speech mixed on the fly with DEMAND noise as a LightningDataModule.

Which corpus is in those layouts (real, offline or embedded) is decided by ``corpus_choice``;
``corpora`` finds its files; the mixing is ``mixing_datamodule``'s, which ``data=folders``
(your own speech and noise folders) shares.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from crn_lightning.data.corpora import find_arctic, find_demand
from crn_lightning.data.corpus_choice import (
    CorpusRoots,
    GeneratedCorpora,
    check_corpus_kind,
    choose_corpus,
    describe_sources,
    speaker_split,
)
from crn_lightning.data.embedded import EmbeddedCorpusSpec
from crn_lightning.data.mixing_datamodule import MixingDataModule
from crn_lightning.data.offline import spec_from_config
from crn_lightning.stft import STFT

log = logging.getLogger(__name__)


class ArcticDemandDataModule(MixingDataModule):
    """CMU ARCTIC speech mixed on the fly with DEMAND noise at set SNRs.

    ``corpus``: ``real`` (error if absent), ``offline`` (real recordings from Debian packages,
    built once in ``offline_dir``), ``embedded`` (the generated eSpeak stand-in), or ``auto``
    (real when present, else offline, else embedded, said loudly). The offline and embedded
    corpora bring their own speakers; the offline one also its own environments, so after
    ``prepare_data``/``setup`` ``environments`` holds the environments actually mixed.
    ``mixing``: the mixing keys (``MixingDataModule``, with its defaults). The defaults are
    those of ``conf/data/arctic_demand.yaml``, which documents each key.
    """

    def __init__(
        self,
        stft: STFT,
        arctic_root: str,
        demand_root: str,
        corpus: str = "auto",
        embedded_dir: str | None = None,
        embedded: Mapping[str, Any] | None = None,
        offline_dir: str | None = None,
        offline: Mapping[str, Any] | None = None,
        offline_speakers: Sequence[str] | None = None,
        offline_environments: Sequence[str] | None = None,
        speakers: Sequence[str] = ("bdl", "slt"),
        environments: Sequence[str] = ("PRESTO", "DLIVING", "DWASHING", "NFIELD", "NPARK"),
        noise_channel: int = 1,
        **mixing: Any,
    ) -> None:
        check_corpus_kind(corpus)
        super().__init__(stft, **mixing)
        self.arctic_root, self.demand_root = Path(arctic_root), Path(demand_root)
        self.corpus = corpus
        self.generated = GeneratedCorpora(
            embedded_dir=None if embedded_dir is None else Path(embedded_dir),
            embedded_spec=EmbeddedCorpusSpec(**dict(embedded or {})),
            offline_dir=None if offline_dir is None else Path(offline_dir),
            offline_spec=spec_from_config(dict(offline or {})),
            offline_speakers=None if offline_speakers is None else list(offline_speakers),
            offline_environments=(
                None if offline_environments is None else list(offline_environments)
            ),
        )
        self.speakers, self.environments = list(speakers), list(environments)
        self.noise_channel = noise_channel
        self._roots: CorpusRoots | None = None

    # -- corpus --------------------------------------------------------------------------
    def _resolve_roots(self) -> CorpusRoots:
        """The corpus this run uses; decided (and a generated corpus built or verified) once
        per data module."""
        if self._roots is None:
            self._roots = choose_corpus(
                self.corpus,
                self.arctic_root,
                self.demand_root,
                self.speakers,
                self.environments,
                self.noise_channel,
                self.generated,
            )
            self.environments = list(self._roots.environments)
        return self._roots

    def prepare_data(self) -> None:
        # Runs on one process: builds a generated corpus once if it will be used.
        self._resolve_roots()

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        roots = self._resolve_roots()
        files = find_arctic(roots.arctic_root, roots.speakers)
        noise_files = find_demand(roots.demand_root, roots.environments, self.noise_channel)
        split = speaker_split(
            self.split_by, self.corpus, roots, self.val_speakers, self.test_speakers
        )
        split_info, skipped = self.mix(files, roots.speakers, noise_files, split=split)
        self.corpus_info = {
            "kind": roots.kind,
            "arctic_root": str(roots.arctic_root),
            "demand_root": str(roots.demand_root),
            "speakers": roots.speakers,
            "sources": roots.sources,
        } | split_info
        log.info(
            "corpus: %s (ARCTIC %s, DEMAND %s); utterances %s; mixtures per epoch %s; "
            "unusable files skipped: %d%s",
            roots.kind,
            roots.arctic_root,
            roots.demand_root,
            self.corpus_info["utterances"],
            self.corpus_info["mixtures"],
            len(skipped),
            f"\nits sources (Debian packages):\n{describe_sources(roots.sources)}"
            if roots.sources
            else "",
        )
