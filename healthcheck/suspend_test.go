package healthcheck

import (
	"net/netip"
	"testing"
	"time"
)

const haSuspendConf = `
virtual_server 192.0.2.1 80 {
  protocol TCP
  delay_loop 5
  ha_suspend
  real_server 10.0.0.1 80 {
    TCP_CHECK {
      retry 0
      warmup 0
    }
  }
}
virtual_server 192.0.2.2 80 {
  protocol TCP
  delay_loop 5
  real_server 10.0.0.2 80 {
    TCP_CHECK {
      retry 0
      warmup 0
    }
  }
}
virtual_server_group G {
  192.0.2.20-29 443
}
virtual_server group G {
  protocol TCP
  delay_loop 5
  ha_suspend
  real_server 10.0.0.3 443 {
    TCP_CHECK {
      retry 0
      warmup 0
    }
  }
}
virtual_server fwmark 9 {
  delay_loop 5
  ha_suspend
  real_server 10.0.0.4 80 {
    TCP_CHECK {
      retry 0
      warmup 0
    }
  }
}`

// ha_suspend: a virtual server's checks run only while one of its
// addresses (a group's: any in its ranges) is local; a suspended checker
// keeps its schedule and state. Without ha_suspend, and for fwmark
// services, the checks always run.
func TestHASuspend(t *testing.T) {
	p1 := &fakeProbe{outcome: downFrom(at(16 * time.Second))}
	p2 := &fakeProbe{outcome: always(true)}
	p3 := &fakeProbe{outcome: always(true)}
	p4 := &fakeProbe{outcome: always(true)}
	h := newHarness(t, mustParse(t, haSuspendConf), map[string]*fakeProbe{
		"TCP_CHECK 10.0.0.1:80": p1, "TCP_CHECK 10.0.0.2:80": p2, "TCP_CHECK 10.0.0.3:443": p3, "TCP_CHECK 10.0.0.4:80": p4})
	h.s.SetLocalAddrs(map[netip.Addr]bool{netip.MustParseAddr("10.1.1.1"): true})
	h.start()
	h.runUntil(at(12 * time.Second))
	if len(p1.starts) != 0 || len(p3.starts) != 0 {
		t.Fatalf("suspended checks ran at %v and %v", durs(p1.starts), durs(p3.starts))
	}
	if !sameDurs(durs(p2.starts), []time.Duration{0, 5 * time.Second, 10 * time.Second}) || len(p4.starts) != 3 {
		t.Fatalf("checks without ha_suspend (or of a fwmark service) ran at %v and %v", durs(p2.starts), durs(p4.starts))
	}
	st := h.s.Snapshot()
	if !st[0].Suspended || st[1].Suspended || !st[2].Suspended || st[3].Suspended || st[0].Checkers[0].Skipped != 3 {
		t.Fatalf("snapshot: %+v", st)
	}
	// The VIP arrives (this director became MASTER): the checks resume on
	// their schedule; the real server goes down at its first failure.
	h.s.SetLocalAddrs(map[netip.Addr]bool{netip.MustParseAddr("192.0.2.1"): true, netip.MustParseAddr("192.0.2.27"): true})
	h.runUntil(at(21 * time.Second))
	if !sameDurs(durs(p1.starts), []time.Duration{15 * time.Second, 20 * time.Second}) || len(p3.starts) != 2 {
		t.Fatalf("resumed checks ran at %v and %v", durs(p1.starts), durs(p3.starts))
	}
	if got, want := eventsString(h.events), "0s 10.0.0.1:80 up; 0s 10.0.0.2:80 up; 0s 10.0.0.3:443 up; 0s 10.0.0.4:80 up; 20s 10.0.0.1:80 down; "; got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
	// The VIP leaves: suspended again, the state (down) kept.
	h.s.SetLocalAddrs(map[netip.Addr]bool{})
	h.runUntil(at(41 * time.Second))
	if len(p1.starts) != 2 || len(p3.starts) != 2 {
		t.Fatalf("suspended checks ran at %v and %v", durs(p1.starts), durs(p3.starts))
	}
	if st := h.s.Snapshot(); st[0].Up || !st[0].Suspended {
		t.Fatalf("snapshot: %+v", st[0])
	}
}
