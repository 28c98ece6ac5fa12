package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// static_rules and virtual_rules side by side with keepalived 2.2.7: the
// static rules from start to stop, the virtual ones while VI_1 is MASTER
// (removed in FAULT, when the tracked file says so, and back when it is
// MASTER again), none left after SIGTERM; each step `ip rule show` and
// `ip -6 rule show` are the same in both namespaces.
const rulesCompareConf = `global_defs {
  router_id rules
}
track_file down {
  file {{SHARED}}/down
  weight 0
}
static_rules {
  from 203.0.113.0/24 table 100 priority 100
  to 198.51.100.0/24 iif eth0 lookup main priority 101
  not from 192.0.2.0/24 fwmark 0x10/0xff table 101 priority 102
  from 203.0.113.5 priority 103 prohibit
  from 2001:db8:1::/48 oif eth0 table 102 suppress_prefixlength 0 priority 104
  from 203.0.113.6 table 103
}
` + kaVI1 + `  virtual_ipaddress {
    192.0.2.100/24
  }
  track_file {
    down
  }
  virtual_rules {
    from 192.0.2.100 table 200 priority 200
    to 198.51.100.7 fwmark 7 table 201 priority 201
    from all priority 202 goto 300
    from 2001:db8:2::1 table 202 priority 203 no_track
    to 2001:db8:3::/64 blackhole
  }
}
`

func TestNetnsRulesMatchKeepalived(t *testing.T) {
	ka, lv, shared := startPair(t, map[string]string{"down": "0\n"}, rulesCompareConf)
	both := []*kaSide{ka, lv}
	view := func(s *kaSide) string {
		return runCmd(t, "ip", "-n", s.ns, "rule", "show") + runCmd(t, "ip", "-n", s.ns, "-6", "rule", "show")
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, s := range both {
				t.Logf("%s's rules:\n%s", s.name, view(s))
			}
		}
	})
	has := func(s *kaSide, what string) bool { return strings.Contains(view(s), what) }
	same := func(step string) {
		t.Helper()
		if a, b := view(ka), view(lv); a != b {
			t.Errorf("%s: keepalived's namespace:\n%s\nlvsd's:\n%s", step, a, b)
		}
	}
	static := []string{"100:\tfrom 203.0.113.0/24 lookup 100 proto keepalived", "103:\tfrom 203.0.113.5 prohibit proto keepalived",
		"16384:\tfrom 203.0.113.6 lookup 103 proto keepalived", "104:\tfrom 2001:db8:1::/48 oif eth0 lookup 102 suppress_prefixlength 0 proto keepalived"}
	virtual := []string{"200:\tfrom 192.0.2.100 lookup 200 proto keepalived", "202:\tfrom all goto 300 [unresolved] proto keepalived",
		"203:\tfrom 2001:db8:2::1 lookup 202", "16384:\tfrom all to 2001:db8:3::/64 blackhole proto keepalived"}
	all := func(s *kaSide, lines []string) bool {
		for _, l := range lines {
			if !has(s, l) {
				return false
			}
		}
		return true
	}
	none := func(s *kaSide, lines []string) bool {
		for _, l := range lines {
			if has(s, l) {
				return false
			}
		}
		return true
	}
	for _, s := range both {
		waitUntil(t, 20*time.Second, s.name+": VI_1 MASTER with its rules", func() bool { return all(s, static) && all(s, virtual) })
	}
	time.Sleep(300 * time.Millisecond)
	same("MASTER")
	// A static rule and a virtual one deleted by hand: keepalived puts the
	// static one back at once and its MASTER resigns and takes over again
	// (adding its rules back), lvsd's safety net puts both back; either
	// way ip rule show is as before. (runCmd fails the test unless the
	// deletion succeeds: the rule was there.)
	for _, s := range both {
		runCmd(t, "ip", "-n", s.ns, "rule", "del", "from", "203.0.113.0/24", "table", "100", "priority", "100")
		runCmd(t, "ip", "-n", s.ns, "rule", "del", "from", "192.0.2.100", "table", "200", "priority", "200")
	}
	for _, s := range both {
		waitUntil(t, 15*time.Second, s.name+": the rules deleted by hand back", func() bool { return all(s, static) && all(s, virtual) })
	}
	time.Sleep(300 * time.Millisecond)
	same("rules deleted by hand")
	setDown := func(v string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(shared, "down"), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	setDown("1")
	for _, s := range both {
		waitUntil(t, 10*time.Second, s.name+": VI_1 in FAULT without its rules", func() bool { return none(s, virtual) && all(s, static) })
	}
	time.Sleep(300 * time.Millisecond)
	same("FAULT")
	setDown("0")
	for _, s := range both {
		waitUntil(t, 20*time.Second, s.name+": VI_1 MASTER again with its rules", func() bool { return all(s, virtual) })
	}
	time.Sleep(300 * time.Millisecond)
	same("MASTER again")
	stopBoth(t, both)
	for _, s := range both {
		if !none(s, static) || !none(s, virtual) {
			t.Errorf("%s left rules behind:\n%s", s.name, view(s))
		}
	}
	same("after stop")
}
