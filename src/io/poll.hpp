// The scheduler's side of I/O: each P owns a poller (an io_uring, or a share of
// the epoll fallback). Go's netpoll.go names: netpollinit, netpoll, netpollbreak.
//
// Rules (the io layer keeps them; proc.cpp relies on them):
//  1. Only the M holding a P touches its poller's submission and completion
//     queues (netpoll, netpollflush, the ops' SQE preparation).
//  2. An idle P whose poller has I/O pending (netpollpending) is not put on
//     sched.pidle: its M keeps it and sleeps in netpollwait without holding
//     it ("netwait", P::innetwait).
//     Whoever wants that P (startm) takes it off sched.pnetwait and wakes that
//     M with netpollbreak; the M then runs the P again. Nobody else acquires
//     it, so that M may still submit its queued operations as it goes to sleep.
//  3. netpollbreak may be called from any thread, any number of times; a wake
//     with nobody sleeping makes the next netpollwait return at once.
//  4. netpoll runs inside a parking goroutine's switch (switch_away reaps
//     before picking the next goroutine), while that goroutine may still hold
//     the lock it parks with: what netpoll does on a completion must never
//     take a lock a goroutine holds across gopark (the multishot accept queue
//     hands wake-ups over through a wake word for this reason).
#pragma once

#include <atomic>
#include <cstdint>

namespace gort::rt {

struct P;
struct G;
struct GList;
enum class WaitReason : std::uint8_t;  // sched/runtime.hpp

// netpollinit() picks the backend (conf io.backend) and gives every P a poller.
// Called once by schedinit, after the Ps exist.
void netpollinit();
// netpoll() reaps up to max completions or events of p's poller and appends
// to ready the goroutines they concern, in completion order (Go's netpoll
// returning a gList). A goroutine whose operation completed while it was still
// switching away is listed too: injectglist sees it is not parked, and its
// park's unlockf sees the completion. The rest wait in the poller for the next
// look. Never blocks. Precondition: the caller holds p.
void netpoll(P* p, GList& ready, int max);
// netpollflush() submits the operations queued on p's ring. Caller holds p.
void netpollflush(P* p);
// netpollwait() submits what p queued and sleeps until p's poller has a
// completion or an event, a netpollbreak, or the deadline (nanotime; 0: none).
// The caller released p to the netwait list (rule 2).
void netpollwait(P* p, std::int64_t until);
// netpollpending() is true when p's poller has operations in flight that a
// sleeping M must watch (io_uring: p's own; epoll: any goroutine's). A P
// without them idles on the plain futex path: a netwait wake-up (eventfd
// write, ring wait) costs more, 2P channel ping-pong 380 vs 200 ns.
// Caller holds p.
bool netpollpending(P* p);
// netpollbreak() wakes the M sleeping in netpollwait(p) (rule 3).
void netpollbreak(P* p);
// A wake word, Go's pollDesc rg/wg: 0, kReady, kWait, or the goroutine
// parked on it.
constexpr std::uintptr_t kReady = 1;
// A goroutine is parking on the word (Go's pdWait): an unblock that comes
// before it is off its stack (a deadline timer firing on another M at once)
// replaces kWait, so the park fails and the goroutine resumes instead of
// sleeping with nobody left to wake it.
constexpr std::uintptr_t kWait = 2;
// netpollblock() parks the calling goroutine on gpp until netpollunblock
// (Go's netpollblock): returns at once, consuming it, if gpp is kReady.
// Returns true if it was woken with readiness. onwait(arg), if given, runs
// once gpp says kWait, before parking: it arms what may unblock gpp (a
// deadline timer, which before then could fire unseen) and returns false to
// give up at once (the descriptor is closing).
bool netpollblock(std::atomic<std::uintptr_t>& gpp, WaitReason reason, bool (*onwait)(void*) = nullptr,
                  void* arg = nullptr);
// netpollunblock() sets gpp to kReady (ioready) or 0 and returns the goroutine
// that was parked on it, for the caller to make runnable (netpoll lists it,
// netpollwake readies it), or nullptr. After its CAS it no longer touches
// gpp, which may live on the woken goroutine's stack.
G* netpollunblock(std::atomic<std::uintptr_t>& gpp, bool ioready);
// netpollwake() is netpollunblock outside netpoll (a deadline, a close):
// the goroutine parked on gpp, if any, is readied at once (goready).
void netpollwake(std::atomic<std::uintptr_t>& gpp, bool ioready);
// io_backend_name() is "io_uring" or "epoll" (the runtime's backend).
const char* io_backend_name();

}  // namespace gort::rt
