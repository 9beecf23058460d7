"""What a run shows in TensorBoard besides its curves: the custom-scalars layout (each
metric's enhanced and noisy lines on one chart, train → val → test), where bookkeeping
figures go, and the HPARAMS entry (the swept hyper-parameters and the figures that matter).

Tags a run writes:

- ``train/loss``; ``val/<m>`` and ``test/<m>`` with ``<m>`` in loss, pesq, pesq_noisy, stoi,
  stoi_noisy, si_sdr, si_sdr_noisy, all at the global step (validation scalars at the step
  of that validation's images and audio);
- ``test_by_snr/<m>@snr=<dB>``: the test figures per SNR;
- ``summary/best_val_pesq`` and ``summary/<m>_gain`` (test minus noisy), written at the end;
- ``zz_bookkeeping/<stage>_clips``, ``zz_bookkeeping/<stage>_pesq_failures``,
  ``zz_bookkeeping/train_skipped_batches``: counts, sorted after everything else;
- ``val_examples/clip_*``: images and audio (``crn_lightning.tensorboard_examples``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summary

BOOKKEEPING_GROUP = "zz_bookkeeping"
BY_SNR_GROUP = "test_by_snr"
SUMMARY_GROUP = "summary"
# (metric, chart title) of the charts holding an enhanced and a noisy line.
PAIRED = (("pesq", "PESQ"), ("stoi", "STOI"), ("si_sdr", "SI-SDR (dB)"))
# The HPARAMS tab's metric columns, in order: tags this module and the module write.
HPARAMS_METRICS = (
    f"{SUMMARY_GROUP}/best_val_pesq",
    "test/pesq",
    f"{SUMMARY_GROUP}/pesq_gain",
    "test/stoi",
    f"{SUMMARY_GROUP}/stoi_gain",
    "test/si_sdr",
    f"{SUMMARY_GROUP}/si_sdr_gain",
)


def is_bookkeeping(name: str) -> bool:
    """A count rather than a figure: ``clips``, ``*_failures``, ``skipped_batches``."""
    return name in ("clips", "skipped_batches") or name.endswith("_failures")


def tensorboard_tag(stage: str, name: str) -> str:
    """Where ``<stage>/<name>`` (a ``self.log`` name) is shown in TensorBoard."""
    if is_bookkeeping(name):
        return f"{BOOKKEEPING_GROUP}/{stage}_{name}"
    if "@snr=" in name:
        return f"{BY_SNR_GROUP}/{name}"
    return f"{stage}/{name}"


def _exact(tag: str) -> str:
    return f"^{tag}$"  # custom-scalars tags are regular expressions


def custom_scalars_layout() -> dict[str, dict[str, list[Any]]]:
    """Categories train → val → test (→ per SNR); one chart per metric with its noisy
    baseline."""
    layout: dict[str, dict[str, list[Any]]] = {
        "train": {"loss": ["Multiline", [_exact("train/loss")]]},
    }
    for stage in ("val", "test"):
        charts = {
            title: ["Multiline", [_exact(f"{stage}/{m}"), _exact(f"{stage}/{m}_noisy")]]
            for m, title in PAIRED
        }
        charts["loss"] = ["Multiline", [_exact(f"{stage}/loss")]]
        layout[stage] = charts
    layout["test by SNR"] = {
        title: ["Multiline", [rf"^{BY_SNR_GROUP}/{m}(_noisy)?@snr="]] for m, title in PAIRED
    }
    return layout


def log_layout(writer: SummaryWriter) -> None:
    writer.add_custom_scalars(custom_scalars_layout())


def _flat(value: Any) -> int | float | str | bool:
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return "none" if value is None else str(value)


def curated_hparams(
    config: Mapping[str, Any], corpus: str, parameters: int, loss: str
) -> dict[str, int | float | str | bool]:
    """The hyper-parameters a sweep varies, flat and typed (lists as ``a,b`` strings)."""
    data, model, module = config["data"], config["model"], config["module"]
    values = {
        "experiment": config["name"],
        "corpus": corpus,
        "model.channels": model["channels"],
        "model.lstm_hidden": model["lstm_hidden"],
        "model.output": model["output"],
        "parameters": parameters,
        "stft.n_fft": config["stft"]["n_fft"],
        "stft.hop_length": config["stft"]["hop_length"],
        "loss": loss,
        "module.lr": module["lr"],
        "module.lr_schedule": module["lr_schedule"],
        "module.compression": module["compression"],
        "data.batch_size": data["batch_size"],
        "data.snr_db": data.get("snr_db"),
        "trainer.max_epochs": config["trainer"]["max_epochs"],
        "seed": config["seed"],
    }
    return {k: _flat(v) for k, v in values.items()}


def summary_figures(test: Mapping[str, float], best_val_pesq: float | None) -> dict[str, float]:
    """``summary/*``: the best validation PESQ and the test gains over the noisy input."""
    figures = {f"{SUMMARY_GROUP}/best_val_pesq": best_val_pesq}
    for m, _ in PAIRED:
        if f"test/{m}" in test and f"test/{m}_noisy" in test:
            figures[f"{SUMMARY_GROUP}/{m}_gain"] = test[f"test/{m}"] - test[f"test/{m}_noisy"]
    return {k: float(v) for k, v in figures.items() if v is not None}


def log_hparams(
    writer: SummaryWriter,
    hparams: Mapping[str, int | float | str | bool],
    summary: Mapping[str, float],
    step: int,
) -> None:
    """The summary figures as scalars at ``step`` and the HPARAMS entry, in the run's own event
    file (``SummaryWriter.add_hparams`` would make a sub-run; Lightning's ``log_hyperparams``
    would copy the metrics into ``hparams/*`` scalars)."""
    for tag, value in summary.items():
        writer.add_scalar(tag, value, step)
    experiment, start, end = hparams_summary(dict(hparams), {m: 0.0 for m in HPARAMS_METRICS})
    for event in (experiment, start, end):
        writer.file_writer.add_summary(event)
    writer.flush()
