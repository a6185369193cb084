// Built against an installed gort with only the flags the package gives: a
// goroutine recursing with 48 KiB frames must hit its guard page and get the
// overflow report (exit 2). Without -fstack-clash-protection each frame's one
// touch lands 48 KiB below the last, over the one-page guard, and the program
// runs on in memory that is not its stack.
#include <gort/gort.hpp>

#include <cstdio>

// Exported (not static) so the report's backtrace can name it. The limit, nine
// frames or 432 KiB, is past the 256 KiB default stack; it keeps the compiler
// from treating the recursion as infinite.
volatile int recurse_limit = 8;
__attribute__((noinline)) int gort_consumer_recurse(int depth) {
  volatile char buf[48 * 1024];
  buf[0] = static_cast<char>(depth);
  if (depth == recurse_limit) return 0;
  return gort_consumer_recurse(depth + 1) + buf[0];
}

int main() {
  return gort::main([] {
    gort::Chan<int> done;
    gort::go([done] { done.send(gort_consumer_recurse(0)); });
    done.recv();
    std::puts("survived");
  });
}
