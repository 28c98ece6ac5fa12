package ipvs

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/lvsd/lvsd/conf"
)

// parse parses a configuration and fails on any error.
func parse(t *testing.T, text string) *conf.Config {
	t.Helper()
	cfg, diags := conf.Parse("test.conf", text, conf.Options{ConfigID: "test"})
	for _, d := range diags {
		if d.Level >= conf.Error {
			t.Fatalf("config: %v", d)
		}
	}
	return cfg
}

func desiredString(t *testing.T, cfg *conf.Config, h map[string]*VSHealth) string {
	t.Helper()
	d := ComputeDesired(cfg, h)
	for _, p := range d.Problems {
		t.Logf("problem: %s", p)
	}
	return d.Table.String()
}

func lines(s ...string) string { return strings.Join(s, "\n") + "\n" }

func TestDesiredTable(t *testing.T) {
	cases := []struct {
		name string
		conf string
		want string
	}{
		{
			name: "NAT service with weights",
			conf: `virtual_server 192.0.2.1 80 {
				protocol TCP
				lvs_sched wrr
				lvs_method NAT
				protocol TCP
				real_server 10.0.0.1 8080 { weight 1 }
				real_server 10.0.0.2 8080 { weight 3 }
			}`,
			want: lines("TCP 192.0.2.1:80 wrr",
				"  -> 10.0.0.1:8080 masq w1",
				"  -> 10.0.0.2:8080 masq w3"),
		},
		{
			name: "default scheduler and weight, UDP",
			conf: `virtual_server 192.0.2.1 53 {
				protocol TCP
				protocol UDP
				ops
				real_server 10.0.0.1 53 { }
			}`,
			want: lines("UDP 192.0.2.1:53 wlc ops",
				"  -> 10.0.0.1:53 masq w1"),
		},
		{
			name: "DR takes the virtual port, per real server method",
			conf: `virtual_server 192.0.2.1 80 {
				protocol TCP
				lb_kind DR
				real_server 10.0.0.1 80 { }
				real_server 10.0.0.2 { }
				real_server 10.0.0.3 80 { lvs_method NAT }
			}`,
			want: lines("TCP 192.0.2.1:80 wlc",
				"  -> 10.0.0.1:80 route w1",
				"  -> 10.0.0.2:80 route w1",
				"  -> 10.0.0.3:80 masq w1"),
		},
		{
			name: "tunnels: ipip, gue with port and checksum, gre",
			conf: `virtual_server 192.0.2.1 80 {
				protocol TCP
				lvs_method TUN
				real_server 10.0.0.1 80 { }
				real_server 10.0.0.2 80 { lvs_method TUN type gue port 6080 csum }
				real_server 10.0.0.3 80 { lvs_method TUN type gre }
				real_server 10.0.0.4 80 { lvs_method TUN type gue port 5555 remcsum }
			}`,
			want: lines("TCP 192.0.2.1:80 wlc",
				"  -> 10.0.0.1:80 tunnel w1",
				"  -> 10.0.0.2:80 tunnel w1 gue port 6080 csum",
				"  -> 10.0.0.3:80 tunnel w1 gre",
				"  -> 10.0.0.4:80 tunnel w1 gue port 5555 remcsum"),
		},
		{
			name: "fwmark with persistence and granularity",
			conf: `virtual_server fwmark 7 {
				lvs_sched sh
				sh-port
				sh-fallback
				persistence_timeout 600
				persistence_granularity 255.255.255.0
				lvs_method DR
				real_server 10.0.0.1 0 { weight 2 }
			}`,
			want: lines("FWM 7 sh persistent|flag-1|flag-2 timeout 600 mask 255.255.255.0",
				"  -> 10.0.0.1:0 route w2"),
		},
		{
			name: "persistence default timeout, port-less service",
			conf: `virtual_server 192.0.2.1 {
				protocol TCP
				persistence_timeout
				lvs_method DR
				real_server 10.0.0.1 { }
			}`,
			want: lines("TCP 192.0.2.1:0 wlc persistent timeout 360",
				"  -> 10.0.0.1:0 route w1"),
		},
		{
			name: "mh flags only with mh, flag-N always",
			conf: `virtual_server 192.0.2.1 80 {
				protocol TCP
				lvs_sched mh
				mh-port
				flag-3
				real_server 10.0.0.1 80 { }
			}
			virtual_server 192.0.2.2 80 {
			    protocol TCP
				lvs_sched rr
				sh-port
				real_server 10.0.0.1 80 { }
			}`,
			want: lines("TCP 192.0.2.1:80 mh flag-2|flag-3",
				"  -> 10.0.0.1:80 masq w1",
				"TCP 192.0.2.2:80 rr",
				"  -> 10.0.0.1:80 masq w1"),
		},
		{
			name: "IPv6 service and fwmark family from real servers",
			conf: `virtual_server 2001:db8::1 443 {
				protocol TCP
				lvs_sched rr
				real_server 2001:db8:1::1 443 { }
			}
			virtual_server fwmark 9 {
				persistence_timeout 30
				persistence_granularity 64
				real_server 2001:db8:1::2 443 { }
			}
			virtual_server fwmark 10 {
				lvs_method TUN
				ip_family inet6
				real_server 10.0.0.1 0 { }
			}`,
			want: lines("TCP [2001:db8::1]:443 rr",
				"  -> [2001:db8:1::1]:443 masq w1",
				"FWM 9 IPv6 wlc persistent timeout 30 mask /64",
				"  -> [2001:db8:1::2]:443 masq w1",
				"FWM 10 IPv6 wlc",
				"  -> 10.0.0.1:0 tunnel w1"),
		},
		{
			name: "virtual server group: addresses, ranges, fwmarks",
			conf: `virtual_server_group web {
				192.0.2.1 80
				192.0.2.10-12 80
				192.0.2.254-192.0.3.1 8080
				fwmark 5
			}
			virtual_server group web {
			    protocol TCP
				lvs_sched rr
				lvs_method DR
				real_server 10.0.0.1 80 { weight 2 }
			}`,
			want: lines("TCP 192.0.2.1:80 rr",
				"  -> 10.0.0.1:80 route w2",
				"TCP 192.0.2.10:80 rr",
				"  -> 10.0.0.1:80 route w2",
				"TCP 192.0.2.11:80 rr",
				"  -> 10.0.0.1:80 route w2",
				"TCP 192.0.2.12:80 rr",
				"  -> 10.0.0.1:80 route w2",
				"TCP 192.0.2.254:8080 rr",
				"  -> 10.0.0.1:8080 route w2",
				"TCP 192.0.2.255:8080 rr",
				"  -> 10.0.0.1:8080 route w2",
				"TCP 192.0.3.0:8080 rr",
				"  -> 10.0.0.1:8080 route w2",
				"TCP 192.0.3.1:8080 rr",
				"  -> 10.0.0.1:8080 route w2",
				"FWM 5 rr",
				"  -> 10.0.0.1:80 route w2"),
		},
		{
			name: "group used by TCP and UDP virtual servers",
			conf: `virtual_server_group dns {
				192.0.2.53 53
			}
			virtual_server group dns {
			    protocol TCP
				protocol UDP
				real_server 10.0.0.1 53 { }
			}
			virtual_server group dns {
			    protocol TCP
				protocol TCP
				real_server 10.0.0.2 53 { }
			}`,
			want: lines("TCP 192.0.2.53:53 wlc",
				"  -> 10.0.0.2:53 masq w1",
				"UDP 192.0.2.53:53 wlc",
				"  -> 10.0.0.1:53 masq w1"),
		},
		{
			name: "sorry server with inhibit is present at weight 0 while unused",
			conf: `virtual_server 192.0.2.1 80 {
				protocol TCP
				sorry_server 10.0.0.99 80
				sorry_server_inhibit
				real_server 10.0.0.1 80 { }
			}`,
			want: lines("TCP 192.0.2.1:80 wlc",
				"  -> 10.0.0.1:80 masq w1",
				"  -> 10.0.0.99:80 masq w0"),
		},
		{
			name: "sorry server without inhibit is absent while unused",
			conf: `virtual_server 192.0.2.1 80 {
				protocol TCP
				sorry_server 10.0.0.99 80
				real_server 10.0.0.1 80 { }
			}`,
			want: lines("TCP 192.0.2.1:80 wlc",
				"  -> 10.0.0.1:80 masq w1"),
		},
		{
			name: "thresholds",
			conf: `virtual_server 192.0.2.1 80 {
				protocol TCP
				real_server 10.0.0.1 80 {
					uthreshold 100
					lthreshold 10
				}
			}`,
			want: lines("TCP 192.0.2.1:80 wlc",
				"  -> 10.0.0.1:80 masq w1 thresholds 10-100"),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := parse(t, c.conf)
			h, _ := buildHealth(cfg, nil)
			if got := desiredString(t, cfg, h); got != c.want {
				t.Errorf("desired:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

func TestDesiredConflictingServices(t *testing.T) {
	cfg := parse(t, `virtual_server_group g {
		192.0.2.1-2 80
	}
	virtual_server 192.0.2.2 80 {
	    protocol TCP
		real_server 10.0.0.9 80 { }
	}
	virtual_server group g {
	    protocol TCP
		real_server 10.0.0.1 80 { }
	}`)
	d := ComputeDesired(cfg, nil)
	want := lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.1:80 masq w1",
		"TCP 192.0.2.2:80 wlc", "  -> 10.0.0.9:80 masq w1")
	if got := d.Table.String(); got != want {
		t.Errorf("desired:\n%s\nwant:\n%s", got, want)
	}
	if len(d.Problems) != 1 || !strings.Contains(d.Problems[0], "TCP 192.0.2.2:80 is already programmed for TCP/192.0.2.2:80") {
		t.Errorf("problems: %q", d.Problems)
	}
	if d.Origin[tcpKey("192.0.2.1", 80)] != "GROUP/g/TCP" {
		t.Errorf("origin: %v", d.Origin)
	}
}

func TestDesiredHugeRangeIsBounded(t *testing.T) {
	cfg := parse(t, `virtual_server_group big {
		10.0.0.0/8 80
	}
	virtual_server group big {
	    protocol TCP
		real_server 192.0.2.1 80 { }
	}`)
	d := ComputeDesired(cfg, nil)
	if len(d.Table) != maxGroupServices || len(d.Problems) != 1 {
		t.Fatalf("%d services, problems %q", len(d.Table), d.Problems)
	}
}

// healthSeq drives the health of a configuration through events and checks
// the desired table and quorum after each.
type healthStep struct {
	ev      *HealthEvent // nil: initial state
	want    string
	quorum  bool
	changes string // quorum transitions: "up", "down", "init-down", ""
}

func runHealth(t *testing.T, cfg *conf.Config, steps []healthStep) {
	t.Helper()
	vs := cfg.VirtualServers[0]
	h, init := buildHealth(cfg, nil)
	for i, st := range steps {
		var changes []quorumChange
		if st.ev == nil {
			changes = init
		} else {
			_, ch := applyHealth(vs, h[st.ev.VS], *st.ev)
			if ch != nil {
				changes = append(changes, *ch)
			}
		}
		var got []string
		for _, c := range changes {
			s := "down"
			if c.Up {
				s = "up"
			}
			if c.Init {
				s = "init-" + s
			}
			got = append(got, s)
		}
		if g := strings.Join(got, ","); g != st.changes {
			t.Errorf("step %d: quorum changes %q, want %q", i, g, st.changes)
		}
		if h[vs.Key()].QuorumUp != st.quorum {
			t.Errorf("step %d: quorum up %v, want %v (sum %d)", i, h[vs.Key()].QuorumUp, st.quorum, WeightSum(vs, h[vs.Key()]))
		}
		if got := ComputeDesired(cfg, h).Table.String(); got != st.want {
			t.Errorf("step %d: desired:\n%s\nwant:\n%s", i, got, st.want)
		}
	}
}

func ev(vs, rs string, up bool, w int) *HealthEvent {
	return &HealthEvent{VS: vs, RS: netip.MustParseAddrPort(rs), Up: up, Weight: w}
}

func TestHealthInhibitAndRemoval(t *testing.T) {
	cfg := parse(t, `virtual_server 192.0.2.1 80 {
		protocol TCP
		real_server 10.0.0.1 80 { weight 2 }
		real_server 10.0.0.2 80 {
			weight 3
			inhibit_on_failure
		}
	}`)
	vs := "TCP/192.0.2.1:80"
	runHealth(t, cfg, []healthStep{
		{want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.1:80 masq w2", "  -> 10.0.0.2:80 masq w3"), quorum: true, changes: "init-up"},
		{ev: ev(vs, "10.0.0.1:80", false, -1), quorum: true,
			want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.2:80 masq w3")},
		{ev: ev(vs, "10.0.0.2:80", false, -1), quorum: false, changes: "down",
			want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.2:80 masq w0")},
		{ev: ev(vs, "10.0.0.2:80", true, -1), quorum: true, changes: "up",
			want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.2:80 masq w3")},
		{ev: ev(vs, "10.0.0.1:80", true, -1), quorum: true,
			want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.1:80 masq w2", "  -> 10.0.0.2:80 masq w3")},
	})
}

func TestHealthInhibitInheritedFromVirtualServer(t *testing.T) {
	cfg := parse(t, `virtual_server 192.0.2.1 80 {
		protocol TCP
		inhibit_on_failure
		real_server 10.0.0.1 80 { }
		real_server 10.0.0.2 80 { inhibit_on_failure off }
	}`)
	vs := "TCP/192.0.2.1:80"
	runHealth(t, cfg, []healthStep{
		{want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.1:80 masq w1", "  -> 10.0.0.2:80 masq w1"), quorum: true, changes: "init-up"},
		{ev: ev(vs, "10.0.0.1:80", false, -1), quorum: true,
			want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.1:80 masq w0", "  -> 10.0.0.2:80 masq w1")},
		{ev: ev(vs, "10.0.0.2:80", false, -1), quorum: false, changes: "down",
			want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.1:80 masq w0")},
	})
}

func TestHealthSorryServer(t *testing.T) {
	cfg := parse(t, `virtual_server 192.0.2.1 80 {
		protocol TCP
		sorry_server 10.0.0.99 8080
		real_server 10.0.0.1 80 { }
		real_server 10.0.0.2 80 { inhibit_on_failure }
	}`)
	vs := "TCP/192.0.2.1:80"
	runHealth(t, cfg, []healthStep{
		{want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.1:80 masq w1", "  -> 10.0.0.2:80 masq w1"), quorum: true, changes: "init-up"},
		{ev: ev(vs, "10.0.0.1:80", false, -1), quorum: true,
			want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.2:80 masq w1")},
		// Quorum lost: the sorry server replaces the real servers; an
		// inhibited one stays at weight 0.
		{ev: ev(vs, "10.0.0.2:80", false, -1), quorum: false, changes: "down",
			want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.2:80 masq w0", "  -> 10.0.0.99:8080 masq w1")},
		// Quorum regained: the sorry server leaves.
		{ev: ev(vs, "10.0.0.1:80", true, -1), quorum: true, changes: "up",
			want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.1:80 masq w1", "  -> 10.0.0.2:80 masq w0")},
	})
}

func TestHealthSorryServerInhibitAndMethod(t *testing.T) {
	cfg := parse(t, `virtual_server 192.0.2.1 80 {
		protocol TCP
		lvs_method DR
		sorry_server 10.0.0.99 80
		sorry_server_inhibit
		sorry_server_lvs_method NAT
		real_server 10.0.0.1 80 { }
	}`)
	vs := "TCP/192.0.2.1:80"
	runHealth(t, cfg, []healthStep{
		{want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.1:80 route w1", "  -> 10.0.0.99:80 masq w0"), quorum: true, changes: "init-up"},
		{ev: ev(vs, "10.0.0.1:80", false, -1), quorum: false, changes: "down",
			want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.99:80 masq w1")},
	})
}

func TestHealthQuorumHysteresis(t *testing.T) {
	// quorum 4, hysteresis 1: gained at >= 5, lost below 3.
	cfg := parse(t, `virtual_server 192.0.2.1 80 {
		protocol TCP
		quorum 4
		hysteresis 1
		sorry_server 10.0.0.99 80
		real_server 10.0.0.1 80 { weight 2 }
		real_server 10.0.0.2 80 { weight 2 }
		real_server 10.0.0.3 80 { weight 2 }
	}`)
	vs := "TCP/192.0.2.1:80"
	all := lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.1:80 masq w2", "  -> 10.0.0.2:80 masq w2", "  -> 10.0.0.3:80 masq w2")
	sorry := lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.99:80 masq w1")
	runHealth(t, cfg, []healthStep{
		{want: all, quorum: true, changes: "init-up"}, // 6 >= 5
		{ev: ev(vs, "10.0.0.1:80", false, -1), quorum: true, // 4: not below 3
			want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.2:80 masq w2", "  -> 10.0.0.3:80 masq w2")},
		{ev: ev(vs, "10.0.0.2:80", false, -1), quorum: false, changes: "down", want: sorry}, // 2 < 3
		{ev: ev(vs, "10.0.0.2:80", true, -1), quorum: false, want: sorry},                   // 4 < 5: still down
		{ev: ev(vs, "10.0.0.1:80", true, -1), quorum: true, changes: "up", want: all},       // 6 >= 5
		// A dynamic weight counts toward quorum.
		{ev: ev(vs, "10.0.0.1:80", true, 0), quorum: true,
			want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.1:80 masq w0", "  -> 10.0.0.2:80 masq w2", "  -> 10.0.0.3:80 masq w2")},
		{ev: ev(vs, "10.0.0.3:80", false, -1), quorum: false, // 2 (0+2) < 3 → down
			changes: "down", want: sorry},
	})
}

func TestHealthQuorumWithoutSorryServerKeepsServers(t *testing.T) {
	cfg := parse(t, `virtual_server 192.0.2.1 80 {
		protocol TCP
		quorum 3
		real_server 10.0.0.1 80 { weight 2 }
		real_server 10.0.0.2 80 { weight 2 }
	}`)
	vs := "TCP/192.0.2.1:80"
	runHealth(t, cfg, []healthStep{
		{want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.1:80 masq w2", "  -> 10.0.0.2:80 masq w2"), quorum: true, changes: "init-up"},
		{ev: ev(vs, "10.0.0.1:80", false, -1), quorum: false, changes: "down",
			want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.2:80 masq w2")},
	})
}

func TestHealthDynamicWeights(t *testing.T) {
	cfg := parse(t, `virtual_server 192.0.2.1 80 {
		protocol TCP
		real_server 10.0.0.1 80 { weight 5 }
	}`)
	vs := "TCP/192.0.2.1:80"
	runHealth(t, cfg, []healthStep{
		{want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.1:80 masq w5"), quorum: true, changes: "init-up"},
		{ev: ev(vs, "10.0.0.1:80", true, 17), quorum: true, want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.1:80 masq w17")},
		// -1 leaves the dynamic weight as it was.
		{ev: ev(vs, "10.0.0.1:80", true, -1), quorum: true, want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.1:80 masq w17")},
		{ev: ev(vs, "10.0.0.1:80", true, 100000), quorum: true, want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.1:80 masq w65535")},
	})
}

func TestHealthAlphaStartsDown(t *testing.T) {
	cfg := parse(t, `virtual_server 192.0.2.1 80 {
		protocol TCP
		alpha
		sorry_server 10.0.0.99 80
		real_server 10.0.0.1 80 {
			TCP_CHECK { connect_timeout 1 }
		}
		real_server 10.0.0.2 80 {
			inhibit_on_failure
			TCP_CHECK { connect_timeout 1 }
		}
		real_server 10.0.0.3 80 { }
	}`)
	vs := "TCP/192.0.2.1:80"
	// 10.0.0.3 has no checker: up. Sum 1 >= quorum 1: quorum up.
	runHealth(t, cfg, []healthStep{
		{want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.2:80 masq w0", "  -> 10.0.0.3:80 masq w1"), quorum: true, changes: "init-up"},
		{ev: ev(vs, "10.0.0.1:80", true, -1), quorum: true,
			want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.1:80 masq w1", "  -> 10.0.0.2:80 masq w0", "  -> 10.0.0.3:80 masq w1")},
	})
}

func TestHealthAlphaSorryAtStart(t *testing.T) {
	cfg := parse(t, `virtual_server 192.0.2.1 80 {
		protocol TCP
		alpha
		sorry_server 10.0.0.99 80
		real_server 10.0.0.1 80 {
			TCP_CHECK { connect_timeout 1 }
		}
		real_server 10.0.0.2 80 {
			HTTP_GET { url { path / } alpha no }
		}
	}`)
	vs := "TCP/192.0.2.1:80"
	// 10.0.0.2's only checker is not alpha: up. Start with quorum up.
	runHealth(t, cfg, []healthStep{
		{want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.2:80 masq w1"), quorum: true, changes: "init-up"},
		{ev: ev(vs, "10.0.0.2:80", false, -1), quorum: false, changes: "down",
			want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.99:80 masq w1")},
	})
	cfg2 := parse(t, `virtual_server 192.0.2.1 80 {
		protocol TCP
		alpha
		sorry_server 10.0.0.99 80
		real_server 10.0.0.1 80 {
			TCP_CHECK { connect_timeout 1 }
		}
	}`)
	// Everything starts down: quorum down at start, the sorry server in,
	// and quorum_down notified (keepalived's "Starting with quorum down").
	runHealth(t, cfg2, []healthStep{
		{want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.99:80 masq w1"), quorum: false, changes: "init-down"},
		{ev: ev(vs, "10.0.0.1:80", true, -1), quorum: true, changes: "up",
			want: lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.1:80 masq w1")},
	})
}

func TestHealthCarriedAcrossReload(t *testing.T) {
	cfg := parse(t, `virtual_server 192.0.2.1 80 {
		protocol TCP
		real_server 10.0.0.1 80 { weight 1 }
		real_server 10.0.0.2 80 { weight 1 }
		real_server 10.0.0.3 80 { weight 4 }
	}`)
	vs := cfg.VirtualServers[0]
	h, _ := buildHealth(cfg, nil)
	applyHealth(vs, h[vs.Key()], *ev(vs.Key(), "10.0.0.1:80", false, -1))
	applyHealth(vs, h[vs.Key()], *ev(vs.Key(), "10.0.0.2:80", true, 9))
	applyHealth(vs, h[vs.Key()], *ev(vs.Key(), "10.0.0.3:80", true, 9))
	// Reload: 10.0.0.3's weight changes (its dynamic weight is dropped),
	// 10.0.0.4 is new (up: no checker).
	cfg2 := parse(t, `virtual_server 192.0.2.1 80 {
		protocol TCP
		real_server 10.0.0.1 80 { weight 1 }
		real_server 10.0.0.2 80 { weight 1 }
		real_server 10.0.0.3 80 { weight 5 }
		real_server 10.0.0.4 80 { weight 1 }
	}`)
	h2, ch := buildHealth(cfg2, h)
	if len(ch) != 0 {
		t.Errorf("quorum changes on reload: %v", ch)
	}
	want := lines("TCP 192.0.2.1:80 wlc", "  -> 10.0.0.2:80 masq w9", "  -> 10.0.0.3:80 masq w5", "  -> 10.0.0.4:80 masq w1")
	if got := ComputeDesired(cfg2, h2).Table.String(); got != want {
		t.Errorf("after reload:\n%s\nwant:\n%s", got, want)
	}
}

func TestHealthIgnoresUnknownServers(t *testing.T) {
	cfg := parse(t, `virtual_server 192.0.2.1 80 {
		protocol TCP
		real_server 10.0.0.1 80 { }
	}`)
	vs := cfg.VirtualServers[0]
	h, _ := buildHealth(cfg, nil)
	if changed, _ := applyHealth(vs, h[vs.Key()], *ev(vs.Key(), "10.9.9.9:80", false, -1)); changed {
		t.Error("an unknown real server changed the state")
	}
	if changed, _ := applyHealth(vs, h[vs.Key()], *ev(vs.Key(), "10.0.0.1:80", true, -1)); changed {
		t.Error("an event repeating the state reported a change")
	}
}

// TestDesiredIncrementalUpdate checks that recomputing one virtual server
// after a health change equals a full recomputation.
func TestDesiredIncrementalUpdate(t *testing.T) {
	cfg := parse(t, `virtual_server_group g {
		192.0.2.10-12 80
		fwmark 3
	}
	virtual_server group g {
		protocol TCP
		lvs_method DR
		sorry_server 10.0.0.99 80
		real_server 10.0.0.1 80 {
			weight 2
		}
		real_server 10.0.0.2 80 {
			inhibit_on_failure
		}
	}
	virtual_server 192.0.2.1 80 {
		protocol TCP
		quorum 2
		real_server 10.0.0.1 80 {
		}
		real_server 10.0.0.3 80 {
		}
	}`)
	h, _ := buildHealth(cfg, nil)
	d := ComputeDesired(cfg, h)
	groups := groupIndex(cfg)
	index := map[string]*conf.VirtualServer{}
	for _, vs := range cfg.VirtualServers {
		index[vs.Key()] = vs
	}
	events := []*HealthEvent{
		ev("GROUP/g/TCP", "10.0.0.1:80", false, -1),
		ev("TCP/192.0.2.1:80", "10.0.0.3:80", false, -1),
		ev("GROUP/g/TCP", "10.0.0.2:80", false, -1),
		ev("GROUP/g/TCP", "10.0.0.1:80", true, 5),
		ev("TCP/192.0.2.1:80", "10.0.0.3:80", true, -1),
	}
	for i, e := range events {
		vs := index[e.VS]
		if changed, _ := applyHealth(vs, h[e.VS], *e); !changed {
			t.Fatalf("event %d changed nothing", i)
		}
		keys := d.update(vs, groups, h[e.VS])
		if len(keys) != len(d.VS[e.VS]) {
			t.Errorf("event %d: %d keys", i, len(keys))
		}
		full := ComputeDesired(cfg, h)
		if got, want := d.Table.String(), full.Table.String(); got != want {
			t.Fatalf("event %d: incremental:\n%s\nfull:\n%s", i, got, want)
		}
	}
}

// persistence_engine sip is the service's persistence engine (keepalived's
// pe_name): in the desired table, no problem reported.
func TestDesiredPersistenceEngine(t *testing.T) {
	cfg := parse(t, `virtual_server 192.0.2.1 5060 {
		protocol UDP
		persistence_timeout 60
		persistence_engine sip
		real_server 10.0.0.1 5060 {
		}
	}`)
	d := ComputeDesired(cfg, nil)
	if len(d.Problems) != 0 {
		t.Errorf("problems %q", d.Problems)
	}
	if got := d.Table.String(); got != lines("UDP 192.0.2.1:5060 wlc persistent timeout 60 pe sip", "  -> 10.0.0.1:5060 masq w1") {
		t.Errorf("table:\n%s", got)
	}
}
