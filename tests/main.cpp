// One GoogleTest main for the suite: Kokkos is initialised once for every test.
#include <gtest/gtest.h>

#include <Kokkos_Core.hpp>

namespace {
class KokkosEnvironment : public ::testing::Environment {
 public:
  KokkosEnvironment(int& argc, char** argv) : argc_(argc), argv_(argv) {}
  void SetUp() override { Kokkos::initialize(argc_, argv_); }
  void TearDown() override { Kokkos::finalize(); }

 private:
  int& argc_;
  char** argv_;
};
}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new KokkosEnvironment(argc, argv));
  return RUN_ALL_TESTS();
}
