"""Score a trained model on full-length utterances (the evaluate entry point).

    python -m crn_lightning.evaluate ckpt=CKPT                   # the checkpoint's test grid
    python -m crn_lightning.evaluate ckpt=CKPT pairs=FOLDER      # FOLDER/clean/* + FOLDER/noisy/*
    python -m crn_lightning.evaluate ckpt=CKPT recordings=FOLDER # no clean references: DNSMOS

The test grid is the one training tested on (rebuilt from the config inside the checkpoint:
same utterances, noises, offsets and SNRs), each utterance mixed with its noise over its whole
length instead of a 4 s clip. ``measures`` (null: wideband PESQ, STOI, extended STOI, SI-SDR
and the composite CSIG/CBAK/COVL/SSNR with references, DNSMOS without) of the noisy and the
enhanced signal; per utterance in ``scores.csv``, means with gains in ``summary.json`` and
``summary.md`` (by SNR and noise environment for the grid), in a new run folder.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from crn_lightning.cli import load_checkpoint
from crn_lightning.compose import CONFIG_DIR
from crn_lightning.errors import ConfigError, UserError
from crn_lightning.evaluation import (
    check_measures,
    csv_columns,
    score_utterances,
    summarize,
    summary_rows,
    utterances_to_score,
    write_scores,
)
from crn_lightning.runs import fresh_run_dir, hydra_run_dir
from crn_lightning.tables import markdown_table

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Score, write ``scores.csv``, ``summary.json`` and ``summary.md`` into ``run_dir`` (which
    must hold no earlier results); returns the summary."""
    if cfg.pairs and cfg.recordings:
        raise ConfigError("pairs= and recordings= are both set: give one source to score")
    references = not cfg.recordings
    measures = check_measures(cfg.measures, references)
    run_dir = fresh_run_dir(run_dir)
    enhancer = load_checkpoint(cfg)
    utterances, source, failures = utterances_to_score(
        enhancer, cfg.pairs, cfg.recordings, cfg.data
    )
    log.info("scoring %d utterances (%s): %s", len(utterances), source["source"], measures)
    records, enhance_failures = score_utterances(
        enhancer, utterances, cfg.metric_workers, measures, references
    )
    failures += enhance_failures
    if not records:
        raise UserError(f"no utterance could be scored: {failures}")

    write_scores(run_dir / "scores.csv", records, csv_columns(measures, references))
    groups = summarize(records, grid=not (cfg.pairs or cfg.recordings), measures=measures)
    table = markdown_table(summary_rows(groups, measures))
    summary = {
        "checkpoint": str(Path(cfg.ckpt).resolve()),
        **source,
        "measures": measures,
        "utterances": len(records),
        "failures": failures,
        **groups,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    title = f"Evaluation of {summary['checkpoint']} on {summary['source']}"
    (run_dir / "summary.md").write_text(f"# {title}\n\n{table}\n")
    print(f"{title}\n\n{table}\n", flush=True)
    for failure in failures:
        print(f"FAILED {failure['utterance']}: {failure['error']}", flush=True)
    for column, what in (("pesq_error", "PESQ or composite"), ("dnsmos_error", "DNSMOS")):
        if any(r.get(column) for r in records):
            print(f"{what} failed on some utterances: see the {column} column", flush=True)
    print(f"scores: {run_dir / 'scores.csv'} | summary: {run_dir / 'summary.md'}", flush=True)
    return summary


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="evaluate")
def main(cfg: DictConfig) -> None:
    summary = evaluate(cfg, hydra_run_dir())
    if summary["failures"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
