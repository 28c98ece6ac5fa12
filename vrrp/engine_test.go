package vrrp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/vrrp/advert"
)

// fakeKernel records what the Engine does, with the fake clock's time.
type fakeKernel struct {
	mu     sync.Mutex
	clk    *fakeClock
	log    []string
	addrs  map[string]bool
	routes map[string]bool
	// routeList: every route added, for State
	routeList []Route
	// For State: eth0 down, and its addresses other than the VIPs
	// (the primary first).
	linkDown bool
	own      []netip.Prefix
}

func (k *fakeKernel) rec(format string, a ...any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.log = append(k.log, fmt.Sprintf(format, a...))
}

func (k *fakeKernel) take() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := k.log
	k.log = nil
	return out
}

type fakeConn struct {
	k   *fakeKernel
	ifn string
}

func (c *fakeConn) SendAdvert(b []byte, src, dst netip.Addr) error {
	a, drop := advert.Decode(b, advert.PacketInfo{Src: src, Dst: dst, TTL: 255})
	if drop != advert.DropNone {
		return fmt.Errorf("undecodable advert: %v", drop)
	}
	var addrs []string
	for _, x := range a.Addrs {
		addrs = append(addrs, x.String())
	}
	c.k.rec("advert vrid=%d prio=%d addrs=%s", a.VRID, a.Priority, strings.Join(addrs, ","))
	return nil
}
func (c *fakeConn) Serve(ctx context.Context, _ PacketHandler) error {
	<-ctx.Done()
	return nil
}
func (c *fakeConn) Close() error { return nil }

type fakeGARP struct{ k *fakeKernel }

func (g fakeGARP) SendGARP(ip netip.Addr) error { g.k.rec("garp %v", ip); return nil }
func (g fakeGARP) Close() error                 { return nil }

type fakeAddrs struct{ k *fakeKernel }

func (a fakeAddrs) AddAddr(v VIP) error {
	a.k.mu.Lock()
	a.k.addrs[v.Addr.String()] = true
	a.k.mu.Unlock()
	a.k.rec("add %v", v.Addr)
	return nil
}
func (a fakeAddrs) DelAddr(v VIP) error {
	a.k.mu.Lock()
	delete(a.k.addrs, v.Addr.String())
	a.k.mu.Unlock()
	a.k.rec("del %v", v.Addr)
	return nil
}

type fakeRoutes struct{ k *fakeKernel }

func (f fakeRoutes) AddRoute(r Route) error {
	f.k.mu.Lock()
	if f.k.routes == nil {
		f.k.routes = map[string]bool{}
	}
	f.k.routes[r.String()] = true
	f.k.routeList = append(f.k.routeList, r)
	f.k.mu.Unlock()
	f.k.rec("route add %v", r)
	return nil
}
func (f fakeRoutes) DelRoute(r Route) error {
	f.k.mu.Lock()
	delete(f.k.routes, r.String())
	f.k.mu.Unlock()
	f.k.rec("route del %v", r)
	return nil
}

func (f fakeRoutes) AddRule(r Rule) error { f.k.rec("rule add %v", r.String()); return nil }
func (f fakeRoutes) DelRule(r Rule) error { f.k.rec("rule del %v", r.String()); return nil }

func (k *fakeKernel) Listen(cfg ConnConfig) (PacketConn, error) {
	return &fakeConn{k: k, ifn: cfg.Interface}, nil
}
func (k *fakeKernel) GARP(string) (GARPConn, error) { return fakeGARP{k}, nil }
func (k *fakeKernel) Addrs(string) AddrManager      { return fakeAddrs{k} }
func (k *fakeKernel) Routes() RouteManager          { return fakeRoutes{k} }
func (k *fakeKernel) LinkUp(string) (bool, error)   { return true, nil }
func (k *fakeKernel) PrimaryIPv4(string) (netip.Addr, error) {
	return netip.MustParseAddr("192.0.2.1"), nil
}
func (k *fakeKernel) PrimaryIPv6(string) (netip.Addr, error) {
	return netip.MustParseAddr("fe80::1"), nil
}
func (k *fakeKernel) WatchLink(_ context.Context, _ string, fn func(bool), _ func()) error {
	fn(true)
	return nil
}
func (k *fakeKernel) WatchAddrDeleted(context.Context, func(netip.Prefix), func()) error { return nil }

// State lists the fake's addresses on eth0 (up) and its routes.
func (k *fakeKernel) State(routes bool) (*KernelState, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ks := &KernelState{At: time.Now(), Links: map[string]LinkState{"eth0": {Index: 2, Up: !k.linkDown}}, Addrs: map[string][]netip.Prefix{}}
	ks.Addrs["eth0"] = append(ks.Addrs["eth0"], k.own...)
	for a := range k.addrs {
		ks.Addrs["eth0"] = append(ks.Addrs["eth0"], netip.MustParsePrefix(a))
	}
	if routes {
		ks.Routes = map[routeKey]bool{}
		for _, r := range k.routeList {
			if k.routes[r.String()] {
				ks.Routes[r.key()] = true
			}
		}
	}
	return ks, nil
}

type engineHarness struct {
	t       *testing.T
	clk     *fakeClock
	k       *fakeKernel
	e       *Engine
	notes   chan Notification
	done    chan error
	cancel  context.CancelFunc
	stopped bool
}

func confText(t *testing.T, text string) *conf.Config {
	t.Helper()
	c, diags := conf.Parse("test.conf", text, conf.Options{})
	if conf.MaxLevel(diags) >= conf.Error {
		t.Fatalf("config: %v", diags)
	}
	return c
}

func newEngineHarness(t *testing.T, text string, exec func(ScriptConfig, *conf.Global) ScriptExec) *engineHarness {
	t.Helper()
	return newEngineHarnessOpts(t, text, exec, nil)
}

// newEngineHarnessOpts is newEngineHarness with mod applied to the options.
func newEngineHarnessOpts(t *testing.T, text string, exec func(ScriptConfig, *conf.Global) ScriptExec, mod func(*EngineOptions)) *engineHarness {
	t.Helper()
	h := &engineHarness{t: t, clk: newFakeClock(), notes: make(chan Notification, 256), done: make(chan error, 1)}
	h.k = &fakeKernel{clk: h.clk, addrs: map[string]bool{}}
	opts := EngineOptions{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Sink:   SinkFunc(func(n Notification) { h.notes <- n }),
		Kernel: h.k, Clock: h.clk, ScriptExec: exec,
		CheckInterval: -1, // the tests run the safety net's passes themselves (checkOnce)
	}
	if mod != nil {
		mod(&opts)
	}
	e, _, err := NewEngine(confText(t, text), opts)
	if err != nil {
		t.Fatal(err)
	}
	h.e = e
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- e.Run(ctx) }()
	t.Cleanup(h.stop)
	waitFor(t, 2*time.Second, "runners", func() bool { return len(e.Status()) > 0 })
	e.flush()
	return h
}

// stop stops the engine (daemon stop) and waits for Run to return; a
// second call is a no-op.
func (h *engineHarness) stop() {
	if h.stopped {
		return
	}
	h.stopped = true
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(5 * time.Second):
		h.t.Error("engine did not stop")
	}
}

func (h *engineHarness) advance(d time.Duration) {
	end := h.clk.Now().Add(d)
	for range 100000 {
		next, ok := h.clk.Next()
		if !ok || next.After(end) {
			break
		}
		h.clk.Advance(next.Sub(h.clk.Now()))
		h.e.flush()
	}
	h.clk.Advance(end.Sub(h.clk.Now()))
	h.e.flush()
}

func (h *engineHarness) states() map[string]string {
	out := map[string]string{}
	for _, s := range h.e.Status() {
		out[s.Name] = fmt.Sprintf("%v/%d", s.State, s.Priority)
	}
	return out
}

func (h *engineHarness) drainNotes() []string {
	var out []string
	for {
		select {
		case n := <-h.notes:
			name := n.Instance
			if name == "" {
				name = "group " + n.Group
			}
			out = append(out, fmt.Sprintf("%s %v->%v", name, n.From, n.To))
		default:
			return out
		}
	}
}

const engineConf1 = `
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  priority 100
  advert_int 1
  garp_master_delay 0
  virtual_ipaddress { 192.0.2.100/24 }
}
vrrp_instance VI_2 {
  interface eth0
  virtual_router_id 2
  priority 100
  advert_int 1
  garp_master_delay 0
  virtual_ipaddress { 192.0.2.102/24 }
}
`

const engineConf2 = `
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  priority 100
  advert_int 1
  garp_master_delay 0
  virtual_ipaddress {
    192.0.2.100/24
    192.0.2.101/24
  }
}
vrrp_instance VI_3 {
  interface eth0
  virtual_router_id 3
  priority 100
  advert_int 1
  virtual_ipaddress { 192.0.2.103/24 }
}
`

// Apply keeps VI_1 (MASTER, one more VIP: added and announced, the old one
// untouched, no transition), stops VI_2 (priority 0, VIP released) and
// starts VI_3.
func TestEngineApply(t *testing.T) {
	h := newEngineHarness(t, engineConf1, nil)
	h.advance(5 * time.Second)
	if s := h.states(); s["VI_1"] != "MASTER/100" || s["VI_2"] != "MASTER/100" {
		t.Fatalf("states %v", s)
	}
	h.drainNotes()
	h.k.take()
	if err := h.e.Apply(confText(t, engineConf2)); err != nil {
		t.Fatal(err)
	}
	h.e.flush()
	got := h.k.take()
	want := []string{
		// VI_2 stops first
		"advert vrid=2 prio=0 addrs=192.0.2.102", "del 192.0.2.102/24",
		// VI_1: the new VIP only, announced 5 times (garp_master_repeat)
		"add 192.0.2.101/24",
		"garp 192.0.2.101", "garp 192.0.2.101", "garp 192.0.2.101", "garp 192.0.2.101", "garp 192.0.2.101",
		// VI_3 starts: leftovers removed
		"del 192.0.2.103/24",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("kernel calls on Apply:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	notes := strings.Join(h.drainNotes(), ",")
	if notes != "VI_2 MASTER->STOP,VI_3 INIT->BACKUP" {
		t.Fatalf("transitions on Apply: %s", notes)
	}
	h.advance(time.Second)
	for _, c := range h.k.take() {
		if c == "advert vrid=1 prio=100 addrs=192.0.2.100,192.0.2.101" {
			goto advertOK
		}
	}
	t.Fatal("VI_1 does not advertise both VIPs after the reload")
advertOK:
	h.advance(4 * time.Second)
	if s := h.states(); len(s) != 2 || s["VI_1"] != "MASTER/100" || s["VI_3"] != "MASTER/100" {
		t.Fatalf("states after reload %v", s)
	}
	if notes := strings.Join(h.drainNotes(), ","); notes != "VI_3 BACKUP->MASTER" {
		t.Fatalf("transitions: %s", notes)
	}
	h.k.mu.Lock()
	defer h.k.mu.Unlock()
	if len(h.k.addrs) != 3 || !h.k.addrs["192.0.2.100/24"] || !h.k.addrs["192.0.2.101/24"] || !h.k.addrs["192.0.2.103/24"] {
		t.Fatalf("addresses %v", h.k.addrs)
	}
}

// A bad configuration is refused and the running one kept.
func TestEngineApplyInvalid(t *testing.T) {
	h := newEngineHarness(t, engineConf1, nil)
	h.advance(5 * time.Second)
	bad := strings.Replace(engineConf1, "  virtual_router_id 2\n", "  virtual_router_id 2\n  authentication {\n    auth_type AH\n    auth_pass x\n  }\n", 1)
	if err := h.e.Apply(confText(t, bad)); err == nil {
		t.Fatal("auth_type AH accepted")
	}
	if s := h.states(); s["VI_1"] != "MASTER/100" || s["VI_2"] != "MASTER/100" {
		t.Fatalf("states %v", s)
	}
}

// vrrp_script results drive the priority through rise/fall.
func TestEngineScripts(t *testing.T) {
	var mu sync.Mutex
	results := []bool{true, false, false, true, true}
	runs := 0
	exec := func(cfg ScriptConfig, _ *conf.Global) ScriptExec {
		return func(context.Context, time.Duration) (bool, string) {
			mu.Lock()
			defer mu.Unlock()
			ok := true
			if runs < len(results) {
				ok = results[runs]
			}
			runs++
			return ok, fmt.Sprint(ok)
		}
	}
	h := newEngineHarness(t, `
vrrp_script chk {
  script /bin/true
  interval 2
  weight -30
  rise 2
  fall 2
}
vrrp_script unused {
  script /bin/false
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  priority 100
  virtual_ipaddress { 192.0.2.100/24 }
  track_script { chk }
}
`, exec)
	prio := func() uint8 {
		h.e.flush()
		return h.e.Status()[0].Priority
	}
	// Runs at 0 (ok), 2 (fail), 4 (fail: down), 6 (ok), 8 (ok: up).
	// The tracker arms its next run after it reported: wait for that.
	waitFor(t, time.Second, "first run", func() bool { return h.clk.HasTimerAt(epoch.Add(2 * time.Second)) })
	for _, step := range []struct {
		at   time.Duration
		prio uint8
	}{{1, 100}, {3, 100}, {5, 70}, {7, 70}, {9, 100}} {
		h.advance(step.at*time.Second - h.clk.Now().Sub(epoch))
		next := epoch.Add((step.at + 1) * time.Second)
		waitFor(t, time.Second, "script run", func() bool { return h.clk.HasTimerAt(next) })
		if p := prio(); p != step.prio {
			t.Fatalf("at %ds priority %d, want %d", step.at, p, step.prio)
		}
	}
}
