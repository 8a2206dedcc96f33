#!/bin/bash
# Builds the CUDA test and benchmark binaries on this (GPU-less) machine and gathers what a run
# on the lent GPU machine needs into .carry/ (git-ignored): binaries, the shared libraries the
# GPU machine's image lacks, and the fixture models named in $AKV_CARRY_MODELS.
#   AKV_CARRY_MODELS="akv-tiny-llama-25m-q8_0 stories260K" bash bench/cuda_carry.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${AKV_CUDA_BUILD:-build-cuda}
SHARED=${AKV_SHARED:-../shared}
cmake -S . -B "$BUILD" -G Ninja -DAKV_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90-real >/dev/null
ninja -C "$BUILD" cuda_kernels_test cuda_model_test cuda_attention akv_cli
rm -rf .carry && mkdir -p .carry/bin .carry/lib .carry/shared/models .carry/shared/reference
for b in tests/cuda_kernels_test tests/cuda_model_test cuda_attention akv; do
  strip -o ".carry/bin/$(basename $b)" "$BUILD/$b"
done
for l in libhwy.so.1 libcpp-httplib.so.0.11 libbrotlidec.so.1 libbrotlienc.so.1 libbrotlicommon.so.1; do
  cp -L "/lib/x86_64-linux-gnu/$l" .carry/lib/ 2>/dev/null || true
done
for m in ${AKV_CARRY_MODELS:-}; do
  cp "$SHARED/models/$m.gguf" .carry/shared/models/
  cp "$SHARED/reference/$m".* .carry/shared/reference/ 2>/dev/null || true
done
du -sh .carry
