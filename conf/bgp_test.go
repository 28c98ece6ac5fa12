package conf

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const bgpServers = `vrrp_instance VI_1 {
  interface lo
  virtual_router_id 1
}
virtual_server 203.0.113.10 80 {
  protocol TCP
  lb_algo mh
  lb_kind DR
  real_server 192.0.2.20 80 {
  }
}
virtual_server 203.0.113.10 443 {
  protocol TCP
  lb_algo mh
  lb_kind DR
  real_server 192.0.2.20 443 {
  }
}
virtual_server 2001:db8::10 80 {
  protocol TCP
  lb_algo mh
  lb_kind DR
  real_server 2001:db8::20 80 {
  }
}
`

// TestBGPConfig: the bgp block's keywords reach the typed model with their
// defaults, the block's attributes are inherited by the announce lines
// that do not set them, and each mistake is reported at its file:line.
func TestBGPConfig(t *testing.T) {
	cfg, diags := Parse("b.conf", bgpServers+`bgp {
  router_id 192.0.2.11
  local_as 65001
  listen_port 0
  hold_time 9
  drain_time 2.5
  community 65001:100 no_export
  med 10
  as_path_prepend 1
  vrrp_master VI_1
  neighbor 192.0.2.1 {
    remote_as 65000
    passive
    password s3cret
    multihop 2
    local_address 192.0.2.11
    port 1179
  }
  neighbor 2001:db8::1 {
    remote_as 4200000000
    hold_time 30
  }
  announce {
    203.0.113.10
    2001:db8::10 med 20 community 65001:7 as_path_prepend 0 vrrp_master VI_1
  }
}
`, Options{ConfigID: "x"})
	for _, d := range diags {
		if d.Level >= Warning {
			t.Errorf("%v", d)
		}
	}
	b := cfg.BGP
	if b == nil {
		t.Fatal("no bgp")
	}
	if b.RouterID != netip.MustParseAddr("192.0.2.11") || b.LocalAS != 65001 || b.ListenPort != 0 || b.HoldTime != 9*time.Second || b.DrainTime != 2500*time.Millisecond {
		t.Errorf("bgp: %+v", b)
	}
	if len(b.Neighbors) != 2 {
		t.Fatalf("neighbors %+v", b.Neighbors)
	}
	n0, n1 := b.Neighbors[0], b.Neighbors[1]
	if n0.Addr != netip.MustParseAddr("192.0.2.1") || n0.RemoteAS != 65000 || !n0.Passive || n0.Password != "s3cret" || n0.Multihop != 2 ||
		n0.LocalAddress != netip.MustParseAddr("192.0.2.11") || n0.Port != 1179 || n0.HoldTime != 9*time.Second || n0.Pos.Line != bgpLine(11) {
		t.Errorf("neighbor 0: %+v", n0)
	}
	if n1.RemoteAS != 4200000000 || n1.HoldTime != 30*time.Second || n1.Port != 179 || n1.Passive {
		t.Errorf("neighbor 1: %+v", n1)
	}
	if len(b.Announce) != 2 {
		t.Fatalf("announce %+v", b.Announce)
	}
	a0, a1 := b.Announce[0], b.Announce[1]
	if a0.Prefix != netip.MustParsePrefix("203.0.113.10/32") || *a0.Attrs.MED != 10 || a0.Attrs.Prepend != 1 || a0.VRRPInstance != "VI_1" ||
		len(a0.Attrs.Communities) != 2 || a0.Attrs.Communities[0] != 65001<<16|100 || a0.Attrs.Communities[1] != 0xFFFFFF01 {
		t.Errorf("announce 0: %+v", a0)
	}
	if a1.Prefix != netip.MustParsePrefix("2001:db8::10/128") || *a1.Attrs.MED != 20 || a1.Attrs.Prepend != 0 ||
		len(a1.Attrs.Communities) != 1 || a1.Attrs.Communities[0] != 65001<<16|7 {
		t.Errorf("announce 1: %+v", a1)
	}

	// Defaults.
	cfg, _ = Parse("b.conf", bgpServers+"bgp {\n router_id 192.0.2.11\n local_as 65001\n neighbor 192.0.2.1 {\n  remote_as 65000\n }\n}\n", Options{ConfigID: "x"})
	if b := cfg.BGP; b == nil || b.ListenPort != 179 || b.HoldTime != 90*time.Second || b.DrainTime != 0 || b.Neighbors[0].HoldTime != 90*time.Second {
		t.Errorf("defaults: %+v", cfg.BGP)
	}

	// Mistakes, each at its line.
	for _, c := range []struct{ text, want string }{
		{"bgp {\n local_as 65001\n}\n", "b.conf:@1: error: bgp: router_id must be an IPv4 address - BGP is not started"},
		{"bgp {\n router_id 192.0.2.11\n}\n", "b.conf:@1: error: bgp: no local_as - BGP is not started"},
		{"bgp {\n router_id 192.0.2.11\n local_as 0\n}\n", "b.conf:@3: error: local_as: invalid AS number '0'"},
		{"bgp {\n router_id 192.0.2.11\n local_as 1\n hold_time 2\n}\n", "b.conf:@4: error: hold_time: 2 outside range [3, 65535]"},
		{"bgp {\n router_id 192.0.2.11\n local_as 1\n community 70000:1\n}\n", "b.conf:@4: error: community: invalid community '70000:1'"},
		{"bgp {\n router_id 192.0.2.11\n local_as 1\n neighbor 192.0.2.1 {\n }\n}\n", "b.conf:@4: error: neighbor: neighbor 192.0.2.1: no remote_as - ignoring the neighbor"},
		{"bgp {\n router_id 192.0.2.11\n local_as 1\n neighbor 192.0.2.1 {\n  remote_as 2\n }\n neighbor 192.0.2.1 {\n  remote_as 3\n }\n}\n", "b.conf:@7: error: neighbor: neighbor 192.0.2.1 already defined at b.conf:@4 - ignoring"},
		{"bgp {\n router_id 192.0.2.11\n local_as 1\n announce {\n  203.0.113.99\n }\n}\n", "b.conf:@5: error: announce: announce 203.0.113.99: no virtual_server has this address"},
		{"bgp {\n router_id 192.0.2.11\n local_as 1\n announce {\n  203.0.113.10 weight 3\n }\n}\n", "b.conf:@5: error: announce: announce 203.0.113.10: unknown option 'weight'"},
		{"bgp {\n router_id 192.0.2.11\n local_as 1\n announce {\n  203.0.113.10 vrrp_master VI_9\n }\n}\n", "b.conf:@5: error: announce: announce 203.0.113.10: vrrp_master VI_9 is not defined - ignoring"},
		{"bgp {\n router_id 192.0.2.11\n local_as 1\n}\nbgp {\n}\n", "b.conf:@5: error: bgp: bgp already defined at b.conf:@1 - ignoring"},
		{"bgp {\n router_id 192.0.2.11\n local_as 1\n}\n", "b.conf:@1: warning: bgp: no neighbor: nothing is announced"},
	} {
		_, diags := Parse("b.conf", bgpServers+c.text, Options{ConfigID: "x"})
		c.want = relLines(c.want)
		found := false
		for _, d := range diags {
			if strings.HasPrefix(d.String(), c.want) {
				found = true
			}
		}
		if !found {
			t.Errorf("%q: want %q, got %v", c.text, c.want, diagStrings(diags))
		}
	}
}

// TestBGPKeywordsSafeForKeepalived: keepalived reads an unknown block's
// lines as top-level statements, so no keyword of the bgp block may be a
// top-level keyword of keepalived's (vrrp_instance inside bgp would define
// an instance for keepalived).
func TestBGPKeywordsSafeForKeepalived(t *testing.T) {
	for _, sec := range []string{"bgp", "bgp_neighbor"} {
		for kw := range keywordTable[sec] {
			if _, top := keywordTable["top"][kw]; top {
				t.Errorf("%s keyword %s is a top-level keyword of keepalived", sec, kw)
			}
		}
	}
}

// bgpLine is the line number of line n (1: bgp) of a block after bgpServers.
func bgpLine(n int) int { return strings.Count(bgpServers, "\n") + n }

// relLines replaces each "@N" by bgpLine(N).
func relLines(s string) string {
	return regexp.MustCompile(`@(\d+)`).ReplaceAllStringFunc(s, func(m string) string {
		n, _ := strconv.Atoi(m[1:])
		return strconv.Itoa(bgpLine(n))
	})
}

const bgpGroupServers = `virtual_server_group VSG_1 {
  203.0.113.20-22 80
  203.0.113.30 80
  2001:db8::20 80
  fwmark 9
}
virtual_server_group VSG_F {
  fwmark 8
}
virtual_server_group VSG_BIG {
  2001:db8:1::/100 80
}
virtual_server group VSG_1 {
  protocol TCP
  lb_algo mh
  lb_kind DR
  real_server 192.0.2.20 80 {
  }
}
virtual_server group VSG_F {
  protocol TCP
  lb_algo mh
  lb_kind DR
  real_server 192.0.2.20 80 {
  }
}
virtual_server group VSG_BIG {
  protocol TCP
  lb_algo mh
  lb_kind DR
  real_server 2001:db8::20 80 {
  }
}
virtual_server fwmark 7 {
  lb_algo mh
  lb_kind DR
  real_server 192.0.2.20 0 {
  }
}
virtual_server 203.0.113.30 443 {
  protocol TCP
  lb_algo mh
  lb_kind DR
  real_server 192.0.2.20 443 {
  }
}
`

// TestBGPAnnounceGroupsFwmarks: a group line announces every address of
// the group's members (ranges expanded), each following the quorum of the
// virtual servers of its address (the group's, and one at that
// address:port); an address line can name a group member; an fwmark
// virtual server is announced at the address its line names; ipvs_sysctls
// is on by default. Mistakes at their file:line.
func TestBGPAnnounceGroupsFwmarks(t *testing.T) {
	const head = "bgp {\n router_id 192.0.2.11\n local_as 1\n neighbor 192.0.2.1 {\n  remote_as 2\n }\n"
	cfg, diags := Parse("b.conf", bgpGroupServers+head+` announce {
  group VSG_1 med 5
  203.0.113.40 fwmark 7 community 65001:7
  203.0.113.41 fwmark 9
 }
}
`, Options{ConfigID: "x"})
	for _, d := range diags {
		if d.Level >= Warning {
			t.Errorf("%v", d)
		}
	}
	if cfg.BGP == nil || !cfg.BGP.IPVSSysctls {
		t.Fatalf("bgp: %+v", cfg.BGP)
	}
	var got []string
	for _, a := range cfg.BGP.Announce {
		med := "-"
		if a.Attrs.MED != nil {
			med = strconv.Itoa(int(*a.Attrs.MED))
		}
		got = append(got, a.Prefix.String()+" med "+med+" "+strings.Join(a.VirtualServers, ","))
	}
	const want = "203.0.113.20/32 med 5 GROUP/VSG_1/TCP; 203.0.113.21/32 med 5 GROUP/VSG_1/TCP; " +
		"203.0.113.22/32 med 5 GROUP/VSG_1/TCP; 203.0.113.30/32 med 5 GROUP/VSG_1/TCP,TCP/203.0.113.30:443; " +
		"2001:db8::20/128 med 5 GROUP/VSG_1/TCP; 203.0.113.40/32 med - FWM/7; 203.0.113.41/32 med - GROUP/VSG_1/TCP"
	if strings.Join(got, "; ") != want {
		t.Errorf("announced:\n%s\nwant:\n%s", strings.Join(got, "; "), want)
	}

	// An address line naming a group member; ipvs_sysctls off.
	cfg, _ = Parse("b.conf", bgpGroupServers+head+" ipvs_sysctls off\n announce {\n  203.0.113.21\n }\n}\n", Options{ConfigID: "x"})
	if b := cfg.BGP; b == nil || b.IPVSSysctls || len(b.Announce) != 1 || strings.Join(b.Announce[0].VirtualServers, ",") != "GROUP/VSG_1/TCP" {
		t.Errorf("member line: %+v", cfg.BGP)
	}

	hl := strings.Count(bgpGroupServers, "\n")
	for _, c := range []struct{ text, want string }{
		{" announce {\n  group VSG_9\n }\n", "b.conf:8: error: announce: announce group VSG_9: no virtual_server uses a virtual_server_group of that name - ignoring"},
		{" announce {\n  group VSG_F\n }\n", "b.conf:8: error: announce: announce group VSG_F: the group has no address"},
		{" announce {\n  group VSG_BIG\n }\n", "b.conf:8: error: announce: announce group VSG_BIG: more than 1024 addresses - ignoring the line"},
		{" announce {\n  203.0.113.40 fwmark 6\n }\n", "b.conf:8: error: announce: announce 203.0.113.40: no virtual_server has fwmark 6 - ignoring"},
		{" announce {\n  group VSG_1 fwmark 7\n }\n", "b.conf:8: error: announce: announce group VSG_1: invalid fwmark '7'"},
		{" announce {\n  group VSG_1\n  203.0.113.21\n }\n", "b.conf:9: error: announce: announce 203.0.113.21 already given at b.conf:8 - ignoring"},
		{" announce {\n  group\n }\n", "b.conf:8: error: group: announce group: no group name"},
		{" ipvs_sysctls maybe\n}\n", "b.conf:7: error: ipvs_sysctls: invalid boolean 'maybe'"},
	} {
		_, diags := Parse("b.conf", bgpGroupServers+head+c.text+"}\n", Options{ConfigID: "x"})
		want := regexp.MustCompile(`b\.conf:(\d+)`).ReplaceAllStringFunc(c.want, func(m string) string {
			n, _ := strconv.Atoi(m[len("b.conf:"):])
			return "b.conf:" + strconv.Itoa(hl+n)
		})
		found := false
		for _, d := range diags {
			found = found || strings.HasPrefix(d.String(), want)
		}
		if !found {
			t.Errorf("%q: want %q, got %v", c.text, want, diagStrings(diags))
		}
	}
}
