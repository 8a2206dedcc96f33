#!/bin/bash
# Runs on the lent GPU machine from the repository root, with .carry/ from bench/cuda_carry.sh.
# Steps: tests (kernel, model and engine tests), sanitizer (memcheck on the kernel tests, racecheck
# on decode attention), attention (kernel benchmark), ab (decode attention tests and timings per
# variant of the environment switches in src/cuda/attention_decode.cu),
# cli (akv run / perplexity --device cuda against the CPU), serve (akv serve --device cuda: greedy
# completions and two concurrent streams against akv run --device cuda, a bad body, SIGTERM), e2e (akv bench --device cuda, 7B shape),
# prefill (7B prompts of 512 / 4K / 16K tokens),
# cold (akv-cold decode at 32K with promotion intervals 8 / 1 / none, and 16 promoted pages), eval (delayed
# recall on the GPU caches, needs akv-tiny-llama-25m-f16 in the carry),
# torch / hf (PyTorch and HF transformers baselines). JSON results and one log (run.log; at most 8
# files come back) go to $OUT.
#   STEPS="tests sanitizer attention e2e torch hf" bash bench/cuda_run.sh
# RUN_LOG names the log (several runs in one call), SAN_FILTER / AB_TESTS the gtest filters of the
# sanitizer and ab steps; AB_VARIANTS="MMA=0" runs the CUDA-core decode kernel (AKV_CUDA_DECODE_MMA=0).
set -u
OUT=${OUT:-/tmp/akv-out}
mkdir -p "$OUT"
LOG="$OUT/${RUN_LOG:-run.log}"
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib:${LD_LIBRARY_PATH:-}
# Unpack .carry (bench/cuda_carry.sh): binaries and xz-compressed models.
B=/tmp/akv-carry/bin
export AKV_SHARED=/tmp/akv-carry/shared
if [ ! -x $B/akv ]; then
  mkdir -p $B $AKV_SHARED/models
  xz -dc .carry/bin.tar.xz | tar -C $B -xf -
  cp -r .carry/shared/reference .carry/shared/data $AKV_SHARED/
  for m in .carry/shared/models/*.xz; do [ -e "$m" ] && xz -dc "$m" > $AKV_SHARED/models/$(basename "$m" .xz); done
fi
STEPS=${STEPS:-tests sanitizer attention e2e torch}
has() { [[ " $STEPS " == *" $1 "* ]]; }
section() { echo; echo "==== $* ===="; }
{
section device
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv
for b in $B/*; do ldd "$b" | grep "not found" && echo "missing libraries for $b"; done
if has tests; then
  section "cuda_kernels_test"
  timeout 300 $B/cuda_kernels_test 2>&1; echo "kernels_test rc=$?"
  section "cuda_model_test"
  timeout 300 $B/cuda_model_test 2>&1; echo "model_test rc=$?"
  section "cuda_engine_test"
  timeout 300 $B/cuda_engine_test 2>&1; echo "engine_test rc=$?"
fi
if has sanitizer; then
  section "compute-sanitizer memcheck"
  timeout 300 compute-sanitizer --tool memcheck --error-exitcode 3 $B/cuda_kernels_test \
    --gtest_filter="${SAN_FILTER:-CudaKvAppend.*:CudaPrefillAttention.*:CudaDecodeAttention.Grid*:CudaMatMul.*:CudaElementwise.*:CudaColdTier.*:CudaKvConvert.*:CudaPageBounds.*}" \
    2>&1 | grep -vE "^\[ +(RUN|OK) " ; echo "compute-sanitizer memcheck rc=${PIPESTATUS[0]}"
  section "compute-sanitizer racecheck (decode attention, shared-memory stages)"
  timeout 300 compute-sanitizer --tool racecheck --error-exitcode 3 $B/cuda_kernels_test \
    --gtest_filter='CudaDecodeAttention.Grid*' 2>&1 | grep -vE "^\[ +(RUN|OK) " ; echo "compute-sanitizer racecheck rc=${PIPESTATUS[0]}"
fi
if has attention; then
  section "cuda_attention"
  timeout 240 $B/cuda_attention --json "$OUT/attention.json" ${ATTN_ARGS:-} 2>&1
fi
if has ab; then  # decode attention variants: AB_VARIANTS="default STAGES=0 HALF=1,MINB=5" sets AKV_CUDA_DECODE_<K>=<V>
  for v in ${AB_VARIANTS:-default STAGES=0 STAGES=2 STAGES=3 STAGES=4}; do
    envs=()
    [ "$v" != default ] && for kv in ${v//,/ }; do envs+=("AKV_CUDA_DECODE_$kv"); done
    section "decode attention tests, variant $v"
    env "${envs[@]}" timeout 180 $B/cuda_kernels_test --gtest_filter="${AB_TESTS:-CudaDecodeAttention.*}" 2>&1 | grep -vE "^\[ +(RUN|OK) " | head -${AB_TEST_LINES:-60}
    section "cuda_attention, variant $v"
    env "${envs[@]}" timeout 120 $B/cuda_attention --no-gemv --contexts ${AB_CONTEXTS:-16384,32768} \
      --json "$OUT/ab_${v//[=,]/_}.json" 2>&1
  done
fi
if has cli; then  # the public API on the GPU: akv run / perplexity --device cuda (and the CPU for comparison)
  M=$(ls $AKV_SHARED/models/*.gguf | head -1)
  section "akv run --device cuda ($M)"
  timeout 60 $B/akv run --device cuda -m "$M" -p "Once upon a time" -n 48 --temp 0 -v --stats 2>&1
  section "akv run (cpu)"
  timeout 60 $B/akv run -m "$M" -p "Once upon a time" -n 48 --temp 0 2>&1
  for dev in cuda cpu; do
    section "akv perplexity --device $dev"
    timeout 120 $B/akv perplexity --device $dev -m "$M" -f $AKV_SHARED/data/treasure_island.txt -c 512 --chunks 16 2>&1
  done
  section "akv perplexity --device cuda --cache akv-balanced (window 480 of 2048)"
  timeout 120 $B/akv perplexity --device cuda -m "$M" -f $AKV_SHARED/data/treasure_island.txt -c 2048 --chunks 8 \
    --cache akv-balanced --kl-vs full 2>&1
  section "akv perplexity --device cuda, cold tier (warm 768 of 2048, 2 of the int2 pages promoted)"
  timeout 120 $B/akv perplexity --device cuda -m "$M" -f $AKV_SHARED/data/treasure_island.txt -c 2048 --chunks 8 \
    --cache akv:sink=32,window=480,bits=4,group=32,warm=768,cold_bits=2,promote=2,interval=8 --kl-vs full 2>&1
  section "akv run --device cuda, a CPU-only cache"
  $B/akv run --device cuda -m "$M" -p "x" -n 1 --cache akv:quality 2>&1; echo "rc=$?"
fi
if has serve; then  # akv serve --device cuda: greedy completions over HTTP against akv run --device cuda
  M=$(ls $AKV_SHARED/models/*.gguf | head -1)
  section "akv serve --device cuda ($M)"
  PROMPT="Once upon a time"
  want=$(timeout 60 $B/akv run --device cuda -m "$M" -p "$PROMPT" -n 24 --temp 0 2>/dev/null)
  $B/akv serve --device cuda -m "$M" --port 18080 --parallel 2 > "$OUT/serve.log" 2>&1 &
  spid=$!
  for i in $(seq 1 60); do python3 -c "import urllib.request;urllib.request.urlopen('http://127.0.0.1:18080/health')" 2>/dev/null && break; sleep 1; done
  python3 - "$PROMPT" "$want" <<'PY'
import json, sys, urllib.request, threading
prompt, want = sys.argv[1], sys.argv[2]
def post(body):
    r = urllib.request.Request('http://127.0.0.1:18080/v1/completions', data=json.dumps(body).encode(), headers={'Content-Type': 'application/json'})
    return urllib.request.urlopen(r, timeout=60).read().decode()
got = json.loads(post({'prompt': prompt, 'max_tokens': 24, 'temperature': 0}))['choices'][0]['text']
print('served :', repr(got)); print('akv run:', repr(want[len(prompt):] if want.startswith(prompt) else want))
print('same text as akv run --device cuda:', (prompt + got).strip() == want.strip() or got.strip() == want.strip())
# Two streaming requests at once (--parallel 2): both complete with the same greedy text.
res = [None, None]
def stream(i):
    r = urllib.request.Request('http://127.0.0.1:18080/v1/completions', data=json.dumps({'prompt': prompt, 'max_tokens': 24, 'temperature': 0, 'stream': True}).encode(), headers={'Content-Type': 'application/json'})
    text = ''
    for line in urllib.request.urlopen(r, timeout=60):
        line = line.decode().strip()
        if line.startswith('data: ') and line != 'data: [DONE]': text += json.loads(line[6:])['choices'][0]['text']
    res[i] = text
ts = [threading.Thread(target=stream, args=(i,)) for i in range(2)]
[t.start() for t in ts]; [t.join() for t in ts]
print('two concurrent streams equal the non-streamed text:', res[0] == got and res[1] == got, repr(res[0]))
bad = urllib.request.Request('http://127.0.0.1:18080/v1/completions', data=b'{"prompt": ', headers={'Content-Type': 'application/json'})
try: urllib.request.urlopen(bad, timeout=10); print('bad JSON accepted?!')
except urllib.error.HTTPError as e: print('bad JSON ->', e.code, e.read().decode()[:120])
PY
  kill -TERM $spid; wait $spid; echo "serve exit rc=$?"
  tail -5 "$OUT/serve.log"
fi
if has e2e; then
  section "akv bench --device cuda"
  timeout 300 $B/akv bench --device cuda -m random:llama-2-7b -p 512 -n 64 -d 4096,16384,32768 \
    --cache full --cache akv-balanced --cache akv-int2 --cache akv-cold -r 3 --json "$OUT/e2e.json" 2>&1
fi
if has prefill; then  # long prompts (7B shape): prefill tokens/s with the f16 cache and akv-balanced
  section "akv bench --device cuda, prefill"
  timeout 280 $B/akv bench --device cuda -m random:llama-2-7b -p ${PREFILL_LENGTHS:-512,4096,16384} -n 0 \
    --cache full --cache akv-balanced -r 2 --json "$OUT/prefill.json" 2>&1
fi
if has cold; then  # akv-cold: the cost of promotion (every 8 steps, every other step, only at demotions) at 32K
  section "akv bench --device cuda, cold tier promotion intervals"
  C=akv:sink=32,window=480,bits=4,group=32,warm=4096,cold_bits=2,promote=4
  timeout 300 $B/akv bench --device cuda -m random:llama-2-7b -p 0 -n 64 -d 32768 \
    --cache akv-balanced --cache $C,interval=8 --cache $C,interval=1 --cache $C,interval=1000000 \
    --cache $C,interval=8,promote=16 --cache $C,interval=8,demote=mass -r 3 --json "$OUT/cold.json" 2>&1
fi
if has eval; then  # delayed recall on the GPU caches (akv eval --device cuda, akv-tiny-llama-25m-f16)
  section "akv eval --device cuda (delayed recall)"
  timeout 400 $B/akv eval --device cuda -m $AKV_SHARED/models/akv-tiny-llama-25m-f16.gguf --task recall \
    --methods full,akv-balanced,akv-cold,warm=1024,akv-cold,warm=1024,promote=10 --budgets none -c 2048,4096 \
    --trials 8 --seed 1 --out "$OUT/eval" 2>&1 | tail -45
fi
if has torch; then
  section "PyTorch / HF baselines"
  timeout 240 python3 bench/cuda_torch_baseline.py --json "$OUT/torch.json" $(has hf && echo --hf) 2>&1
fi
} > "$LOG" 2>&1
grep -E "^==== |rc=|^\[  (FAILED|PASSED) |Failure|\[gpu\]|ERROR SUMMARY|^\| |^cold|^device|^model|HF transformers|^PPL|^vs |^akv: (prompt|error)|RACECHECK|hazard" "$LOG" | grep -v "SKIPPED"
