package main

import (
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// gcStats is what the runtime reports of its collections: cycles, and the
// histogram of its stop-the-world pauses.
type gcStats struct {
	cycles  uint64
	pauses  *metrics.Float64Histogram
	over1ms uint64        // set by since
	longest time.Duration // set by since: the upper bound of the highest bucket used
}

func readGC() gcStats {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/sched/pauses/total/gc:seconds"}}
	metrics.Read(s)
	return gcStats{cycles: s[0].Value.Uint64(), pauses: s[1].Value.Float64Histogram()}
}

// since is the difference from an earlier reading.
func (g gcStats) since(old gcStats) gcStats {
	out := gcStats{cycles: g.cycles - old.cycles}
	for i, c := range g.pauses.Counts {
		if c -= old.pauses.Counts[i]; c == 0 {
			continue
		}
		hi := g.pauses.Buckets[i+1]
		if math.IsInf(hi, 1) {
			hi = g.pauses.Buckets[i]
		}
		if g.pauses.Buckets[i] >= 0.001 {
			out.over1ms += c
		}
		out.longest = time.Duration(hi * float64(time.Second))
	}
	return out
}

// startWakeProbes (LVSD_SCRAPE_PROBE=1) runs, until stop, three timers of
// 50 ms beside the adverts and logs how late each woke: a thread locked
// to its goroutine sleeping in the kernel (clock_nanosleep), once as an
// ordinary thread and once SCHED_FIFO, with the run-queue delay the
// kernel accounts for the thread (schedstat) at each wake-up, which
// separates the OS's part from the Go runtime's (a P to run on after the
// syscall); and a Go runtime timer. It returns a func waiting for them.
func startWakeProbes(t *testing.T, stop time.Time) func() {
	const period = 50 * time.Millisecond
	var done []chan struct{}
	for _, fifo := range []bool{false, true} {
		c := make(chan struct{})
		done = append(done, c)
		go func() {
			defer close(c)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if fifo {
				if err := unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 10}, 0); err != nil {
					t.Logf("probe: SCHED_FIFO: %v", err)
					return
				}
			}
			var late, rq []time.Duration
			var ts unix.Timespec
			_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
			next := unix.TimespecToNsec(ts)
			for time.Now().Before(stop) {
				next += int64(period)
				dl := unix.NsecToTimespec(next)
				r0 := runQueueDelay(t)
				for unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &dl, nil) == unix.EINTR {
				}
				_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
				late = append(late, time.Duration(unix.TimespecToNsec(ts)-next))
				rq = append(rq, runQueueDelay(t)-r0)
			}
			t.Logf("probe: locked thread in clock_nanosleep, SCHED_FIFO %v: late %s; run-queue delay %s", fifo, quantiles(late), quantiles(rq))
		}()
	}
	c := make(chan struct{})
	done = append(done, c)
	go func() {
		defer close(c)
		var late []time.Duration
		for next := time.Now().Add(period); next.Before(stop); next = next.Add(period) {
			time.Sleep(time.Until(next))
			late = append(late, time.Since(next))
		}
		t.Logf("probe: Go timer: late %s", quantiles(late))
	}()
	return func() {
		for _, c := range done {
			<-c
		}
	}
}

// runQueueDelay is the time the calling thread has waited on a run queue
// (the second field of /proc/thread-self/schedstat).
func runQueueDelay(t *testing.T) time.Duration {
	b, err := os.ReadFile("/proc/thread-self/schedstat")
	if err != nil {
		t.Logf("probe: %v", err)
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	v, _ := strconv.ParseInt(f[1], 10, 64)
	return time.Duration(v)
}

func quantiles(d []time.Duration) string {
	if len(d) == 0 {
		return "none"
	}
	slices.Sort(d)
	r := func(x time.Duration) time.Duration { return x.Round(time.Microsecond) }
	return "p50 " + r(d[len(d)/2]).String() + " p99 " + r(d[len(d)*99/100]).String() + " max " + r(d[len(d)-1]).String() + " (" + strconv.Itoa(len(d)) + ")"
}
