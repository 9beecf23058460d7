#!/usr/bin/env bash
# How a trained model fares on real speech and real noise (a report, not a tuning target):
# the six VoiceBank+DEMAND pairs of shared/real_dev (speaker p287, real DEMAND noise, 16 kHz,
# 2–7 s) scored at full length by crn_lightning.evaluate: wideband PESQ, STOI, extended STOI
# and SI-SDR of the noisy and the enhanced signal, per file in scores.csv.
# Usage: bash bench/real_dev.sh CHECKPOINT [PAIRS_FOLDER] [extra Hydra overrides]
set -euo pipefail
cd "$(dirname "$0")/.."
ckpt=$1
pairs=${2:-../shared/real_dev/voicebank_demand_p287}
shift $(( $# < 2 ? $# : 2 ))
.venv/bin/python -m crn_lightning.evaluate ckpt="$ckpt" pairs="$pairs" "$@"
