#!/usr/bin/env bash
# AKV quality on the reference rows (docs/BENCHMARKS.md): perplexity, KL divergence to the f16
# cache and top-1 agreement, with the bits per value each preset stores.
#   bash bench/akv_quality.sh [threads] [chunks]
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-2}
CHUNKS=${2:-24}
S=${AKV_SHARED:-../shared}
OUT=bench/results
mkdir -p "$OUT"
M="$S/models/akv-tiny-llama-25m-f16.gguf"
for spec in akv:quality akv:balanced akv:aggressive akv:compact; do
  name=${spec//:/-}
  ./build/akv perplexity -m "$M" -t "$T" -f "$S/data/treasure_island.txt" -c 2048 --chunks "$CHUNKS" \
    --cache "$spec" --kl-vs full --json "$OUT/quality-llama25m-ti-2048-$name.json"
done
