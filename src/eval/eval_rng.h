// Deterministic random numbers for the eval tasks. The standard distributions are
// implementation-defined, so the same seed could give different prompts on another standard
// library; these are fully specified (SplitMix64), so a seed names one set of prompts everywhere.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

namespace akv {

class EvalRng {
 public:
  explicit EvalRng(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) without modulo bias; n must be > 0.
  uint64_t Below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = Next();
    while (x >= limit);
    return x % n;
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }  // [0, 1)
  template <typename T>
  const T& Pick(const std::vector<T>& v) { return v[Below(v.size())]; }

 private:
  uint64_t state_;
};

// A seed for one item of a grid, derived from the run's seed and the item's coordinates, so an
// item's prompt does not depend on which other items the grid contains.
inline uint64_t MixSeed(uint64_t seed, std::initializer_list<uint64_t> parts) {
  EvalRng r(seed);
  uint64_t h = r.Next();
  for (uint64_t p : parts) {
    EvalRng m(h ^ (p * 0xD1B54A32D192ED03ull));
    h = m.Next();
  }
  return h;
}

}  // namespace akv
