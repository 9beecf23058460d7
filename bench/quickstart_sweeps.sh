#!/usr/bin/env bash
# The SNR sweep and the FFT sweep of the quickstart model, one after the other, on a reduced
# CPU budget that fits a shared 2-core machine: 1 epoch of 800 mixtures (100 steps, vs the
# quickstart's 3 × 2,400), validation on 40 fixed clips, no sanity validation, and 2-s
# validation/test clips (the test grids themselves unchanged: 8 utterances × 5 noises × SNRs).
# Each writes summary.csv/.md/.png into its sweep folder. Usage:
#   bash bench/quickstart_sweeps.sh [extra Hydra overrides, e.g. trainer.max_epochs=3]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
for sweep in snr fft; do
  echo "$(date -Is) sweep=$sweep start; load: $(cut -d' ' -f1-3 /proc/loadavg)"
  start=$(date +%s)
  "$python" -m crn_lightning.train -m experiment=quickstart +sweep="$sweep" \
    trainer.max_epochs=1 data.epoch_length=800 data.val_subset=40 data.clip_seconds=2.0 \
    trainer.num_sanity_val_steps=0 trainer.enable_progress_bar=false "$@"
  echo "$(date -Is) sweep=$sweep done in $(( $(date +%s) - start )) s; load: $(cut -d' ' -f1-3 /proc/loadavg)"
done
