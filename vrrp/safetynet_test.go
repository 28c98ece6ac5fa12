package vrrp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const safetyConf = `
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  priority 100
  advert_int 1
  garp_master_delay 0
  virtual_ipaddress { 192.0.2.100/24 }
  virtual_routes {
    198.51.100.0/24 via 192.0.2.254
  }
}
`

// One safety-net pass (checkOnce) over a MASTER whose VIP and route were
// removed behind its back: both come back, counted; a pass that finds
// nothing wrong repairs nothing.
func TestSafetyNetRestoresVIPAndRoute(t *testing.T) {
	h := newEngineHarness(t, safetyConf, nil)
	h.k.own = []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}
	h.advance(5 * time.Second)
	if s := h.states(); s["VI_1"] != "MASTER/100" {
		t.Fatalf("states %v", s)
	}
	h.k.take()
	if err := h.e.checkOnce(); err != nil {
		t.Fatal(err)
	}
	h.e.flush()
	if got := h.k.take(); len(got) != 0 || h.e.Repairs()["vip"] != 0 {
		t.Fatalf("a pass over a sound MASTER did %v, repairs %v", got, h.e.Repairs())
	}
	h.k.mu.Lock()
	delete(h.k.addrs, "192.0.2.100/24")
	h.k.routes = map[string]bool{}
	h.k.mu.Unlock()
	if err := h.e.checkOnce(); err != nil {
		t.Fatal(err)
	}
	h.e.flush()
	got := strings.Join(h.k.take(), "\n")
	if !strings.Contains(got, "add 192.0.2.100/24") || !strings.Contains(got, "route add 198.51.100.0/24 via 192.0.2.254") || !strings.Contains(got, "garp 192.0.2.100") {
		t.Fatalf("kernel calls of the repair:\n%s", got)
	}
	r := h.e.Repairs()
	if r["vip"] != 1 || r["route"] != 1 {
		t.Fatalf("repairs %v", r)
	}
	if st := h.e.Status(); st[0].Stats.VIPRestored.Load() != 1 {
		t.Fatalf("vip_restored %d", st[0].Stats.VIPRestored.Load())
	}
}

// A link state the instance never heard of (a lost notification) is
// corrected by a pass: FAULT entered, VIPs released; then left.
func TestSafetyNetLinkState(t *testing.T) {
	h := newEngineHarness(t, engineConf1, nil)
	h.advance(5 * time.Second)
	h.drainNotes()
	h.k.linkDown = true
	if err := h.e.checkOnce(); err != nil {
		t.Fatal(err)
	}
	h.e.flush()
	if s := h.states(); s["VI_1"] != "FAULT/100" || s["VI_2"] != "FAULT/100" {
		t.Fatalf("states after a pass with eth0 down: %v", s)
	}
	if len(h.k.addrs) != 0 {
		t.Fatalf("VIPs kept in FAULT: %v", h.k.addrs)
	}
	h.k.linkDown = false
	if err := h.e.checkOnce(); err != nil {
		t.Fatal(err)
	}
	h.e.flush()
	if s := h.states(); s["VI_1"] != "BACKUP/100" {
		t.Fatalf("states after a pass with eth0 up: %v", s)
	}
	if r := h.e.Repairs()["link"]; r != 4 {
		t.Fatalf("link repairs %d; want 4 (two instances, down then up)", r)
	}
}

// An instance without a configured source follows the interface's primary
// address; the VIPs are never taken for it.
func TestSafetyNetSourceFollows(t *testing.T) {
	h := newEngineHarness(t, engineConf1, nil)
	h.k.own = []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}
	h.advance(5 * time.Second)
	master := func() string {
		return fmt.Sprint(h.e.Status()[0].MasterAddr)
	}
	if m := master(); m != "192.0.2.1" {
		t.Fatalf("master address %s", m)
	}
	h.k.own = nil // only VIPs left: no primary, nothing changes
	if err := h.e.checkOnce(); err != nil {
		t.Fatal(err)
	}
	h.e.flush()
	if m := master(); m != "192.0.2.1" {
		t.Fatalf("a VIP taken for the source: %s", m)
	}
	h.k.own = []netip.Prefix{netip.MustParsePrefix("192.0.2.9/24")}
	if err := h.e.checkOnce(); err != nil {
		t.Fatal(err)
	}
	h.e.flush()
	if m := master(); m != "192.0.2.9" {
		t.Fatalf("master address %s after the primary changed; want 192.0.2.9", m)
	}
	if r := h.e.Repairs()["source"]; r != 2 {
		t.Fatalf("source repairs %d; want 2", r)
	}
}
