package vrrp

import (
	"strings"
	"testing"
	"time"
)

const ruleConf = `
static_rules {
  from 203.0.113.0/24 table 100 priority 100
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  priority 100
  advert_int 1
  garp_master_delay 0
  garp_master_repeat 1
  virtual_ipaddress { 192.0.2.100/24 }
  virtual_routes {
    198.51.100.0/24 via 192.0.2.254 table 100
  }
  virtual_rules {
    from 192.0.2.100 table 100 priority 200%s
  }
}
`

// Virtual rules follow MASTER as the routes do, after them on becoming
// MASTER and before them on leaving it; a reload adds and removes the
// rules of a MASTER in place; the static rule is added at start.
func TestEngineRules(t *testing.T) {
	text := func(extra string) string { return strings.Replace(ruleConf, "%s", extra, 1) }
	h := newEngineHarness(t, text(""), nil)
	const rt = "198.51.100.0/24 via 192.0.2.254 table 100"
	const ru1 = "from 192.0.2.100/32 priority 200 lookup 100 protocol 18"
	const ru2 = "from 198.51.100.9/32 priority 201 goto 300 protocol 18"
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
	want("start", "rule add from 203.0.113.0/24 priority 100 lookup 100 protocol 18", "rule del "+ru1, "route del "+rt, "del 192.0.2.100/24")
	h.advance(5 * time.Second)
	if s := h.states(); s["VI_1"] != "MASTER/100" {
		t.Fatalf("states %v", s)
	}
	want("master", "add 192.0.2.100/24", "route add "+rt, "rule add "+ru1, "garp 192.0.2.100")
	if err := h.e.Apply(confText(t, text("\n    from 198.51.100.9 priority 201 goto 300"))); err != nil {
		t.Fatal(err)
	}
	h.e.flush()
	want("reload add", "rule add "+ru2)
	if err := h.e.Apply(confText(t, strings.Replace(text("\n    from 198.51.100.9 priority 201 goto 300"), "from 192.0.2.100 table 100 priority 200", "", 1))); err != nil {
		t.Fatal(err)
	}
	h.e.flush()
	want("reload remove", "rule del "+ru1)
	if err := h.e.Apply(confText(t, "global_defs {\n router_id x\n}\n")); err != nil {
		t.Fatal(err)
	}
	h.e.flush()
	want("instance gone", "rule del "+ru2, "route del "+rt, "del 192.0.2.100/24")
}
