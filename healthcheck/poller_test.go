package healthcheck

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lvsd/lvsd/internal/clock"
)

// observer collects Observations by real server address.
type observer struct {
	mu  sync.Mutex
	obs map[string][]Observation
}

func (o *observer) observe(ob Observation) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.obs == nil {
		o.obs = map[string][]Observation{}
	}
	o.obs[ob.RS.Addr().String()] = append(o.obs[ob.RS.Addr().String()], ob)
}

func (o *observer) get(rs string) []Observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Observation(nil), o.obs[rs]...)
}

// polledConf: one TCP_CHECK per real server 10.0.0.i, connecting to
// 127.0.0.1:ports[i-1]; retry 1 after 0.1 s, connect_timeout 0.2.
func polledConf(ports ...int) string {
	s := "virtual_server 192.0.2.1 80 {\n  protocol TCP\n  delay_loop 1\n"
	for i, p := range ports {
		s += fmt.Sprintf("  real_server 10.0.0.%d 80 {\n    TCP_CHECK {\n      connect_ip 127.0.0.1\n      connect_port %d\n      connect_timeout 0.2\n      retry 1\n      delay_before_retry 0.1\n      warmup 0\n    }\n  }\n", i+1, p)
	}
	return s + "}\n"
}

// TCP_CHECKs run in the scheduler's own loop, no worker started: up and
// refused settle at once, a blackholed destination is watched by the poller
// until connect_timeout; retries and state changes as with workers.
func TestPolledTCP(t *testing.T) {
	t.Parallel()
	var o observer
	r := startRun(t, polledConf(listen(t, nil), closedPort(t), blackhole(t)), Options{Observe: o.observe})
	downs := map[string]time.Duration{}
	deadline := time.After(3 * time.Second)
	for len(downs) < 2 {
		select {
		case ev := <-r.s.Events():
			if !ev.Up && ev.Reason != "initial state" {
				downs[ev.RS.Addr().String()] = ev.At.Sub(r.t0)
			}
		case <-deadline:
			t.Fatalf("real servers down: %v, want 10.0.0.2 and 10.0.0.3", downs)
		}
	}
	polled := r.s.poll.Load() != nil
	r.stop(t)
	if !polled {
		t.Fatal("Run did not wait in a poller")
	}
	if r.s.workers != 0 {
		t.Errorf("%d workers started for TCP_CHECKs", r.s.workers)
	}
	// refused: down after one retry, delay_before_retry later.
	if d := downs["10.0.0.2"]; d < 100*time.Millisecond || d > 100*time.Millisecond+slack {
		t.Errorf("refused: down after %v, want 0.1 s", d)
	}
	// blackhole: two timeouts of 0.2 s and a delay of 0.1 s.
	if d := downs["10.0.0.3"]; d < 500*time.Millisecond || d > 500*time.Millisecond+slack {
		t.Errorf("blackhole: down after %v, want 0.5 s", d)
	}
	for rs, want := range map[string]string{"10.0.0.1": "", "10.0.0.2": "connect: connection refused", "10.0.0.3": "connect: timeout"} {
		obs := o.get(rs)
		if len(obs) == 0 {
			t.Errorf("%s: no attempt observed", rs)
			continue
		}
		for i, ob := range obs {
			if ob.OK != (want == "") || ob.Reason != want || ob.Type != "TCP_CHECK" || ob.Retry != (i == 1) {
				t.Errorf("%s: attempt %d: %+v, want reason %q", rs, i, ob, want)
			}
			lo, hi := time.Duration(0), 50*time.Millisecond
			if rs == "10.0.0.3" {
				lo, hi = 200*time.Millisecond, 200*time.Millisecond+slack
			}
			if ob.Duration < lo || ob.Duration > hi {
				t.Errorf("%s: attempt %d took %v, want in [%v, %v]", rs, i, ob.Duration, lo, hi)
			}
		}
	}
	if obs := o.get("10.0.0.2"); len(obs) < 2 || obs[1].Start.Sub(obs[0].Start) < 100*time.Millisecond {
		t.Errorf("refused: retry not delay_before_retry after the first attempt: %+v", obs)
	}
}

// A pending connection that completes later is watched in the poller and
// settled by its event: here a listener with a full accept queue drops the
// SYN until the queue is emptied, and the client's retransmission (after
// about 1 s) gets through.
func TestPolledPendingThenUp(t *testing.T) {
	t.Parallel()
	fd, port := fullListener(t)
	var o observer
	r := startRun(t, `virtual_server 192.0.2.1 80 {
  protocol TCP
  delay_loop 10
  real_server 127.0.0.1 `+fmt.Sprint(port)+` {
    TCP_CHECK {
      connect_timeout 5
      warmup 0
    }
  }
}`, Options{Observe: o.observe})
	r.next(t, time.Second)             // initial state: up
	time.Sleep(300 * time.Millisecond) // the attempt is pending
	drain(t, fd)
	deadline := time.Now().Add(4 * time.Second)
	for len(o.get("127.0.0.1")) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	r.stop(t)
	obs := o.get("127.0.0.1")
	if len(obs) != 1 || !obs[0].OK {
		t.Fatalf("attempts %+v, want one success", obs)
	}
	if d := obs[0].Duration; d < 300*time.Millisecond || d > 4*time.Second {
		t.Errorf("the attempt took %v: not settled by a later event", d)
	}
	if r.s.workers != 0 {
		t.Errorf("%d workers started", r.s.workers)
	}
}

// fullListener listens on 127.0.0.1 with its accept queue full: new SYNs are
// dropped until drain.
func fullListener(t *testing.T) (fd, port int) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	port = sa.(*syscall.SockaddrInet4).Port
	for i := 0; ; i++ {
		if i == 8 {
			t.Fatal("could not fill the accept queue")
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 100*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return fd, port
}

// drain accepts and closes what the listener's queue holds.
func drain(t *testing.T, fd int) {
	t.Helper()
	for {
		nfd, _, err := syscall.Accept4(fd, syscall.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		syscall.Close(nfd)
	}
}

// The poller's loop: step runs at once, then at the deadline it returns
// (never before it), and at once on wake from another goroutine.
func TestPoller(t *testing.T) {
	t.Parallel()
	p, err := newPoller()
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	var steps atomic.Int32
	var mu sync.Mutex
	var times []time.Time
	var stop atomic.Bool
	t0 := time.Now()
	done := make(chan error, 1)
	go func() {
		done <- p.run(func(int) { t.Error("event of an unwatched socket") }, func() (time.Time, time.Time, bool) {
			n := steps.Add(1)
			now := time.Now()
			mu.Lock()
			times = append(times, now)
			mu.Unlock()
			switch {
			case stop.Load():
				return now, time.Time{}, true
			case n == 1:
				return now, t0.Add(100 * time.Millisecond), false
			}
			return now, time.Time{}, false // wait for a wake
		})
	}()
	time.Sleep(300 * time.Millisecond)
	if n := steps.Load(); n != 2 {
		t.Fatalf("%d steps after 0.3 s, want 2 (at once, at 0.1 s)", n)
	}
	mu.Lock()
	if d := times[1].Sub(t0); d < 100*time.Millisecond || d > 100*time.Millisecond+slack {
		t.Errorf("second step at %v, want 0.1 s", d)
	}
	mu.Unlock()
	w := time.Now()
	p.wake()
	p.wake() // usually one step for both; two when the loop ran in between
	deadline := time.Now().Add(time.Second)
	for steps.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := steps.Load(); n < 3 {
		t.Fatalf("%d steps after a wake, want 3", n)
	}
	time.Sleep(50 * time.Millisecond)
	if n := steps.Load(); n > 4 {
		t.Fatalf("%d steps after two wakes, want 3 or 4 (the loop spins)", n)
	}
	mu.Lock()
	if d := times[2].Sub(w); d > slack {
		t.Errorf("step %v after the wake", d)
	}
	mu.Unlock()
	stop.Store(true)
	p.wake()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("run did not return")
	}
}

// With another clock than clock.System, Run waits on channels and timers
// (and TCP_CHECKs go to workers): the same decisions.
func TestRunWithoutPoller(t *testing.T) {
	t.Parallel()
	var o observer
	r := startRun(t, polledConf(listen(t, nil), closedPort(t)), Options{Observe: o.observe, Clock: otherClock{}})
	downs := 0
	deadline := time.After(3 * time.Second)
	for downs < 1 {
		select {
		case ev := <-r.s.Events():
			if !ev.Up && ev.Reason != "initial state" {
				if ev.RS.Addr().String() != "10.0.0.2" {
					t.Errorf("down: %+v", ev)
				}
				if d := ev.At.Sub(r.t0); d < 100*time.Millisecond || d > 100*time.Millisecond+slack {
					t.Errorf("refused: down after %v, want 0.1 s", d)
				}
				downs++
			}
		case <-deadline:
			t.Fatal("no real server down")
		}
	}
	polled := r.s.poll.Load() != nil
	r.stop(t)
	if polled || r.s.workers == 0 {
		t.Errorf("polled %v, %d workers: want workers", polled, r.s.workers)
	}
	if obs := o.get("10.0.0.1"); len(obs) == 0 || !obs[0].OK {
		t.Errorf("up: %+v", obs)
	}
}

type otherClock struct{ clock.System }
