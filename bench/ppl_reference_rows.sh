#!/usr/bin/env bash
# Perplexity on every reference row of shared/reference/README.md (llama.cpp convention), JSON to
# bench/results/ppl-*.json. Usage: bash bench/ppl_reference_rows.sh [threads]
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-2}
S=${AKV_SHARED:-../shared}
OUT=bench/results
mkdir -p "$OUT"
row() {  # model text ctx chunks
  ./build/akv perplexity -m "$S/models/$1.gguf" -t "$T" -f "$S/data/$2" -c "$3" --chunks "$4" \
    --json "$OUT/ppl-$1-${2%.txt}-$3.json"
}
row akv-tiny-llama-25m-f16 treasure_island.txt 2048 24
row akv-tiny-llama-25m-f16 treasure_island.txt 512 64
row akv-tiny-llama-25m-f16 treasure_island.txt 4096 12
row akv-tiny-llama-25m-f16 wikitext2_test.txt 2048 24
row akv-tiny-llama-25m-q8_0 treasure_island.txt 2048 24
row akv-tiny-qwen2-16m-f16 treasure_island.txt 2048 24
row stories260K treasure_island.txt 512 64
