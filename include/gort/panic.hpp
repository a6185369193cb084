// gort::panic_error: a Go panic raised by the runtime for misuse that Go reports
// with a recoverable panic ("send on closed channel", "sync: negative WaitGroup
// counter"). Uncaught in a goroutine it ends the program with Go's panic report.
#pragma once

#include <stdexcept>

namespace gort {

class panic_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

}  // namespace gort
