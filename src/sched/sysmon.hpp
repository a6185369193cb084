#pragma once

namespace gort::rt {
// sysmon_start() starts the sysmon thread (once, from schedinit).
void sysmon_start();
}  // namespace gort::rt
