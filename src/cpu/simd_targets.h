// Highway target selection shared by the src/cpu kernels; include before any hwy header.
//
// AVX3_DL (AVX-512 + VNNI, i.e. Ice Lake / Zen4 and later) is opt-in in Highway 1.0.3; we want it
// for vpdpbusd in the Q8_0/Q4_0 kernels. SSSE3/SSE4 are skipped to halve compile time: machines
// without AVX2 use the scalar target.
#pragma once

#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SSSE3 | HWY_SSE4)
#endif
