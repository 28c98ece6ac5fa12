package bgp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/internal/clock"
)

// manualClock moves only with Advance, which fires the due timers.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*manualTimer]bool
}

type manualTimer struct {
	c  *manualClock
	at time.Time
	f  func()
}

func (c *manualClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *manualClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{c: c, at: c.now.Add(d), f: f}
	c.timers[t] = true
	return t
}

func (t *manualTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.c.timers[t]
	delete(t.c.timers, t)
	return was
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	for t := range c.timers {
		if !t.at.After(c.now) {
			due = append(due, t.f)
			delete(c.timers, t)
		}
	}
	c.mu.Unlock()
	for _, f := range due {
		f()
	}
}

// fakeSpeaker records the operations as text.
type fakeSpeaker struct{ h *harness }

func (f *fakeSpeaker) rec(format string, a ...any) error {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	f.h.ops = append(f.h.ops, fmt.Sprintf(format, a...))
	return nil
}

// Start fails while h.fail > 0.
func (f *fakeSpeaker) Start(g Global) error {
	f.h.mu.Lock()
	fail := f.h.fail > 0
	if fail {
		f.h.fail--
	}
	f.h.mu.Unlock()
	if fail {
		f.rec("start failed")
		return errors.New("address in use")
	}
	return f.rec("start %s as%d :%d", g.RouterID, g.LocalAS, g.ListenPort)
}
func (f *fakeSpeaker) Stop() error { return f.rec("stop") }
func (f *fakeSpeaker) AddPeer(n conf.BGPNeighbor) error {
	return f.rec("peer+ %s as%d hold %s", n.Addr, n.RemoteAS, n.HoldTime)
}
func (f *fakeSpeaker) DeletePeer(a netip.Addr) error { return f.rec("peer- %s", a) }
func (f *fakeSpeaker) Announce(r Route) error {
	return f.rec("announce %s %v med %d prepend %d", r.Prefix, communityStrings(r.Communities), r.MED, r.Prepend)
}
func (f *fakeSpeaker) Withdraw(p netip.Prefix) error { return f.rec("withdraw %s", p) }
func (f *fakeSpeaker) Peers() []PeerState            { return nil }

type harness struct {
	t      *testing.T
	svc    *Service
	clk    *manualClock
	mu     sync.Mutex
	ops    []string
	fail   int
	seen   int
	cancel func()
	done   chan struct{}
}

func newHarness(t *testing.T, cfg *conf.Config, failStarts int) *harness {
	h := &harness{t: t, clk: &manualClock{now: t0, timers: map[*manualTimer]bool{}}, fail: failStarts, done: make(chan struct{})}
	h.svc = New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: h.clk,
		NewSpeaker: func(*slog.Logger) Speaker { return &fakeSpeaker{h} }})
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.svc.Run(ctx); close(h.done) }()
	<-h.svc.Ready()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	h.cancel()
	<-h.done
}

// expect waits until the speaker has seen the operations want (in any
// order within the call), and no other.
func (h *harness) expect(want ...string) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.mu.Lock()
		got := slices.Clone(h.ops[h.seen:])
		h.mu.Unlock()
		if len(got) >= len(want) {
			slices.Sort(got)
			w := slices.Clone(want)
			slices.Sort(w)
			if !slices.Equal(got, w) {
				h.t.Fatalf("speaker operations:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(w, "\n  "))
			}
			h.seen += len(got)
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("speaker operations so far:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		time.Sleep(time.Millisecond)
	}
}

// quiet checks that nothing more reaches the speaker for a while.
func (h *harness) quiet() {
	h.t.Helper()
	time.Sleep(50 * time.Millisecond)
	h.expect()
}

// TestServiceHealth: the speaker starts with the neighbors; routes follow
// quorum and VRRP; the counters and the status say what is announced.
func TestServiceHealth(t *testing.T) {
	h := newHarness(t, parse(t, testConf), 0)
	h.expect("start 192.0.2.11 as65001 :179", "peer+ 192.0.2.1 as65000 hold 1m30s")
	h.svc.SetQuorum(allUp)
	h.expect("announce 203.0.113.10/32 [65001:100] med 10 prepend 0", "announce 2001:db8::10/128 [65001:7] med 30 prepend 0")
	h.svc.SetMaster("VI_1", true)
	h.expect("announce 203.0.113.20/32 [65001:100] med 10 prepend 2")
	h.svc.SetQuorum(with(allUp, "TCP/203.0.113.10:80", false))
	h.expect("withdraw 203.0.113.10/32")
	h.svc.SetQuorum(with(allUp, "TCP/203.0.113.10:80", false)) // the same again: nothing
	h.quiet()
	st := h.svc.Status()
	if !st.Running || st.LocalAS != 65001 || len(st.Announced) != 2 || st.Announced[0].Prefix != vip2 ||
		st.Counters.Announcements != 3 || st.Counters.Withdrawals != 1 || st.Counters.Starts != 1 {
		t.Fatalf("status %+v", st)
	}
	h.stop()
	h.expect("withdraw 203.0.113.20/32", "withdraw 2001:db8::10/128", "stop")
}

// TestServiceReload: a reload touches only the neighbors and routes that
// changed; a new router_id restarts the speaker.
func TestServiceReload(t *testing.T) {
	two := strings.Replace(testConf, "  announce {", "  neighbor 192.0.2.2 {\n    remote_as 65002\n  }\n  announce {", 1)
	h := newHarness(t, parse(t, two), 0)
	h.expect("start 192.0.2.11 as65001 :179", "peer+ 192.0.2.1 as65000 hold 1m30s", "peer+ 192.0.2.2 as65002 hold 1m30s")
	h.svc.SetQuorum(allUp)
	h.expect("announce 203.0.113.10/32 [65001:100] med 10 prepend 0", "announce 2001:db8::10/128 [65001:7] med 30 prepend 0")
	// The same file again: nothing.
	h.svc.Apply(parse(t, two))
	h.quiet()
	// 192.0.2.2's hold time changes, a neighbor is added, a MED changes.
	next := strings.Replace(two, "remote_as 65002\n", "remote_as 65002\n    hold_time 9\n", 1)
	next = strings.Replace(next, "  announce {", "  neighbor 192.0.2.3 {\n    remote_as 65003\n  }\n  announce {", 1)
	next = strings.Replace(next, "med 30", "med 31", 1)
	h.svc.Apply(parse(t, next))
	h.expect("peer- 192.0.2.2", "peer+ 192.0.2.2 as65002 hold 9s", "peer+ 192.0.2.3 as65003 hold 1m30s",
		"announce 2001:db8::10/128 [65001:7] med 31 prepend 0")
	// A neighbor removed.
	h.svc.Apply(parse(t, strings.Replace(next, "  neighbor 192.0.2.3 {\n    remote_as 65003\n  }\n", "", 1)))
	h.expect("peer- 192.0.2.3")
	// A new router_id: everything again.
	h.svc.Apply(parse(t, strings.Replace(next, "router_id 192.0.2.11", "router_id 192.0.2.12", 1)))
	h.expect("withdraw 203.0.113.10/32", "withdraw 2001:db8::10/128", "stop",
		"start 192.0.2.12 as65001 :179", "peer+ 192.0.2.1 as65000 hold 1m30s", "peer+ 192.0.2.2 as65002 hold 9s", "peer+ 192.0.2.3 as65003 hold 1m30s",
		"announce 203.0.113.10/32 [65001:100] med 10 prepend 0", "announce 2001:db8::10/128 [65001:7] med 31 prepend 0")
	// The bgp block removed: the speaker stops.
	noBGP := next[:strings.Index(next, "bgp {")]
	h.svc.Apply(parse(t, noBGP))
	h.expect("withdraw 203.0.113.10/32", "withdraw 2001:db8::10/128", "stop")
	if err := h.svc.SetDrain(true); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("drain without bgp: %v", err)
	}
}

// TestServiceGracefulShutdown: Shutdown re-announces every route with
// GRACEFUL_SHUTDOWN, waits drain_time on the injected clock, withdraws,
// and only then returns (the caller removes IPVS after it); the sessions
// stay up until Run ends.
func TestServiceGracefulShutdown(t *testing.T) {
	h := newHarness(t, parse(t, testConf), 0)
	h.expect("start 192.0.2.11 as65001 :179", "peer+ 192.0.2.1 as65000 hold 1m30s")
	h.svc.SetQuorum(allUp)
	h.expect("announce 203.0.113.10/32 [65001:100] med 10 prepend 0", "announce 2001:db8::10/128 [65001:7] med 30 prepend 0")
	returned := make(chan error, 1)
	go func() { returned <- h.svc.Shutdown(context.Background()) }()
	h.expect("announce 203.0.113.10/32 [65001:100 65535:0] med 10 prepend 0", "announce 2001:db8::10/128 [65001:7 65535:0] med 30 prepend 0")
	if st := h.svc.Status(); st.Draining != "shutdown" || !st.DrainEnds.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("status while draining: %+v", st)
	}
	// Health changes during the drain still withdraw.
	h.svc.SetQuorum(with(allUp, "TCP/[2001:db8::10]:80", false))
	h.expect("withdraw 2001:db8::10/128")
	h.clk.Advance(4900 * time.Millisecond)
	h.quiet()
	select {
	case err := <-returned:
		t.Fatalf("Shutdown returned before drain_time: %v", err)
	default:
	}
	h.clk.Advance(100 * time.Millisecond)
	h.expect("withdraw 203.0.113.10/32")
	select {
	case err := <-returned:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the withdrawal")
	}
	// A VS coming back after the shutdown's drain is not announced.
	h.svc.SetQuorum(allUp)
	h.quiet()
	h.stop()
	h.expect("stop")
}

// TestServiceOperatorDrain: lvsd ctl drain, then enable before drain_time
// and after it.
func TestServiceOperatorDrain(t *testing.T) {
	h := newHarness(t, parse(t, testConf), 0)
	h.expect("start 192.0.2.11 as65001 :179", "peer+ 192.0.2.1 as65000 hold 1m30s")
	h.svc.SetQuorum(with(allUp, "TCP/[2001:db8::10]:80", false))
	h.expect("announce 203.0.113.10/32 [65001:100] med 10 prepend 0")
	h.svc.SetDrain(true)
	h.expect("announce 203.0.113.10/32 [65001:100 65535:0] med 10 prepend 0")
	h.svc.SetDrain(false)
	h.expect("announce 203.0.113.10/32 [65001:100] med 10 prepend 0")
	h.svc.SetDrain(true)
	h.expect("announce 203.0.113.10/32 [65001:100 65535:0] med 10 prepend 0")
	h.clk.Advance(5 * time.Second)
	h.expect("withdraw 203.0.113.10/32")
	h.svc.SetDrain(false)
	h.expect("announce 203.0.113.10/32 [65001:100] med 10 prepend 0")
	// Shutdown with nothing announced returns at once.
	h.svc.SetQuorum(map[string]bool{})
	h.expect("withdraw 203.0.113.10/32")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.svc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestServiceRetry: a speaker that cannot start is retried after
// RetryInterval, on the clock.
func TestServiceRetry(t *testing.T) {
	h := newHarness(t, parse(t, testConf), 1)
	h.expect("start failed")
	h.clk.Advance(4 * time.Second)
	h.quiet()
	h.clk.Advance(time.Second)
	h.expect("start 192.0.2.11 as65001 :179", "peer+ 192.0.2.1 as65000 hold 1m30s")
	if st := h.svc.Status(); st.Counters.Errors != 1 || st.Counters.Starts != 1 {
		t.Fatalf("counters %+v", st.Counters)
	}
}
