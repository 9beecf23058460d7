#!/usr/bin/env bash
# The seed experiment (the report's 103.6 M-parameter CRN, batch 16 × 4 s) for a few real
# optimizer steps on this CPU, with one validation and one test batch: proof that it runs,
# and its step time. Usage: bash bench/seed_cpu_steps.sh [steps]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-2}
.venv/bin/python -m crn_lightning.train trainer.devices=1 data.corpus=embedded \
  trainer.max_epochs=1 trainer.limit_train_batches="$steps" trainer.limit_val_batches=1 \
  trainer.limit_test_batches=1 trainer.num_sanity_val_steps=0 trainer.log_every_n_steps=1 \
  name=seed_cpu_steps
