package vrrp

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// A MASTER reconfigured with one more VIP adds it (and announces it),
// leaves the old one alone, and does not transition; a removed VIP goes.
func TestRunnerReconfigureMasterVIPs(t *testing.T) {
	h := newHarness(t, instCfg(nil))
	h.advance(mdi100 + 10*time.Second) // MASTER, both GARP bursts done
	if st := h.r.Status()[0].State; st != StateMaster {
		t.Fatalf("state %v", st)
	}
	for len(h.notes) > 0 {
		<-h.notes
	}
	h.rec.take("")
	extra := VIP{Addr: netip.MustParsePrefix("192.0.2.101/24")}
	c := instCfg(func(c *instanceConfig) { c.VIPs = append(c.VIPs, extra) })
	if err := h.r.Reconfigure([]instanceConfig{c}); err != nil {
		t.Fatal(err)
	}
	h.advance(3 * time.Second)
	calls := h.rec.take("")
	var adds, dels, garps, adverts []string
	for _, c := range calls {
		switch {
		case strings.HasPrefix(c.what, "add"):
			adds = append(adds, c.what)
		case strings.HasPrefix(c.what, "del"):
			dels = append(dels, c.what)
		case strings.HasPrefix(c.what, "garp"):
			garps = append(garps, c.what)
		case strings.HasPrefix(c.what, "advert"):
			adverts = append(adverts, c.what)
		}
	}
	if strings.Join(adds, ",") != "add 192.0.2.101/24" || len(dels) != 0 {
		t.Fatalf("adds %v dels %v", adds, dels)
	}
	for _, g := range garps {
		if g != "garp 192.0.2.101" {
			t.Fatalf("GARP for an unchanged VIP after the reload: %v", garps)
		}
	}
	if len(garps) != 5 {
		t.Fatalf("GARPs for the new VIP: %v", garps)
	}
	if len(adverts) != 3 {
		t.Fatalf("adverts in 3s after reload: %v", adverts)
	}
	if len(h.notes) != 0 {
		t.Fatalf("transition on reload: %+v", <-h.notes)
	}
	if !h.rec.addrs[extra.Addr] || !h.rec.addrs[testVIP.Addr] {
		t.Fatalf("addresses %v", h.rec.addrs)
	}
	// The adverts carry both addresses now.
	// Remove the original VIP and lower the priority.
	c2 := instCfg(func(c *instanceConfig) { c.VIPs = []VIP{extra}; c.Machine.Priority = 90 })
	if err := h.r.Reconfigure([]instanceConfig{c2}); err != nil {
		t.Fatal(err)
	}
	h.advance(time.Second)
	calls = h.rec.take("")
	if len(calls) < 2 || calls[0].what != "del 192.0.2.100/24" {
		t.Fatalf("calls after removing a VIP: %v", calls)
	}
	if st := h.r.Status()[0]; st.State != StateMaster || st.Priority != 90 {
		t.Fatalf("status %+v", st)
	}
	for _, c := range calls[1:] {
		if c.what != "advert prio=90 dst=224.0.0.18" {
			t.Fatalf("after the reload: %v", calls)
		}
	}
	// Changing identity is refused and changes nothing.
	bad := instCfg(func(c *instanceConfig) { c.Machine.VRID = 52 })
	if err := h.r.Reconfigure([]instanceConfig{bad}); err == nil {
		t.Fatal("VRID change accepted")
	}
}

// In BACKUP a reload keeps the running Master_Down_Timer and adds no VIP.
func TestRunnerReconfigureBackup(t *testing.T) {
	h := newHarness(t, instCfg(nil))
	h.advance(time.Second)
	h.rec.take("")
	extra := VIP{Addr: netip.MustParsePrefix("192.0.2.101/24")}
	c := instCfg(func(c *instanceConfig) { c.VIPs = append(c.VIPs, extra) })
	if err := h.r.Reconfigure([]instanceConfig{c}); err != nil {
		t.Fatal(err)
	}
	h.advance(mdi100 - time.Second - time.Nanosecond)
	if calls := h.rec.take(""); len(calls) != 0 {
		t.Fatalf("BACKUP acted on reload: %v", calls)
	}
	h.advance(time.Nanosecond)
	adds := h.rec.take("add")
	if len(adds) != 2 || adds[0].at != mdi100 {
		t.Fatalf("takeover on the original timer with both VIPs: %v", adds)
	}
}
