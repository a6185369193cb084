// GORT_DCHECK(cond, msg): a precondition the runtime checks in Debug builds
// (and so in the ASan and TSan builds, which are Debug) and compiles away where
// NDEBUG is defined (RelWithDebInfo, Release): the checks sit on the hot paths
// of switches and channel operations. A failed check is a fatal error naming it.
#pragma once

#include <string_view>

namespace gort::rt {

// dcheck_failed() reports the failed check cond (its text) at file:line, then
// is fatal(msg). Async-signal-safe, as fatal().
[[noreturn]] void dcheck_failed(const char* cond, std::string_view msg, const char* file, int line);

}  // namespace gort::rt

#ifndef NDEBUG
#define GORT_DCHECK(cond, msg)                                                               \
  do {                                                                                       \
    if (!(cond)) [[unlikely]] ::gort::rt::dcheck_failed(#cond, msg, __FILE__, __LINE__);     \
  } while (0)
#else
// Not evaluated, but still compiled: a check cannot rot in release builds.
#define GORT_DCHECK(cond, msg) static_cast<void>(sizeof(!(cond)))
#endif
