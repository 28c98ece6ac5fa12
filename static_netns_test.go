package main

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// static_ipaddress and static_routes side by side with keepalived 2.2.7:
// added at start (the route with protocol keepalived), the address put
// back when someone deletes it (the route not), both removed at stop; each step the two
// namespaces show the same addresses and routes.
const staticCompareConf = `global_defs {
  router_id static
}
static_ipaddress {
  198.51.100.5/24 dev eth0
  203.0.113.7/32 dev eth0 scope host
}
static_routes {
  198.51.100.128/25 via 192.0.2.9 dev eth0
}
` + kaVI1 + `  virtual_ipaddress {
    192.0.2.100/24
  }
}
`

func TestNetnsStaticAddressesMatchKeepalived(t *testing.T) {
	ka, lv, _ := startPair(t, nil, staticCompareConf)
	both := []*kaSide{ka, lv}
	view := func(s *kaSide) string {
		var out []string
		for _, l := range strings.Split(runCmd(t, "ip", "-n", s.ns, "-4", "-o", "addr", "show", "dev", "eth0"), "\n") {
			if f := strings.Fields(l); len(f) >= 4 {
				out = append(out, strings.Join(f[3:], " ")) // "198.51.100.5/24 scope global eth0 ..."
			}
		}
		out = append(out, strings.Split(strings.TrimSpace(runCmd(t, "ip", "-n", s.ns, "-4", "route", "show", "table", "all", "type", "unicast")), "\n")...)
		return strings.Join(out, "\n")
	}
	has := func(s *kaSide, what string) bool { return strings.Contains(view(s), what) }
	same := func(step string) {
		t.Helper()
		if a, b := view(ka), view(lv); a != b {
			t.Errorf("%s: keepalived's namespace:\n%s\nlvsd's:\n%s", step, a, b)
		}
	}
	for _, s := range both {
		waitUntil(t, 10*time.Second, s.name+": static addresses and route", func() bool {
			return has(s, "198.51.100.5/24") && has(s, "203.0.113.7/32") && has(s, "198.51.100.128/25 via 192.0.2.9 dev eth0 proto keepalived")
		})
	}
	same("after start")
	for _, s := range both {
		runCmd(t, "ip", "-n", s.ns, "addr", "del", "198.51.100.5/24", "dev", "eth0")
	}
	for _, s := range both {
		waitUntil(t, 5*time.Second, s.name+": the deleted static address put back", func() bool { return has(s, "198.51.100.5/24") })
	}
	time.Sleep(300 * time.Millisecond)
	same("after the deletion")
	// The static route deleted by hand: keepalived 2.2.7 does not put it
	// back (it restores static addresses and rules), nor does lvsd.
	for _, s := range both {
		runCmd(t, "ip", "-n", s.ns, "route", "del", "198.51.100.128/25", "via", "192.0.2.9", "dev", "eth0")
	}
	time.Sleep(2500 * time.Millisecond) // two passes of lvsd's safety net
	for _, s := range both {
		if has(s, "198.51.100.128/25") {
			t.Errorf("%s put the deleted static route back", s.name)
		}
	}
	same("after the route's deletion")
	stopBoth(t, both)
	for _, s := range both {
		if has(s, "198.51.100.5") || has(s, "203.0.113.7") || has(s, "198.51.100.128/25") {
			t.Errorf("%s left static addresses or routes behind:\n%s", s.name, view(s))
		}
	}
	same("after stop")
}

// stopBoth sends SIGTERM to each side and waits until it exits.
func stopBoth(t *testing.T, sides []*kaSide) {
	t.Helper()
	for _, s := range sides {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, s := range sides {
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not stop", s.name)
		}
	}
}
