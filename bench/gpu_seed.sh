#!/usr/bin/env bash
# The seed experiment end to end on one GPU: 4 epochs of 4,500 mixtures, full validation
# (1,485 mixtures, PESQ every epoch), test. Issue target: under 5 minutes on one H100.
# Not yet run: no GPU machine was lent to this project so far.
# Usage: bash bench/gpu_seed.sh [extra overrides, e.g. module.compile=true]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
time "$python" -m crn_lightning.train trainer=gpu name=seed_gpu "$@"
