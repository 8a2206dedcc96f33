// KV codecs: SIMD vs scalar reference (bit-exact, on every SIMD target), the one-step invariant,
// round-trip SNR per bit width and group size (printed as the table of docs/ATTENTION.md),
// KIVI and Hadamard, exact byte accounting, pages, and errors on bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "attn/key_summary.h"
#include "kv/codecs/codec.h"
#include "kv/codecs/group_quant.h"
#include "kv/codecs/hadamard.h"
#include "kv/codecs/half_rows.h"
#include "kv/codecs/kivi.h"
#include "kv/codecs/pack.h"
#include "kv/codecs/page_layout.h"
#include "kv/codecs/slot_codec.h"
#include "kv/page/kivi_appender.h"
#include "kv/page/kv_page.h"
#include "kv_test_util.h"

namespace akv {
namespace {

using test::ForEachSimdTarget;
using test::RandomKvRows;
using test::SnrDb;

constexpr int kBits[] = {8, 4, 2};
constexpr int kGroups[] = {32, 64, 128};

TEST(KvCodecTest, PackedUnitLayout) {
  // 4 bits: byte i = v[i] | v[i+16] << 4; 2 bits: byte i = v[i] | v[i+8] << 2 | ...
  uint8_t codes[32], unit[32];
  for (int j = 0; j < 32; ++j) codes[j] = uint8_t((j * 7 + 3) & 15);
  PackUnit(codes, 4, unit);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(unit[i], codes[i] | (codes[i + 16] << 4));
  for (int j = 0; j < 32; ++j) codes[j] = uint8_t((j * 5 + 1) & 3);
  PackUnit(codes, 2, unit);
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(unit[i], codes[i] | (codes[i + 8] << 2) | (codes[i + 16] << 4) | (codes[i + 24] << 6));
  uint8_t back[32];
  UnpackUnit(unit, 2, back);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(back[j], codes[j]);
}

TEST(KvCodecTest, GroupParamsCoverTheGroup) {
  const float cases[][2] = {{-1.0f, 1.0f}, {1000.0f, 1000.001f}, {-65504.0f, 65504.0f}, {3.0f, 3.0f},
                            {-0.0f, 0.0f},  {1e-6f, 2e-6f},      {-7.3f, -7.2999f}};
  for (int bits : kBits)
    for (const auto& c : cases) {
      const GroupParams p = ChooseGroupParams(c[0], c[1], bits);
      const float zero = F16ToF32(p.zero), scale = F16ToF32(p.scale);
      EXPECT_LE(zero, c[0]) << c[0] << " " << c[1] << " bits " << bits;
      EXPECT_GE(std::fma(float(MaxCode(bits)), scale, zero), c[1]) << c[0] << " " << c[1];
      EXPECT_GE(scale, 0.0f);
      EXPECT_TRUE(std::isfinite(scale) && std::isfinite(zero));
    }
}

TEST(KvCodecTest, RowQuantSimdMatchesReferenceOnEveryTarget) {
  for (int dim : {64, 128, 256}) {
    const std::vector<float> x = RandomKvRows(16, dim, 11 + dim, /*outliers=*/4);
    for (int bits : kBits)
      for (int group : kGroups) {
        if (dim % group) continue;
        const size_t packed_bytes = size_t(dim) * bits / 8;
        for (int r = 0; r < 16; ++r) {
          const float* row = x.data() + size_t(r) * dim;
          std::vector<uint8_t> ref_packed(packed_bytes), ref_codes(dim);
          std::vector<f16_t> ref_s(dim / group), ref_z(dim / group), ref_s2(dim / group), ref_z2(dim / group);
          ASSERT_TRUE(QuantizeRowReference(row, dim, bits, group, ref_packed.data(), ref_s.data(), ref_z.data()).ok());
          ASSERT_TRUE(QuantizeToCodesReference(row, dim, bits, group, ref_codes.data(), ref_s2.data(), ref_z2.data()).ok());
          std::vector<float> ref_out(dim);
          DequantizeRowReference(ref_packed.data(), ref_s.data(), ref_z.data(), dim, bits, group, ref_out.data());
          ForEachSimdTarget([&] {
            std::vector<uint8_t> packed(packed_bytes), codes(dim);
            std::vector<f16_t> s(dim / group), z(dim / group);
            ASSERT_TRUE(QuantizeRow(row, dim, bits, group, packed.data(), s.data(), z.data()).ok());
            EXPECT_EQ(packed, ref_packed) << "bits " << bits << " group " << group;
            EXPECT_EQ(s, ref_s);
            EXPECT_EQ(z, ref_z);
            ASSERT_TRUE(QuantizeToCodes(row, dim, bits, group, codes.data(), s.data(), z.data()).ok());
            EXPECT_EQ(codes, ref_codes);
            std::vector<float> out(dim);
            DequantizeRow(packed.data(), s.data(), z.data(), dim, bits, group, out.data());
            for (int c = 0; c < dim; ++c) ASSERT_EQ(out[c], ref_out[c]) << "channel " << c;
          });
        }
      }
  }
}

TEST(KvCodecTest, DequantIsWithinOneStep) {
  const int dim = 128;
  const std::vector<float> x = RandomKvRows(64, dim, 5, /*outliers=*/6, /*outlier_scale=*/40.0f);
  for (int bits : kBits)
    for (int group : kGroups) {
      std::vector<uint8_t> packed(dim * bits / 8);
      std::vector<f16_t> s(dim / group), z(dim / group);
      std::vector<float> out(dim);
      for (int r = 0; r < 64; ++r) {
        const float* row = x.data() + size_t(r) * dim;
        ASSERT_TRUE(QuantizeRow(row, dim, bits, group, packed.data(), s.data(), z.data()).ok());
        DequantizeRow(packed.data(), s.data(), z.data(), dim, bits, group, out.data());
        for (int c = 0; c < dim; ++c) {
          const float step = F16ToF32(s[c / group]);
          // Rounding to the nearest code is half a step; f32 arithmetic adds a few ulps of x.
          const float slack = 4 * std::nextafter(std::fabs(row[c]), INFINITY) - 4 * std::fabs(row[c]);
          ASSERT_LE(std::fabs(out[c] - row[c]), 0.5f * step + slack)
              << "bits " << bits << " group " << group << " row " << r << " channel " << c;
        }
      }
    }
}

// Round-trip SNR on keys with outlier channels, per codec; printed as the docs table and
// checked against the uniform-quantizer expectation (6 dB per bit, give or take the group range).
TEST(KvCodecTest, RoundTripSnrTable) {
  const int dim = 128, tokens = 512;
  const std::vector<float> plain = RandomKvRows(tokens, dim, 77, /*outliers=*/0);
  const std::vector<float> keys = RandomKvRows(tokens, dim, 78, /*outliers=*/4);
  auto snr_of = [&](const std::vector<float>& x, const CodecSpec& codec) {
    auto page = KvPage::Create(codec, CodecSpec::F16(), dim, tokens);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    std::vector<int32_t> pos(tokens);
    for (int i = 0; i < tokens; ++i) pos[i] = i;
    EXPECT_TRUE(page->AppendBlock(x.data(), x.data(), pos.data(), tokens).ok());
    std::vector<float> y(x.size());
    for (int i = 0; i < tokens; ++i) EXPECT_TRUE(page->ReadSlot(i, y.data() + size_t(i) * dim, nullptr).ok());
    return SnrDb(x, y);
  };
  std::printf("\n| codec | bytes/token/head (D=128) | SNR gaussian (dB) | SNR keys, 4 outlier channels (dB) |\n");
  std::printf("|---|---|---|---|\n");
  double gaussian_snr[3][3];  // [bits][group]
  for (int b = 0; b < 3; ++b) {
    const int bits = kBits[b];
    for (int gi = 0; gi < 3; ++gi) {
      const int group = kGroups[gi];
      for (int variant = 0; variant < 3; ++variant) {
        CodecSpec c = variant == 2 ? CodecSpec::Kivi(bits, group) : CodecSpec::Quantized(bits, group, variant == 1);
        const double snr_plain = snr_of(plain, c), snr_keys = snr_of(keys, c);
        std::printf("| %s | %.2f | %.1f | %.1f |\n", CodecName(c).c_str(), KeyBytesPerToken(c, dim), snr_plain, snr_keys);
        if (variant == 0) gaussian_snr[b][gi] = snr_plain;
      }
    }
  }
  for (int gi = 0; gi < 3; ++gi) {
    // A uniform quantizer over the same range: the SNR ratio of two bit widths is the ratio of
    // their largest codes, 20 log10(255 / 15) = 24.6 dB and 20 log10(15 / 3) = 14.0 dB.
    EXPECT_NEAR(gaussian_snr[0][gi] - gaussian_snr[1][gi], 24.6, 1.0) << "group " << kGroups[gi];
    EXPECT_NEAR(gaussian_snr[1][gi] - gaussian_snr[2][gi], 14.0, 1.0) << "group " << kGroups[gi];
    // Half a step of rounding noise over a group range of about 4.3 sigma (32 Gaussians).
    EXPECT_GT(gaussian_snr[1][gi], 19.0);
    // Larger groups span a wider range: never more accurate.
    if (gi > 0) {
      EXPECT_LE(gaussian_snr[1][gi], gaussian_snr[1][gi - 1] + 0.2);
    }
  }
  // The point of KIVI and of the rotation: on keys with outlier channels both beat plain
  // per-token groups at low bit widths.
  for (int bits : {4, 2}) {
    const double per_token = snr_of(keys, CodecSpec::Quantized(bits, 32));
    EXPECT_GT(snr_of(keys, CodecSpec::Kivi(bits, 32)), per_token + 3) << bits;
    EXPECT_GT(snr_of(keys, CodecSpec::Quantized(bits, 32, /*hadamard=*/true)), per_token + 1) << bits;
  }
}

TEST(KvCodecTest, HadamardSimdMatchesReferenceAndIsOrthogonal) {
  for (int n : {16, 64, 80, 96, 128, 256}) {
    const std::vector<float> x = RandomKvRows(2, n, 3 + n, 2);
    std::vector<float> ref(x.begin(), x.begin() + n);
    ASSERT_TRUE(HadamardRotateReference(ref.data(), n).ok());
    ForEachSimdTarget([&] {
      std::vector<float> y(x.begin(), x.begin() + n);
      ASSERT_TRUE(HadamardRotate(y.data(), n).ok());
      for (int i = 0; i < n; ++i) ASSERT_EQ(y[i], ref[i]) << "n " << n << " i " << i;
      ASSERT_TRUE(HadamardRotateInverse(y.data(), n).ok());
      for (int i = 0; i < n; ++i) ASSERT_NEAR(y[i], x[i], 1e-5 * (1 + std::fabs(x[i])));
    });
    // Dot products are preserved.
    std::vector<float> a(x.begin(), x.begin() + n), b(x.begin() + n, x.end());
    double dot = 0, dot_rot = 0;
    for (int i = 0; i < n; ++i) dot += double(a[i]) * b[i];
    ASSERT_TRUE(HadamardRotate(a.data(), n).ok());
    ASSERT_TRUE(HadamardRotate(b.data(), n).ok());
    for (int i = 0; i < n; ++i) dot_rot += double(a[i]) * b[i];
    EXPECT_NEAR(dot_rot, dot, 1e-5 * (1 + std::fabs(dot)));
  }
  // A single outlier channel is spread evenly over its block.
  std::vector<float> spike(128, 0.0f);
  spike[7] = 128.0f;
  ASSERT_TRUE(HadamardRotate(spike.data(), 128).ok());
  for (float v : spike) EXPECT_NEAR(std::fabs(v), 128.0f / std::sqrt(128.0f), 1e-4);
}

TEST(KvCodecTest, KiviSimdMatchesReference) {
  for (int dim : {64, 128}) {
    for (int bits : kBits)
      for (int block : kGroups) {
        const CodecSpec c = CodecSpec::Kivi(bits, block);
        const std::vector<float> keys = RandomKvRows(block, dim, bits * 1000 + block, 3);
        const size_t tiles_bytes = KeyTileBytes(c, dim) * (2 * block / kTileSlots);
        std::vector<uint8_t> ref(tiles_bytes);
        std::vector<f16_t> ref_s(2 * dim), ref_z(2 * dim);
        // Second block of a two-block page: checks the slot and scale offsets too.
        ASSERT_TRUE(EncodeKeyBlockPerChannelReference(c, dim, keys.data(), block, ref.data(), ref_s.data(), ref_z.data()).ok());
        ForEachSimdTarget([&] {
          std::vector<uint8_t> got(tiles_bytes);
          std::vector<f16_t> s(2 * dim), z(2 * dim);
          ASSERT_TRUE(EncodeKeyBlockPerChannel(c, dim, keys.data(), block, got.data(), s.data(), z.data()).ok());
          EXPECT_EQ(got, ref) << CodecName(c);
          EXPECT_EQ(s, ref_s);
          EXPECT_EQ(z, ref_z);
        });
        // One step per element.
        std::vector<float> key(dim);
        for (int t = 0; t < block; ++t) {
          DecodeKeySlot(c, dim, ref.data(), ref_s.data(), ref_z.data(), block + t, key.data());
          for (int ch = 0; ch < dim; ++ch) {
            const float step = F16ToF32(ref_s[dim + ch]), x = keys[size_t(t) * dim + ch];
            ASSERT_LE(std::fabs(key[ch] - x), 0.5f * step + 4e-7f * std::fabs(x)) << CodecName(c);
          }
        }
      }
  }
}

TEST(KvCodecTest, HalfRowsMatchScalarConversions) {
  const std::vector<float> x = RandomKvRows(1, 256, 9, 8, 1000.0f);
  ForEachSimdTarget([&] {
    std::vector<f16_t> h(256);
    std::vector<bf16_t> b(256);
    ASSERT_TRUE(F32RowToF16(x.data(), 256, h.data()).ok());
    ASSERT_TRUE(F32RowToBF16(x.data(), 256, b.data()).ok());
    std::vector<float> back(256);
    F16RowToF32(h.data(), 256, back.data());
    for (int i = 0; i < 256; ++i) {
      ASSERT_EQ(h[i], F32ToF16(x[i])) << i;
      ASSERT_EQ(b[i], F32ToBF16(x[i])) << i;
      ASSERT_EQ(back[i], F16ToF32(h[i]));
    }
  });
}

TEST(KvCodecTest, ByteAccounting) {
  const int dim = 128;
  EXPECT_EQ(KeyBytesPerToken(CodecSpec::F16(), dim), 256.0);
  EXPECT_EQ(KeyBytesPerToken(CodecSpec::Quantized(8, 32), dim), 128 + 4 * 4);
  EXPECT_EQ(KeyBytesPerToken(CodecSpec::Quantized(4, 32), dim), 64 + 4 * 4);
  EXPECT_EQ(KeyBytesPerToken(CodecSpec::Quantized(2, 128), dim), 32 + 4);
  EXPECT_EQ(KeyBytesPerToken(CodecSpec::Kivi(2, 64), dim), 32 + 4.0 * 128 / 64);
  EXPECT_EQ(ValueBytesPerToken(CodecSpec::Quantized(4, 64), dim), 64 + 4 * 2);
  // The page layout holds exactly codes + scales + zeros + positions + summary, plus alignment.
  for (const CodecSpec& k : {CodecSpec::F16(), CodecSpec::Quantized(4, 32), CodecSpec::Kivi(2, 128)}) {
    for (const CodecSpec& v : {CodecSpec::F16(), CodecSpec::Quantized(2, 32)}) {
      auto l = PageLayout::Make(k, v, dim, 256);
      ASSERT_TRUE(l.ok());
      const double payload = 256 * (KeyBytesPerToken(k, dim) + ValueBytesPerToken(v, dim) + 4) + 2 * dim * 2;
      EXPECT_GE(double(l->total_bytes), payload);
      EXPECT_LT(double(l->total_bytes), payload + 8 * 64) << CodecName(k) << " " << CodecName(v);
    }
  }
}

// Symmetric values: one f16 scale per group, the zero implied. Every value within half a step of its
// original through a page (the slot codec path), the scale no coarser than the group's range needs
// (within f16 rounding), and no zeros stored.
TEST(KvCodecTest, SymmetricValuesRoundTripWithinHalfAStep) {
  const int dim = 128, rows = 48;
  const std::vector<float> x = RandomKvRows(rows, dim, 31, /*outliers=*/4, /*outlier_scale=*/20.0f);
  for (int bits : kBits)
    for (int group : kGroups) {
      CodecSpec v = CodecSpec::Quantized(bits, group);
      v.symmetric = true;
      ASSERT_TRUE(ValidateValueCodec(v, dim).ok());
      auto page = KvPage::Create(CodecSpec::F16(), v, dim, 64);
      ASSERT_TRUE(page.ok());
      for (int r = 0; r < rows; ++r) ASSERT_TRUE(page->Append(x.data() + r * dim, x.data() + r * dim, r).ok());
      const KvSegment seg = page->segment();
      ASSERT_EQ(seg.value_zeros, nullptr);
      ASSERT_TRUE(ValidateSegment(seg, dim, "symmetric").ok());
      std::vector<float> out(dim);
      const float half_codes = 0.5f * MaxCode(bits);
      for (int r = 0; r < rows; ++r) {
        const float* row = x.data() + size_t(r) * dim;
        ASSERT_TRUE(page->ReadSlot(r, nullptr, out.data()).ok());
        for (int g = 0; g < dim / group; ++g) {
          float m = 0;
          for (int c = g * group; c < (g + 1) * group; ++c) m = std::max(m, std::fabs(row[c]));
          const float step = F16ToF32(seg.value_scales[size_t(r) * (dim / group) + g]);
          EXPECT_LE(step, m / half_codes * (1 + 4.0f / 1024)) << bits << " " << group;
          for (int c = g * group; c < (g + 1) * group; ++c) {
            const float slack = 4 * std::nextafter(std::fabs(row[c]), INFINITY) - 4 * std::fabs(row[c]);
            ASSERT_LE(std::fabs(out[c] - row[c]), 0.5f * step + slack)
                << "bits " << bits << " group " << group << " row " << r << " channel " << c;
          }
        }
      }
      // The reference decoder agrees with the page.
      DecodeSegmentValue(seg, dim, 7, out.data());
      std::vector<float> again(dim);
      ASSERT_TRUE(page->ReadSlot(7, nullptr, again.data()).ok());
      EXPECT_EQ(out, again);
    }
  // Bytes: codes + one f16 per group; the layout has no zeros section.
  CodecSpec v2 = CodecSpec::Quantized(2, 64);
  v2.symmetric = true;
  EXPECT_EQ(ValueBytesPerToken(v2, dim), 32 + 2 * 2);
  auto sym = PageLayout::Make(CodecSpec::F16(), v2, dim, 256);
  auto asym = PageLayout::Make(CodecSpec::F16(), CodecSpec::Quantized(2, 64), dim, 256);
  ASSERT_TRUE(sym.ok() && asym.ok());
  EXPECT_EQ(asym->total_bytes - sym->total_bytes, 256u * 2 * 2);
  EXPECT_EQ(CodecName(v2).find("+sym") != std::string::npos, true);
  EXPECT_FALSE(v2 == CodecSpec::Quantized(2, 64));
  // Symmetric keys and symmetric f16 are refused.
  CodecSpec k = CodecSpec::Quantized(2, 64);
  k.symmetric = true;
  EXPECT_FALSE(ValidateKeyCodec(k, dim).ok());
  CodecSpec f = CodecSpec::F16();
  f.symmetric = true;
  EXPECT_FALSE(ValidateValueCodec(f, dim).ok());
}

TEST(KvCodecTest, BadInputIsAStatusNotACrash) {
  std::vector<float> x(128, 1.0f);
  std::vector<uint8_t> out(128);
  std::vector<f16_t> s(8), z(8);
  EXPECT_FALSE(QuantizeRow(x.data(), 128, 3, 32, out.data(), s.data(), z.data()).ok());
  EXPECT_FALSE(QuantizeRow(x.data(), 128, 4, 48, out.data(), s.data(), z.data()).ok());
  EXPECT_FALSE(QuantizeRow(x.data(), 96, 4, 64, out.data(), s.data(), z.data()).ok());
  x[5] = NAN;
  EXPECT_FALSE(QuantizeRow(x.data(), 128, 4, 32, out.data(), s.data(), z.data()).ok());
  x[5] = 1e6f;
  const Status st = QuantizeRow(x.data(), 128, 4, 32, out.data(), s.data(), z.data());
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("f16 range"), std::string::npos) << st.message();
  EXPECT_FALSE(ValidateKeyCodec(CodecSpec::Quantized(4, 64), 96).ok());
  EXPECT_FALSE(ValidateValueCodec(CodecSpec::Kivi(4, 32), 128).ok());
  EXPECT_FALSE(ValidateValueCodec(CodecSpec::Quantized(4, 32, true), 128).ok());
  EXPECT_FALSE(ValidateKeyCodec(CodecSpec::F16(), 72).ok());
  EXPECT_TRUE(ValidateKeyCodec(CodecSpec::F16(), 80).ok());
  EXPECT_FALSE(PageLayout::Make(CodecSpec::F16(), CodecSpec::F16(), 128, 48).ok());
  EXPECT_FALSE(PageLayout::Make(CodecSpec::Kivi(2, 128), CodecSpec::F16(), 128, 64).ok());
  EXPECT_FALSE(HadamardRotate(x.data(), 24).ok());
  auto page = KvPage::Create(CodecSpec::Quantized(4, 32), CodecSpec::F16(), 128, 32);
  ASSERT_TRUE(page.ok());
  EXPECT_FALSE(page->Append(x.data(), x.data(), 0).ok());  // 1e6 out of range
  EXPECT_EQ(page->n_slots(), 0);
}

TEST(KvCodecTest, PageRoundTripRemoveAndSummary) {
  const int dim = 128;
  const std::vector<float> keys = RandomKvRows(100, dim, 21, 4), values = RandomKvRows(100, dim, 22, 0);
  for (const CodecSpec& kc : {CodecSpec::F16(), CodecSpec::BF16(), CodecSpec::Quantized(4, 32, true),
                               CodecSpec::Quantized(2, 64)}) {
    auto page = KvPage::Create(kc, CodecSpec::Quantized(8, 32), dim, 128);
    ASSERT_TRUE(page.ok());
    for (int i = 0; i < 100; ++i)
      ASSERT_TRUE(page->Append(keys.data() + i * dim, values.data() + i * dim, 1000 + i).ok());
    std::vector<float> k(dim), v(dim);
    for (int i = 0; i < 100; i += 7) {
      ASSERT_TRUE(page->ReadSlot(i, k.data(), v.data()).ok());
      EXPECT_EQ(page->position(i), 1000 + i);
      const double tol_k = kc.format == KvFormat::kInt2 ? 20.0 : (kc.format == KvFormat::kInt4 ? 3.0 : 0.0);
      for (int c = 0; c < dim; ++c) {
        // bf16 keeps 8 significant bits, f16 11.
        const double rel = kc.format == KvFormat::kBF16 ? 1.0 / 256 : 1.0 / 2048;
        EXPECT_NEAR(k[c], keys[i * dim + c], tol_k + rel * std::fabs(keys[i * dim + c])) << CodecName(kc);
        EXPECT_NEAR(v[c], values[i * dim + c], 0.05);
      }
    }
    // Remove slot 3: the last slot (99) takes its place.
    std::vector<float> last_k(dim), moved_k(dim);
    ASSERT_TRUE(page->ReadSlot(99, last_k.data(), nullptr).ok());
    ASSERT_TRUE(page->RemoveSlot(3).ok());
    EXPECT_EQ(page->n_slots(), 99);
    EXPECT_EQ(page->position(3), 1099);
    ASSERT_TRUE(page->ReadSlot(3, moved_k.data(), nullptr).ok());
    EXPECT_EQ(moved_k, last_k);
    // The summary bounds every stored key, in the stored domain.
    const KvSegment seg = page->segment();
    std::vector<float> stored(dim);
    for (int i = 0; i < seg.n_slots; ++i) {
      DecodeSegmentKey(seg, dim, i, stored.data());
      for (int c = 0; c < dim; ++c) {
        ASSERT_LE(F16ToF32(seg.key_min[c]), stored[c]);
        ASSERT_GE(F16ToF32(seg.key_max[c]), stored[c]);
      }
    }
    // And the q.k bound holds for every slot, with the query in the key domain.
    const std::vector<float> q = RandomKvRows(1, dim, 23, 0);
    std::vector<float> qd(dim);
    ASSERT_TRUE(QueryInKeyDomain(kc, q.data(), dim, qd.data()).ok());
    const double bound = QkUpperBound(qd.data(), seg.key_min, seg.key_max, dim);
    for (int i = 0; i < seg.n_slots; ++i) {
      DecodeSegmentKey(seg, dim, i, stored.data());
      double dot = 0;
      for (int c = 0; c < dim; ++c) dot += double(qd[c]) * stored[c];
      ASSERT_LE(dot, bound);
    }
    // A group of queries: the largest of their bounds.
    const std::vector<float> q3 = RandomKvRows(3, dim, 29, 0);
    double largest = -INFINITY;
    for (int h = 0; h < 3; ++h) largest = std::max(largest, QkUpperBound(&q3[h * dim], seg.key_min, seg.key_max, dim));
    EXPECT_EQ(GroupQkUpperBound(q3.data(), 3, seg.key_min, seg.key_max, dim), largest);
    EXPECT_EQ(GroupQkUpperBound(q3.data(), 0, seg.key_min, seg.key_max, dim), -INFINITY);
  }
}

// Re-encoding a page's de-quantized slots with the same group-wise codec reproduces its bytes
// (group min -> code 0 with the same zero, max -> the top code with the same scale): a GPU cold tier
// of the warm tier's codec holds exactly the warm tokens it received.
TEST(KvCodecTest, ReencodingWithTheSameCodecIsTheIdentity) {
  for (int bits : {8, 4, 2}) {
    for (int group : {32, 64}) {
      const int dim = 128, n = 100;
      const CodecSpec codec = CodecSpec::Quantized(bits, group);
      auto page = KvPage::Create(codec, codec, dim, 128);
      auto again = KvPage::Create(codec, codec, dim, 128);
      ASSERT_TRUE(page.ok() && again.ok());
      const std::vector<float> keys = RandomKvRows(n, dim, 40 + bits, 3), values = RandomKvRows(n, dim, 41 + bits, 0);
      for (int i = 0; i < n; ++i) ASSERT_TRUE(page->Append(&keys[i * dim], &values[i * dim], i).ok());
      std::vector<float> k(dim), v(dim);
      for (int i = 0; i < n; ++i) {
        ASSERT_TRUE(page->ReadSlot(i, k.data(), v.data()).ok());
        ASSERT_TRUE(again->Append(k.data(), v.data(), i).ok());
      }
      size_t diff = 0, first = 0;
      for (size_t i = 0; i < page->layout().total_bytes; ++i)
        if (page->data()[i] != again->data()[i] && diff++ == 0) first = i;
      EXPECT_EQ(diff, 0u) << bits << " bits, group " << group << ": first differing byte " << first << " of "
                          << page->layout().total_bytes << " (key scales at " << page->layout().key_scales_offset
                          << ", values at " << page->layout().value_data_offset << ", value scales at "
                          << page->layout().value_scales_offset << ", summary at " << page->layout().key_min_offset
                          << ")";
    }
  }
}

TEST(KvCodecTest, KiviAppenderKeepsTheNewestTokensInF16) {
  const int dim = 64, block = 32;
  const CodecSpec key = CodecSpec::Kivi(2, block), value = CodecSpec::Quantized(4, 32);
  auto appender = KiviAppender::Create(key, value, dim);
  ASSERT_TRUE(appender.ok()) << appender.status().ToString();
  auto dest = KvPage::Create(key, value, dim, 64);
  ASSERT_TRUE(dest.ok());
  const std::vector<float> keys = RandomKvRows(70, dim, 31, 3), values = RandomKvRows(70, dim, 32, 0);
  for (int i = 0; i < 70; ++i) {
    if (appender->full()) {
      ASSERT_TRUE(appender->Flush(&*dest).ok());
    }
    ASSERT_TRUE(appender->Append(keys.data() + i * dim, values.data() + i * dim, i).ok());
  }
  // 64 tokens quantized in 2 blocks, the newest 6 still in f16.
  EXPECT_EQ(dest->n_slots(), 64);
  EXPECT_EQ(appender->residual().n_slots(), 6);
  EXPECT_EQ(appender->residual().position(5), 69);
  std::vector<float> k(dim);
  ASSERT_TRUE(appender->residual().ReadSlot(5, k.data(), nullptr).ok());
  for (int c = 0; c < dim; ++c) EXPECT_NEAR(k[c], keys[69 * dim + c], 2e-3 * (1 + std::fabs(keys[69 * dim + c])));
  EXPECT_EQ(dest->position(40), 40);
  // A single KIVI slot cannot be removed; a wrong destination codec is refused.
  EXPECT_EQ(dest->RemoveSlot(0).code(), StatusCode::kUnsupported);
  EXPECT_FALSE(dest->Append(keys.data(), values.data(), 0).ok());
}

}  // namespace
}  // namespace akv
