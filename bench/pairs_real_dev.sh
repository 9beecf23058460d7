#!/usr/bin/env bash
# The pairs loader and evaluate on the six real VoiceBank+DEMAND pairs of shared/real_dev
# (speaker p287, 16 kHz): their noisy PESQ must come out at 1.41 (a check of the loader and the
# scoring, independent of any model). With a checkpoint, evaluate then scores the model on them
# with every measure into OUTPUT_DIR/evaluate/<date_time>/, and the noisy PESQ it reports must
# be 1.41 too.
# Usage: bash bench/pairs_real_dev.sh [CHECKPOINT] [PAIRS_FOLDER] [OUTPUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
ckpt=${1:-}
pairs=${2:-../shared/real_dev/voicebank_demand_p287}
out=${3:-outputs}
.venv/bin/python bench/pairs_real_dev.py "$pairs" --expect-pesq 1.41
if [[ -n "$ckpt" ]]; then
  .venv/bin/python -m crn_lightning.evaluate ckpt="$ckpt" pairs="$pairs" paths.output_dir="$out" \
    "measures=[pesq,stoi,estoi,si_sdr,composite,dnsmos]"
  summary=$(ls -td "$out"/evaluate/*/ | head -1)summary.json
  .venv/bin/python - "$summary" <<'PY'
import json, sys
noisy = json.load(open(sys.argv[1]))["all"]["pesq_noisy"]
print(f"evaluate: mean noisy PESQ {noisy:.4f} ({sys.argv[1]})")
sys.exit(0 if round(noisy, 2) == 1.41 else 1)
PY
fi
