"""Fetch corpora into the layouts the loaders read (python -m crn_lightning.download).

``dataset=arctic_demand`` (the default): CMU ARCTIC speakers and DEMAND environments (16 kHz)
into ``cmu_arctic/`` and ``DEMAND/``; ``dataset=voicebank_demand``: VoiceBank+DEMAND's training
and test sets into ``voicebank_demand/`` (crn_lightning.data.voicebank), resampled to 16 kHz
once. What each dataset fetches: crn_lightning.data.downloads; every archive with the
guarantees of crn_lightning.data.archives: resumed downloads, published checksums, extraction
into a temporary folder renamed into place.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from crn_lightning.compose import CONFIG_DIR
from crn_lightning.data.archives import download
from crn_lightning.data.downloads import dataset_plan

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="download")
def main(cfg: DictConfig) -> None:
    data_dir = Path(cfg.paths.data_dir).absolute()
    archives, next_step = dataset_plan(cfg, data_dir)
    if cfg.dry_run:
        for a in archives:
            state = "present" if a.marker.is_file() else "fetch"
            print(f"{state:8s} {a.url} -> {a.target} ({a.checksum})")
        return
    fetched = download(archives, data_dir, cfg.timeout_s)
    log.info(
        "done: %d fetched, %d already present; %s",
        len(fetched),
        len(archives) - len(fetched),
        next_step,
    )


if __name__ == "__main__":
    # "--dry-run" reads better on a command line than Hydra's "dry_run=true".
    sys.argv = ["dry_run=true" if a == "--dry-run" else a for a in sys.argv]
    main()
