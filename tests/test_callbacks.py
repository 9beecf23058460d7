"""ScoredCheckpoint on a real Trainer: ranks only validations that computed the metric for the
current weights, writes last.ckpt after every validation and every N steps."""

import lightning as L
import torch
from conftest import cpu_trainer, every_epoch_checkpoint
from torch.utils.data import DataLoader, TensorDataset

from crn_lightning.callbacks import ScoredCheckpoint, StepTimer
from crn_lightning.runs import checkpoint_epoch


class Scored(L.LightningModule):
    """A linear model whose validation logs val/score on odd epochs only (as
    module.pesq_every_n_epochs leaves PESQ out), and says so in ``last_validation``."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.last_validation = (-1, frozenset())

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self.layer(batch[0]).pow(2).mean())

    def on_validation_epoch_end(self) -> None:
        logged = {"val/loss"}
        if self.current_epoch % 2 == 1:
            self.log("val/score", float(self.current_epoch))
            logged.add("val/score")
        self.last_validation = (self.global_step, frozenset(logged))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _loader() -> DataLoader:
    return DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=2)


def test_only_scored_epochs_are_ranked_and_last_is_written_every_validation_and_n_steps(
    tmp_path,
):
    saved_at = []

    class Saves(L.Callback):
        def on_save_checkpoint(self, trainer, pl_module, checkpoint):
            saved_at.append(trainer.global_step)

    checkpoint = every_epoch_checkpoint(tmp_path, "val/score", every_n_train_steps=3)
    timer = StepTimer()
    trainer = cpu_trainer(
        max_epochs=4, num_sanity_val_steps=0, callbacks=[checkpoint, timer, Saves()]
    )
    trainer.fit(Scored(), train_dataloaders=_loader(), val_dataloaders=_loader())
    # 4 steps per epoch: epochs 1 and 3 (0-based) log the score and are ranked.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e1.ckpt", "e3.ckpt", "last.ckpt"]
    assert checkpoint.best_model_path == str(tmp_path / "e3.ckpt")
    assert checkpoint_epoch(checkpoint.best_model_path) == 4
    # last.ckpt: at steps 3, 6, 9, 12 and after each validation (4, 8, 12, 16); the ranked
    # saves at 8 and 16 come first.
    assert saved_at == [3, 4, 6, 8, 8, 9, 12, 15, 16, 16]
    last = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert last["global_step"] == 16 and checkpoint.last_model_path == str(tmp_path / "last.ckpt")
    assert len(timer.durations) == 16 and timer.median_s > 0


def test_without_validation_last_is_written_at_the_end_of_each_epoch(tmp_path):
    checkpoint = ScoredCheckpoint(dirpath=tmp_path, monitor="val/score", save_last=True)
    trainer = cpu_trainer(max_epochs=2, callbacks=[checkpoint])
    trainer.fit(Scored(), train_dataloaders=_loader())
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == 8
