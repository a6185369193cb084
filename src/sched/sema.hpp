// The runtime side of gort's sync package, as Go's runtime/sema.go: semaphores
// and notify lists whose waiters are kept in a table keyed by address, so the
// sync objects themselves stay a few plain words (see sema.cpp for the table and
// its locking rules). Every wait here works on a goroutine (it parks) and on a
// plain thread (it sleeps on a Note).
#pragma once

#include <atomic>
#include <cstdint>

#include "gort/sync.hpp"

namespace gort::rt {

// ---- Counting semaphores (sync.Mutex, RWMutex, WaitGroup) ----

// semacquire() waits until *addr > 0 and decrements it. lifo queues the caller
// at the head rather than the tail (sync.Mutex: a waiter woken once that lost the
// race to a newcomer goes back to the front). reason is shown in goroutine dumps.
void semacquire(std::atomic<std::uint32_t>* addr, bool lifo, WaitReason reason);

// semrelease() increments *addr and wakes the first waiter on addr, if any. With
// handoff the count goes straight to that waiter (no newcomer can take it in
// between) and, if it is a goroutine, the caller yields its processor to it
// (sync.Mutex in starvation mode).
void semrelease(std::atomic<std::uint32_t>* addr, bool handoff);

// canspin() says whether a sync.Mutex locker should spin (iteration i) rather
// than park: only a goroutine, a few times, when other processors are running
// goroutines (the holder may be one of them) and nothing waits in our run queue.
bool canspin(int i);
// dospin() is one round of spinning.
void dospin();

// ---- Notify lists (sync.Cond) ----

using NotifyList = gort::detail::NotifyList;

// notifylistwait() waits until ticket t (taken by incrementing l->wait) is
// notified; returns at once if it already was.
void notifylistwait(NotifyList* l, std::uint32_t t);
// notifylistnotifyone() wakes the waiter holding the oldest unnotified ticket.
void notifylistnotifyone(NotifyList* l);
// notifylistnotifyall() wakes every waiter with a ticket.
void notifylistnotifyall(NotifyList* l);

// ---- Weighted semaphores (gort::Semaphore) ----
//
// *state holds the free units times 2, plus 1 while waiters are queued; a
// semaphore of n free units starts as semweighted(n).

constexpr std::int64_t semweighted(std::int64_t units) { return units * 2; }

// semtryacquire_weighted() takes k units if they are free and nobody waits.
bool semtryacquire_weighted(std::atomic<std::int64_t>* state, std::int64_t k);
// semacquire_weighted() takes k units, waiting in FIFO order behind earlier
// waiters. Precondition: 0 <= k <= the semaphore's size.
void semacquire_weighted(std::atomic<std::int64_t>* state, std::int64_t k);
// semrelease_weighted() returns k units and serves waiters in order while the
// first fits. Returns false, changing nothing, if more than size units would
// then be free. Precondition: k >= 0.
bool semrelease_weighted(std::atomic<std::int64_t>* state, std::int64_t size, std::int64_t k);

}  // namespace gort::rt
