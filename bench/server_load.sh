#!/usr/bin/env bash
# The server load experiment (loopback only), writing bench/results/server_*.json:
#   1. 32 concurrent streaming clients for $DURATION s (default 60) on `akv serve --parallel 8`:
#      status codes (5xx must be 0), p50/p99 TTFT and inter-token latency, server RSS when idle
#      after start, after a 15 s warm-up of the same shape (32 clients: every HTTP thread and
#      malloc arena in use), and after the run; then SIGTERM must exit 0.
#   2. Throughput, --parallel 1 vs 8, 8 streaming clients for $TPUT_DURATION s (default 30).
#   3. Sessions of 4096 tokens that fit in 1 GiB of KV memory, f16 vs AKV presets.
# Usage: bash bench/server_load.sh [BUILD_DIR]   (BUILD_DIR has akv and bench/server_*_bench)
#        PARTS="1 3" bash bench/server_load.sh ...  runs only those parts.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
M=${AKV_MODEL:-../shared/models/akv-tiny-llama-25m-f16.gguf}
TEXT=../shared/data/treasure_island.txt
DURATION=${DURATION:-60}
TPUT_DURATION=${TPUT_DURATION:-30}
PORT=${PORT:-18480}
THREADS=${THREADS:-2}
OUT=bench/results
PARTS=${PARTS:-1 2 3}  # 4 (RSS trend) on request
want() { [[ " $PARTS " == *" $1 "* ]]; }
mkdir -p "$OUT"
SPID=""

start_server() {
  "$B/akv" serve -m "$M" --port "$PORT" -t "$THREADS" "$@" 2>>"$OUT/server_serve.log" &
  SPID=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server did not come up" >&2
  exit 1
}
# Sets EXIT_CODE (not in a subshell: only this shell can wait for its child).
stop_server() {
  kill -TERM "$SPID"
  EXIT_CODE=0
  wait "$SPID" || EXIT_CODE=$?
}
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$SPID/status"; }
load() { "$B/bench/server_load_bench" --port "$PORT" --prompts "$TEXT" "$@"; }

: >"$OUT/server_serve.log"
if want 1; then
echo "== 1. 32 streaming clients, ${DURATION} s, --parallel 8"
start_server --parallel 8 --queue 64
rss_idle=$(rss_kib)
load --clients 32 --duration 15 --max-tokens 64 --label warmup --json "$OUT/server_load_warmup.json" >/dev/null \
  || echo "warm-up reported errors (see server_load_warmup.json)"
rss_warm=$(rss_kib)
load --clients 32 --duration "$DURATION" --max-tokens 64 --label "32 clients, parallel 8" --json "$OUT/server_load_32.json" \
  || echo "load run reported errors (see the JSON)"
sleep 1
rss_after=$(rss_kib)
curl -s "http://127.0.0.1:$PORT/metrics" >"$OUT/server_metrics_after_load.txt"
stop_server
cat >"$OUT/server_rss.json" <<JSON
{"rss_kib_idle_after_start": $rss_idle, "rss_kib_after_warmup": $rss_warm, "rss_kib_after_run": $rss_after,
 "growth_kib_warmup_to_after": $((rss_after - rss_warm)), "sigterm_exit_code": $EXIT_CODE}
JSON
cat "$OUT/server_rss.json"
fi

if want 2; then
echo "== 2. throughput, --parallel 1 vs 8 (8 streaming clients, ${TPUT_DURATION} s each)"
for np in 1 8; do
  start_server --parallel "$np" --queue 64
  load --clients 8 --duration 3 --max-tokens 64 --label warmup >/dev/null || true
  load --clients 8 --duration "$TPUT_DURATION" --max-tokens 64 --label "8 clients, parallel $np" \
    --json "$OUT/server_tput_parallel$np.json" >/dev/null || true
  stop_server
  echo "parallel $np: $(grep -E '"tokens_per_s"' "$OUT/server_tput_parallel$np.json")"
done
fi

if want 3; then
echo "== 3. 4096-token sessions in a 1 GiB KV budget"
"$B/bench/server_capacity_bench" -m "$M" -t "$THREADS" --tokens 4096 --decode 64 --budget-mib 1024 \
  --caches "${CACHES:-full,akv:quality,akv:balanced,akv:aggressive}" --text "$TEXT" --json "$OUT/server_capacity.json"
fi

# 4. RSS trend (not run by default: PARTS=4): after a 15 s warm-up, then after each of three
#    30 s runs of 32 streaming clients. A leak grows by the same step every run; allocator
#    settling shrinks to nothing.
if want 4; then
echo "== 4. RSS trend over three 30 s runs"
start_server --parallel 8 --queue 64
load --clients 32 --duration 15 --max-tokens 64 --label warmup >/dev/null || true
r0=$(rss_kib)
trend=()
for i in 1 2 3; do
  load --clients 32 --duration 30 --max-tokens 64 --label "trend $i" >/dev/null || true
  trend+=("$(rss_kib)")
done
stop_server
echo "{\"rss_kib_after_warmup\": $r0, \"after_run_1\": ${trend[0]}, \"after_run_2\": ${trend[1]}, \"after_run_3\": ${trend[2]}, \"sigterm_exit_code\": $EXIT_CODE}" \
  | tee "$OUT/server_rss_trend.json"
fi
