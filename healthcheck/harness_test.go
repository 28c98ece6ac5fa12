package healthcheck

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvsd/lvsd/internal/clock"

	"github.com/lvsd/lvsd/conf"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// manualClock only moves when the harness moves it.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) clock.Timer { return stopped{} }

type stopped struct{}

func (stopped) Stop() bool { return false }

// fakeProbe answers from a script of outcomes; each attempt takes dur.
type fakeProbe struct {
	mu      sync.Mutex
	outcome func(n int, at time.Time) result // n counts attempts from 0
	n       int
	dur     time.Duration
	starts  []time.Time
}

func (p *fakeProbe) probe(context.Context) result { panic("harness runs fakeProbe itself") }

// harness drives a Scheduler synchronously: no goroutines, no real time.
type harness struct {
	t      *testing.T
	s      *Scheduler
	clk    *manualClock
	probes map[string]*fakeProbe // by checker name
	events []Event
	alerts []Alert
}

// outcomes by checker name (checkerName: "TCP_CHECK 10.0.0.1:80").
func newHarness(t *testing.T, cfg *conf.Config, probes map[string]*fakeProbe) *harness {
	t.Helper()
	h := &harness{t: t, clk: &manualClock{now: epoch}, probes: probes}
	mk := func(c *conf.Checker, rs *conf.RealServer, g *conf.Global) (prober, error) {
		name := checkerName(c, rs)
		p, ok := h.probes[name]
		if !ok {
			t.Fatalf("no fake probe for %s", name)
		}
		return p, nil
	}
	h.s = newScheduler(cfg, Options{Clock: h.clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Alert: func(a Alert) { h.alerts = append(h.alerts, a) }}, mk)
	h.s.randN = func(n int64) int64 { return 0 }
	return h
}

func (h *harness) start() {
	h.s.mu.Lock()
	h.s.start(context.Background(), h.clk.Now())
	h.s.mu.Unlock()
	h.collect()
}

func (h *harness) collect() {
	h.s.evMu.Lock()
	h.events = append(h.events, h.s.evq...)
	h.s.evq = nil
	h.s.evMu.Unlock()
}

// runUntil runs every attempt due before end, one at a time.
func (h *harness) runUntil(end time.Time) {
	for i := 0; i < 100000; i++ {
		h.s.mu.Lock()
		next, ok := h.s.nextDue()
		if !ok || next.After(end) {
			h.s.mu.Unlock()
			h.clk.set(end)
			h.collect()
			return
		}
		if next.After(h.clk.Now()) {
			h.clk.set(next)
		}
		h.s.popDue(h.clk.Now())
		for {
			c, ok := h.s.takeReady()
			if !ok {
				break
			}
			fp := c.p.(*fakeProbe)
			start := h.clk.Now()
			fp.starts = append(fp.starts, start)
			res := fp.outcome(fp.n, start)
			fp.n++
			h.clk.set(start.Add(fp.dur))
			h.s.complete(completion{c: c, res: res, start: start, end: h.clk.Now()})
		}
		h.s.mu.Unlock()
		h.collect()
	}
	h.t.Fatal("runUntil: too many steps")
}

func at(d time.Duration) time.Time { return epoch.Add(d) }

func always(ok bool) func(int, time.Time) result {
	return func(int, time.Time) result {
		if ok {
			return pass("ok")
		}
		return fail("refused")
	}
}

// upFrom fails before t and succeeds from t on.
func upFrom(t time.Time) func(int, time.Time) result {
	return func(_ int, now time.Time) result {
		if now.Before(t) {
			return fail("refused")
		}
		return pass("ok")
	}
}

// downFrom succeeds before t and fails from t on.
func downFrom(t time.Time) func(int, time.Time) result {
	return func(_ int, now time.Time) result {
		if now.Before(t) {
			return pass("ok")
		}
		return fail("refused")
	}
}

func mustParse(t testing.TB, text string) *conf.Config {
	t.Helper()
	cfg, diags := conf.Parse("test.conf", text, conf.Options{ConfigID: "test"})
	for _, d := range diags {
		if d.Level >= conf.Error {
			t.Fatalf("config: %v", d)
		}
	}
	return cfg
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func durs(ts []time.Time) []time.Duration {
	var out []time.Duration
	for _, t := range ts {
		out = append(out, t.Sub(epoch))
	}
	return out
}

func sameDurs(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func eventsString(evs []Event) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(e.At.Sub(epoch).String())
		b.WriteString(" ")
		b.WriteString(e.RS.String())
		if e.Up {
			b.WriteString(" up")
		} else {
			b.WriteString(" down")
		}
		if e.Weight >= 0 {
			b.WriteString(" w=")
			b.WriteString(strconv.Itoa(e.Weight))
		}
		b.WriteString("; ")
	}
	return b.String()
}
