"""The LightningModule: trains the CRN on magnitudes, scores enhanced vs noisy speech."""

from __future__ import annotations

import logging
import math
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import default_collate

from crn_lightning.errors import ConfigError, UserError
from crn_lightning.metrics import PerceptualScorer, si_sdr
from crn_lightning.models.crn import CRN, CRNState
from crn_lightning.stft import STFT
from crn_lightning.viz import spectrogram_figure

if TYPE_CHECKING:
    from crn_lightning.data.datamodule import ArcticDemandDataModule

log = logging.getLogger(__name__)


class NonFiniteError(UserError, FloatingPointError):
    """A NaN/Inf loss or gradient in training; the message names the step and the batch."""


# Where a checkpoint keeps the resolved training config (see crn_lightning.checkpoint).
CHECKPOINT_CONFIG_KEY = "crn_lightning_config"
RNG_KEY = "crn_lightning_rng"


@dataclass
class _PendingItem:
    record: dict[str, Any]
    enhanced: Future | None  # None: PESQ/STOI not scored this validation
    noisy: Future | None


def _mean(values: Iterable[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def aggregate_scores(records: list[Mapping[str, Any]]) -> dict[str, float]:
    """Means over scored clips: loss, each metric for enhanced and noisy, PESQ failures
    (PESQ and STOI when every record has them; extended STOI likewise).

    A clip where PESQ failed (for the enhanced or the noisy signal) is left out of both PESQ
    means, so the enhanced and noisy figures always cover the same clips.
    """
    summary = {"loss": _mean(r["loss"] for r in records), "clips": float(len(records))}
    names = ["si_sdr"]
    # Validations between module.pesq_every_n_epochs skip PESQ and STOI.
    if records and all("pesq" in r for r in records):
        ok = [r for r in records if math.isfinite(r["pesq"]) and math.isfinite(r["pesq_noisy"])]
        summary["pesq"] = _mean(r["pesq"] for r in ok)
        summary["pesq_noisy"] = _mean(r["pesq_noisy"] for r in ok)
        summary["pesq_failures"] = float(len(records) - len(ok))
        names.append("stoi")
    # Extended STOI is scored by the evaluate entry point only (training skips its cost).
    if records and all("estoi" in r for r in records):
        names.append("estoi")
    for name in names:
        summary[name] = _mean(r[name] for r in records)
        summary[f"{name}_noisy"] = _mean(r[f"{name}_noisy"] for r in records)
    return summary


def aggregate_by(records: list[Mapping[str, Any]], key: str) -> dict[Any, dict[str, float]]:
    """``aggregate_scores`` for each value of ``key`` (e.g. per test SNR), in sorted order."""
    return {
        value: aggregate_scores([r for r in records if r[key] == value])
        for value in sorted({r[key] for r in records})
    }


class EnhancementModule(L.LightningModule):
    """Wraps a CRN: MSE between estimated and clean (optionally power-compressed) magnitudes,
    Adam; validation and test rebuild waveforms with the noisy phase and score wideband PESQ,
    STOI and SI-SDR of the enhanced and of the noisy signal.

    ``compression`` c: the network sees |X|^c and its loss compares |Ŝ|^c with |S|^c
    (c = 1: the report's plain magnitudes). ``pesq_every_n_epochs`` N: validation scores PESQ
    and STOI (the slow part) on epochs N, 2N, ... and the last one only; loss and SI-SDR on
    every epoch. Test always scores everything.
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
    ) -> None:
        super().__init__()
        if sample_rate != 16000:
            raise ConfigError(
                f"wideband PESQ needs 16 kHz audio, data.sample_rate is {sample_rate}"
            )
        if not 0 < compression <= 1:
            raise ConfigError(f"module.compression must be in (0, 1], got {compression}")
        if nonfinite not in ("stop", "skip"):
            raise ConfigError(f"module.nonfinite must be 'stop' or 'skip', got {nonfinite!r}")
        if pesq_every_n_epochs < 1:
            raise ConfigError(
                f"module.pesq_every_n_epochs must be at least 1, got {pesq_every_n_epochs}"
            )
        self.model, self.stft = model, stft
        self.lr, self.compression, self.sample_rate = lr, compression, sample_rate
        self.examples, self.nonfinite = examples, nonfinite
        self.pesq_every_n_epochs = pesq_every_n_epochs
        # torch.compile'd CRN for whole signals (training, validation, test); streaming
        # (with a state) runs eagerly. Compilation happens on the first batch.
        self._compiled_stream = torch.compile(model.stream) if compile else None
        # (global step, metric names) of the last validation logged: a checkpoint is ranked
        # by a metric only when it was computed for those very weights (see ScoredCheckpoint).
        self.last_validation: tuple[int, frozenset[str]] = (-1, frozenset())
        self.skipped_batches = 0
        self._last_batch: tuple[int, torch.Tensor, list[int]] | None = None
        self.config = dict(config or {})
        self.scorer = PerceptualScorer(metric_workers)
        self._pending: list[_PendingItem] = []
        self._noisy_scores: dict[str, dict[int, dict[str, float]]] = defaultdict(dict)
        self.records: dict[str, list[dict[str, Any]]] = {}
        self._examples_logged = False

    # -- the enhancement itself (shared by every stage and entry point) ------------------
    def estimate(self, noisy_mag: torch.Tensor, block_frames: int | None = None) -> torch.Tensor:
        """(B, F, T) noisy magnitude → (B, F, T) estimate in the compressed domain.

        ``block_frames``: run the CRN over blocks of that many frames, carrying its state from
        block to block: the same result, with memory bounded by a block (long recordings).
        """
        if block_frames is None:
            return self.estimate_stream(noisy_mag)[0]
        blocks, state = [], None
        for start in range(0, noisy_mag.shape[-1], block_frames):
            block, state = self.estimate_stream(noisy_mag[..., start : start + block_frames], state)
            blocks.append(block)
        return torch.cat(blocks, dim=-1)

    def estimate_stream(
        self, noisy_mag: torch.Tensor, state: CRNState | None = None
    ) -> tuple[torch.Tensor, CRNState]:
        """``estimate`` of frames that follow those ``state`` was returned for (``CRN.stream``);
        the streaming enhancer runs it a frame at a time."""
        features = noisy_mag.pow(self.compression).transpose(1, 2).unsqueeze(1)
        compiled = state is None and self._compiled_stream is not None
        estimate, state = (self._compiled_stream if compiled else self.model.stream)(
            features, state
        )
        return estimate.squeeze(1).transpose(1, 2), state

    def decompress(self, estimate: torch.Tensor) -> torch.Tensor:
        return estimate.clamp_min(0).pow(1.0 / self.compression)

    def enhance(
        self,
        noisy_mag: torch.Tensor,
        noisy_phase: torch.Tensor,
        length: int,
        block_frames: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(compressed estimate, magnitude, waveform): the estimated magnitude resynthesised
        with the noisy phase."""
        estimate = self.estimate(noisy_mag, block_frames)
        magnitude = self.decompress(estimate)
        return estimate, magnitude, self.stft.inverse(magnitude, noisy_phase, length)

    def forward(self, noisy: torch.Tensor, block_frames: int | None = None) -> torch.Tensor:
        """Enhance (B, L) waveforms (see ``estimate`` for ``block_frames``)."""
        return self.enhance(*self.stft.magnitude_phase(noisy), noisy.shape[-1], block_frames)[2]

    @torch.no_grad()
    def enhance_grid(
        self, datamodule: ArcticDemandDataModule, stage: str, indices: Sequence[int]
    ) -> dict[str, torch.Tensor]:
        """Items ``indices`` of the data module's ``stage`` grid as one batch on this module's
        device (waveforms, magnitudes, SNRs...), with the enhanced magnitude and waveform added
        as ``enhanced_mag`` and ``enhanced``. TensorBoard examples and the notebooks use it."""
        dataset = datamodule.datasets[stage]
        batch = default_collate([dataset[i] for i in indices])
        batch = datamodule.on_after_batch_transfer(
            {k: v.to(self.device) for k, v in batch.items()}, 0
        )
        _, batch["enhanced_mag"], batch["enhanced"] = self.enhance(
            batch["noisy_mag"], batch["noisy_phase"], batch["noisy"].shape[-1]
        )
        return batch

    # -- training ----------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = F.mse_loss(
            self.estimate(batch["noisy_mag"]), batch["clean_mag"].pow(self.compression)
        )
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["noisy"].shape[0])
        self._last_batch = (batch_idx, loss.detach(), batch["index"].tolist())
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # Checked here, after backward (and after DDP's all-reduce, so every rank decides
        # alike): a NaN/Inf loss makes its gradients non-finite too.
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
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
        self.log("train/skipped_batches", float(self.skipped_batches))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.parameters(), lr=self.lr)

    # -- evaluation ----------------------------------------------------------------------
    def scores_perceptual(self, stage: str) -> bool:
        """Whether this ``stage`` pass scores PESQ and STOI (see ``pesq_every_n_epochs``)."""
        if stage != "val" or self.pesq_every_n_epochs == 1:
            return True
        epoch = self.current_epoch + 1
        return epoch % self.pesq_every_n_epochs == 0 or epoch == self.trainer.max_epochs

    def on_fit_start(self) -> None:
        if self.pesq_every_n_epochs > 1:
            log.info(
                "validation scores PESQ and STOI on epochs %d, %d, ... and the last one "
                "(module.pesq_every_n_epochs=%d); loss and SI-SDR every epoch",
                self.pesq_every_n_epochs,
                2 * self.pesq_every_n_epochs,
                self.pesq_every_n_epochs,
            )

    def _evaluation_step(self, batch: dict, stage: str) -> None:
        estimate, _, enhanced = self.enhance(
            batch["noisy_mag"], batch["noisy_phase"], batch["noisy"].shape[-1]
        )
        target = batch["clean_mag"].pow(self.compression)
        losses = (estimate - target).pow(2).mean(dim=(1, 2))
        clean, noisy = batch["clean"], batch["noisy"]
        enhanced_si_sdr = si_sdr(enhanced, clean)
        noisy_si_sdr = si_sdr(noisy, clean)
        clean_np, noisy_np = clean.float().cpu().numpy(), noisy.float().cpu().numpy()
        enhanced_np = enhanced.float().cpu().numpy()
        cache = self._noisy_scores[stage]
        perceptual = self.scores_perceptual(stage)
        for i, index in enumerate(batch["index"].tolist()):
            record = {
                "index": index,
                "snr_db": float(batch["snr_db"][i]),
                "environment": int(batch["environment"][i]),
                "loss": float(losses[i]),
                "si_sdr": float(enhanced_si_sdr[i]),
                "si_sdr_noisy": float(noisy_si_sdr[i]),
            }
            if not perceptual:
                self._pending.append(_PendingItem(record, None, None))
                continue
            # The grid is fixed, so the noisy signal's scores are computed once per item.
            noisy_future = None if index in cache else self.scorer.submit(clean_np[i], noisy_np[i])
            self._pending.append(
                _PendingItem(record, self.scorer.submit(clean_np[i], enhanced_np[i]), noisy_future)
            )

    def _collect(self, stage: str) -> list[dict[str, Any]]:
        """Wait for this process's scores, then gather every process's records."""
        cache, records = self._noisy_scores[stage], []
        for item in self._pending:
            record = item.record
            if item.enhanced is None:
                records.append(record)
                continue
            scores = item.enhanced.result()
            record.update(pesq=scores.pesq, stoi=scores.stoi, pesq_error=scores.error)
            if item.noisy is not None:
                noisy = item.noisy.result()
                cache[record["index"]] = {"pesq_noisy": noisy.pesq, "stoi_noisy": noisy.stoi}
            record.update(cache[record["index"]])
            records.append(record)
        self._pending = []
        if self.trainer.world_size > 1:
            gathered: list[list[dict]] = [[] for _ in range(self.trainer.world_size)]
            torch.distributed.all_gather_object(gathered, records)
            records = [r for part in gathered for r in part]
        return sorted(records, key=lambda r: r["index"])

    def _log_summary(self, stage: str, records: list[dict[str, Any]]) -> None:
        summary = aggregate_scores(records)
        if stage == "test":
            for snr, at_snr in aggregate_by(records, "snr_db").items():
                for name in ("pesq", "pesq_noisy", "stoi", "si_sdr"):
                    summary[f"{name}@snr={snr:g}"] = at_snr[name]
        # Every process holds the same gathered figures, so the synced mean equals them.
        for name, value in summary.items():
            self.log(f"{stage}/{name}", value, sync_dist=True, prog_bar=name == "pesq")
        if stage == "val":
            self.last_validation = (self.global_step, frozenset(f"val/{n}" for n in summary))

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluation_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
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

    # -- TensorBoard examples ----------------------------------------------------------
    def _log_examples(self) -> None:
        loggers = [lg for lg in self.loggers if isinstance(lg, TensorBoardLogger)]
        if not loggers or not self.trainer.is_global_zero or self.examples <= 0:
            return
        writer, datamodule = loggers[0].experiment, self.trainer.datamodule
        count = len(datamodule.datasets["val"])
        indices = sorted({round(x) for x in np.linspace(0, count - 1, self.examples)})
        batch = self.enhance_grid(datamodule, "val", indices)
        step, first = self.global_step, not self._examples_logged
        for j, index in enumerate(indices):
            fig = spectrogram_figure(
                {
                    "noisy": batch["noisy_mag"][j],
                    "enhanced": batch["enhanced_mag"][j],
                    "clean": batch["clean_mag"][j],
                },
                self.sample_rate,
                self.stft.hop_length,
                title=f"validation clip {index}: {datamodule.describe('val', index)} (step {step})",
            )
            writer.add_figure(f"val_examples/clip{j}_spectrograms", fig, step)
            writer.add_audio(
                f"val_examples/clip{j}_enhanced", batch["enhanced"][j].cpu(), step, self.sample_rate
            )
            if first:
                for kind in ("noisy", "clean"):
                    writer.add_audio(
                        f"val_examples/clip{j}_{kind}", batch[kind][j].cpu(), step, self.sample_rate
                    )
        self._examples_logged = True

    # -- checkpoints ---------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The resolved config travels with the weights: a checkpoint alone rebuilds the model.
        checkpoint[CHECKPOINT_CONFIG_KEY] = self.config
        # Training mixtures are drawn from (seed, index), not from these generators; they are
        # kept so that anything else drawing random numbers continues as it would have.
        checkpoint[RNG_KEY] = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
            "numpy_pos": int(np.random.get_state()[2]),
            "python": list(random.getstate()[1]),
        }
        checkpoint["skipped_batches"] = self.skipped_batches

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.skipped_batches = checkpoint.get("skipped_batches", 0)
        state = checkpoint.get(RNG_KEY)
        if state is None:
            return
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        np.random.set_state(
            ("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"])
        )
        random.setstate((3, tuple(state["python"]), None))
