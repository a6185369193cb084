// gort_echo: the echo server's per-connection handler.
#pragma once

#include "gort/net.hpp"

namespace echo {

// serve_conn() writes back every byte read from conn until the peer closes or an error.
void serve_conn(gort::net::Conn conn);

}  // namespace echo
