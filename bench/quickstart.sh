#!/usr/bin/env bash
# Quickstart end to end with a fresh corpus cache (the offline corpus is built), timed (README's first command,
# minus the install). Usage: bash bench/quickstart.sh [extra Hydra overrides]
set -euo pipefail
cd "$(dirname "$0")/.."
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
start=$(date +%s)
.venv/bin/python -m crn_lightning.train experiment=quickstart paths.cache_dir="$cache" "$@"
echo "quickstart wall time, fresh cache included: $(( $(date +%s) - start )) s on $(nproc) cores"
