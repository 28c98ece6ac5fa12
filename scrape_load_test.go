package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/ipvs"
	"github.com/lvsd/lvsd/metrics"
	"github.com/lvsd/lvsd/vrrp"
)

// recKernel is a vrrp.Kernel that sends nothing: it records when each
// advert was handed to it (real time: the engine runs on its real clock).
type recKernel struct {
	mu    sync.Mutex
	sends []time.Time
	vips  map[netip.Prefix]bool // the VIPs added, for the safety net's State
}

// recAddrs keeps the VIPs the engine adds, so that State lists them.
type recAddrs struct{ k *recKernel }

func (a recAddrs) AddAddr(v vrrp.VIP) error {
	a.k.mu.Lock()
	defer a.k.mu.Unlock()
	if a.k.vips == nil {
		a.k.vips = map[netip.Prefix]bool{}
	}
	a.k.vips[v.Addr] = true
	return nil
}

func (a recAddrs) DelAddr(v vrrp.VIP) error {
	a.k.mu.Lock()
	defer a.k.mu.Unlock()
	delete(a.k.vips, v.Addr)
	return nil
}

// State is eth0, up, with its primary address and the VIPs added.
func (k *recKernel) State(bool) (*vrrp.KernelState, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ks := &vrrp.KernelState{At: time.Now(), Links: map[string]vrrp.LinkState{"eth0": {Index: 2, Up: true}},
		Addrs: map[string][]netip.Prefix{"eth0": {netip.MustParsePrefix("192.0.2.1/24")}}}
	for p := range k.vips {
		ks.Addrs["eth0"] = append(ks.Addrs["eth0"], p)
	}
	return ks, nil
}

type recConn struct{ k *recKernel }

func (c recConn) SendAdvert([]byte, netip.Addr, netip.Addr) error {
	c.k.mu.Lock()
	c.k.sends = append(c.k.sends, time.Now())
	c.k.mu.Unlock()
	return nil
}
func (recConn) Serve(ctx context.Context, _ vrrp.PacketHandler) error { <-ctx.Done(); return nil }
func (recConn) Close() error                                          { return nil }

type recNop struct{}

func (recNop) SendGARP(netip.Addr) error                             { return nil }
func (recNop) Close() error                                          { return nil }
func (recNop) AddAddr(vrrp.VIP) error                                { return nil }
func (recNop) DelAddr(vrrp.VIP) error                                { return nil }
func (recNop) AddRoute(vrrp.Route) error                             { return nil }
func (recNop) DelRoute(vrrp.Route) error                             { return nil }
func (recNop) AddRule(vrrp.Rule) error                               { return nil }
func (recNop) DelRule(vrrp.Rule) error                               { return nil }
func (k *recKernel) Listen(vrrp.ConnConfig) (vrrp.PacketConn, error) { return recConn{k}, nil }
func (k *recKernel) GARP(string) (vrrp.GARPConn, error)              { return recNop{}, nil }
func (k *recKernel) Addrs(string) vrrp.AddrManager                   { return recAddrs{k} }
func (k *recKernel) Routes() vrrp.RouteManager                       { return recNop{} }
func (k *recKernel) LinkUp(string) (bool, error)                     { return true, nil }
func (k *recKernel) PrimaryIPv4(string) (netip.Addr, error) {
	return netip.MustParseAddr("192.0.2.1"), nil
}
func (k *recKernel) PrimaryIPv6(string) (netip.Addr, error) {
	return netip.MustParseAddr("fe80::1"), nil
}
func (k *recKernel) WatchLink(_ context.Context, _ string, fn func(bool), _ func()) error {
	fn(true)
	return nil
}
func (k *recKernel) WatchAddrDeleted(context.Context, func(netip.Prefix), func()) error { return nil }

const nScrapeVS, nScrapeRS = 100, 100

// startManyBackends starts a director with 10,000 IPVS backends (100
// virtual servers of 100 real servers, in an in-memory IPVS table: the host
// kernel has no IPVS) and, with vrrp, a VRRP MASTER advertising every
// second on the real clock; it returns the URL of its /metrics.
func startManyBackends(t testing.TB, vrrp bool) (string, *recKernel, *ops) {
	var b strings.Builder
	b.WriteString("global_defs {\n  router_id scrape\n}\n")
	if vrrp {
		b.WriteString("vrrp_instance VI_1 {\n  state MASTER\n  interface eth0\n  virtual_router_id 51\n  priority 255\n  advert_int 1\n  virtual_ipaddress {\n    192.0.2.100/24\n  }\n}\n")
	}
	for v := range nScrapeVS {
		fmt.Fprintf(&b, "virtual_server 203.0.113.%d %d {\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n", 1+v%100, 80+v/100)
		for r := range nScrapeRS {
			fmt.Fprintf(&b, "  real_server 198.51.%d.%d %d {\n  }\n", 100+r/200, 1+r%200, 8000+v)
		}
		b.WriteString("}\n")
	}
	cfg, diags := conf.Parse("scrape.conf", b.String(), conf.Options{ConfigID: "t"})
	if conf.MaxLevel(diags) >= conf.Error {
		t.Fatalf("%v", diags[0])
	}
	reserveProcs() // as the daemon does
	o := &options{metricsListen: freeLoopbackAddr(t)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mk, vk := newMemKernel(), &recKernel{}
	rec := newRecorders()
	dp := rec.deps()
	dp.newKernel = func() (ipvs.Kernel, error) { return mk, nil }
	dp.vrrpKernel = vk
	d, err := newDaemon(o, log, cfg, dp)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); d.wait() })
	d.start(ctx, cfg)
	select {
	case <-d.programmed():
	case <-time.After(30 * time.Second):
		t.Fatal("IPVS not programmed")
	}
	op := newOps(o, log, cfg, time.Now(), d, rec)
	op.listen(o)
	t.Cleanup(op.close)
	return "http://" + o.metricsListen + "/metrics", vk, op
}

// intervals returns the gaps between the adverts sent in [from, to].
func (k *recKernel) intervals(from, to time.Time) []time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []time.Duration
	var last time.Time
	for _, at := range k.sends {
		if at.Before(from) || at.After(to) {
			continue
		}
		if !last.IsZero() {
			out = append(out, at.Sub(last))
		}
		last = at
	}
	return out
}

// TestFaultScrapesManyBackends: 50 concurrent /metrics scrapes, without
// pause, of a director with 10,000 IPVS backends (100 virtual servers of
// 100 real servers, in an in-memory IPVS table: the host kernel has no
// IPVS) and a VRRP MASTER advertising every second on the real clock.
// Scrapes over metrics.MaxScrapesInFlight get 503 at once. The adverts'
// intervals are measured against an idle period; no gap reaches a
// backup's Master_Down_Interval.
func TestFaultScrapesManyBackends(t *testing.T) {
	url, vk, _ := startManyBackends(t, true)
	client := &http.Client{Timeout: 30 * time.Second}
	var ss []sample
	waitUntil(t, 10*time.Second, "the 10,000 backends on /metrics", func() bool {
		var err error
		ss, err = scrape(t, client, url)
		if err != nil {
			return false
		}
		n := 0
		for _, s := range ss {
			if s.name == "node_ipvs_backend_weight" {
				n++
			}
		}
		v, _ := find(ss, "keepalived_vrrp_state", "iname", "VI_1")
		return n == nScrapeVS*nScrapeRS && v == 2
	})
	if v, ok := find(ss, "keepalived_vrrp_state", "iname", "VI_1"); !ok || v != 2 {
		t.Fatalf("VI_1 state %v, want MASTER", v)
	}

	idleFrom := time.Now()
	time.Sleep(3 * time.Second)
	idle := vk.intervals(idleFrom, time.Now())

	const scrapers = 50
	window := 5 * time.Second
	if w, err := time.ParseDuration(os.Getenv("LVSD_SCRAPE_WINDOW")); err == nil && w > window {
		window = w // longer, for measurements (docs/RELIABILITY.md)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	scrapes, failed, busy := 0, 0, 0
	from := time.Now()
	stopAt := from.Add(window)
	if os.Getenv("LVSD_SCRAPE_PROBE") != "" {
		defer startWakeProbes(t, stopAt)()
	}
	gc0 := readGC()
	for range scrapers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 30 * time.Second}
			for time.Now().Before(stopAt) {
				resp, err := c.Get(url)
				ok := err == nil && resp.StatusCode == 200
				if err == nil && resp.StatusCode == http.StatusServiceUnavailable {
					// Over metrics.MaxScrapesInFlight: refused at once;
					// a scraper would retry at its next interval.
					resp.Body.Close()
					mu.Lock()
					busy++
					mu.Unlock()
					time.Sleep(50 * time.Millisecond)
					continue
				}
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				if ok {
					scrapes++
				} else {
					failed++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	to := time.Now()
	gc := readGC().since(gc0)
	loaded := vk.intervals(from, stopAt)
	worst := func(iv []time.Duration) (time.Duration, time.Duration, time.Duration) {
		var devs []time.Duration
		for _, x := range iv {
			dev := x - time.Second
			if dev < 0 {
				dev = -dev
			}
			devs = append(devs, dev)
		}
		slices.Sort(devs)
		if len(devs) == 0 {
			return 0, 0, 0
		}
		return devs[len(devs)/2], devs[len(devs)*99/100], devs[len(devs)-1]
	}
	ip50, ip99, imax := worst(idle)
	lp50, lp99, lmax := worst(loaded)
	t.Logf("%d scrapes of 10,000 backends by %d clients in %v (%d answered 503, over %d in flight; %d failed; the last ended %v after the window)",
		scrapes, scrapers, window, busy, metrics.MaxScrapesInFlight, failed, to.Sub(stopAt).Round(time.Millisecond))
	us := func(d time.Duration) time.Duration { return d.Round(time.Microsecond) }
	t.Logf("advert interval deviation from 1s: idle p50 %v p99 %v max %v (%d intervals); under the scrapes p50 %v p99 %v max %v (%d intervals)",
		us(ip50), us(ip99), us(imax), len(idle), us(lp50), us(lp99), us(lmax), len(loaded))
	t.Logf("GC under the scrapes: %d cycles, %d stop-the-world pauses over 1ms, the longest %v", gc.cycles, gc.over1ms, gc.longest)
	if scrapes < 2 || failed > 0 {
		t.Errorf("%d scrapes served, %d failed (neither 200 nor 503)", scrapes, failed)
	}
	// The bound that matters for safety: no gap between two adverts
	// reaches a backup's Master_Down_Interval (3 intervals and a skew), so
	// no peer takes over; and none missed. The deviation itself is only
	// logged: on this loaded 2-core machine its median is 0.1-0.4 ms but
	// its worst case milliseconds to ~100 ms (the OS's and Go's
	// scheduling, GC pauses), not the 1ms issue 12 asks for (see
	// docs/RELIABILITY.md, "Where the remaining tail comes from").
	var longest time.Duration
	for _, x := range loaded {
		longest = max(longest, x)
	}
	if len(loaded) < 3 || longest >= 2*time.Second {
		t.Errorf("under the scrapes: %d intervals, the longest %v (an advert missed; a backup takes over at 3s+skew)", len(loaded), longest)
	}
}
