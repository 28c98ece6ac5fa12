package bgp

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
)

const testConf = `virtual_server 203.0.113.10 80 {
  lvs_sched mh
  lvs_method DR
  protocol TCP
  real_server 198.51.100.1 80 {
  }
}
virtual_server 203.0.113.10 443 {
  lvs_sched mh
  lvs_method DR
  protocol TCP
  real_server 198.51.100.1 443 {
  }
}
virtual_server 203.0.113.20 80 {
  lvs_sched mh
  lvs_method DR
  protocol TCP
  real_server 198.51.100.2 80 {
  }
}
virtual_server 2001:db8::10 80 {
  lvs_sched mh
  lvs_method DR
  protocol TCP
  real_server 2001:db8::21 8080 {
  }
}
vrrp_instance VI_1 {
  virtual_router_id 1
  interface lo
}
bgp {
  router_id 192.0.2.11
  local_as 65001
  drain_time 5
  med 10
  community 65001:100
  neighbor 192.0.2.1 {
    remote_as 65000
  }
  announce {
    203.0.113.10
    203.0.113.20 vrrp_master VI_1 as_path_prepend 2
    2001:db8::10 med 30 community 65001:7
  }
}
`

func parse(t *testing.T, text string) *conf.Config {
	t.Helper()
	cfg, diags := conf.Parse("t.conf", text, conf.Options{ConfigID: "t"})
	if conf.MaxLevel(diags) >= conf.Error {
		t.Fatalf("%v", diags)
	}
	return cfg
}

var (
	vip1  = netip.MustParsePrefix("203.0.113.10/32")
	vip2  = netip.MustParsePrefix("203.0.113.20/32")
	vip6  = netip.MustParsePrefix("2001:db8::10/128")
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	allUp = map[string]bool{"TCP/203.0.113.10:80": true, "TCP/203.0.113.10:443": true, "TCP/203.0.113.20:80": true, "TCP/[2001:db8::10]:80": true}
)

func prefixes(rs []Route) []netip.Prefix {
	var out []netip.Prefix
	for _, r := range rs {
		out = append(out, r.Prefix)
	}
	return out
}

func with(m map[string]bool, k string, v bool) map[string]bool {
	out := map[string]bool{}
	for kk, vv := range m {
		out[kk] = vv
	}
	out[k] = v
	return out
}

// TestAnnouncerHealth: an address is announced while every virtual server
// of that address has quorum, and (vrrp_master) while its instance is
// MASTER; the attributes are the line's, else the block's.
func TestAnnouncerHealth(t *testing.T) {
	a := NewAnnouncer(parse(t, testConf))
	if rs := a.Routes(t0); len(rs) != 0 {
		t.Fatalf("quorum unknown: %v announced", prefixes(rs))
	}
	a.SetQuorum(allUp)
	if got := prefixes(a.Routes(t0)); !slices.Equal(got, []netip.Prefix{vip1, vip6}) {
		t.Fatalf("all up, VI_1 not MASTER: %v", got)
	}
	a.SetMaster("VI_1", true)
	rs := a.Routes(t0)
	if got := prefixes(rs); !slices.Equal(got, []netip.Prefix{vip1, vip2, vip6}) {
		t.Fatalf("all up, VI_1 MASTER: %v", got)
	}
	want := []Route{
		{Prefix: vip1, Communities: []uint32{65001<<16 | 100}, HasMED: true, MED: 10},
		{Prefix: vip2, Communities: []uint32{65001<<16 | 100}, HasMED: true, MED: 10, Prepend: 2},
		{Prefix: vip6, Communities: []uint32{65001<<16 | 7}, HasMED: true, MED: 30},
	}
	for i := range want {
		if !rs[i].Equal(want[i]) {
			t.Errorf("route %d: %+v, want %+v", i, rs[i], want[i])
		}
	}
	// One of the two virtual servers of 203.0.113.10 loses quorum: the
	// address is withdrawn, the others stay.
	a.SetQuorum(with(allUp, "TCP/203.0.113.10:443", false))
	if got := prefixes(a.Routes(t0)); !slices.Equal(got, []netip.Prefix{vip2, vip6}) {
		t.Fatalf("443 down: %v", got)
	}
	a.SetQuorum(allUp)
	a.SetMaster("VI_1", false)
	if got := prefixes(a.Routes(t0)); !slices.Equal(got, []netip.Prefix{vip1, vip6}) {
		t.Fatalf("VI_1 BACKUP: %v", got)
	}
	// A reload removing the virtual server of 203.0.113.20 and its line.
	a.SetMaster("VI_1", true)
	a.Apply(parse(t, testConf[:0]+`virtual_server 203.0.113.10 80 {
  protocol TCP
  real_server 192.0.2.20 80 {
  }
}
bgp {
  router_id 192.0.2.11
  local_as 65001
  neighbor 192.0.2.1 {
    remote_as 65000
  }
  announce {
    203.0.113.10
  }
}
`))
	if got := a.Routes(t0); len(got) != 1 || got[0].Prefix != vip1 || got[0].HasMED || len(got[0].Communities) != 0 {
		t.Fatalf("after reload: %+v", got)
	}
}

// TestAnnouncerDrain: the graceful shutdown sequence in time: the routes
// carry GRACEFUL_SHUTDOWN from the drain on, and are gone at drain_time;
// an operator's drain is undone by enable, a shutdown is not.
func TestAnnouncerDrain(t *testing.T) {
	a := NewAnnouncer(parse(t, testConf))
	a.SetQuorum(allUp)
	a.Drain(DrainOperator, t0)
	rs := a.Routes(t0)
	if len(rs) != 2 {
		t.Fatalf("draining: %v", prefixes(rs))
	}
	for _, r := range rs {
		if !slices.Contains(r.Communities, GracefulShutdown) {
			t.Errorf("%s draining without GRACEFUL_SHUTDOWN: %v", r.Prefix, r.Communities)
		}
	}
	if end, ok := a.Deadline(t0); !ok || !end.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("deadline %v %v", end, ok)
	}
	if rs := a.Routes(t0.Add(4999 * time.Millisecond)); len(rs) != 2 {
		t.Fatalf("before drain_time: %v", prefixes(rs))
	}
	if rs := a.Routes(t0.Add(5 * time.Second)); len(rs) != 0 {
		t.Fatalf("at drain_time: %v", prefixes(rs))
	}
	if _, ok := a.Deadline(t0.Add(5 * time.Second)); ok {
		t.Fatal("a deadline after the drain")
	}
	if !a.Undrain() {
		t.Fatal("enable did not end the operator's drain")
	}
	if rs := a.Routes(t0.Add(6 * time.Second)); len(rs) != 2 || slices.Contains(rs[0].Communities, GracefulShutdown) {
		t.Fatalf("after enable: %+v", rs)
	}
	// A shutdown during an operator's drain keeps the first start.
	a.Drain(DrainOperator, t0.Add(10*time.Second))
	a.Drain(DrainShutdown, t0.Add(12*time.Second))
	if r, end := a.Draining(); r != DrainShutdown || !end.Equal(t0.Add(15*time.Second)) {
		t.Fatalf("draining %v until %v", r, end)
	}
	if a.Undrain() {
		t.Fatal("enable ended a shutdown")
	}
	if rs := a.Routes(t0.Add(15 * time.Second)); len(rs) != 0 {
		t.Fatalf("shutdown: %v", prefixes(rs))
	}
}

const groupConf = `virtual_server_group VSG_1 {
  203.0.113.20-21 80
  2001:db8::20 80
}
virtual_server group VSG_1 {
  lvs_sched mh
  lvs_method DR
  protocol TCP
  real_server 198.51.100.1 80 {
  }
}
virtual_server 203.0.113.21 443 {
  lvs_sched mh
  lvs_method DR
  protocol TCP
  real_server 198.51.100.1 443 {
  }
}
virtual_server fwmark 7 {
  lvs_sched mh
  lvs_method DR
  real_server 198.51.100.1 0 {
  }
}
bgp {
  router_id 192.0.2.11
  local_as 65001
  drain_time 4
  neighbor 192.0.2.1 {
    remote_as 65000
  }
  announce {
    group VSG_1 med 5
    203.0.113.40 fwmark 7
  }
}
`

// TestAnnouncerGroupsFwmarks: the addresses of a virtual_server_group's
// members (a range, an IPv6 address) are announced as host routes while the
// group's virtual server has quorum (an address also served by a virtual
// server of its own follows both); an fwmark virtual server's quorum drives
// the address its line names; the drain (clock injected as times) applies
// to them as to the others.
func TestAnnouncerGroupsFwmarks(t *testing.T) {
	g20, g21, g6 := netip.MustParsePrefix("203.0.113.20/32"), netip.MustParsePrefix("203.0.113.21/32"), netip.MustParsePrefix("2001:db8::20/128")
	fw := netip.MustParsePrefix("203.0.113.40/32")
	up := map[string]bool{"GROUP/VSG_1/TCP": true, "TCP/203.0.113.21:443": true, "FWM/7": true}
	a := NewAnnouncer(parse(t, groupConf))
	if rs := a.Routes(t0); len(rs) != 0 {
		t.Fatalf("quorum unknown: %v announced", prefixes(rs))
	}
	a.SetQuorum(up)
	rs := a.Routes(t0)
	if got := prefixes(rs); !slices.Equal(got, []netip.Prefix{g20, g21, g6, fw}) {
		t.Fatalf("all up: %v", got)
	}
	if !rs[0].HasMED || rs[0].MED != 5 || rs[3].HasMED {
		t.Errorf("attributes: %+v", rs)
	}
	a.SetQuorum(with(up, "TCP/203.0.113.21:443", false))
	if got := prefixes(a.Routes(t0)); !slices.Equal(got, []netip.Prefix{g20, g6, fw}) {
		t.Fatalf("203.0.113.21:443 down: %v", got)
	}
	a.SetQuorum(with(up, "GROUP/VSG_1/TCP", false))
	if got := prefixes(a.Routes(t0)); !slices.Equal(got, []netip.Prefix{fw}) {
		t.Fatalf("group down: %v", got)
	}
	a.SetQuorum(with(up, "FWM/7", false))
	if got := prefixes(a.Routes(t0)); !slices.Equal(got, []netip.Prefix{g20, g21, g6}) {
		t.Fatalf("fwmark down: %v", got)
	}
	a.SetQuorum(up)
	a.Drain(DrainOperator, t0)
	rs = a.Routes(t0.Add(3 * time.Second))
	if len(rs) != 4 || !slices.Contains(rs[0].Communities, GracefulShutdown) || !slices.Contains(rs[3].Communities, GracefulShutdown) {
		t.Fatalf("draining: %+v", rs)
	}
	if rs := a.Routes(t0.Add(4 * time.Second)); len(rs) != 0 {
		t.Fatalf("after drain_time: %v", prefixes(rs))
	}
}
