#!/usr/bin/env bash
# Issue 15's comparison: the formulation sweep (model.output × loss, 9 jobs at the quickstart
# budget, conf/sweep/formulation.yaml), then each job's best checkpoint (chosen by validation
# PESQ) scored on the real pairs (bench/real_dev.sh), one table of both. The sweep's own
# summary.md has the test grid per SNR; real_dev.md, written next to it, adds the real pairs.
# Usage: bash bench/formulation_sweep.sh SWEEP_DIR [extra Hydra overrides for every job]
# (SWEEP_DIR must not exist yet; an interrupted sweep is summarised again with
#  `python bench/formulation_table.py SWEEP_DIR`).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
sweep_dir=$1
shift
if [ -e "$sweep_dir" ]; then
  echo "error: $sweep_dir exists; give a new folder" >&2
  exit 2
fi
echo "$(date -Is) formulation sweep start; load: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s)
"$python" -m crn_lightning.train -m experiment=quickstart +sweep=formulation \
  hydra.sweep.dir="$sweep_dir" trainer.enable_progress_bar=false "$@"
echo "$(date -Is) sweep done in $(( $(date +%s) - start )) s"
"$python" bench/formulation_table.py "$sweep_dir"
