#!/bin/bash
# Runs on the lent GPU machine from the repository root, with .carry/ from bench/cuda_carry.sh:
# kernel and model tests, compute-sanitizer on the kernel tests, the attention-kernel benchmark,
# the end-to-end benchmark and the PyTorch / HF baselines. JSON results and one log (run.log, at
# most 8 files come back) go to $OUT.
#   STEPS="tests sanitizer attention e2e torch hf" bash bench/cuda_run.sh
set -u
OUT=${OUT:-/tmp/akv-out}
mkdir -p "$OUT"
LOG="$OUT/run.log"
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib:${LD_LIBRARY_PATH:-}
export AKV_SHARED=$PWD/.carry/shared
B=.carry/bin
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
fi
if has sanitizer; then
  section "compute-sanitizer memcheck"
  timeout 300 compute-sanitizer --tool memcheck --error-exitcode 3 $B/cuda_kernels_test \
    --gtest_filter='CudaKvAppend.*:CudaPrefillAttention.*:CudaDecodeAttention.Grid*:CudaMatMul.*:CudaElementwise.*:CudaColdTier.*' \
    2>&1 | grep -vE "^\[ +(RUN|OK) " ; echo "compute-sanitizer memcheck rc=${PIPESTATUS[0]}"
fi
if has attention; then
  section "cuda_attention"
  timeout 240 $B/cuda_attention --json "$OUT/attention.json" 2>&1
fi
if has e2e; then
  section "akv bench --device cuda"
  timeout 300 $B/akv bench --device cuda -m random:llama-2-7b -p 512 -n 64 -d 4096,16384,32768 \
    --cache full --cache akv-balanced --cache akv-int2 -r 3 --json "$OUT/e2e.json" 2>&1
fi
if has torch; then
  section "PyTorch / HF baselines"
  timeout 240 python3 bench/cuda_torch_baseline.py --json "$OUT/torch.json" $(has hf && echo --hf) 2>&1
fi
} > "$LOG" 2>&1
grep -E "^==== |rc=|^\[  (FAILED|PASSED) |Failure|\[gpu\]|ERROR SUMMARY|^\| |^cold|^device|^model|HF transformers" "$LOG" | grep -v "SKIPPED"
