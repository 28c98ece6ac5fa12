package clock

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestPrecise(t *testing.T) {
	var c Precise
	// Stop before expiry: never fires.
	var fired atomic.Int32
	tm := c.AfterFunc(20*time.Millisecond, func() { fired.Add(1) })
	if !tm.Stop() || tm.Stop() {
		t.Fatal("Stop should report true once")
	}
	time.Sleep(40 * time.Millisecond)
	if fired.Load() != 0 {
		t.Fatal("a stopped timer fired")
	}
	// Lateness of idle-process wakeups: timerfd wakes epoll at its
	// deadline; Go's own timers may be up to 1ms late here.
	var late []time.Duration
	for range 20 {
		start := time.Now()
		ch := make(chan time.Duration, 1)
		tm := c.AfterFunc(5*time.Millisecond, func() { ch <- time.Since(start) - 5*time.Millisecond })
		select {
		case d := <-ch:
			late = append(late, d)
		case <-time.After(time.Second):
			t.Fatal("timer did not fire")
		}
		if tm.Stop() {
			t.Fatal("Stop after firing reported true")
		}
	}
	slices.Sort(late)
	t.Logf("timerfd lateness: median %v, max %v", late[len(late)/2], late[len(late)-1])
	if late[0] < 0 {
		t.Fatalf("fired early by %v", -late[0])
	}
	if late[len(late)/2] > 500*time.Microsecond {
		t.Fatalf("median lateness %v", late[len(late)/2])
	}
	// Zero and negative durations fire at once.
	done := make(chan struct{})
	c.AfterFunc(0, func() { close(done) })
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("zero timer did not fire")
	}
}

// Many timers share the one timerfd: each fires once, not before its
// deadline, a stopped one never, and timers set from a firing one work.
func TestPreciseShared(t *testing.T) {
	var c Precise
	const n = 300
	start := time.Now()
	type fire struct {
		i    int
		late time.Duration
	}
	ch := make(chan fire, 2*n)
	stopped := map[int]bool{}
	var timers []Timer
	for i := range n {
		d := time.Duration(n-i) * 100 * time.Microsecond // added latest first
		timers = append(timers, c.AfterFunc(d, func() { ch <- fire{i, time.Since(start) - d} }))
	}
	for i := 0; i < n; i += 7 {
		if !timers[i].Stop() {
			t.Fatalf("timer %d: Stop of a pending timer reported false", i)
		}
		stopped[i] = true
	}
	chained := make(chan time.Duration, 1)
	c.AfterFunc(time.Millisecond, func() {
		s := time.Now()
		c.AfterFunc(2*time.Millisecond, func() { chained <- time.Since(s) })
	})
	seen := map[int]bool{}
	deadline := time.After(5 * time.Second)
	for len(seen) < n-len(stopped) {
		select {
		case f := <-ch:
			if stopped[f.i] || seen[f.i] {
				t.Fatalf("timer %d fired twice or after Stop", f.i)
			}
			if f.late < 0 {
				t.Fatalf("timer %d fired %v early", f.i, -f.late)
			}
			seen[f.i] = true
		case <-deadline:
			t.Fatalf("%d of %d timers fired", len(seen), n-len(stopped))
		}
	}
	select {
	case d := <-chained:
		if d < 2*time.Millisecond {
			t.Fatalf("chained timer fired after %v", d)
		}
	case <-deadline:
		t.Fatal("a timer set from a firing timer did not fire")
	}
	time.Sleep(50 * time.Millisecond)
	select {
	case f := <-ch:
		t.Fatalf("timer %d fired late or twice", f.i)
	default:
	}
	for i := range timers {
		if timers[i].Stop() {
			t.Fatalf("timer %d: Stop after firing or stopping reported true", i)
		}
	}
}
