package healthcheck

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
)

// sleepProbe takes d and counts how many of its kind run at once.
type sleepProbe struct {
	d       time.Duration
	now     *atomic.Int32 // all probes
	peak    *atomic.Int32
	mine    atomic.Int32 // this checker
	overlap atomic.Bool
	mu      sync.Mutex
	starts  []time.Time
}

func (p *sleepProbe) probe(ctx context.Context) result {
	if p.mine.Add(1) > 1 {
		p.overlap.Store(true)
	}
	n := p.now.Add(1)
	for {
		old := p.peak.Load()
		if n <= old || p.peak.CompareAndSwap(old, n) {
			break
		}
	}
	p.mu.Lock()
	p.starts = append(p.starts, time.Now())
	p.mu.Unlock()
	select {
	case <-time.After(p.d):
	case <-ctx.Done():
	}
	p.now.Add(-1)
	p.mine.Add(-1)
	return pass("slept")
}

// Workers bounds the attempts running at once; an attempt that overruns its
// period is never started twice.
func TestRunWorkersBoundAndOverrun(t *testing.T) {
	t.Parallel()
	var now, peak atomic.Int32
	probes := map[string]*sleepProbe{}
	var b strings.Builder
	b.WriteString("virtual_server 192.0.2.1 80 {\nprotocol TCP\n  delay_loop 0.1\n")
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&b, "  real_server 10.0.0.%d 80 {\n    TCP_CHECK {\n      warmup 0\n    }\n  }\n", i+1)
	}
	b.WriteString("}\n")
	mk := func(c *conf.Checker, rs *conf.RealServer, g *conf.Global) (prober, error) {
		p := &sleepProbe{d: 250 * time.Millisecond, now: &now, peak: &peak}
		probes[rs.Addr.String()] = p
		return p, nil
	}
	s := newScheduler(mustParse(t, b.String()), Options{Workers: 4, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, mk)
	ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
	defer cancel()
	go func() {
		for range s.Events() {
		}
	}()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p != 4 {
		t.Fatalf("%d attempts ran at once, want Workers = 4", p)
	}
	total := 0
	for addr, p := range probes {
		if p.overlap.Load() {
			t.Errorf("%s: an attempt started while the previous one ran", addr)
		}
		total += len(p.starts)
	}
	// 4 workers × 1.2 s / 0.25 s ≈ 19 attempts.
	if total < 12 || total > 24 {
		t.Errorf("%d attempts in 1.2 s with 4 workers busy 0.25 s each", total)
	}
}

// Checks stuck on an unanswering server do not delay the others.
func TestRunSlowChecksDoNotDelayOthers(t *testing.T) {
	t.Parallel()
	slow, fast := blackhole(t), listen(t, nil)
	var b strings.Builder
	b.WriteString("virtual_server 192.0.2.1 80 {\nprotocol TCP\n  delay_loop 0.5\n")
	for i := 0; i < 150; i++ {
		port, timeout := fast, "0.4"
		if i%3 == 0 {
			port = slow
		}
		fmt.Fprintf(&b, "  real_server 10.0.%d.%d 80 {\n    TCP_CHECK {\n      connect_ip 127.0.0.1\n      connect_port %d\n      connect_timeout %s\n      retry 0\n    }\n  }\n",
			i/250, i%250+1, port, timeout)
	}
	b.WriteString("}\n")
	var mu sync.Mutex
	worst := map[bool]time.Duration{}
	count := map[bool]int{}
	stop := make(chan struct{})
	r := startRun(t, b.String(), Options{Observe: func(o Observation) {
		select {
		case <-stop:
			return
		default:
		}
		mu.Lock()
		defer mu.Unlock()
		worst[o.OK] = max(worst[o.OK], o.Start.Sub(o.Due))
		count[o.OK]++
	}})
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	r.stop(t)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("fast: %d attempts, latest %v; slow (timing out): %d attempts, latest %v", count[true], worst[true], count[false], worst[false])
	if count[true] < 100*2 || count[false] < 50 { // 0.5 s periods, up to 0.5 s warmup
		t.Fatalf("too few attempts: %d fast, %d slow", count[true], count[false])
	}
	// Blocked behind a slow check, a fast one would start a whole
	// connect_timeout (400 ms) late; 150 ms leaves room for a loaded CI.
	if worst[true] > 150*time.Millisecond {
		t.Fatalf("a fast check started %v late behind the slow ones", worst[true])
	}
}

// Reloads and snapshots while checks run: no race, and the final state is
// the last configuration's.
func TestRunApplyWhileRunning(t *testing.T) {
	t.Parallel()
	up, down := listen(t, nil), closedPort(t)
	cfg := func(n, port int, delay string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "virtual_server 192.0.2.1 80 {\nprotocol TCP\n  delay_loop %s\n", delay)
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "  real_server 10.0.0.%d 80 {\n    TCP_CHECK {\n      connect_ip 127.0.0.1\n      connect_port %d\n      connect_timeout 0.2\n      retry 0\n      warmup 0.05\n    }\n  }\n", i+1, port)
		}
		b.WriteString("}\n")
		return b.String()
	}
	r := startRun(t, cfg(30, up, "0.05"), Options{})
	var mu sync.Mutex
	last := map[netip.AddrPort]Event{}
	go func() {
		for ev := range r.s.Events() {
			mu.Lock()
			last[ev.RS] = ev
			mu.Unlock()
		}
	}()
	for i := 0; i < 40; i++ {
		switch i % 4 {
		case 0:
			r.s.Apply(mustParse(t, cfg(30, up, "0.05")))
		case 1:
			r.s.Apply(mustParse(t, cfg(10, up, "0.07")))
		case 2:
			r.s.Apply(mustParse(t, cfg(40, down, "0.05")))
		case 3:
			r.s.Apply(mustParse(t, cfg(20, up, "0.03")))
		}
		r.s.Snapshot()
		time.Sleep(10 * time.Millisecond)
	}
	r.s.Apply(mustParse(t, cfg(25, down, "0.05")))
	time.Sleep(500 * time.Millisecond)
	st := r.s.Snapshot()
	if len(st) != 25 {
		t.Fatalf("%d real servers, want 25", len(st))
	}
	for _, s := range st {
		if s.Up {
			t.Fatalf("%v up against a closed port: %+v", s.RS, s)
		}
	}
	r.stop(t)
	mu.Lock()
	defer mu.Unlock()
	for _, s := range st {
		if ev, ok := last[s.RS]; !ok || ev.Up {
			t.Fatalf("%v: last event %+v, want down", s.RS, ev)
		}
	}
}
