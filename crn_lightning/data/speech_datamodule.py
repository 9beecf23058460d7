"""What every data module of the project shares: the loaders, the STFT after transfer, the
grid items and the checkpoint state that keeps a resumed run on the data it trained on."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from crn_lightning.data.samplers import ShardedSampler
from crn_lightning.errors import ConfigError
from crn_lightning.graceful_stop import loader_worker_init
from crn_lightning.stft import STFT


class SpeechDataModule(L.LightningDataModule):
    """A data module of clean/noisy batches (``noisy``, ``clean``, ``snr_db``, ``environment``,
    ``index``): subclasses fill ``datasets`` (train, val, test; the grids with ``items``),
    ``environments`` and ``corpus_info`` in ``setup``, and set the batch sizes."""

    def __init__(self, stft: STFT, num_workers: int, seed: int) -> None:
        super().__init__()
        self.stft, self.num_workers, self.seed = stft, num_workers, seed
        self.batch_size = self.eval_batch_size = 1
        self.environments: list[str] = []
        self.corpus_info: dict[str, Any] = {}
        self.datasets: dict[str, Dataset] = {}

    # -- checkpoint state: a resumed run must draw from the same data ---------------------
    def state_dict(self) -> dict[str, Any]:
        keys = ("kind", "utterances", "mixtures", "stage_speakers")
        return {key: self.corpus_info[key] for key in keys} | {"seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Keys a checkpoint lacks (written before they existed) are not compared.
        now = self.state_dict()
        differ = {k: (v, now.get(k)) for k, v in state.items() if now.get(k) != v}
        if differ:
            raise ConfigError(
                "the checkpoint was trained on other data than this run resolves "
                f"(checkpoint, now): {differ}; resume with the data config it was trained with"
            )

    # -- loaders -------------------------------------------------------------------------
    def _loader(self, stage: str, batch_size: int) -> DataLoader:
        dataset = self.datasets[stage]
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=ShardedSampler(len(dataset), fresh_each_epoch=stage == "train"),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            # Leaves SIGTERM/SIGINT to the main process, then seeds as Lightning would.
            worker_init_fn=loader_worker_init,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size)

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        noisy_spec = self.stft(batch["noisy"])
        batch["noisy_mag"], batch["noisy_phase"] = noisy_spec.abs(), noisy_spec.angle()
        batch["clean_mag"] = self.stft(batch["clean"]).abs()
        return batch

    def grid_item(self, stage: str, index: int) -> Any:
        """Item ``index`` of the ``stage`` grid (its ``utterance``, ``environment``, ``snr_db``)."""
        return self.datasets[stage].items[index]
