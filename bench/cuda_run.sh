#!/bin/bash
# Runs on the lent GPU machine from the repository root, with .carry/ from bench/cuda_carry.sh:
# kernel and model tests, compute-sanitizer on the kernel tests, the attention-kernel benchmark,
# the end-to-end benchmark and the PyTorch / HF baselines. Logs and JSON go to $OUT.
#   STEPS="tests sanitizer attention e2e torch hf" bash bench/cuda_run.sh
set -u
OUT=${OUT:-/tmp/akv-out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib:${LD_LIBRARY_PATH:-}
export AKV_SHARED=$PWD/.carry/shared
B=.carry/bin
STEPS=${STEPS:-tests sanitizer attention e2e torch}
has() { [[ " $STEPS " == *" $1 "* ]]; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv | tee "$OUT/device.txt"
for b in $B/*; do ldd "$b" | grep "not found" && echo "missing libraries for $b"; done
if has tests; then
  timeout 300 $B/cuda_kernels_test 2>&1 > "$OUT/kernels_test.log"; echo "kernels_test rc=$?"
  grep -E "^\[  (FAILED|PASSED|SKIPPED) |Failure|Expected|Which is|error" "$OUT/kernels_test.log" | head -40
  timeout 300 $B/cuda_model_test 2>&1 > "$OUT/model_test.log"; echo "model_test rc=$?"
  grep -E "^\[  (FAILED|PASSED|SKIPPED) |\[gpu\]|Failure|Expected|Which is|error" "$OUT/model_test.log" | head -40
fi
if has sanitizer; then
  timeout 300 compute-sanitizer --tool memcheck --error-exitcode 3 $B/cuda_kernels_test \
    --gtest_filter='CudaKvAppend.*:CudaPrefillAttention.*:CudaDecodeAttention.Grid*:CudaMatMul.*:CudaElementwise.*' \
    > "$OUT/sanitizer.log" 2>&1; echo "compute-sanitizer memcheck rc=$?"
  grep -E "ERROR SUMMARY|PASSED|FAILED" "$OUT/sanitizer.log" | tail -5
fi
if has attention; then
  timeout 240 $B/cuda_attention --json "$OUT/attention.json" 2>&1 | tee "$OUT/attention.log"
fi
if has e2e; then
  timeout 300 $B/akv bench --device cuda -m random:llama-2-7b -p 512 -n 64 -d 4096,16384,32768 \
    --cache full --cache akv-balanced --cache akv-int2 -r 3 --json "$OUT/e2e.json" 2>&1 | tee "$OUT/e2e.log"
fi
if has ncu; then
  NCU="ncu --clock-control none --section SpeedOfLight --section Occupancy --section WarpStateStats --section SchedulerStats --section LaunchStats"
  timeout 120 $NCU -k regex:DecodeAttentionKernel --launch-skip 4 --launch-count 1 $B/cuda_attention --only int4-g128 \
    --contexts 32768 --no-gemv > "$OUT/ncu_attention.txt" 2>&1; echo "ncu attention rc=$?"
  timeout 120 $NCU -k regex:Gemv --launch-skip 30 --launch-count 2 $B/cuda_attention --only none > "$OUT/ncu_gemv.txt" 2>&1
  echo "ncu gemv rc=$?"
  grep -E "Memory Throughput|DRAM Throughput|Achieved Occupancy|Registers Per|Issue Slots|Duration|No Eligible|Warp Cycles Per Issued|Stall" "$OUT/ncu_attention.txt" | head -20
  grep -E "Memory Throughput|DRAM Throughput|Achieved Occupancy|Duration|Function Name|Gemv" "$OUT/ncu_gemv.txt" | head -20
fi
if has torch; then
  timeout 240 python3 bench/cuda_torch_baseline.py --json "$OUT/torch.json" $(has hf && echo --hf) 2>&1 | tee "$OUT/torch.log"
fi
