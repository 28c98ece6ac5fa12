package vrrp

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

const routesBlock = `  virtual_routes {
    198.51.100.0/24 via 192.0.2.254 table 100
    203.0.113.0/24 via 192.0.2.254
%s  }
`

func routesExtra(more string) string { return strings.Replace(routesBlock, "%s", more, 1) }

// routeShow is "ip -4 route show" of table in ns, one route a line.
func routeShow(t *testing.T, ns, table string) string {
	return ipCmd(t, "-n", ns, "-4", "route", "show", "table", table)
}

// holdsRoutes reports whether ns holds both virtual routes of routesBlock
// (proto keepalived), and whether it holds none.
func holdsRoutes(t *testing.T, ns string) (all, none bool) {
	t100 := routeShow(t, ns, "100")
	// Without the route there is none to 203.0.113.5: ip fails, unreachable.
	out, _ := exec.Command("ip", "-n", ns, "route", "get", "203.0.113.5").CombinedOutput()
	get := string(out)
	a := strings.Contains(t100, "198.51.100.0/24 via 192.0.2.254 dev eth0 proto keepalived")
	b := strings.Contains(get, "via 192.0.2.254")
	return a && b, !a && !b && !strings.Contains(routeShow(t, ns, "main"), "203.0.113.0/24")
}

// virtual_routes with the lvsd binary: a leftover of our route is removed
// at start; the MASTER holds the routes (table 100 and main, ip route get),
// the BACKUP not; after a failover (A reloaded with a lower priority) the
// new MASTER holds them and the old one, still running, not; a reload of
// the MASTER that adds a route installs it without a transition; stop
// removes them.
func TestLvsdVirtualRoutes(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	// A leftover of ours in B (proto keepalived), and a route of someone
	// else's in table 100 that must stay.
	ipCmd(t, "-n", n.b, "route", "add", "198.51.100.0/24", "via", "192.0.2.254", "table", "100", "proto", "18")
	ipCmd(t, "-n", n.b, "route", "add", "198.51.100.0/24", "via", "192.0.2.253", "table", "100", "metric", "50", "proto", "static")
	a := startLvsd(t, n.a, "A", lvsdConf(150, routesExtra("")))
	b := startLvsd(t, n.b, "B", lvsdConf(100, routesExtra("")))
	a.waitState(t, "VI_1", "MASTER", 6*time.Second)
	b.waitState(t, "VI_1", "BACKUP", time.Second)
	waitFor(t, 2*time.Second, "routes on A", func() bool { all, _ := holdsRoutes(t, n.a); return all })
	if _, none := holdsRoutes(t, n.b); !none {
		t.Fatalf("B (BACKUP) holds virtual routes:\n%s%s", routeShow(t, n.b, "100"), routeShow(t, n.b, "main"))
	}
	if !strings.Contains(routeShow(t, n.b, "100"), "via 192.0.2.253 dev eth0 proto static metric 50") {
		t.Fatalf("B lost the route that is not ours:\n%s", routeShow(t, n.b, "100"))
	}
	t.Logf("A (MASTER) table 100:\n%s", routeShow(t, n.a, "100"))

	// A virtual route deleted by hand: the safety net (a pass every
	// second) puts it back; before, its passes found nothing to repair.
	time.Sleep(1200 * time.Millisecond)
	if out := a.out.String(); strings.Contains(out, "safety net") {
		t.Fatalf("the safety net repaired a sound MASTER:\n%s", grepLines(out, "safety net"))
	}
	ipCmd(t, "-n", n.a, "route", "del", "198.51.100.0/24", "table", "100")
	deleted := time.Now()
	waitFor(t, 2500*time.Millisecond, "the route deleted by hand back on A", func() bool { all, _ := holdsRoutes(t, n.a); return all })
	t.Logf("virtual route deleted by hand restored in %v", time.Since(deleted).Round(time.Millisecond))
	if out := a.out.String(); !strings.Contains(out, "virtual route missing on a MASTER, restored") {
		t.Fatal("the route came back without the safety net saying so")
	}

	// Failover: A reloaded with priority 50; B preempts, A goes BACKUP.
	a.rewrite(t, lvsdConf(50, routesExtra("")))
	a.signal(syscall.SIGHUP)
	b.waitState(t, "VI_1", "MASTER", 6*time.Second)
	a.waitState(t, "VI_1", "BACKUP", 2*time.Second)
	waitFor(t, 2*time.Second, "routes moved to B", func() bool {
		allB, _ := holdsRoutes(t, n.b)
		_, noneA := holdsRoutes(t, n.a)
		return allB && noneA
	})

	// A reload of the MASTER B with one more route: installed, no transition.
	before := len(b.transitions())
	b.rewrite(t, lvsdConf(100, routesExtra("    blackhole 203.0.113.128/25 table 100\n")))
	b.signal(syscall.SIGHUP)
	waitFor(t, 3*time.Second, "new route on B", func() bool {
		return strings.Contains(routeShow(t, n.b, "100"), "blackhole 203.0.113.128/25 proto keepalived")
	})
	time.Sleep(1500 * time.Millisecond)
	if tr := b.transitions(); len(tr) != before {
		t.Fatalf("transitions on reload: %v", tr[before:])
	}
	if allB, _ := holdsRoutes(t, n.b); !allB {
		t.Fatal("B lost its routes on reload")
	}

	// Stop B: its routes go (A takes over and adds them), then stop A.
	b.signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(5 * time.Second):
		t.Fatal("lvsd B did not exit on SIGTERM")
	}
	if _, none := holdsRoutes(t, n.b); !none || strings.Contains(routeShow(t, n.b, "100"), "blackhole") {
		t.Fatalf("routes left on the stopped B:\n%s%s", routeShow(t, n.b, "100"), routeShow(t, n.b, "main"))
	}
	if !strings.Contains(routeShow(t, n.b, "100"), "via 192.0.2.253") {
		t.Fatal("B's route that is not ours was removed")
	}
	a.waitState(t, "VI_1", "MASTER", 6*time.Second)
	waitFor(t, 2*time.Second, "routes back on A", func() bool { all, _ := holdsRoutes(t, n.a); return all })
	a.signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(5 * time.Second):
		t.Fatal("lvsd A did not exit on SIGTERM")
	}
	if _, none := holdsRoutes(t, n.a); !none {
		t.Fatalf("routes left on the stopped A:\n%s%s", routeShow(t, n.a, "100"), routeShow(t, n.a, "main"))
	}
	for _, p := range []*lvsdProc{a, b} {
		if out := p.out.String(); strings.Contains(out, "adding route") || strings.Contains(out, "removing route") {
			t.Errorf("lvsd %s logged route errors:\n%s", p.name, grepLines(out, "route"))
		}
	}
}
