#!/bin/bash
# Builds the CUDA test and benchmark binaries on this (GPU-less) machine and gathers what a run
# on the lent GPU machine needs into .carry/ (git-ignored, at most 64 MiB with the tree):
# the stripped binaries as one bin.tar.xz, the shared libraries the GPU machine's image lacks, the
# fixture models named in $AKV_CARRY_MODELS (xz), their references and the text of the tests.
#   AKV_JOBS=1 AKV_CARRY_MODELS="akv-tiny-qwen2-16m-f16 akv-tiny-llama-25m-q8_0" bash bench/cuda_carry.sh
# bench/cuda_run.sh unpacks it on the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${AKV_CUDA_BUILD:-build-cuda}
SHARED=${AKV_SHARED:-../shared}
BINS="cuda_kernels_test cuda_model_test cuda_engine_test cuda_attention akv_cli"
cmake -S . -B "$BUILD" -G Ninja -DAKV_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90-real >/dev/null
nice -n 19 ninja -C "$BUILD" -j "${AKV_JOBS:-2}" $BINS
rm -rf .carry && mkdir -p .carry/lib .carry/shared/models .carry/shared/reference .carry/shared/data
tmp=$(mktemp -d)
for b in tests/cuda_kernels_test tests/cuda_model_test tests/cuda_engine_test cuda_attention akv; do
  strip -o "$tmp/$(basename $b)" "$BUILD/$b"
done
tar -C "$tmp" -cf - . | nice -n 19 xz -T1 -6 > .carry/bin.tar.xz
rm -rf "$tmp"
for l in libhwy.so.1 libcpp-httplib.so.0.11 libbrotlidec.so.1 libbrotlienc.so.1 libbrotlicommon.so.1; do
  cp -L "/lib/x86_64-linux-gnu/$l" .carry/lib/ 2>/dev/null || true
done
for m in ${AKV_CARRY_MODELS:-}; do
  nice -n 19 xz -T1 -3 -c "$SHARED/models/$m.gguf" > ".carry/shared/models/$m.gguf.xz"
  cp "$SHARED/reference/$m".* .carry/shared/reference/ 2>/dev/null || true
done
cp "$SHARED/data/treasure_island.txt" "$SHARED/data/secret_garden.txt" .carry/shared/data/
du -sh .carry
