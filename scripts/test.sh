#!/usr/bin/env bash
# The whole test suite: install dependencies, build, run every CTest test (reference tests read
# ../shared or $AKV_SHARED and skip with a message when it is absent), then the parser fuzz tests
# again under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)"

# Sanitizer pass over the parsers that read untrusted input.
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAKV_SANITIZE=ON -DAKV_BUILD_BENCH=OFF -DAKV_CUDA=OFF "${launcher[@]}" >/dev/null
targets=$(cd tests && ls *fuzz*_test.cc io_*_test.cc 2>/dev/null | sed 's/\.cc$//' | sort -u)
cmake --build build-asan -j"$(nproc)" --target $targets
for t in $targets; do
  echo "== $t (ASan/UBSan)"
  ./build-asan/tests/$t --gtest_brief=1
done
echo "akv: all tests passed"
