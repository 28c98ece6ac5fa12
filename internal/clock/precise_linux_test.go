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
