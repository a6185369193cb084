// Built against an installed gort: the public header compiles and links.
#include <gort/gort.hpp>

#include <cstdio>

int main() {
  gort::Options opts;
  opts.settings.push_back({"stack.poison", "true"});
  gort::StackStats st = gort::stack_stats();
  std::printf("consumer ok: %zu setting(s), %llu bytes of stacks in use\n", opts.settings.size(),
              static_cast<unsigned long long>(st.stacks_inuse));
  return 0;
}
