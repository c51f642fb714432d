#include "services/syscall-router/loader/script.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

namespace bulkhead::loader {
namespace {

Result<ScriptLine> Parse(const std::string& s) {
  return ParseScriptLine(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

struct Case {
  std::string line;
  int err;  // 0: parses
  std::string interp;
  std::optional<std::string> arg;
};

TEST(ScriptTest, ParsesLikeBinfmtScript) {
  const std::string long_path = "/" + std::string(300, 'p');
  const std::string path250 = "/" + std::string(249, 'p');
  const std::vector<Case> cases = {
      {"#!/bin/sh\n", 0, "/bin/sh", std::nullopt},
      {"#! /bin/sh\n", 0, "/bin/sh", std::nullopt},
      {"#!/bin/sh -e\n", 0, "/bin/sh", "-e"},
      {"#!/usr/bin/env python3 -u\nprint(1)\n", 0, "/usr/bin/env", "python3 -u"},  // ONE argument
      {"#!/bin/echo  a  b  \t\n", 0, "/bin/echo", "a  b"},
      {"#!\t/bin/sh\t-x\t\n", 0, "/bin/sh", "-x"},
      {"#!/bin/sh   \n", 0, "/bin/sh", std::nullopt},
      {"#!/bin/sh", 0, "/bin/sh", std::nullopt},  // no newline: the NUL padding ends it
      {"#!/bin/sh -x", 0, "/bin/sh", "-x"},
      {"#!/bin/sh\r\n", 0, "/bin/sh\r", std::nullopt},  // DOS line ends: ENOENT at open, as in Linux
      {std::string("#!/bin/sh\0 -x\n", 14), 0, "/bin/sh", std::nullopt},
      {std::string("#!/bin/echo a\0b c\n", 18), 0, "/bin/echo", "a"},
      {std::string("#!\0/bin/sh\n", 11), 0, "", std::nullopt},
      {"#!", 0, "", std::nullopt},
      {"#!   \n", ENOEXEC, "", std::nullopt},
      {"#!\n", ENOEXEC, "", std::nullopt},
      {"#!" + std::string(300, ' '), ENOEXEC, "", std::nullopt},  // only blanks in the buffer
      {"#!" + long_path, ENOEXEC, "", std::nullopt},             // the path may be cut: refuse
      {"#!" + long_path + "\n", ENOEXEC, "", std::nullopt},      // the newline is beyond 256 bytes
      {"#!" + path250 + " arg-cut-by-the-limit" + std::string(100, 'x'), 0, path250, "ar"},
      {"#!" + path250 + " ab\n", 0, path250, "ab"},
      {"# !/bin/sh\n", ENOEXEC, "", std::nullopt},
      {"#", ENOEXEC, "", std::nullopt},
      {"", ENOEXEC, "", std::nullopt},
      {"\x7f" "ELF", ENOEXEC, "", std::nullopt},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::PrintToString(c.line.substr(0, 40)));
    auto r = Parse(c.line);
    if (c.err != 0) {
      EXPECT_EQ(r.err(), c.err);
      continue;
    }
    ASSERT_TRUE(r.ok()) << ToString(r.error());
    EXPECT_EQ(r->interp, c.interp);
    EXPECT_EQ(r->arg, c.arg);
  }
}

TEST(ScriptTest, OnlyTheFirst256BytesCount) {
  std::string line = "#!/bin/sh " + std::string(300, 'a') + "\n";
  auto r = Parse(line);
  ASSERT_TRUE(r.ok());
  // Bytes 10..254: the last byte of the buffer is dropped (i_end = buf_end).
  EXPECT_EQ(r->arg->size(), kBinprmBufSize - 1 - 10);
}

TEST(ScriptTest, NewArgv) {
  ScriptLine l{"/bin/sh", "-e"};
  EXPECT_EQ(ScriptArgv(l, "/tmp/s", {"s", "1", "2"}),
            (std::vector<std::string>{"/bin/sh", "-e", "/tmp/s", "1", "2"}));
  l.arg.reset();
  EXPECT_EQ(ScriptArgv(l, "./s", {"whatever"}), (std::vector<std::string>{"/bin/sh", "./s"}));
  EXPECT_EQ(ScriptArgv(l, "./s", {}), (std::vector<std::string>{"/bin/sh", "./s"}));
}

TEST(ScriptTest, ArbitraryBytesNeverCrash) {
  uint64_t x = 1;
  for (int i = 0; i < 20000; ++i) {
    std::string s = "#!";
    const int n = static_cast<int>(x % 300);
    for (int j = 0; j < n; ++j) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      const char pick[] = {' ', '\t', '\n', '\0', 'a', '/', '\r'};
      s.push_back(pick[(x >> 33) % 7]);
    }
    auto r = Parse(s);
    if (r.ok()) {
      EXPECT_EQ(r->interp.find_first_of(std::string(" \t\n\0", 4)), std::string::npos);
      EXPECT_LT(r->interp.size(), kBinprmBufSize);
    } else {
      EXPECT_EQ(r.err(), ENOEXEC);
    }
  }
}

}  // namespace
}  // namespace bulkhead::loader
