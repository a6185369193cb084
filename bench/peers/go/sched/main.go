// Command sched measures the Go scheduler costs that `gort-bench sched`
// prints next to its own: Gosched switch, goroutine spawn, unbuffered
// channel round trip, spawn+park, and resident memory per parked goroutine.
//
// Output is one "name value" line per metric (value in the unit at the end
// of the name), plus comment lines starting with '#' that the caller may
// ignore. Only the standard library is used, so it builds offline.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"
)

// counts holds the per-run sizes. They are large enough that the fixed
// costs inside the timed region (spawning the one or two helper goroutines,
// the final wake-up) vanish in the per-op figure, and small enough that the
// default run stays well under 30 s on a 2-vCPU VM.
type counts struct {
	yield        int // Gosched calls per goroutine (two goroutines)
	spawnBatches int // batches of spawnBatch goroutines
	spawnAll     int // goroutines spawned at once before waiting
	rtt          int // channel round trips
	park         int // goroutines spawned and parked
	idle         int // goroutines parked for the RSS measurement
	grows        int // goroutines that each grow their stack to 1.15 MB
}

var (
	fullCounts  = counts{yield: 200_000, spawnBatches: 300, spawnAll: 1_000_000, rtt: 200_000, park: 100_000, idle: 1_000_000, grows: 300}
	quickCounts = counts{yield: 20_000, spawnBatches: 30, spawnAll: 100_000, rtt: 20_000, park: 10_000, idle: 100_000, grows: 30}
)

// spawnBatch is the batch size of go_sched_spawn_ns: big enough that both
// Ps get work, small enough that the goroutines' stacks stay in cache.
const spawnBatch = 1000

func main() {
	runs := flag.Int("runs", 7, "runs per metric; the median is printed")
	quick := flag.Bool("quick", false, "smaller counts, for tests")
	idleChild := flag.Int("idle-rss-child", 0, "internal: measure idle RSS with this many goroutines in this process and exit")
	flag.Parse()
	if flag.NArg() != 0 || *runs < 1 {
		fmt.Fprintln(os.Stderr, "usage: sched [-runs R (>= 1)] [-quick]")
		os.Exit(2)
	}
	if *idleChild > 0 {
		idleRSS(*idleChild)
		return
	}

	c := fullCounts
	if *quick {
		c = quickCounts
	}
	fmt.Printf("# go version %s\n", runtime.Version())
	fmt.Printf("# GOMAXPROCS=%d NumCPU=%d runs=%d quick=%v\n",
		runtime.GOMAXPROCS(0), runtime.NumCPU(), *runs, *quick)

	r := *runs
	report("go_sched_yield_ns", r, func() float64 { return yieldNs(c.yield) })
	report("go_sched_spawn_ns", r, func() float64 { return spawnNs(spawnBatch, c.spawnBatches) })
	report("go_sched_spawn_1m_ns", r, func() float64 { return spawnNs(c.spawnAll, 1) })
	report("go_sched_chan_rtt_1p_ns", r, func() float64 { return chanRTTNs(1, c.rtt) })
	report("go_sched_chan_rtt_2p_ns", r, func() float64 { return chanRTTNs(2, c.rtt) })
	report("go_sched_spawn_park_ns", r, func() float64 { return spawnParkNs(c.park) })
	// Go has one stack kind; gort reports its stable and relocatable
	// goroutines beside the same figure, so it is printed under both names.
	grow := median(r, func() float64 { return stackGrowUs(c.grows) })
	fmt.Printf("go_sched_stack_grow_1mib_stable_us %.1f\n", grow)
	fmt.Printf("go_sched_stack_grow_1mib_relocatable_us %.1f\n", grow)
	if *quick {
		fmt.Printf("# quick: go_sched_spawn_1m_ns spawns %d, idle RSS parks %d\n", c.spawnAll, c.idle)
	}

	// Idle RSS runs once, last, and in a fresh copy of this program. The
	// runs above leave up to a million dead Gs behind (Go never frees a G,
	// golang/go#9869) plus resident-but-free heap and stack spans; parked
	// goroutines created here would reuse them and the RSS delta would
	// undercount. A fresh process starts from a clean heap.
	exe, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	cmd := exec.Command(exe, "-idle-rss-child", strconv.Itoa(c.idle))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fatal(fmt.Errorf("idle RSS child: %w", err))
	}
}

// report prints the median of r runs of f as "name value", preceded by a
// comment with the spread so a noisy result is visible as such.
//
// Why the median: on a shared VM a run can be hit by a hypervisor steal
// or a neighbour's burst; the median ignores such outliers in either
// direction, where the mean would absorb them and the minimum would report
// the luckiest run rather than a typical one.
//
// Why runtime.GC() before each run: a run leaves garbage (closures, dead
// goroutines' stacks, sudogs). Without a forced collection outside the timed
// region, the GC cycle it provokes lands inside a later run and is charged
// to that run; collecting first gives every run the same starting heap.
func report(name string, r int, f func() float64) {
	fmt.Printf("%s %.1f\n", name, medianNamed(name, r, f))
}

// median is report's measurement without the value line.
func median(r int, f func() float64) float64 { return medianNamed("", r, f) }

func medianNamed(name string, r int, f func() float64) float64 {
	vals := make([]float64, r)
	for i := range vals {
		runtime.GC()
		vals[i] = f()
	}
	sort.Float64s(vals)
	med := vals[r/2]
	if r%2 == 0 {
		med = (vals[r/2-1] + vals[r/2]) / 2
	}
	if name != "" {
		fmt.Printf("# %s runs=%d min=%.1f max=%.1f\n", name, r, vals[0], vals[r-1])
	}
	return med
}

// withProcs runs f with GOMAXPROCS set to procs and restores the previous
// value. Changing GOMAXPROCS stops the world, so callers do it outside
// their timed region.
func withProcs(procs int, f func()) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	f()
}

func nsPerOp(d time.Duration, ops int) float64 {
	return float64(d.Nanoseconds()) / float64(ops)
}

// yieldNs: two goroutines each call runtime.Gosched n times on one P, so
// every call hands the P to the other goroutine. Returns ns per Gosched,
// counting the calls of both goroutines. The caller is parked in Wait, so
// exactly two goroutines are runnable.
func yieldNs(n int) (ns float64) {
	withProcs(1, func() {
		var wg sync.WaitGroup
		wg.Add(2)
		start := time.Now()
		for g := 0; g < 2; g++ {
			go func() {
				for i := 0; i < n; i++ {
					runtime.Gosched()
				}
				wg.Done()
			}()
		}
		wg.Wait()
		ns = nsPerOp(time.Since(start), 2*n)
	})
	return ns
}

// spawnNs spawns batch goroutines, waits for all of them, and repeats
// batches times, at the default GOMAXPROCS. The goroutine body is only the
// WaitGroup signal, so the figure is spawn + schedule + run + exit, not
// work. Returns ns per goroutine.
func spawnNs(batch, batches int) float64 {
	var wg sync.WaitGroup
	start := time.Now()
	for b := 0; b < batches; b++ {
		wg.Add(batch)
		for i := 0; i < batch; i++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
	}
	return nsPerOp(time.Since(start), batch*batches)
}

// growFrames is the depth of stackGrowUs's recursion: frames of about 1 KiB,
// 1.15 MB in all, as gort's sched_stack_grow_1mib_*_us.
const growFrames = 1150

var growSink byte

// growStack recurses n frames of about 1 KiB each.
//
//go:noinline
func growStack(n int) byte {
	var b [1024]byte
	b[n%1024] = byte(n)
	if n == 0 {
		return b[0]
	}
	return growStack(n-1) + b[n%1024]
}

// stackGrowUs: a fresh goroutine recurses 1.15 MB deep (its 2 KiB stack
// grows by copying, as Go's do), returns and exits; n of them, one after the
// other. Returns microseconds per goroutine.
func stackGrowUs(n int) float64 {
	done := make(chan byte)
	start := time.Now()
	for i := 0; i < n; i++ {
		go func() { done <- growStack(growFrames) }()
		growSink += <-done
	}
	return float64(time.Since(start).Nanoseconds()) / 1e3 / float64(n)
}

// chanRTTNs: the calling goroutine (a) sends on ping, a helper (b)
// receives and sends back on pong, a receives; n times, with GOMAXPROCS
// procs. Returns ns per round trip (two handoffs).
func chanRTTNs(procs, n int) (ns float64) {
	withProcs(procs, func() {
		ping, pong := make(chan int), make(chan int)
		done := make(chan struct{})
		go func() {
			for v := range ping {
				pong <- v
			}
			close(done)
		}()
		start := time.Now()
		for i := 0; i < n; i++ {
			ping <- i
			<-pong
		}
		ns = nsPerOp(time.Since(start), n)
		close(ping)
		<-done // b must be gone before GOMAXPROCS is restored
	})
	return ns
}

// parkGoroutines spawns n goroutines that each signal a WaitGroup and then
// block receiving from a channel, and returns once all have signalled
// (a goroutine may still be between its signal and its park; the caller's
// own measurement dwarfs that window). release wakes them all by closing
// the channel and waits until they have exited.
func parkGoroutines(n int) (release func()) {
	ch := make(chan struct{})
	var parked, exited sync.WaitGroup
	parked.Add(n)
	exited.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			parked.Done()
			<-ch
			exited.Done()
		}()
	}
	parked.Wait()
	return func() {
		close(ch)
		exited.Wait()
	}
}

// spawnParkNs: time from the first spawn until n goroutines are parked on
// a channel receive, in ns per goroutine. Waking and reaping them is
// outside the timed region.
func spawnParkNs(n int) float64 {
	start := time.Now()
	release := parkGoroutines(n)
	ns := nsPerOp(time.Since(start), n)
	release()
	return ns
}

// idleRSS parks n goroutines and prints the growth of the process's
// resident set per goroutine. Run in a fresh process (see main).
func idleRSS(n int) {
	var msBefore, msAfter runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&msBefore)
	before := rssBytes()
	release := parkGoroutines(n)
	// Collect the spawn garbage and let stragglers reach their park, so
	// what remains is the steady cost of an idle goroutine (stack, G,
	// sudog), not transient heap.
	runtime.GC()
	time.Sleep(200 * time.Millisecond)
	after := rssBytes()
	runtime.ReadMemStats(&msAfter)
	release()

	// The runtime's own accounting, to compare with what Go 1.19 reported on
	// our VM (StackInuse 2048 B + about 541 B of heap per blocked goroutine;
	// docs/design.md, "Performance budget").
	perG := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
	fmt.Printf("# idle n=%d rss_before=%d rss_after=%d stack_inuse/g=%.0f heap_inuse/g=%.0f\n",
		n, before, after, perG(msAfter.StackInuse, msBefore.StackInuse), perG(msAfter.HeapInuse, msBefore.HeapInuse))
	fmt.Printf("go_sched_idle_rss_bytes_per_g %.1f\n", float64(after-before)/float64(n))
}

// rssBytes reads the resident set size from /proc/self/statm (second
// field, in pages).
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		fatal(err)
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		fatal(fmt.Errorf("/proc/self/statm: unexpected %q", b))
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		fatal(fmt.Errorf("/proc/self/statm: %w", err))
	}
	return pages * int64(os.Getpagesize())
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "sched:", err)
	os.Exit(1)
}
