#include "runtime/format.h"

#include <gtest/gtest.h>

#include "runtime/supervisor.h"

namespace bulkhead::runtime {
namespace {

TEST(Format, Durations) {
  EXPECT_EQ(FormatNs(850), "850 ns");
  EXPECT_EQ(FormatNs(12300), "12.30 µs");
  EXPECT_EQ(FormatNs(4560000), "4.56 ms");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
}

TEST(SandboxId, HostileIdsAreRefused) {
  EXPECT_TRUE(ValidSandboxId("web-1.prod_2"));
  for (const char* bad : {"", "../etc", "a/b", ".hidden", "-x", "a b", "a\nb"}) {
    EXPECT_FALSE(ValidSandboxId(bad)) << bad;
  }
  EXPECT_FALSE(ValidSandboxId(std::string(200, 'a')));
}

}  // namespace
}  // namespace bulkhead::runtime
