"""The LightningModule: trains, validates and tests an ``Enhancer`` (crn_lightning.enhancer)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from crn_lightning.enhancer import CHECKPOINT_CONFIG_KEY, Enhancer, build_network
from crn_lightning.errors import ConfigError, UserError
from crn_lightning.losses import CompressedMagnitudeMSE, Loss, LossInputs, loss_from_config
from crn_lightning.metrics import PerceptualScorer
from crn_lightning.models.crn import CRN
from crn_lightning.rng_state import restore_rng_state, rng_state
from crn_lightning.scoring import ClipScores, aggregate_scores, breakdown, enhance_and_score
from crn_lightning.stft import STFT
from crn_lightning.tensorboard_examples import log_validation_examples
from crn_lightning.tensorboard_layout import log_layout, tensorboard_tag

log = logging.getLogger(__name__)

RNG_KEY = "crn_lightning_rng"
# constant: the report's fixed Adam step; cosine: decays to zero over the run's steps, so that
# a short run ends on settled weights instead of wherever the last large steps left them.
LR_SCHEDULES = ("constant", "cosine")


def _cosine_factor(step: int, steps: int) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / steps))


class NonFiniteError(UserError, FloatingPointError):
    """A NaN/Inf loss or gradient in training; the message names the step and the batch."""


class EnhancementModule(L.LightningModule):
    """Trains ``Enhancer(model, stft, compression)`` (``self.enhancer``) with Adam on ``loss``
    (crn_lightning.losses; default the report's MSE between estimated and clean compressed
    magnitudes); validation and test resynthesise waveforms and score the same loss and
    wideband PESQ, STOI and SI-SDR of the enhanced and of the noisy signal
    (crn_lightning.scoring). Checkpoints are chosen by validation PESQ, never by the loss.

    ``compression`` c: the network sees |X|^c (or |X|^c·e^{jφ}) and estimates |Ŝ|^c (or
    |Ŝ|^c·e^{jφ̂}); c = 1: the report's plain magnitudes. ``pesq_every_n_epochs`` N:
    validation scores PESQ and STOI (the slow part) on epochs N, 2N, ... and the last one
    only; loss and SI-SDR on every epoch. Test always scores everything. ``compile``:
    torch.compile the network for whole signals (training, validation, test). ``records``:
    each stage's last per-clip records. ``loss``: a ``crn_lightning.losses.Loss``.
    """

    def __init__(
        self,
        model: CRN,
        stft: STFT,
        lr: float = 0.006,
        compression: float = 1.0,
        sample_rate: int = 16000,
        metric_workers: int | None = None,
        pesq_every_n_epochs: int = 1,
        compile: bool = False,
        examples: int = 3,
        nonfinite: str = "stop",
        config: Mapping[str, Any] | None = None,
        loss: Loss | None = None,
        lr_schedule: str = "constant",
        attenuation_limit_db: float | None = None,
    ) -> None:
        super().__init__()
        if sample_rate != 16000:
            raise ConfigError(
                f"wideband PESQ needs 16 kHz audio, data.sample_rate is {sample_rate}"
            )
        if lr_schedule not in LR_SCHEDULES:
            raise ConfigError(
                f"module.lr_schedule must be one of {list(LR_SCHEDULES)}, got {lr_schedule!r}"
            )
        if nonfinite not in ("stop", "skip"):
            raise ConfigError(f"module.nonfinite must be 'stop' or 'skip', got {nonfinite!r}")
        if pesq_every_n_epochs < 1:
            raise ConfigError(
                f"module.pesq_every_n_epochs must be at least 1, got {pesq_every_n_epochs}"
            )
        self.config = dict(config or {})
        self.enhancer = Enhancer(
            model, stft, compression, sample_rate, compile, self.config, attenuation_limit_db
        )
        # A plain attribute, not a submodule: the loss's STFT windows stay out of checkpoints.
        self.loss = loss if loss is not None else CompressedMagnitudeMSE()
        self.lr, self.examples, self.nonfinite = lr, examples, nonfinite
        self.lr_schedule = lr_schedule
        self.pesq_every_n_epochs = pesq_every_n_epochs
        # (global step, metric names) of the last validation logged: a checkpoint is ranked
        # by a metric only when it was computed for those very weights (see ScoredCheckpoint).
        self.last_validation: tuple[int, frozenset[str]] = (-1, frozenset())
        self.skipped_batches = 0
        self._last_batch: tuple[int, torch.Tensor, list[int]] | None = None
        # Its workers leave SIGTERM/SIGINT to this process (crn_lightning.graceful_stop).
        self.scorer = PerceptualScorer(metric_workers, ignore_stop_signals=True)
        # One collector per stage: each grid's noisy scores are computed once and reused.
        self.scores = {stage: ClipScores(self.scorer) for stage in ("val", "test")}
        self.records: dict[str, list[dict[str, Any]]] = {}
        self._examples_logged = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **changes: Any) -> EnhancementModule:
        """A freshly initialised module for a resolved training config (its stft, model,
        module, loss and data.sample_rate); ``changes`` replace ``module`` options."""
        model, stft = build_network(config)
        # ``_target_``: where the module options are a Hydra config group naming this class.
        options = {k: v for k, v in config["module"].items() if k != "_target_"} | changes
        options.setdefault("loss", loss_from_config(config))
        return cls(model, stft, sample_rate=config["data"]["sample_rate"], config=config, **options)

    # -- training ----------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        noisy = self.enhancer.noisy_input(batch["noisy_mag"], batch["noisy_phase"])
        estimate = self.enhancer.estimate(noisy)
        loss = self.loss(LossInputs(self.enhancer, estimate, batch["noisy_phase"], batch["clean"]))
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["noisy"].shape[0])
        # The logged x-axis (Lightning reads a metric named "step" as the step): the global
        # step, as for validation below; it also keeps Lightning's "epoch" chart out.
        self.log("step", float(self.global_step), batch_size=batch["noisy"].shape[0])
        self._last_batch = (batch_idx, loss.detach(), batch["index"].tolist())
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # Checked here, after backward (and after DDP's all-reduce, so every rank decides
        # alike): a NaN/Inf loss makes its gradients non-finite too.
        grads = [p.grad for p in self.enhancer.network.parameters() if p.grad is not None]
        if all(torch.isfinite(g).all() for g in grads):
            return
        batch_idx, loss, indices = self._last_batch
        where = (
            f"non-finite gradients at global step {self.global_step} (epoch "
            f"{self.current_epoch}, batch {batch_idx}, loss {float(loss):.4g}, mixture indices "
            f"{indices[:8]}{' ...' if len(indices) > 8 else ''})"
        )
        if self.nonfinite == "stop":
            raise NonFiniteError(
                f"{where}. Lower module.lr, set trainer.gradient_clip_val, or set "
                "module.nonfinite=skip to skip such batches (counted as train/skipped_batches)."
            )
        # No gradient, no update: Adam leaves parameters without .grad (and their state) alone.
        optimizer.zero_grad(set_to_none=True)
        self.skipped_batches += 1
        log.warning("skipped the batch: %s", where)
        self.log(tensorboard_tag("train", "skipped_batches"), float(self.skipped_batches))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.enhancer.network.parameters(), lr=self.lr)

    def on_train_start(self) -> None:
        # The run's length in steps, once per fit (a resumed fit too) rather than every step.
        self._cosine_steps = max(1, int(self.trainer.estimated_stepping_batches))

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Set from the restored step count, not by a torch scheduler: Lightning saves a
        # mid-epoch checkpoint before it steps the schedulers, so a resumed run would start
        # one step behind.
        if self.lr_schedule == "cosine":
            lr = self.lr * _cosine_factor(self.global_step, self._cosine_steps)
            for optimizer in self.trainer.optimizers:
                for group in optimizer.param_groups:
                    group["lr"] = lr

    # -- evaluation ----------------------------------------------------------------------
    def scores_perceptual(self, stage: str) -> bool:
        """Whether this ``stage`` pass scores PESQ and STOI (see ``pesq_every_n_epochs``)."""
        if stage != "val" or self.pesq_every_n_epochs == 1:
            return True
        epoch = self.current_epoch + 1
        return epoch % self.pesq_every_n_epochs == 0 or epoch == self.trainer.max_epochs

    def on_fit_start(self) -> None:
        writer = self._tensorboard()
        if writer is not None:
            log_layout(writer)
        if self.pesq_every_n_epochs > 1:
            log.info(
                "validation scores PESQ and STOI on epochs %d, %d, ... and the last one "
                "(module.pesq_every_n_epochs=%d); loss and SI-SDR every epoch",
                self.pesq_every_n_epochs,
                2 * self.pesq_every_n_epochs,
                self.pesq_every_n_epochs,
            )

    def _evaluation_step(self, batch: dict, stage: str) -> None:
        clean, noisy = batch["clean"], batch["noisy"]
        enhanced, scores = enhance_and_score(
            self.enhancer, self.loss, batch["noisy_mag"], batch["noisy_phase"], clean, noisy
        )
        clean_np, noisy_np = clean.float().cpu().numpy(), noisy.float().cpu().numpy()
        enhanced_np = enhanced.float().cpu().numpy()
        perceptual = self.scores_perceptual(stage)
        for i, index in enumerate(batch["index"].tolist()):
            record = {
                "index": index,
                "snr_db": float(batch["snr_db"][i]),
                "environment": int(batch["environment"][i]),
                **{name: float(values[i]) for name, values in scores.items()},
            }
            # The grid is fixed, so the noisy signal's scores are computed once per item.
            self.scores[stage].add(
                record, clean_np[i], noisy_np[i], enhanced_np[i], index, perceptual
            )

    def _collect(self, stage: str) -> list[dict[str, Any]]:
        """Wait for this process's scores, then gather every process's records."""
        records = self.scores[stage].collect()
        if self.trainer.world_size > 1:
            gathered: list[list[dict]] = [[] for _ in range(self.trainer.world_size)]
            torch.distributed.all_gather_object(gathered, records)
            records = [r for part in gathered for r in part]
        return sorted(records, key=lambda r: r["index"])

    def _log_summary(self, stage: str, records: list[dict[str, Any]]) -> None:
        summary = aggregate_scores(records)
        if stage == "test":
            for snr, at_snr in breakdown(records)["by_snr_db"].items():
                for name in ("pesq", "pesq_noisy", "stoi", "si_sdr"):
                    summary[f"{name}@snr={snr}"] = at_snr[name]
        # Every process holds the same gathered figures, so the synced mean equals them.
        # The names stay <stage>/<name> for callbacks and metrics.json; TensorBoard shows
        # counts and per-SNR figures elsewhere (crn_lightning.tensorboard_layout).
        for name, value in summary.items():
            tag = tensorboard_tag(stage, name)
            key = f"{stage}/{name}"
            self.log(key, value, sync_dist=True, prog_bar=name == "pesq", logger=tag == key)
            if tag != key:
                self.log(tag, value, sync_dist=True)
        # The logged x-axis: the global step (a validation's scalars at the step of its images
        # and audio; no "epoch" chart).
        self.log("step", float(self.global_step), sync_dist=True)
        if stage == "val":
            self.last_validation = (self.global_step, frozenset(f"val/{n}" for n in summary))

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluation_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:  # Lightning's hook name
        self._evaluation_step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        records = self._collect("val")
        if self.trainer.sanity_checking:
            return
        self.records["val"] = records
        self._log_summary("val", records)
        self._log_examples()

    def on_test_epoch_end(self) -> None:
        self.records["test"] = self._collect("test")
        self._log_summary("test", self.records["test"])

    def teardown(self, stage: str) -> None:
        self.scorer.close()

    def _tensorboard(self) -> Any:
        """The TensorBoard ``SummaryWriter`` on global rank 0, else None."""
        loggers = [lg for lg in self.loggers if isinstance(lg, TensorBoardLogger)]
        return loggers[0].experiment if loggers and self.trainer.is_global_zero else None

    def _log_examples(self) -> None:
        writer = self._tensorboard()
        if writer is None or self.examples <= 0:
            return
        log_validation_examples(
            writer,
            self.enhancer,
            self.trainer.datamodule,
            self.examples,
            self.global_step,
            with_inputs=not self._examples_logged,
        )
        self._examples_logged = True

    # -- checkpoints ---------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The resolved config travels with the weights: a checkpoint alone rebuilds the
        # enhancer (Enhancer.from_checkpoint).
        checkpoint[CHECKPOINT_CONFIG_KEY] = self.config
        checkpoint[RNG_KEY] = rng_state()
        checkpoint["skipped_batches"] = self.skipped_batches

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.skipped_batches = checkpoint.get("skipped_batches", 0)
        if RNG_KEY in checkpoint:
            restore_rng_state(checkpoint[RNG_KEY])
