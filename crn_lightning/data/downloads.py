"""What each corpus download fetches (the library of ``python -m crn_lightning.download``).

``dataset=arctic_demand``: CMU ARCTIC speakers from festvox and DEMAND environments (16 kHz)
from Zenodo, into ``cmu_arctic/`` and ``DEMAND/``; ``dataset=voicebank_demand``: the archives
of crn_lightning.data.voicebank. crn_lightning.data.archives fetches, verifies and unpacks them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from omegaconf import DictConfig

from crn_lightning.data.archives import Archive, DownloadError
from crn_lightning.data.corpora import arctic_wav_dir, demand_channel_file
from crn_lightning.data.voicebank import voicebank_plan, voicebank_root
from crn_lightning.errors import ConfigError

DATASETS = ("arctic_demand", "voicebank_demand")

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


def arctic_demand_plan(
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


def dataset_plan(cfg: DictConfig, data_dir: Path) -> tuple[list[Archive], str]:
    """The archives ``cfg.dataset`` needs, and how to train on them once fetched."""
    if cfg.dataset == "arctic_demand":
        archives = arctic_demand_plan(
            data_dir,
            cfg.arctic.base_url,
            cfg.arctic.speakers,
            cfg.demand.base_url,
            cfg.demand.environments,
            cfg.sha256,
        )
        return archives, f"train with paths.data_dir={data_dir}"
    if cfg.dataset == "voicebank_demand":
        vb = cfg.voicebank_demand
        archives = voicebank_plan(data_dir, vb.base_url, vb.parts, vb.sample_rate, cfg.sha256)
        return archives, (
            f"train with experiment=voicebank_demand paths.data_dir={data_dir} (pairs in "
            f"{voicebank_root(data_dir)})"
        )
    raise ConfigError(f"dataset={cfg.dataset}: expected one of {', '.join(DATASETS)}")
