package vrrp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lvsd/lvsd/vrrp/advert"
)

func TestFromConfigRoutes(t *testing.T) {
	c := parseConf(t, `
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  priority 100
  virtual_ipaddress { 192.0.2.100/24 }
  virtual_routes {
    src 192.0.2.100 to 198.51.100.0/24 via 192.0.2.254 dev eth0 table 100 metric 5
    203.0.113.0/24 dev eth0
    203.0.113.128/25 dev eth0 scope global proto static
    blackhole 198.51.100.128/25 table main
    prohibit 203.0.113.9
  }
}
`)
	specs, warns, err := fromConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warns {
		if strings.Contains(w, "virtual_routes") {
			t.Errorf("warning: %s", w)
		}
	}
	got := specs[0].Instances[0].Routes
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	want := []Route{
		{Type: routeUnicast, Dst: p("198.51.100.0/24"), Src: a("192.0.2.100"), Via: a("192.0.2.254"), Dev: "eth0", Table: 100, Metric: 5, Proto: protoKeepalived},
		{Type: routeUnicast, Dst: p("203.0.113.0/24"), Dev: "eth0", Scope: 253, Table: tableMain, Proto: protoKeepalived},
		{Type: routeUnicast, Dst: p("203.0.113.128/25"), Dev: "eth0", Scope: 0, Table: tableMain, Proto: 4},
		{Type: routeBlackhole, Dst: p("198.51.100.128/25"), Table: tableMain, Proto: protoKeepalived},
		{Type: routeProhibit, Dst: p("203.0.113.9/32"), Table: tableMain, Proto: protoKeepalived},
	}
	if len(got) != len(want) {
		t.Fatalf("routes %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("route %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if s := got[0].String(); s != "198.51.100.0/24 src 192.0.2.100 via 192.0.2.254 dev eth0 table 100 metric 5" {
		t.Errorf("String %q", s)
	}
}

const routeConf = `
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  priority 100
  advert_int 1
  garp_master_delay 0
  garp_master_repeat 1
  virtual_ipaddress { 192.0.2.100/24 }
  virtual_routes {
    198.51.100.0/24 via 192.0.2.254 table 100%s
  }
}
`

func routeText(extra ...string) string {
	s := ""
	for _, e := range extra {
		s += "\n    " + e
	}
	return strings.Replace(routeConf, "%s", s, 1)
}

// Routes follow MASTER: removed at start (leftovers), added after the VIPs
// on becoming MASTER, removed before them on leaving MASTER (a higher
// priority advert) and on stop; a reload adds and removes routes of a
// MASTER in place.
func TestEngineRoutes(t *testing.T) {
	h := newEngineHarness(t, routeText(), nil)
	const r1 = "198.51.100.0/24 via 192.0.2.254 table 100"
	const r2 = "blackhole 203.0.113.0/24 table 100"
	want := func(what string, w ...string) {
		t.Helper()
		var got []string
		for _, c := range h.k.take() {
			if !strings.HasPrefix(c, "advert") {
				got = append(got, c)
			}
		}
		if strings.Join(got, "\n") != strings.Join(w, "\n") {
			t.Fatalf("%s: kernel calls:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(w, "\n"))
		}
	}
	want("start", "route del "+r1, "del 192.0.2.100/24")
	h.advance(5 * time.Second)
	if s := h.states(); s["VI_1"] != "MASTER/100" {
		t.Fatalf("states %v", s)
	}
	want("master", "add 192.0.2.100/24", "route add "+r1, "garp 192.0.2.100")

	// Reload with one more route: added, no transition, nothing else touched.
	h.drainNotes()
	if err := h.e.Apply(confText(t, routeText("blackhole 203.0.113.0/24 table 100"))); err != nil {
		t.Fatal(err)
	}
	h.e.flush()
	want("reload add", "route add "+r2)
	// And without the first one: removed.
	if err := h.e.Apply(confText(t, strings.Replace(routeText("blackhole 203.0.113.0/24 table 100"), "198.51.100.0/24 via 192.0.2.254 table 100", "", 1))); err != nil {
		t.Fatal(err)
	}
	h.e.flush()
	want("reload remove", "route del "+r1)
	if n := h.drainNotes(); len(n) != 0 {
		t.Fatalf("transitions on reload: %v", n)
	}

	// A higher priority master: BACKUP, routes removed before the VIPs.
	adv := advert.Advert{Version: 2, VRID: 1, Priority: 200, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.100")}}
	src, dst := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("224.0.0.18")
	b, err := adv.Marshal(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	h.e.currentRunners()[0].HandlePacket(0, b, advert.PacketInfo{Src: src, Dst: dst, TTL: 255, At: h.clk.Now()})
	h.e.flush()
	if s := h.states(); s["VI_1"] != "BACKUP/100" {
		t.Fatalf("states %v", s)
	}
	want("backup", "route del "+r2, "del 192.0.2.100/24")
	// A reload while BACKUP touches no route.
	if err := h.e.Apply(confText(t, routeText())); err != nil {
		t.Fatal(err)
	}
	h.e.flush()
	want("reload while backup")

	// MASTER again (the other went silent), then stop.
	h.advance(5 * time.Second)
	want("master again", "add 192.0.2.100/24", "route add "+r1, "garp 192.0.2.100")
	h.k.mu.Lock()
	if len(h.k.routes) != 1 || !h.k.routes[r1] {
		t.Errorf("routes %v", h.k.routes)
	}
	h.k.mu.Unlock()
	if err := h.e.Apply(confText(t, "global_defs {\n router_id x\n}\n")); err != nil {
		t.Fatal(err)
	}
	h.e.flush()
	want("stop", "route del "+r1, "del 192.0.2.100/24")
}

// A runner refuses routes without a route manager.
func TestRunnerRoutesNeedManager(t *testing.T) {
	specs, _, err := fromConfig(parseConf(t, routeText()))
	if err != nil {
		t.Fatal(err)
	}
	ic := specs[0].Instances[0]
	ic.Machine.PrimaryIP = netip.MustParseAddr("192.0.2.1")
	k := &fakeKernel{addrs: map[string]bool{}}
	_, err = newRunner("VI_1", []memberSpec{{Config: ic, Sender: &fakeConn{k: k}, Addrs: fakeAddrs{k}}}, runnerOptions{})
	if err == nil || !strings.Contains(err.Error(), "route manager") {
		t.Fatalf("err %v", err)
	}
}

// On daemon stop a MASTER releases its routes and VIPs after a priority 0
// advert; with DontRelease (-V) it does none of this, as keepalived skips
// restore_vrrp_interfaces with --dont-release-vrrp.
func TestEngineStopDontRelease(t *testing.T) {
	const r1 = "198.51.100.0/24 via 192.0.2.254 table 100"
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprint("DontRelease=", keep), func(t *testing.T) {
			h := newEngineHarnessOpts(t, routeText(), nil, func(o *EngineOptions) { o.DontRelease = keep })
			h.advance(5 * time.Second)
			if s := h.states(); s["VI_1"] != "MASTER/100" {
				t.Fatalf("states %v", s)
			}
			h.k.take()
			h.stop()
			got := strings.Join(h.k.take(), "\n")
			want := strings.Join([]string{"advert vrid=1 prio=0 addrs=192.0.2.100", "route del " + r1, "del 192.0.2.100/24"}, "\n")
			if keep {
				want = ""
			}
			if got != want {
				t.Fatalf("kernel calls on stop:\n%s\nwant:\n%s", got, want)
			}
			h.k.mu.Lock()
			defer h.k.mu.Unlock()
			if h.k.addrs["192.0.2.100/24"] != keep || h.k.routes[r1] != keep {
				t.Fatalf("after stop: addrs %v routes %v", h.k.addrs, h.k.routes)
			}
		})
	}
}

// A route's words in logs: ip-route order, the main table and the unicast
// type left out.
func TestRouteString(t *testing.T) {
	for _, c := range []struct {
		r    Route
		want string
	}{
		{Route{Type: routeUnicast, Dst: netip.MustParsePrefix("198.51.100.0/24"), Src: netip.MustParseAddr("192.0.2.1"), Via: netip.MustParseAddr("192.0.2.254"), Dev: "eth0", Table: tableMain},
			"198.51.100.0/24 src 192.0.2.1 via 192.0.2.254 dev eth0"},
		{Route{Type: routeBlackhole, Dst: netip.MustParsePrefix("203.0.113.0/24"), Table: 10, Metric: 5, OnLink: true},
			"blackhole 203.0.113.0/24 table 10 metric 5 onlink"},
		{Route{Type: routeProhibit, Dst: netip.MustParsePrefix("2001:db8::/64"), Table: tableMain, Proto: protoKeepalived, Scope: 253},
			"prohibit 2001:db8::/64"},
		{Route{Type: routeUnreachable, Dst: netip.MustParsePrefix("2001:db8:1::/48")}, "unreachable 2001:db8:1::/48"},
	} {
		if got := c.r.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.r, got, c.want)
		}
	}
}
