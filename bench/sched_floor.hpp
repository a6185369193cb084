// The floors under gort-bench sched's targets (sched_floor.cpp).
#pragma once

namespace gort::bench {

// emit_sched_floors() measures and prints cpu_locked_op_ns,
// sched_floor_yield_ns and sched_floor_yield_1p_ns, each the median of `runs`
// runs. Any thread.
void emit_sched_floors(int runs, bool quick);

}  // namespace gort::bench
