#!/usr/bin/env bash
# The SNR sweep and the FFT sweep of the quickstart model, one after the other, on a reduced
# CPU budget (1 epoch of 2,400 mixtures instead of 3; full validation subset and test grids).
# Each writes summary.csv/.md/.png into its sweep folder. Usage:
#   bash bench/quickstart_sweeps.sh [extra Hydra overrides, e.g. trainer.max_epochs=3]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
for sweep in snr fft; do
  echo "$(date -Is) sweep=$sweep start; load: $(cut -d' ' -f1-3 /proc/loadavg)"
  start=$(date +%s)
  "$python" -m crn_lightning.train -m experiment=quickstart +sweep="$sweep" \
    trainer.max_epochs=1 trainer.enable_progress_bar=false "$@"
  echo "$(date -Is) sweep=$sweep done in $(( $(date +%s) - start )) s; load: $(cut -d' ' -f1-3 /proc/loadavg)"
done
