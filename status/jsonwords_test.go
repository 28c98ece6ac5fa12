package status

import (
	"testing"

	"github.com/lvsd/lvsd/conf"
)

// The vroutes and vrules words of the JSON dump, as keepalived 2.2.7 wrote
// them for the same lines (TestNetnsJSONDumpMatchesKeepalived compares the
// whole dump in netns).
func TestKeepalivedRouteAndRuleWords(t *testing.T) {
	text := "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n priority 100\n virtual_ipaddress {\n  192.0.2.100/24\n }\n" +
		" virtual_routes {\n  198.51.100.0/24 via 192.0.2.9 dev eth0\n  blackhole 203.0.113.128/25\n  203.0.113.16/28 dev eth0 scope link\n" +
		"  198.51.100.128/25 via 192.0.2.9 dev eth0 onlink protocol 5 no_track\n  default via 192.0.2.9 table 7\n }\n" +
		" virtual_rules {\n  from 192.0.2.100 table 200 priority 200\n  to 198.51.100.7 fwmark 7/0xff iif eth0 table 201 priority 201\n" +
		"  from all fwmark 5 priority 205 blackhole\n  to 2001:db8:3::/64 suppress_prefixlength 0 lookup main priority 204\n }\n}\n"
	cfg, diags := conf.Parse("t.conf", text, conf.Options{})
	if conf.MaxLevel(diags) >= conf.Error {
		t.Fatalf("%v", diags)
	}
	in := cfg.Instances[0]
	routes := []string{"prepend 198.51.100.0/24 via inet 192.0.2.9 dev eth0 proto 18", "add blackhole 203.0.113.128/25 proto 18 no_track",
		"prepend 203.0.113.16/28 dev eth0 proto 18 scope 253", "prepend 198.51.100.128/25 via inet 192.0.2.9 dev eth0 proto 5 onlink no_track",
		"prepend 0.0.0.0/0 via inet 192.0.2.9 table 7 proto 18 no_track"}
	rules := []string{"from 192.0.2.100 priority 200 tos 0x0 protocol 18 lookup 200",
		"from all to 198.51.100.7 priority 201 tos 0x0 fwmark 0x7/0xff iif eth0 protocol 18 lookup 201",
		"from 0.0.0.0/0 priority 205 tos 0x0 fwmark 0x5 protocol 18 type blackhole",
		"from all to 2001:db8:3::/64 priority 204 tos 0x0 suppress_prefixlen 0 protocol 18 lookup 254"}
	if len(in.Routes) != len(routes) || len(in.Rules) != len(rules) {
		t.Fatalf("%d routes, %d rules parsed", len(in.Routes), len(in.Rules))
	}
	for i, w := range routes {
		if got := kaRoute(in.Routes[i].Parsed); got != w {
			t.Errorf("route %d: %q, want %q", i, got, w)
		}
	}
	for i, w := range rules {
		if got := kaRule(in.Rules[i]); got != w {
			t.Errorf("rule %d: %q, want %q", i, got, w)
		}
	}
}
