// The counter-based generator: known-answer vectors, distribution moments, and independence of
// the draws from how items are split.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "helpers.hpp"
#include "mfsim/core/communicator.hpp"
#include "mfsim/core/random.hpp"
#include "mfsim/core/shard.hpp"
#include "mfsim/models/particle_state.hpp"

namespace mfsim {
namespace {

// Known-answer tests of Random123 (kat_vectors, philox4x32_10).
TEST(Philox, KnownAnswers) {
  struct Case {
    std::uint32_t ctr[4], key[2], out[4];
  };
  const Case cases[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const auto& c : cases) {
    const Philox4x32 out =
        Philox4x32::apply(Philox4x32{{c.ctr[0], c.ctr[1], c.ctr[2], c.ctr[3]}}, c.key[0], c.key[1]);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(out.v[i], c.out[i]) << "word " << i;
  }
}

TEST(CounterRng, NormalMoments) {
  const CounterRng rng(42, rng_particles);
  const int n = 200000;
  double sum = 0, sum2 = 0, sum4 = 0;
  for (int i = 0; i < n; ++i) {
    const double z = rng.normal(std::uint64_t(i), std::uint32_t(i % 7));
    sum += z, sum2 += z * z, sum4 += z * z * z * z;
  }
  EXPECT_NEAR(sum / n, 0.0, 5 / std::sqrt(double(n)));
  EXPECT_NEAR(sum2 / n, 1.0, 5 * std::sqrt(2.0 / n));
  EXPECT_NEAR(sum4 / n, 3.0, 5 * std::sqrt(96.0 / n));
}

TEST(CounterRng, DrawsDependOnlyOnTheirKey) {
  const CounterRng a(7, rng_particles), b(7, rng_particles), other_seed(8, rng_particles),
      other_stream(7, rng_train_inputs);
  EXPECT_EQ(a.normal(123456789012ull, 3), b.normal(123456789012ull, 3));
  EXPECT_NE(a.normal(5, 0), other_seed.normal(5, 0));
  EXPECT_NE(a.normal(5, 0), other_stream.normal(5, 0));
  EXPECT_NE(a.normal(5, 0), a.normal(5, 1));
  EXPECT_NE(a.normal(5, 0), a.normal(6, 0));
}

TEST(Shard, CoversEveryItemOnceAndKeepsPairs) {
  for (std::int64_t count : {1002, 1003, 1, 7})  // odd counts: the last item is left over
    for (int size : {1, 2, 3, 5}) {
      std::int64_t next = 0;
      for (int rank = 0; rank < size; ++rank) {
        const Shard s = shard_of(count, rank, size, 2);
        EXPECT_EQ(s.begin, next);
        EXPECT_EQ(s.begin % 2, 0);
        next = s.end;
      }
      EXPECT_EQ(next, count) << count << " items on " << size << " ranks";
    }
}

// GroupSpec's shard of every slice: over the ranks, each global id exactly once; a rank's rows
// of slice s are one contiguous block of that slice, at the same offset in every slice; pairs
// stay on one rank; with M not a multiple of 2P the shards differ in size.
TEST(Shard, GroupShardsTileEverySlice) {
  for (index_t per_slice : {10, 7, 2})
    for (int slices : {1, 3})
      for (int size : {1, 2, 3, 4}) {
        std::vector<int> owner(std::size_t(per_slice * slices), -1);
        index_t smallest = per_slice, largest = 0;
        for (int rank = 0; rank < size; ++rank) {
          GroupSpec g;
          g.global_count = per_slice * slices;
          g.slices = slices;
          shard_group(g, rank, size);
          EXPECT_EQ(g.local_count, g.local_per_slice * slices);
          EXPECT_EQ(g.slice_offset % 2, 0);
          smallest = std::min(smallest, g.local_per_slice);
          largest = std::max(largest, g.local_per_slice);
          const RowMap rows = g.rows();
          for (index_t k = 0; k < g.local_count; ++k) {
            const index_t id = rows.global_row(k);
            ASSERT_GE(id, 0);
            ASSERT_LT(id, g.global_count);
            EXPECT_EQ(id / per_slice, k / g.local_per_slice) << "slice of local row " << k;
            EXPECT_EQ(id % per_slice, g.slice_offset + k % g.local_per_slice);
            EXPECT_EQ(owner[std::size_t(id)], -1) << "id " << id << " on two ranks";
            owner[std::size_t(id)] = rank;
          }
        }
        for (std::size_t id = 0; id < owner.size(); ++id) {
          EXPECT_GE(owner[id], 0) << "id " << id << " on no rank";
          // A pair (2p, 2p+1) of one slice is on one rank.
          if (index_t(id) % per_slice % 2 == 1) {
            EXPECT_EQ(owner[id], owner[id - 1]);
          }
        }
        if (per_slice == 10 && size == 4) {
          EXPECT_LT(smallest, largest);  // 5 pairs on 4 ranks
        }
      }
}

}  // namespace
}  // namespace mfsim

namespace mfsim {
namespace {

TEST(Antithetic, PairsShareTheKeyOfTheirIndexAndOpposeTheirSign) {
  for (index_t p : {index_t(0), index_t(3), index_t(1) << 40}) {
    const AntitheticDraw even = antithetic_draw(2 * p, true),
                         odd = antithetic_draw(2 * p + 1, true);
    EXPECT_EQ(even.key, std::uint64_t(p));
    EXPECT_EQ(odd.key, std::uint64_t(p));
    EXPECT_EQ(even.sign, real(1));
    EXPECT_EQ(odd.sign, real(-1));
    const AntitheticDraw plain = antithetic_draw(2 * p + 1, false);
    EXPECT_EQ(plain.key, std::uint64_t(2 * p + 1));
    EXPECT_EQ(plain.sign, real(1));
  }
}

}  // namespace
}  // namespace mfsim
