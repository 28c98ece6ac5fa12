package conf

import (
	"strings"
	"testing"
)

// TestParseRules: the rule words keepalived 2.2.7 accepts, as lvsd reads
// them (String), and the lines it drops with an error naming file:line.
func TestParseRules(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"from 192.0.2.0/24 table 100 priority 100", "from 192.0.2.0/24 priority 100 lookup 100 protocol 18"},
		{"to 198.51.100.7 lookup main pref 5", "error: static_rules: unknown rule option pref"},
		{"not to 198.51.100.0/24 lookup main preference 7", "not from all to 198.51.100.0/24 priority 7 lookup 254 protocol 18"},
		{"from all fwmark 0x10/0xff iif eth0 table 7 order 9", "from all priority 9 fwmark 0x10/0xff iif eth0 lookup 7 protocol 18"},
		{"from 2001:db8::/32 oif eth0 table 9 suppress_prefixlength 0 priority 3", "inet6 from 2001:db8::/32 priority 3 oif eth0 suppress_prefixlength 0 lookup 9 protocol 18"},
		{"from 192.0.2.1 priority 10 goto 20", "from 192.0.2.1/32 priority 10 goto 20 protocol 18"},
		{"from 192.0.2.1 priority 10 type blackhole no_track", "from 192.0.2.1/32 priority 10 blackhole"},
		{"from 192.0.2.1 priority 10 prohibit protocol 4", "from 192.0.2.1/32 priority 10 prohibit protocol 18\n" +
			"error: static_rules: rule cannot be tracked if protocol is not RTPROT_KEEPALIVED(18), resetting protocol"},
		{"inet6 table 5", "error: static_rules: unknown rule option 5"}, // keepalived skips the word after inet6
		{"inet6 - table 5", "inet6 from all priority 16384 lookup 5 protocol 18\n" +
			"warning: static_rules: rule has no preference specified - setting to 16384. This is probably not what you want."},
		{"from 192.0.2.1 priority 20 goto 10", "error: static_rules: invalid rule - preference 20 >= goto target 10"},
		{"from 192.0.2.1 goto 10", "error: static_rules: invalid rule - goto target 10 specified without preference"},
		{"from 192.0.2.1 priority 1", "error: static_rules: no action specified for rule - ignoring"},
		{"from 192.0.2.1 table 1 nop priority 1", "error: static_rules: cannot specify more than one of table/nop/goto/blackhole/prohibit/unreachable for a rule"},
		{"from 192.0.2.0/24 to 2001:db8::1 table 1", "error: static_rules: rule specification has mixed IPv4 and IPv6"},
		{"from 192.0.2.1 table 0", "error: static_rules: routing table 0 not valid for a rule (1-4294967295, main, local or default)"},
		{"from 192.0.2.1 fwmark 1/x table 1", "error: static_rules: invalid rule fwmark 1/x"},
		{"from 192.0.2.1 suppress_prefixlength 0 nop priority 1", "error: static_rules: suppressor specified for non table action - skipping"},
		{"from 192.0.2.1 uidrange 1-2 table 1", "error: static_rules: rule option 'uidrange' is not supported"},
		{"from 192.0.2.1 table", "error: static_rules: 'table' needs a value"},
	} {
		c, diags := Parse("r.conf", "static_rules {\n "+tc.line+"\n}\n", Options{})
		var got []string
		for _, r := range c.StaticRules {
			got = append(got, r.Rule.String())
		}
		for _, d := range diags {
			got = append(got, strings.TrimPrefix(d.String(), "r.conf:2: "))
		}
		if g := strings.Join(got, "\n"); g != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.line, g, tc.want)
		}
	}
}

// TestParseRulesAutoPriority: the rules given no priority are numbered from
// 16384 down, by family, across static_rules and virtual_rules.
func TestParseRulesAutoPriority(t *testing.T) {
	c, _ := Parse("r.conf", "static_rules {\n from 192.0.2.1 table 1\n from 2001:db8::1 table 1\n}\n"+
		"vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n virtual_rules {\n to 192.0.2.2 table 2\n}\n}\n", Options{})
	if len(c.StaticRules) != 2 || len(c.Instances) != 1 || len(c.Instances[0].Rules) != 1 {
		t.Fatalf("rules %+v %+v", c.StaticRules, c.Instances)
	}
	if a, b, v := c.StaticRules[0].Rule.Priority, c.StaticRules[1].Rule.Priority, c.Instances[0].Rules[0].Rule.Priority; a != 16384 || b != 16384 || v != 16383 {
		t.Errorf("priorities %d %d %d, want 16384 16384 16383", a, b, v)
	}
}
