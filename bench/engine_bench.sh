#!/usr/bin/env bash
# End-to-end figures for docs/BENCHMARKS.md: perplexity on the reference rows and llama-bench-style
# speed (pp512 / tg128, decode at depth) for the shared llama model in F16, Q8_0 and Q4_0.
# Run on an otherwise idle machine: bash bench/engine_bench.sh [threads]
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-2}
S=${AKV_SHARED:-../shared}
OUT=bench/results
mkdir -p "$OUT"
AKV=./build/akv
# Three processes per model: the 2 vCPUs are shared with the host, and a whole process can run
# slower (the table in docs/BENCHMARKS.md shows every run).
for q in f16 q8_0 q4_0; do
  for run in 1 2 3; do
    $AKV bench -m "$S/models/akv-tiny-llama-25m-$q.gguf" -t "$T" -p 512 -n 128 -r 5 \
      --json "$OUT/speed-llama25m-$q-run$run.json"
  done
done
$AKV bench -m "$S/models/akv-tiny-llama-25m-f16.gguf" -t "$T" -p 0 -n 128 -d 512,2048,4096 -r 3 \
  --json "$OUT/depth-llama25m-f16.json"
# Decode with the adaptive cache vs the f16 cache at 4K and 16K tokens of context (the KV-bound regime).
$AKV bench -m "$S/models/akv-tiny-llama-25m-f16.gguf" -t "$T" -p 0 -n 64 -d 4096,16384 -r 2 \
  --cache full --cache akv:balanced --cache akv:aggressive --cache akv:quality \
  --json "$OUT/depth-akv-llama25m-f16.json"
# 32K (about 10 minutes, most of it the chunked AKV prefill): AKV_BENCH_32K=1
if [[ "${AKV_BENCH_32K:-0}" == 1 ]]; then
  $AKV bench -m "$S/models/akv-tiny-llama-25m-f16.gguf" -t "$T" -p 0 -n 64 -d 32768 -r 1 \
    --cache full --cache akv:balanced --cache akv:aggressive --json "$OUT/depth32k-akv-llama25m-f16.json"
fi
$AKV perplexity -m "$S/models/akv-tiny-llama-25m-f16.gguf" -t "$T" -f "$S/data/treasure_island.txt" -c 2048 --chunks 24 \
  --json "$OUT/ppl-llama25m-f16-ti-2048.json"
$AKV perplexity -m "$S/models/akv-tiny-llama-25m-f16.gguf" -t "$T" -f "$S/data/treasure_island.txt" -c 512 --chunks 64 \
  --json "$OUT/ppl-llama25m-f16-ti-512.json"
$AKV perplexity -m "$S/models/akv-tiny-llama-25m-q8_0.gguf" -t "$T" -f "$S/data/treasure_island.txt" -c 2048 --chunks 24 \
  --json "$OUT/ppl-llama25m-q8_0-ti-2048.json"
$AKV perplexity -m "$S/models/akv-tiny-qwen2-16m-f16.gguf" -t "$T" -f "$S/data/treasure_island.txt" -c 2048 --chunks 24 \
  --json "$OUT/ppl-qwen2-16m-f16-ti-2048.json"
$AKV perplexity -m "$S/models/stories260K.gguf" -t "$T" -f "$S/data/treasure_island.txt" -c 512 --chunks 64 \
  --json "$OUT/ppl-stories260K-ti-512.json"
