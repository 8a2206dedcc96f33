#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install dependencies, build, and generate text with
# the default model (override with AKV_MODEL=path/to/model.gguf; extra arguments go to `akv run`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
MODEL="${AKV_MODEL:-${AKV_SHARED:-../shared}/models/akv-tiny-llama-25m-f16.gguf}"
if [ $# -eq 0 ]; then
  set -- -p "Once upon a time" -n 64 --temp 0.7
fi
exec ./build/akv run -m "$MODEL" "$@"
