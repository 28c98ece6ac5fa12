package ipvs

import (
	"strings"
	"testing"
)

// TestReconcilerDrain: a drained real server gets weight 0 at once, keeps
// it through health changes and a reload, shows as drained in the
// snapshot, and gets its weight back when enabled.
func TestReconcilerDrain(t *testing.T) {
	h := newHarness(t, parse(t, twoServers), nil, Options{})
	h.start()
	h.k.mutations()
	if err := h.r.SetDrain("192.0.2.1:80", "10.0.0.2:80", true); err != nil {
		t.Fatal(err)
	}
	h.wantMutations("update-dest TCP 192.0.2.1:80 -> 10.0.0.2:80 masq w0")
	rsOf := func(s *Snapshot, vs, rs string) RSStatus {
		for _, v := range s.VirtualServers {
			for _, r := range v.RealServers {
				if v.VS == vs && r.RS.String() == rs {
					return r
				}
			}
		}
		t.Fatalf("no %s %s in the snapshot", vs, rs)
		return RSStatus{}
	}
	if r := rsOf(h.r.Snapshot(), "TCP/192.0.2.1:80", "10.0.0.2:80"); !r.Drained || r.Weight != 0 || !r.Up {
		t.Errorf("drained server: %+v", r)
	}
	// Draining twice changes nothing.
	if err := h.r.SetDrain("TCP/192.0.2.1:80", "10.0.0.2", true); err != nil {
		t.Fatal(err)
	}
	h.wantMutations()
	// Health going down then up: still weight 0 (the server is removed
	// while down, without inhibit_on_failure, and comes back drained).
	vs := "TCP/192.0.2.1:80"
	h.r.SetHealth(*ev(vs, "10.0.0.2:80", false, -1))
	h.r.Snapshot()
	h.wantMutations("remove-dest TCP 192.0.2.1:80 -> 10.0.0.2:80")
	h.r.SetHealth(*ev(vs, "10.0.0.2:80", true, -1))
	h.r.Snapshot()
	h.wantMutations("create-dest TCP 192.0.2.1:80 -> 10.0.0.2:80 masq w0")
	// A reload, even one changing this virtual server: still drained.
	h.r.Apply(parse(t, strings.Replace(twoServers, "lvs_sched wrr", "lvs_sched wlc", 1)))
	h.r.Snapshot()
	h.wantMutations("update-service TCP 192.0.2.1:80 wlc")
	if r := rsOf(h.r.Snapshot(), vs, "10.0.0.2:80"); !r.Drained {
		t.Errorf("drain lost across a reload: %+v", r)
	}
	// Enabled: its configured weight again.
	if err := h.r.SetDrain("tcp 192.0.2.1:80", "10.0.0.2:80", false); err != nil {
		t.Fatal(err)
	}
	h.wantMutations("update-dest TCP 192.0.2.1:80 -> 10.0.0.2:80 masq w3")
	if r := rsOf(h.r.Snapshot(), vs, "10.0.0.2:80"); r.Drained || r.Weight != 3 {
		t.Errorf("enabled server: %+v", r)
	}
	// Unknown names are errors, and change nothing.
	for _, c := range [][2]string{{"192.0.2.9:80", "10.0.0.1:80"}, {"192.0.2.1:80", "10.0.0.9:80"}, {"192.0.2.1:80", "nonsense"}, {"FWM 2", "10.0.0.1"}} {
		if err := h.r.SetDrain(c[0], c[1], true); err == nil {
			t.Errorf("drain %q %q accepted", c[0], c[1])
		}
	}
	// The fwmark virtual server by keepalived's name, its server by address.
	if err := h.r.SetDrain("FWM 1", "10.0.0.1", true); err != nil {
		t.Fatal(err)
	}
	h.wantMutations("update-dest FWM 1 -> 10.0.0.1:0 route w0")
}

// TestReconcilerDrainAmbiguous: the same address and port in TCP and UDP
// needs the protocol.
func TestReconcilerDrainAmbiguous(t *testing.T) {
	cfg := parse(t, `virtual_server 192.0.2.1 53 {
	protocol TCP
	real_server 10.0.0.1 53 {
	}
}
virtual_server 192.0.2.1 53 {
	protocol UDP
	real_server 10.0.0.1 53 {
	}
}`)
	h := newHarness(t, cfg, nil, Options{})
	h.start()
	h.k.mutations()
	if err := h.r.SetDrain("192.0.2.1:53", "10.0.0.1:53", true); err == nil || !strings.Contains(err.Error(), "give the protocol") {
		t.Errorf("ambiguous name: %v", err)
	}
	if err := h.r.SetDrain("UDP/192.0.2.1:53", "10.0.0.1:53", true); err != nil {
		t.Fatal(err)
	}
	h.wantMutations("update-dest UDP 192.0.2.1:53 -> 10.0.0.1:53 masq w0")
}
