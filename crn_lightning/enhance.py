"""Enhance your own recordings with a trained model (the enhance entry point).

    python -m crn_lightning.enhance ckpt=CKPT input=FILE_OR_FOLDER output=FOLDER

Any length and sample rate (resampled to the model's rate and back), every channel enhanced on
its own (``channels=mix``: mixed down to mono first); each output keeps its input's format and
subtype, under the same relative path in ``output`` (an output folder inside the input folder
is never read as input). Existing files are never replaced unless ``overwrite=true``. A file
that cannot be read or enhanced is reported and the others go on; the failures are listed at
the end (exit status 1). ``streaming=true`` runs the real-time streaming enhancer chunk by
chunk (the same output) and reports its latency and chunk times. ``score=dnsmos`` prints each
file's DNSMOS P.835 (SIG, BAK, OVRL) before → after: a gain to see without a clean twin.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import soundfile as sf
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from crn_lightning.audio import AudioFileError
from crn_lightning.cli import load_checkpoint, required
from crn_lightning.compose import CONFIG_DIR
from crn_lightning.dnsmos import require_dnsmos
from crn_lightning.errors import ConfigError
from crn_lightning.file_enhancement import (
    Report,
    SignalEnhancer,
    dnsmos_change,
    enhance_file,
    find_inputs,
    report_lines,
)

log = logging.getLogger(__name__)

CHANNEL_MODES = ("separate", "mix")
SCORES = (None, "dnsmos")


def enhance(cfg: DictConfig) -> Report:
    enhancer = load_checkpoint(cfg)
    source = Path(required(cfg, "input", "an audio file or a folder of them"))
    output = Path(required(cfg, "output", "a folder for the enhanced files"))
    if cfg.channels not in CHANNEL_MODES:
        raise ConfigError(f"channels={cfg.channels}: expected one of {', '.join(CHANNEL_MODES)}")
    if output.exists() and not output.is_dir():
        raise ConfigError(f"output={output}: exists and is not a folder")
    if cfg.score not in SCORES:
        raise ConfigError(f"score={cfg.score}: expected null or dnsmos")
    if cfg.score == "dnsmos":
        require_dnsmos()  # before any file is written
    inputs = find_inputs(source, output)
    signal_enhancer = SignalEnhancer(enhancer, cfg.streaming, cfg.block_seconds)
    report = Report()
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads or threads)
    try:
        for path, relative in tqdm(inputs, desc="enhance", unit="file"):
            target = output / relative
            try:
                enhance_file(
                    signal_enhancer, path, target, cfg.channels == "mix", cfg.overwrite, report
                )
                if cfg.score == "dnsmos":
                    report.dnsmos.append(dnsmos_change(path, target))
            except (AudioFileError, ValueError, FileExistsError, sf.LibsndfileError) as err:
                message = str(err) if str(path) in str(err) else f"{path}: {err}"
                log.error("%s", message)
                report.failures.append(message)
    finally:
        torch.set_num_threads(threads)
    print("\n".join(report_lines(report, enhancer, output, cfg.streaming)), flush=True)
    return report


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="enhance")
def main(cfg: DictConfig) -> None:
    if enhance(cfg).failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
