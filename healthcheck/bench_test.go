package healthcheck

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
)

// benchScheduler is a scheduler of n TCP_CHECKs (delay_loop 1) with probes
// that never run: the benchmarks drive its heap and bookkeeping by hand.
func benchScheduler(b *testing.B, n int) (*Scheduler, *manualClock) {
	b.Helper()
	var sb strings.Builder
	sb.WriteString("virtual_server 192.0.2.1 80 {\nprotocol TCP\n  delay_loop 1\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "  real_server 10.%d.%d.%d 80 {\n    TCP_CHECK {\n      warmup 1\n    }\n  }\n", i>>16&255, i>>8&255, i&255)
	}
	sb.WriteString("}\n")
	clk := &manualClock{now: epoch}
	p := &fakeProbe{}
	mk := func(*conf.Checker, *conf.RealServer, *conf.Global) (prober, error) { return p, nil }
	s := newScheduler(mustParse(b, sb.String()), Options{Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Workers: n}, mk)
	s.mu.Lock()
	s.start(context.Background(), clk.Now())
	s.mu.Unlock()
	return s, clk
}

// BenchmarkSchedulerCycle10000 is one period of 10,000 checkers: each is
// popped from the heap when due, handed out and completed (which pushes it
// back), in due order as the run loop does.
func BenchmarkSchedulerCycle10000(b *testing.B) {
	const n = 10000
	s, clk := benchScheduler(b, n)
	now := clk.Now()
	ok := pass("")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now = now.Add(time.Second)
		s.mu.Lock()
		s.popDue(now)
		for {
			c, ok2 := s.takeReady()
			if !ok2 {
				break
			}
			s.complete(completion{c: c, res: ok, start: now, end: now})
		}
		s.mu.Unlock()
		s.evMu.Lock()
		s.evq = s.evq[:0]
		s.evMu.Unlock()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/check")
}

// BenchmarkPendingHeap10000 pushes 10,000 pending connections (deadlines in
// a scrambled order), removes every other one (a connection that settled)
// and pops the rest by deadline (expired), as runPolled does.
func BenchmarkPendingHeap10000(b *testing.B) {
	const n = 10000
	s := &Scheduler{base: epoch}
	pcs := make([]*pendingConn, n)
	for i := range pcs {
		pcs[i] = &pendingConn{fd: i, deadline: epoch.Add(time.Duration(i*7919%n) * time.Millisecond)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, pc := range pcs {
			pendPush(s, pc)
		}
		for j := 0; j < n; j += 2 {
			pendRemove(s, pcs[j])
		}
		last := time.Time{}
		for pendLen(s) > 0 {
			pc := pendPop(s)
			if pc.deadline.Before(last) {
				b.Fatal("pending heap out of order")
			}
			last = pc.deadline
		}
	}
}

func pendPush(s *Scheduler, pc *pendingConn) {
	s.pendq.push(pc, &pc.idx, int64(pc.deadline.Sub(s.base)), 0)
}
func pendRemove(s *Scheduler, pc *pendingConn) { s.pendq.remove(pc.idx) }
func pendPop(s *Scheduler) *pendingConn        { return s.pendq.pop() }
func pendLen(s *Scheduler) int                 { return len(s.pendq) }
