// skip(): a test case that cannot apply on this machine or in this run says so,
// with its reason, instead of passing having tested nothing. doctest 2.4.9 has
// no run-time skip (its skip decorator is fixed at registration, before the
// runtime has looked at the machine), so test/main.cpp counts the cases that
// skipped and exits 77, which CTest shows as "Skipped" (SKIP_RETURN_CODE in
// test/CMakeLists.txt), when every case a run selected did (CTest runs each
// case alone).
#pragma once

#include <doctest/doctest.h>

#include <source_location>

namespace gort::test {

// skipped_cases() counts the test cases of this run that called skip().
inline int& skipped_cases() {
  static int n = 0;
  return n;
}

// skip() reports the current case as skipped for reason: a "MESSAGE: skipped:
// <reason>" line at the caller's file and line. Call it before any check, then
// return: `return gort::test::skip("why");`.
inline void skip(const char* reason, std::source_location at = std::source_location::current()) {
  ADD_MESSAGE_AT(at.file_name(), static_cast<int>(at.line()), "skipped: " << doctest::String(reason));
  static const void* last = nullptr;  // a case that calls skip() twice counts once
  const void* tc = doctest::getContextOptions()->currentTest;
  if (tc != last) skipped_cases()++;
  last = tc;
}

}  // namespace gort::test
