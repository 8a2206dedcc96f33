#!/usr/bin/env bash
# Decode speed of the adaptive caches against the f16 cache at one context depth, interleaved:
# ROUNDS processes, each running every cache once (the order alternates between rounds), so a slow
# minute on this shared 2-vCPU machine lands on every cache alike. Writes one JSON with every run
# and prints the mean tokens/s per cache and its ratio to the f16 cache.
#   bash bench/akv_overhead.sh DEPTH [ROUNDS] [N_PREDICT] [CACHES...]
#   bash bench/akv_overhead.sh 4096 3 128 full akv:balanced akv:compact
# Each process fills the depth once per cache (akv bench --fill-once: the warm-up and the 3
# repetitions continue that sequence, so they decode after DEPTH + N .. DEPTH + 4N tokens);
# AKV_REFILL=1 re-prefills before every repetition instead (llama-bench's way, 4x the prefills).
set -euo pipefail
cd "$(dirname "$0")/.."
DEPTH=${1:?usage: akv_overhead.sh DEPTH [ROUNDS] [N_PREDICT] [CACHES...]}
ROUNDS=${2:-3}
N=${3:-128}
shift $(($# < 3 ? $# : 3))
CACHES=("$@")
[[ ${#CACHES[@]} -gt 0 ]] || CACHES=(full akv:balanced akv:compact)
T=${AKV_THREADS:-2}
FILL=(--fill-once)
[[ ${AKV_REFILL:-0} == 1 ]] && FILL=()
S=${AKV_SHARED:-../shared}
MODEL=${AKV_MODEL:-$S/models/akv-tiny-llama-25m-f16.gguf}
OUT=${AKV_OUT:-bench/results/akv-overhead-$DEPTH.json}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for ((r = 1; r <= ROUNDS; r++)); do
  order=("${CACHES[@]}")
  if ((r % 2 == 0)); then  # reverse order every other round
    order=()
    for ((i = ${#CACHES[@]} - 1; i >= 0; i--)); do order+=("${CACHES[i]}"); done
  fi
  args=()
  for c in "${order[@]}"; do args+=(--cache "$c"); done
  ./build/akv bench -m "$MODEL" -t "$T" -p 0 -n "$N" -d "$DEPTH" -r 3 "${FILL[@]}" "${args[@]}" \
    --json "$TMP/round$r.json" >&2
done

python3 - "$TMP" "$ROUNDS" "$OUT" "$DEPTH" "$N" "$T" "$MODEL" "${CACHES[@]}" <<'EOF'
import json, statistics, sys, datetime, os
tmp, rounds, out, depth, n, t, model = sys.argv[1:8]
caches = sys.argv[8:]
runs = []
for r in range(1, int(rounds) + 1):
    with open(f"{tmp}/round{r}.json") as f:  # akv bench --json: an array of results
        runs += [{"round": r, **row} for row in json.load(f)]
summary = {}
for c in caches:
    tps = [x["tokens_per_s"] for x in runs if x["cache"] == c]
    kv = [x["kv_bytes"] for x in runs if x["cache"] == c]
    summary[c] = {"rounds": tps, "mean_tokens_per_s": statistics.mean(tps),
                  "kv_mib": kv[-1] / 2**20}
base = summary.get("full", {}).get("mean_tokens_per_s")
for c, s in summary.items():
    if base:
        s["vs_full"] = s["mean_tokens_per_s"] / base
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
refill = os.environ.get("AKV_REFILL", "0") == "1"
doc = {"command": ("AKV_REFILL=1 " if refill else "") + f"bash bench/akv_overhead.sh {depth} {rounds} {n} " + " ".join(caches),
       "fill_once": not refill,
       "model": os.path.basename(model), "threads": int(t), "cpu": cpu,
       "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
       "summary": summary, "runs": runs}
with open(out, "w") as f:
    json.dump(doc, f, indent=1)
print(f"depth {depth}, {rounds} rounds of tg{n}, {cpu}, {doc['date']} -> {out}")
for c, s in summary.items():
    ratio = f"  {100 * (s['vs_full'] - 1):+.1f}% vs full" if "vs_full" in s else ""
    rs = " / ".join(f"{x:.1f}" for x in s["rounds"])
    print(f"  {c:16s} {s['mean_tokens_per_s']:7.1f} tok/s ({rs})  KV {s['kv_mib']:.2f} MiB{ratio}")
EOF
