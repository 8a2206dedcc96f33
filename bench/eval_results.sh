#!/usr/bin/env bash
# The committed eval run behind docs/RESULTS.md: delayed recall at 1K/2K/4K context, multi-query
# recall at 2K and perplexity/KL at 4K on akv-tiny-llama-25m-f16, every method at 25% of the
# f16 KV memory.
#   bash bench/eval_results.sh [threads]      (about 20 minutes on 2 shared cores)
# Writes bench/results/eval/{recall-4k,recall-1k2k,multiquery-2k,ppl-4k}/ (results.json,
# results.md, report.html each), the merged report in bench/results/eval/, and docs/RESULTS.md.
# AKV_BIN overrides the akv binary (default build/akv).
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-2}
S=${AKV_SHARED:-../shared}
AKV=${AKV_BIN:-build/akv}
M="$S/models/akv-tiny-llama-25m-f16.gguf"
OUT=bench/results/eval
mkdir -p "$OUT"
DEPTHS=0.05,0.25,0.5,0.75,0.95
# Eviction baselines and the AKV presets at the same byte budget (bench/results/eval/*/results.json
# record the bytes each actually used). akv:lean (int4 keys everywhere, int2 cold values) and
# akv:aggressive (int2 cold tier) fit 25% at 4K; akv:balanced's floor is about 28%.
RECALL_METHODS=full,akv:aggressive,akv:balanced,akv:lean,h2o,snapkv,window
PPL_METHODS=full,akv:aggressive,akv:balanced,akv:lean,akv:quality,kivi,kivi:4,uniform,uniform:int4,h2o,snapkv,window

# 4K (the bar's context): 8 trials per depth; 1K and 2K: 6.
"$AKV" eval -m "$M" -t "$T" --task recall -c 4096 --depths $DEPTHS --trials 8 --seed 1 \
  --methods $RECALL_METHODS --budgets 0.25 --out "$OUT/recall-4k" >/dev/null
"$AKV" eval -m "$M" -t "$T" --task recall -c 1024,2048 --depths $DEPTHS --trials 6 --seed 1 \
  --methods $RECALL_METHODS --budgets 0.25 --out "$OUT/recall-1k2k" >/dev/null
# One fact per depth, the context prefilled (and compressed) before any question, then all asked.
"$AKV" eval -m "$M" -t "$T" --task multiquery -c 2048 --depths $DEPTHS --trials 6 --seed 1 \
  --methods $RECALL_METHODS --budgets 0.25 --out "$OUT/multiquery-2k" >/dev/null
"$AKV" eval -m "$M" -t "$T" --task ppl -c 4096 --chunks 2 -f "$S/data/treasure_island.txt" \
  --methods $PPL_METHODS --budgets 0.25 --out "$OUT/ppl-4k" >/dev/null

R="$OUT/recall-4k/results.json,$OUT/recall-1k2k/results.json,$OUT/multiquery-2k/results.json,$OUT/ppl-4k/results.json"
"$AKV" eval --report-from "$R" \
  --title "akv eval results: akv-tiny-llama-25m-f16, KV budget 25% of f16" --intro-file bench/eval_results_intro.md \
  --bar-ctx 4096 --bar-budget 0.25 --out "$OUT" --md docs/RESULTS.md >/dev/null
echo "akv: wrote docs/RESULTS.md and $OUT/report.html"
