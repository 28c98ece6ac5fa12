package conf

import (
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// parseClean parses text and fails on any diagnostic above Notice ("parsed,
// not supported yet" is fine), so that a default is never checked on a
// configuration that was partly rejected.
func parseClean(t *testing.T, text string) *Config {
	t.Helper()
	cfg, diags := Parse("test.conf", text, Options{ConfigID: "test"})
	for _, d := range diags {
		if d.Level > Notice && !isDefaultingWarning(d) {
			t.Fatalf("unexpected diagnostic: %v\nin:\n%s", d, text)
		}
	}
	return cfg
}

// Snippet builders: a valid block around the lines under test.

func globalDefs(lines ...string) string {
	return "global_defs {\n" + strings.Join(lines, "\n") + "\n}\n"
}

func vrrpInst(lines ...string) string {
	return "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  10.0.0.1\n }\n" +
		strings.Join(lines, "\n") + "\n}\n"
}

func vrrpScript(lines ...string) string {
	return "vrrp_script chk {\n script /bin/true\n" + strings.Join(lines, "\n") + "\n}\n"
}

// virtServer is "virtual_server 10.0.0.1 80" with body lines; realServer and
// checkerBlock nest inside it.
// virtServer names protocol, scheduler and forwarding method, whose absence
// keepalived warns about (TestDefaultsVirtualServerWarnings covers that).
func virtServer(lines ...string) string {
	return "virtual_server 10.0.0.1 80 {\nprotocol TCP\nlb_algo wlc\nlb_kind NAT\n" + strings.Join(lines, "\n") + "\n}\n"
}

func realServer(lines ...string) string {
	return "real_server 192.168.0.1 8080 {\n" + strings.Join(lines, "\n") + "\n}"
}

func checkerBlock(typ string, lines ...string) string {
	return typ + " {\n" + strings.Join(lines, "\n") + "\n}"
}

func inst0(c *Config) *VRRPInstance { return c.Instances[0] }
func vs0(c *Config) *VirtualServer  { return c.VirtualServers[0] }
func rs0(c *Config) *RealServer     { return c.VirtualServers[0].RealServers[0] }
func chk0(c *Config) *Checker       { return c.VirtualServers[0].RealServers[0].Checkers[0] }

func hostname(t *testing.T) string {
	h, err := os.Hostname()
	if err != nil {
		t.Skip("no host name:", err)
	}
	return h
}

// fieldCase is one "configuration → field value" row.
type fieldCase struct {
	name string
	conf string
	get  func(*Config) any
	want any
}

func runFieldCases(t *testing.T, cases []fieldCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := parseClean(t, tc.conf)
			if got := tc.get(cfg); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v (%v), want %#v (%v)\nin:\n%s", got, got, tc.want, tc.want, tc.conf)
			}
		})
	}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestDefaultsGlobal(t *testing.T) {
	host := hostname(t)
	for name, text := range map[string]string{
		"no global_defs":    "",
		"empty global_defs": "global_defs {\n}\n",
	} {
		t.Run(name, func(t *testing.T) {
			g := parseClean(t, text).Global
			want := Global{
				RouterID:                    host,
				NotificationEmailFrom:       "keepalived@" + host,
				SMTPPort:                    25,
				SMTPHeloName:                host,
				SMTPConnectTimeout:          30 * time.Second,
				VRRPVersion:                 2,
				NFTablesTable:               "keepalived",
				NFTablesPriority:            -1,
				VRRPMcastGroup4:             addr("224.0.0.18"),
				VRRPGarpMasterDelay:         5 * time.Second,
				VRRPGarpMasterRepeat:        5,
				VRRPGarpLowerPrioDelay:      5 * time.Second, // = master delay
				VRRPGarpLowerPrioRepeat:     5,               // = master repeat
				VRRPGarpMasterRefresh:       0,
				VRRPGarpMasterRefreshRepeat: 1,
				VRRPGarpInterval:            0,
				// keepalived's IF_DEFAULT_BUFSIZE
				VRRPNetlinkMonitorRcvBufs: 64 << 10,
				VRRPNetlinkCmdRcvBufs:     64 << 10,
				LVSNetlinkMonitorRcvBufs:  64 << 10,
				MaxAutoPriority:           -1,
				Umask:                     -1, // not given: lvsd keeps its own
			}
			g.Pos = Pos{}
			if !reflect.DeepEqual(g, want) {
				t.Errorf("global defaults:\n got %+v\nwant %+v", g, want)
			}
		})
	}
}

func TestDefaultsGlobalLowerPrioFollowsMaster(t *testing.T) {
	g := parseClean(t, globalDefs("vrrp_garp_master_delay 2", "vrrp_garp_master_repeat 3")).Global
	if g.VRRPGarpLowerPrioDelay != 2*time.Second || g.VRRPGarpLowerPrioRepeat != 3 {
		t.Errorf("lower prio delay %v repeat %d, want 2s and 3 (the master's)", g.VRRPGarpLowerPrioDelay, g.VRRPGarpLowerPrioRepeat)
	}
	// Given explicitly, they are their own, in whichever order.
	g = parseClean(t, globalDefs("vrrp_garp_lower_prio_delay 7", "vrrp_garp_master_delay 2", "vrrp_garp_lower_prio_repeat 0")).Global
	if g.VRRPGarpLowerPrioDelay != 7*time.Second || g.VRRPGarpLowerPrioRepeat != 0 {
		t.Errorf("lower prio delay %v repeat %d, want 7s and 0", g.VRRPGarpLowerPrioDelay, g.VRRPGarpLowerPrioRepeat)
	}
}

func TestDefaultsVRRPScript(t *testing.T) {
	s := parseClean(t, vrrpScript()).Scripts[0]
	want := VRRPScript{Name: "chk", Script: Script{Args: []string{"/bin/true"}, Pos: Pos{"test.conf", 2}},
		Interval: time.Second, Timeout: time.Second, Weight: 0, Rise: 1, Fall: 1, Pos: Pos{"test.conf", 1}}
	if !reflect.DeepEqual(*s, want) {
		t.Errorf("vrrp_script defaults:\n got %+v\nwant %+v", *s, want)
	}
	// timeout defaults to the interval, whatever it is.
	if s := parseClean(t, vrrpScript("interval 3.5")).Scripts[0]; s.Timeout != 3500*time.Millisecond {
		t.Errorf("timeout %v with interval 3.5, want 3.5s", s.Timeout)
	}
}

func TestDefaultsVRRPInstance(t *testing.T) {
	in := parseClean(t, vrrpInst()).Instances[0]
	if in.Priority != 100 || in.AdvertInt != time.Second || in.Version != 2 || !in.Accept ||
		in.State != "" || in.NoPreempt || in.PreemptDelay != 0 || in.Auth.Type != "" || in.Strict ||
		in.UnicastTTL != 0 || in.SyncGroup != "" || in.UseVMAC {
		t.Errorf("instance defaults: %+v", in)
	}
	wantGARP := GARP{MasterDelay: 5 * time.Second, MasterRepeat: 5, LowerPrioDelay: 5 * time.Second, LowerPrioRepeat: 5, MasterRefreshRepeat: 1}
	if in.GARP != wantGARP {
		t.Errorf("garp %+v, want %+v", in.GARP, wantGARP)
	}

	runFieldCases(t, []fieldCase{
		{"version from global", globalDefs("vrrp_version 3") + vrrpInst(), func(c *Config) any { return inst0(c).Version }, 3},
		{"version from global, global_defs after the instance", vrrpInst() + globalDefs("vrrp_version 3"), func(c *Config) any { return inst0(c).Version }, 3},
		{"own version wins", globalDefs("vrrp_version 3") + vrrpInst("version 2"), func(c *Config) any { return inst0(c).Version }, 2},
		{"IPv6 instance is VRRPv3", "vrrp_instance V6 {\n interface eth0\n virtual_router_id 6\n virtual_ipaddress {\n  fd00::1/64\n }\n}\n",
			func(c *Config) any { return inst0(c).Version }, 3},
		{"IPv6 instance with version 2 keeps it", "vrrp_instance V6 {\n interface eth0\n virtual_router_id 6\n version 2\n virtual_ipaddress {\n  fd00::1/64\n }\n}\n",
			func(c *Config) any { return inst0(c).Version }, 2},
		{"accept off under vrrp_strict", globalDefs("vrrp_strict") + vrrpInst(), func(c *Config) any { return inst0(c).Accept }, false},
		{"strict from global", globalDefs("vrrp_strict") + vrrpInst(), func(c *Config) any { return inst0(c).Strict }, true},
		{"accept given under vrrp_strict, VRRPv3", globalDefs("vrrp_strict") + vrrpInst("accept", "version 3"), func(c *Config) any { return inst0(c).Accept }, true},
		{"accept off under strict_mode", vrrpInst("strict_mode"), func(c *Config) any { return inst0(c).Accept }, false},
		{"accept given under strict_mode, VRRPv3", vrrpInst("strict_mode", "accept", "version 3"), func(c *Config) any { return inst0(c).Accept }, true},
		{"garp from global", globalDefs("vrrp_garp_master_delay 1", "vrrp_garp_master_repeat 2", "vrrp_garp_lower_prio_delay 3",
			"vrrp_garp_lower_prio_repeat 4", "vrrp_garp_master_refresh 60", "vrrp_garp_master_refresh_repeat 6", "vrrp_garp_interval 0.002") + vrrpInst(),
			func(c *Config) any { return inst0(c).GARP },
			GARP{MasterDelay: time.Second, MasterRepeat: 2, LowerPrioDelay: 3 * time.Second, LowerPrioRepeat: 4, MasterRefresh: time.Minute, MasterRefreshRepeat: 6, Interval: 2 * time.Millisecond}},
		{"lower prio from the global master delay", globalDefs("vrrp_garp_master_delay 9") + vrrpInst(),
			func(c *Config) any { return inst0(c).GARP.LowerPrioDelay }, 9 * time.Second},
		{"skip_check_adv_addr from global", globalDefs("vrrp_skip_check_adv_addr") + vrrpInst(), func(c *Config) any { return inst0(c).SkipCheckAdvAddr }, true},
		{"lower_prio_no_advert from global", globalDefs("vrrp_lower_prio_no_advert") + vrrpInst(), func(c *Config) any { return inst0(c).LowerPrioNoAdvert }, true},
		{"higher_prio_send_advert from global", globalDefs("vrrp_higher_prio_send_advert true") + vrrpInst(), func(c *Config) any { return inst0(c).HigherPrioSendAdvert }, true},
	})
}

// TestDefaultsVirtualServerWarnings: without protocol, scheduler and forwarding
// method keepalived 2.2.7 warns and uses UDP, wlc and NAT; so does lvsd.
func TestDefaultsVirtualServerWarnings(t *testing.T) {
	text := "virtual_server 10.0.0.1 80 {\n" + realServer() + "\n}\nvirtual_server fwmark 7 {\n" + realServer("lvs_method DR") + "\n}\n"
	cfg, diags := Parse("test.conf", text, Options{ConfigID: "test"})
	want := []string{
		"test.conf:1: warning: protocol: virtual server 10.0.0.1:80: no protocol set - defaulting to UDP",
		"test.conf:1: warning: lvs_sched: virtual server 10.0.0.1:80: no scheduler set, setting default 'wlc'",
		"test.conf:1: warning: lvs_method: virtual server 10.0.0.1:80: no forwarding method set, setting default NAT",
		"test.conf:6: warning: lvs_sched: virtual server FWM 7: no scheduler set, setting default 'wlc'",
	}
	var got []string
	for _, d := range diags {
		if d.Level > Notice {
			got = append(got, d.String())
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	vs := cfg.VirtualServers[0]
	if vs.Protocol != "UDP" || vs.Scheduler != "wlc" || vs.Forwarding.Method != "NAT" {
		t.Fatalf("defaults: protocol %s scheduler %s forwarding %s", vs.Protocol, vs.Scheduler, vs.Forwarding.Method)
	}
	if fw := cfg.VirtualServers[1]; fw.Scheduler != "wlc" || fw.RealServers[0].Forwarding.Method != "DR" {
		t.Fatalf("fwmark: %+v", fw)
	}
}

func TestDefaultsVirtualServer(t *testing.T) {
	vs := parseClean(t, virtServer(realServer())).VirtualServers[0]
	if vs.Kind != VSByAddr || vs.Addr != addr("10.0.0.1") || vs.Port != 80 ||
		vs.Protocol != "TCP" || vs.Scheduler != "wlc" || vs.Forwarding != (Forwarding{Method: "NAT"}) ||
		vs.Quorum != 1 || vs.Hysteresis != 0 || vs.Persistent || vs.PersistenceTimeout != 0 ||
		vs.PersistenceGranularity.IsValid() || vs.OPS || vs.Alpha || vs.Omega || vs.HASuspend ||
		vs.InhibitOnFailure || vs.SorryServer != nil || vs.SMTPAlert != nil {
		t.Errorf("virtual_server defaults: %+v", vs)
	}
	// Timers at the server level; -1 means "the checker type's default".
	wantTimers := CheckTimers{DelayLoop: 60 * time.Second, ConnectTimeout: 5 * time.Second, Retry: -1, DelayBeforeRetry: -1, Warmup: -1}
	if vs.Timers != wantTimers {
		t.Errorf("timers %+v, want %+v", vs.Timers, wantTimers)
	}

	runFieldCases(t, []fieldCase{
		{"persistence_timeout without a value is 360s", virtServer("persistence_timeout", realServer()),
			func(c *Config) any { return [2]any{vs0(c).Persistent, vs0(c).PersistenceTimeout} }, [2]any{true, 360 * time.Second}},
		{"persistence_timeout with a value", virtServer("persistence_timeout 600", realServer()),
			func(c *Config) any { return [2]any{vs0(c).Persistent, vs0(c).PersistenceTimeout} }, [2]any{true, 600 * time.Second}},
		{"fwmark", "virtual_server fwmark 7 {\n" + realServer() + "\n}",
			func(c *Config) any { return [3]any{vs0(c).Kind, vs0(c).Fwmark, vs0(c).Port} }, [3]any{VSByFwmark, uint32(7), 0}},
		{"group", "virtual_server_group G {\n 10.0.0.1 80\n}\nvirtual_server group G {\n" + realServer() + "\n}",
			func(c *Config) any { return [2]any{vs0(c).Kind, vs0(c).Group} }, [2]any{VSByGroup, "G"}},
		{"IPv6 address", "virtual_server 2001:db8::1 443 {\n real_server 2001:db8::2 443 {\n }\n}",
			func(c *Config) any { return vs0(c).String() }, "[2001:db8::1]:443"},
	})
}

func TestDefaultsRealServer(t *testing.T) {
	rs := parseClean(t, virtServer(realServer())).VirtualServers[0].RealServers[0]
	if rs.Addr != addr("192.168.0.1") || rs.Port != 8080 || rs.Weight != 1 || rs.Forwarding.Method != "NAT" ||
		rs.InhibitOnFailure || rs.Alpha || rs.UThreshold != 0 || rs.LThreshold != 0 || len(rs.Checkers) != 0 {
		t.Errorf("real_server defaults: %+v", rs)
	}
	runFieldCases(t, []fieldCase{
		{"port from the virtual server", virtServer("real_server 192.168.0.1 {\n}"), func(c *Config) any { return rs0(c).Port }, 80},
		{"forwarding from the virtual server", virtServer("lvs_method DR", "real_server 192.168.0.1 80 {\n}"),
			func(c *Config) any { return rs0(c).Forwarding }, Forwarding{Method: "DR"}},
		{"tunnel from the virtual server", virtServer("lvs_method TUN type gue port 6080", realServer()),
			func(c *Config) any { return rs0(c).Forwarding }, Forwarding{Method: "TUN", TunnelType: "gue", TunnelPort: 6080}},
		{"own forwarding wins", virtServer("lvs_method DR", realServer("lvs_method NAT")),
			func(c *Config) any { return rs0(c).Forwarding.Method }, "NAT"},
		{"inhibit_on_failure from the virtual server", virtServer("inhibit_on_failure", realServer()),
			func(c *Config) any { return rs0(c).InhibitOnFailure }, true},
		{"alpha from the virtual server", virtServer("alpha", realServer()), func(c *Config) any { return rs0(c).Alpha }, true},
		{"virtualhost from the virtual server", virtServer("virtualhost www.example.com", realServer()),
			func(c *Config) any { return rs0(c).VirtualHost }, "www.example.com"},
		{"sorry_server port and method from the virtual server", virtServer("lvs_method DR", "sorry_server 10.9.9.9", "real_server 192.168.0.1 {\n}"),
			func(c *Config) any {
				return [3]any{vs0(c).SorryServer.Port, vs0(c).SorryServer.Forwarding.Method, vs0(c).SorryServer.Weight}
			}, [3]any{80, "DR", 1}},
	})
}

// TestDefaultsCheckerByType: the defaults every checker type gets with nothing set.
func TestDefaultsCheckerByType(t *testing.T) {
	min := map[string]string{ // what validation needs to keep the checker
		CheckHTTP:   "url {\n path /\n}",
		CheckSSL:    "url {\n path /\n}",
		CheckMisc:   "misc_path /bin/true",
		CheckExpect: "expect OK",
	}
	tests := []struct {
		typ              string
		retry            int
		delayBeforeRetry time.Duration
	}{
		{CheckTCP, 1, time.Second},
		{CheckHTTP, 1, 3 * time.Second},
		{CheckSSL, 1, 3 * time.Second},
		{CheckMisc, 0, time.Second},
		{CheckSMTP, 1, time.Second},
		{CheckDNS, 3, 60 * time.Second}, // = delay_loop
		{CheckUDP, 1, time.Second},
		{CheckPing, 1, time.Second},
		{CheckExpect, 1, time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.typ, func(t *testing.T) {
			c := chk0(parseClean(t, virtServer(realServer(checkerBlock(tc.typ, min[tc.typ])))))
			want := CheckTimers{DelayLoop: 60 * time.Second, ConnectTimeout: 5 * time.Second, Retry: tc.retry,
				DelayBeforeRetry: tc.delayBeforeRetry, Warmup: 60 * time.Second}
			if c.Type != tc.typ || c.Timers != want {
				t.Errorf("%s timers %+v, want %+v", c.Type, c.Timers, want)
			}
			if c.ConnectPort != 8080 {
				t.Errorf("connect_port %d, want the real server's 8080", c.ConnectPort)
			}
			if c.ConnectIP.IsValid() || c.BindTo.IsValid() || c.Alpha != nil {
				t.Errorf("connect_ip %v bindto %v alpha %v, want unset", c.ConnectIP, c.BindTo, c.Alpha)
			}
			// The kinds without keywords of their own carry no options
			// (the bytes a large director's TCP_CHECKs save).
			if none := tc.typ == CheckTCP || tc.typ == CheckPing; none != (c.CheckerOptions == nil) {
				t.Errorf("options %+v", c.CheckerOptions)
			}
			if c.CheckerOptions == nil {
				c.CheckerOptions = &CheckerOptions{}
			}
			wantProto := ""
			if tc.typ == CheckHTTP || tc.typ == CheckSSL {
				wantProto = "1.0"
			}
			if c.HTTPProtocol != wantProto {
				t.Errorf("http_protocol %q, want %q", c.HTTPProtocol, wantProto)
			}
			wantType, wantName := "", ""
			if tc.typ == CheckDNS {
				wantType, wantName = "SOA", "."
			}
			if c.DNSType != wantType || c.DNSName != wantName {
				t.Errorf("DNS type %q name %q, want %q %q", c.DNSType, c.DNSName, wantType, wantName)
			}
			wantMax := 0
			if tc.typ == CheckUDP {
				wantMax = 255
			}
			if c.MaxReplyLength != wantMax {
				t.Errorf("max_reply_length %d, want %d", c.MaxReplyLength, wantMax)
			}
		})
	}
}

// TestDefaultsCheckerTimerInheritance: each timer inherits virtual server →
// real server → checker, the nearest level winning; derived defaults (warmup,
// DNS delay_before_retry) follow the inherited delay_loop.
func TestDefaultsCheckerTimerInheritance(t *testing.T) {
	type level struct{ vs, rs, chk string }
	tests := []struct {
		name string
		typ  string
		at   level
		want func(CheckTimers) any
		val  any
	}{
		{"delay_loop from VS", CheckTCP, level{vs: "delay_loop 10"}, func(c CheckTimers) any { return c.DelayLoop }, 10 * time.Second},
		{"delay_loop from RS", CheckTCP, level{vs: "delay_loop 10", rs: "delay_loop 20"}, func(c CheckTimers) any { return c.DelayLoop }, 20 * time.Second},
		{"delay_loop on checker", CheckTCP, level{vs: "delay_loop 10", rs: "delay_loop 20", chk: "delay_loop 30"}, func(c CheckTimers) any { return c.DelayLoop }, 30 * time.Second},
		{"connect_timeout from VS", CheckTCP, level{vs: "connect_timeout 2"}, func(c CheckTimers) any { return c.ConnectTimeout }, 2 * time.Second},
		{"connect_timeout from RS", CheckTCP, level{vs: "connect_timeout 2", rs: "connect_timeout 3"}, func(c CheckTimers) any { return c.ConnectTimeout }, 3 * time.Second},
		{"connect_timeout on checker", CheckTCP, level{rs: "connect_timeout 3", chk: "connect_timeout 0.5"}, func(c CheckTimers) any { return c.ConnectTimeout }, 500 * time.Millisecond},
		{"retry from VS", CheckTCP, level{vs: "retry 4"}, func(c CheckTimers) any { return c.Retry }, 4},
		{"retry from RS", CheckTCP, level{vs: "retry 4", rs: "retry 5"}, func(c CheckTimers) any { return c.Retry }, 5},
		{"retry on checker", CheckTCP, level{rs: "retry 5", chk: "retry 6"}, func(c CheckTimers) any { return c.Retry }, 6},
		{"retry 0 from VS beats the type default", CheckDNS, level{vs: "retry 0"}, func(c CheckTimers) any { return c.Retry }, 0},
		{"nb_get_retry alias", CheckHTTP, level{chk: "nb_get_retry 7"}, func(c CheckTimers) any { return c.Retry }, 7},
		{"nb_sock_retry alias", CheckTCP, level{chk: "nb_sock_retry 8"}, func(c CheckTimers) any { return c.Retry }, 8},
		{"delay_before_retry from VS", CheckHTTP, level{vs: "delay_before_retry 4"}, func(c CheckTimers) any { return c.DelayBeforeRetry }, 4 * time.Second},
		{"delay_before_retry from RS", CheckHTTP, level{vs: "delay_before_retry 4", rs: "delay_before_retry 5"}, func(c CheckTimers) any { return c.DelayBeforeRetry }, 5 * time.Second},
		{"delay_before_retry on checker", CheckHTTP, level{rs: "delay_before_retry 5", chk: "delay_before_retry 0"}, func(c CheckTimers) any { return c.DelayBeforeRetry }, time.Duration(0)},
		{"DNS delay_before_retry = inherited delay_loop", CheckDNS, level{vs: "delay_loop 12"}, func(c CheckTimers) any { return c.DelayBeforeRetry }, 12 * time.Second},
		{"DNS delay_before_retry = checker delay_loop", CheckDNS, level{vs: "delay_loop 12", chk: "delay_loop 13"}, func(c CheckTimers) any { return c.DelayBeforeRetry }, 13 * time.Second},
		{"warmup from VS", CheckTCP, level{vs: "warmup 0"}, func(c CheckTimers) any { return c.Warmup }, time.Duration(0)},
		{"warmup from RS", CheckTCP, level{vs: "warmup 0", rs: "warmup 2"}, func(c CheckTimers) any { return c.Warmup }, 2 * time.Second},
		{"warmup on checker", CheckTCP, level{rs: "warmup 2", chk: "warmup 3"}, func(c CheckTimers) any { return c.Warmup }, 3 * time.Second},
		{"warmup = inherited delay_loop", CheckTCP, level{rs: "delay_loop 15"}, func(c CheckTimers) any { return c.Warmup }, 15 * time.Second},
		{"MISC_CHECK takes delay_loop", CheckMisc, level{vs: "delay_loop 10", chk: "delay_loop 11"}, func(c CheckTimers) any { return c.DelayLoop }, 11 * time.Second},
	}
	body := map[string]string{CheckHTTP: "url {\n path /\n}", CheckMisc: "misc_path /bin/true"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := virtServer(tc.at.vs, realServer(tc.at.rs, checkerBlock(tc.typ, tc.at.chk, body[tc.typ])))
			c := parseClean(t, text)
			if got := tc.want(chk0(c).Timers); !reflect.DeepEqual(got, tc.val) {
				t.Errorf("checker: got %v, want %v\nin:\n%s", got, tc.val, text)
			}
		})
	}
	// The server levels keep what they were given, for whoever reads them.
	c := parseClean(t, virtServer("delay_loop 10", realServer("retry 2", checkerBlock(CheckTCP))))
	if vs0(c).Timers.DelayLoop != 10*time.Second || rs0(c).Timers.DelayLoop != 10*time.Second || rs0(c).Timers.Retry != 2 || vs0(c).Timers.Retry != -1 {
		t.Errorf("server timers: vs %+v rs %+v", vs0(c).Timers, rs0(c).Timers)
	}
}

func boolp(b bool) *bool { return &b }

// TestKeywordsSetFields: each keyword, given explicitly, lands in its field.
func TestKeywordsSetFields(t *testing.T) {
	G := func(c *Config) *Global { return &c.Global }
	runFieldCases(t, []fieldCase{
		// global_defs
		{"router_id", globalDefs("router_id lb1"), func(c *Config) any { return G(c).RouterID }, "lb1"},
		{"lvs_id (1.x router_id)", globalDefs("lvs_id lb2"), func(c *Config) any { return G(c).RouterID }, "lb2"},
		{"notification_email", globalDefs("notification_email {\n a@example.com\n b@example.com c@example.com\n}"),
			func(c *Config) any { return G(c).NotificationEmail }, []string{"a@example.com", "b@example.com", "c@example.com"}},
		{"notification_email_from", globalDefs("notification_email_from lb@example.com"), func(c *Config) any { return G(c).NotificationEmailFrom }, "lb@example.com"},
		{"smtp_server", globalDefs("smtp_server 10.0.0.25"), func(c *Config) any { return [2]any{G(c).SMTPServer, G(c).SMTPPort} }, [2]any{"10.0.0.25", 25}},
		{"smtp_server with port", globalDefs("smtp_server mail.example.com 2525"), func(c *Config) any { return [2]any{G(c).SMTPServer, G(c).SMTPPort} }, [2]any{"mail.example.com", 2525}},
		{"smtp_helo_name", globalDefs("smtp_helo_name lb.example.com"), func(c *Config) any { return G(c).SMTPHeloName }, "lb.example.com"},
		{"smtp_connect_timeout", globalDefs("smtp_connect_timeout 12"), func(c *Config) any { return G(c).SMTPConnectTimeout }, 12 * time.Second},
		{"smtp_alert", globalDefs("smtp_alert"), func(c *Config) any { return G(c).SMTPAlert }, boolp(true)},
		{"smtp_alert off", globalDefs("smtp_alert off"), func(c *Config) any { return G(c).SMTPAlert }, boolp(false)},
		{"smtp_alert_vrrp", globalDefs("smtp_alert_vrrp yes"), func(c *Config) any { return G(c).SMTPAlertVRRP }, boolp(true)},
		{"smtp_alert_checker", globalDefs("smtp_alert_checker no"), func(c *Config) any { return G(c).SMTPAlertChecker }, boolp(false)},
		{"script_user", globalDefs("script_user nobody nogroup"), func(c *Config) any { return [2]any{G(c).ScriptUser, G(c).ScriptGroup} }, [2]any{"nobody", "nogroup"}},
		{"enable_script_security", globalDefs("enable_script_security"), func(c *Config) any { return G(c).EnableScriptSecurity }, true},
		{"vrrp_version", globalDefs("vrrp_version 3"), func(c *Config) any { return G(c).VRRPVersion }, 3},
		{"vrrp_mcast_group4", globalDefs("vrrp_mcast_group4 224.0.0.19"), func(c *Config) any { return G(c).VRRPMcastGroup4 }, addr("224.0.0.19")},
		{"vrrp_garp_master_delay", globalDefs("vrrp_garp_master_delay 10"), func(c *Config) any { return G(c).VRRPGarpMasterDelay }, 10 * time.Second},
		{"vrrp_garp_master_repeat", globalDefs("vrrp_garp_master_repeat 1"), func(c *Config) any { return G(c).VRRPGarpMasterRepeat }, 1},
		{"vrrp_garp_master_refresh", globalDefs("vrrp_garp_master_refresh 60"), func(c *Config) any { return G(c).VRRPGarpMasterRefresh }, time.Minute},
		{"vrrp_garp_master_refresh_repeat", globalDefs("vrrp_garp_master_refresh_repeat 2"), func(c *Config) any { return G(c).VRRPGarpMasterRefreshRepeat }, 2},
		{"vrrp_garp_interval", globalDefs("vrrp_garp_interval 0.001"), func(c *Config) any { return G(c).VRRPGarpInterval }, time.Millisecond},
		{"vrrp_gna_interval", globalDefs("vrrp_gna_interval 0.25"), func(c *Config) any { return G(c).VRRPGnaInterval }, 250 * time.Millisecond},
		{"vrrp_gna_interval instance", globalDefs("vrrp_gna_interval 0.25") + vrrpInst(), func(c *Config) any { return c.Instances[0].GARP.GNAInterval }, 250 * time.Millisecond},
		{"vrrp_strict", globalDefs("vrrp_strict"), func(c *Config) any { return G(c).VRRPStrict }, true},
		{"nftables", globalDefs("nftables mine"), func(c *Config) any { return G(c).NFTablesTable }, "mine"},
		{"nftables alone", globalDefs("nftables"), func(c *Config) any { return G(c).NFTablesTable }, "keepalived"},
		{"nftables_priority", globalDefs("nftables_priority -150"), func(c *Config) any { return G(c).NFTablesPriority }, -150},
		{"nftables_counters", globalDefs("nftables_counters"), func(c *Config) any { return G(c).NFTablesCounters }, true},
		{"nftables_ifindex", globalDefs("nftables_ifindex"), func(c *Config) any { return G(c).NFTablesIfindex }, true},
		{"vrrp_check_unicast_src", globalDefs("vrrp_check_unicast_src"), func(c *Config) any { return G(c).VRRPCheckUnicastSrc }, true},
		{"vrrp_startup_delay", globalDefs("vrrp_startup_delay 5.5"), func(c *Config) any { return G(c).VRRPStartupDelay }, 5500 * time.Millisecond},
		{"lvs_flush", globalDefs("lvs_flush"), func(c *Config) any { return G(c).LVSFlush }, true},
		{"lvs_flush_onstop", globalDefs("lvs_flush_onstop"), func(c *Config) any { return G(c).LVSFlushOnStop }, "all"},
		{"lvs_flush_on_stop VS", globalDefs("lvs_flush_on_stop VS"), func(c *Config) any { return G(c).LVSFlushOnStop }, "vs"},
		{"max_auto_priority without value", globalDefs("max_auto_priority"), func(c *Config) any { return G(c).MaxAutoPriority }, 99},
		{"max_auto_priority", globalDefs("max_auto_priority 10"), func(c *Config) any { return G(c).MaxAutoPriority }, 10},
		{"vrrp_netlink_monitor_rcv_bufs default", globalDefs(""), func(c *Config) any {
			g := G(c)
			return [6]any{g.VRRPNetlinkMonitorRcvBufs, g.VRRPNetlinkCmdRcvBufs, g.LVSNetlinkMonitorRcvBufs, g.VRRPNetlinkMonitorRcvBufsForce, g.VRRPNetlinkCmdRcvBufsForce, g.LVSNetlinkMonitorRcvBufsForce}
		}, [6]any{65536, 65536, 65536, false, false, false}},
		{"netlink rcv_bufs", globalDefs("vrrp_netlink_monitor_rcv_bufs 1048576", "vrrp_netlink_cmd_rcv_bufs 262144", "lvs_netlink_monitor_rcv_bufs 0",
			"vrrp_netlink_monitor_rcv_bufs_force", "vrrp_netlink_cmd_rcv_bufs_force false", "lvs_netlink_monitor_rcv_bufs_force yes"), func(c *Config) any {
			g := G(c)
			return [6]any{g.VRRPNetlinkMonitorRcvBufs, g.VRRPNetlinkCmdRcvBufs, g.LVSNetlinkMonitorRcvBufs, g.VRRPNetlinkMonitorRcvBufsForce, g.VRRPNetlinkCmdRcvBufsForce, g.LVSNetlinkMonitorRcvBufsForce}
		}, [6]any{1048576, 262144, 65536, true, false, true}}, // 0 leaves the default, as keepalived
		{"dynamic_interfaces", globalDefs("dynamic_interfaces"), func(c *Config) any { return G(c).DynamicInterfaces }, true},
		{"dynamic_interfaces allow_if_changes", globalDefs("dynamic_interfaces allow_if_changes"), func(c *Config) any { return G(c).DynamicInterfaces }, true},
		{"lvs_timeouts", globalDefs("lvs_timeouts tcp 900 tcpfin 120 udp 300"),
			func(c *Config) any { t := G(c).LVSTimeouts; return [3]time.Duration{t.TCP, t.TCPFin, t.UDP} },
			[3]time.Duration{900 * time.Second, 120 * time.Second, 300 * time.Second}},
		{"lvs_sync_daemon", globalDefs("lvs_sync_daemon eth0 VI_1 id 5 maxlen 1400 port 8849 ttl 2 group 224.0.0.81") + vrrpInst(),
			func(c *Config) any { s := *G(c).LVSSyncDaemon; s.Pos = Pos{}; return s },
			LVSSyncDaemon{Interface: "eth0", Instance: "VI_1", SyncID: 5, MaxLen: 1400, Port: 8849, TTL: 2, Group: addr("224.0.0.81")}},
		{"lvs_sync_daemon defaults", globalDefs("lvs_sync_daemon eth0 VI_1") + vrrpInst(),
			func(c *Config) any { s := G(c).LVSSyncDaemon; return [2]int{s.SyncID, s.Port} }, [2]int{-1, 8848}},
		// Without an instance: master and backup both run (active-active).
		{"lvs_sync_daemon without instance", globalDefs("lvs_sync_daemon eth1 id 7 port 8850"),
			func(c *Config) any { s := *G(c).LVSSyncDaemon; s.Pos = Pos{}; return s },
			LVSSyncDaemon{Interface: "eth1", SyncID: 7, Port: 8850}},
		{"lvs_sync_daemon interface alone", globalDefs("lvs_sync_daemon eth1"),
			func(c *Config) any { s := *G(c).LVSSyncDaemon; s.Pos = Pos{}; return s },
			LVSSyncDaemon{Interface: "eth1", SyncID: -1, Port: 8848}},

		// vrrp_script
		{"script quoted with args", vrrpScript(`script "/bin/check -p 'a b' x"`), func(c *Config) any { return c.Scripts[0].Script.Args },
			[]string{"/bin/check", "-p", "a b", "x"}},
		{"script with user and group", "vrrp_script s {\n script /bin/x nobody nogroup\n}",
			func(c *Config) any { s := c.Scripts[0].Script; return [3]any{s.Args, s.User, s.Group} }, [3]any{[]string{"/bin/x"}, "nobody", "nogroup"}},
		{"interval", vrrpScript("interval 2"), func(c *Config) any { return c.Scripts[0].Interval }, 2 * time.Second},
		{"timeout", vrrpScript("interval 2", "timeout 1"), func(c *Config) any { return c.Scripts[0].Timeout }, time.Second},
		{"weight", vrrpScript("weight -20"), func(c *Config) any { return c.Scripts[0].Weight }, -20},
		{"weight reverse", vrrpScript("weight 10 reverse"), func(c *Config) any { return c.Scripts[0].Reverse }, true},
		{"rise", vrrpScript("rise 3"), func(c *Config) any { return c.Scripts[0].Rise }, 3},
		{"fall", vrrpScript("fall 2"), func(c *Config) any { return c.Scripts[0].Fall }, 2},
		{"user", vrrpScript("user nobody"), func(c *Config) any { return c.Scripts[0].Script.User }, "nobody"},
		{"init_fail", vrrpScript("init_fail"), func(c *Config) any { return c.Scripts[0].InitFail }, true},

		// vrrp_instance
		{"state", vrrpInst("state MASTER"), func(c *Config) any { return inst0(c).State }, "MASTER"},
		{"interface", vrrpInst(), func(c *Config) any { return inst0(c).Interface }, "eth0"},
		{"virtual_router_id", vrrpInst(), func(c *Config) any { return inst0(c).VRID }, 51},
		{"priority", vrrpInst("priority 150"), func(c *Config) any { return inst0(c).Priority }, 150},
		{"advert_int", vrrpInst("advert_int 3"), func(c *Config) any { return inst0(c).AdvertInt }, 3 * time.Second},
		{"advert_int v3 centiseconds", vrrpInst("version 3", "advert_int 0.25"), func(c *Config) any { return inst0(c).AdvertInt }, 250 * time.Millisecond},
		{"authentication", vrrpInst("authentication {\n auth_type PASS\n auth_pass s3cret\n}"),
			func(c *Config) any { return [2]string{inst0(c).Auth.Type, inst0(c).Auth.Pass} }, [2]string{"PASS", "s3cret"}},
		{"nopreempt", vrrpInst("nopreempt"), func(c *Config) any { return inst0(c).NoPreempt }, true},
		{"preempt off", vrrpInst("preempt off"), func(c *Config) any { return inst0(c).NoPreempt }, true},
		{"preempt_delay", vrrpInst("preempt_delay 30"), func(c *Config) any { return inst0(c).PreemptDelay }, 30 * time.Second},
		{"garp_master_delay", vrrpInst("garp_master_delay 1"), func(c *Config) any { return inst0(c).GARP.MasterDelay }, time.Second},
		{"garp_master_repeat", vrrpInst("garp_master_repeat 3"), func(c *Config) any { return inst0(c).GARP.MasterRepeat }, 3},
		{"garp_lower_prio_delay", vrrpInst("garp_lower_prio_delay 2"), func(c *Config) any { return inst0(c).GARP.LowerPrioDelay }, 2 * time.Second},
		{"garp_lower_prio_repeat", vrrpInst("garp_lower_prio_repeat 2"), func(c *Config) any { return inst0(c).GARP.LowerPrioRepeat }, 2},
		{"garp_master_refresh", vrrpInst("garp_master_refresh 30"), func(c *Config) any { return inst0(c).GARP.MasterRefresh }, 30 * time.Second},
		{"garp_master_refresh_repeat", vrrpInst("garp_master_refresh_repeat 4"), func(c *Config) any { return inst0(c).GARP.MasterRefreshRepeat }, 4},
		{"mcast_src_ip", vrrpInst("mcast_src_ip 10.0.0.2"), func(c *Config) any { return inst0(c).McastSrcIP }, addr("10.0.0.2")},
		{"mcast_dst_ip", vrrpInst("mcast_dst_ip 224.0.0.20"), func(c *Config) any { return inst0(c).McastDstIP }, addr("224.0.0.20")},
		{"unicast_src_ip", vrrpInst("unicast_src_ip 10.0.0.2"), func(c *Config) any { return inst0(c).UnicastSrcIP }, addr("10.0.0.2")},
		{"unicast_peer", vrrpInst("unicast_peer {\n 10.0.0.3\n 10.0.0.4 min_ttl 1 max_ttl 10\n}"),
			func(c *Config) any {
				var out []string
				for _, p := range inst0(c).UnicastPeers {
					out = append(out, fmt.Sprintf("%s %d-%d line %d", p.Addr, p.MinTTL, p.MaxTTL, p.Pos.Line))
				}
				return out
			}, []string{"10.0.0.3 0-0 line 8", "10.0.0.4 1-10 line 9"}},
		{"unicast_ttl", vrrpInst("unicast_ttl 5"), func(c *Config) any { return inst0(c).UnicastTTL }, 5},
		{"smtp_alert", vrrpInst("smtp_alert"), func(c *Config) any { return inst0(c).SMTPAlert }, boolp(true)},
		{"use_vmac", vrrpInst("use_vmac vrrp.51"), func(c *Config) any { return [2]any{inst0(c).UseVMAC, inst0(c).VMACName} }, [2]any{true, "vrrp.51"}},
		{"accept", vrrpInst("no_accept"), func(c *Config) any { return inst0(c).Accept }, false},
		{"dont_track_primary", vrrpInst("dont_track_primary"), func(c *Config) any { return inst0(c).DontTrackPrimary }, true},
		{"strict_mode", vrrpInst("strict_mode"), func(c *Config) any { return inst0(c).Strict }, true},
		{"skip_check_adv_addr", vrrpInst("skip_check_adv_addr on"), func(c *Config) any { return inst0(c).SkipCheckAdvAddr }, true},
		{"lower_prio_no_advert", vrrpInst("lower_prio_no_advert"), func(c *Config) any { return inst0(c).LowerPrioNoAdvert }, true},
		{"higher_prio_send_advert", vrrpInst("higher_prio_send_advert"), func(c *Config) any { return inst0(c).HigherPrioSendAdvert }, true},
		{"promote_secondaries", vrrpInst("promote_secondaries"), func(c *Config) any { return inst0(c).PromoteSecondaries }, true},
		{"notify scripts", vrrpInst("notify_master /m.sh", "notify_backup \"/b.sh x\"", "notify_fault /f.sh", "notify_stop /s.sh", "notify /n.sh"),
			func(c *Config) any {
				n := inst0(c).Notify
				return [][]string{n.Master.Args, n.Backup.Args, n.Fault.Args, n.Stop.Args, n.Any.Args}
			}, [][]string{{"/m.sh"}, {"/b.sh", "x"}, {"/f.sh"}, {"/s.sh"}, {"/n.sh"}}},
		{"track_interface weights", vrrpInst("track_interface {\n eth1\n eth2 weight -10\n eth3 weight 5 reverse\n}"),
			func(c *Config) any {
				var out []string
				for _, ti := range inst0(c).TrackInterface {
					out = append(out, fmt.Sprintf("%s %d %v", ti.Name, ti.Weight, ti.Reverse))
				}
				return out
			}, []string{"eth1 0 false", "eth2 -10 false", "eth3 5 true"}},
		{"track_script weights", vrrpScript("weight 7") + vrrpInst("track_script {\n chk\n chk weight -20\n chk weight 3 reverse\n}"),
			func(c *Config) any {
				var out []string
				for _, ts := range inst0(c).TrackScript {
					w := "script's"
					if ts.Weight != nil {
						w = fmt.Sprint(*ts.Weight)
					}
					out = append(out, fmt.Sprintf("%s %s %v", ts.Name, w, ts.Reverse))
				}
				return out
			}, []string{"chk script's false", "chk -20 false", "chk 3 true"}},
		{"virtual_ipaddress options", vrrpInst("virtual_ipaddress {\n 10.0.0.2/24 brd 10.0.0.255 dev eth1 scope link label eth1:1 preferred_lft 30\n}",
			"virtual_ipaddress_excluded {\n fd00::5/64 dev eth1 -nodad no_track preferred_lft forever\n fd00::6\n}"),
			func(c *Config) any {
				v, e := inst0(c).VIPs, inst0(c).ExcludedVIPs
				return [][]any{{v[0].Prefix, v[0].Brd, v[0].Dev, v[0].Scope, v[0].Label, v[0].PreferredLft == nil},
					{v[1].Prefix, v[1].Brd, v[1].Dev, v[1].Scope, v[1].Label, *v[1].PreferredLft},
					{e[0].Prefix, e[0].Dev, e[0].NoDAD, e[0].NoTrack, *e[0].PreferredLft}, {e[1].Prefix, e[1].NoDAD, e[1].PreferredLft == nil}}
			},
			[][]any{
				{netip.MustParsePrefix("10.0.0.1/32"), netip.Addr{}, "", "", "", true},
				{netip.MustParsePrefix("10.0.0.2/24"), addr("10.0.0.255"), "eth1", "link", "eth1:1", uint32(30)},
				{netip.MustParsePrefix("fd00::5/64"), "eth1", true, true, uint32(0xffffffff)},
				{netip.MustParsePrefix("fd00::6/128"), false, true},
			}},
		{"virtual_ipaddress_excluded", vrrpInst("virtual_ipaddress_excluded {\n 192.168.1.1/24 dev eth2\n}"),
			func(c *Config) any { v := inst0(c).ExcludedVIPs[0]; return [2]any{v.Prefix, v.Dev} }, [2]any{netip.MustParsePrefix("192.168.1.1/24"), "eth2"}},
		{"static_ipaddress", "static_ipaddress {\n 10.9.0.1/24 dev eth0 scope global\n}",
			func(c *Config) any { v := c.StaticAddresses[0]; return [3]any{v.Prefix, v.Dev, v.Scope} }, [3]any{netip.MustParsePrefix("10.9.0.1/24"), "eth0", "global"}},
		{"virtual_routes", vrrpInst("virtual_routes {",
			" src 192.0.2.1 to 198.51.100.0/24 via 192.0.2.254 dev eth1 metric 5",
			" 203.0.113.0/24 gw 192.0.2.253 table 100 proto static onlink no_track",
			" 203.0.113.7 dev eth0 scope link preference 7 table main",
			" default via 192.0.2.254 table 200",
			" blackhole 198.51.100.128/25 table 100",
			" unreachable to 2001:db8::/32 protocol 99",
			"}"),
			func(c *Config) any {
				var out []any
				for _, r := range inst0(c).Routes {
					out = append(out, *r.Parsed, r.Parsed.String())
				}
				return append(out, inst0(c).Routes[0].Words)
			},
			[]any{
				VRoute{Dst: netip.MustParsePrefix("198.51.100.0/24"), Src: addr("192.0.2.1"), Via: addr("192.0.2.254"), Dev: "eth1", Metric: 5},
				"198.51.100.0/24 src 192.0.2.1 via 192.0.2.254 dev eth1 metric 5",
				VRoute{Dst: netip.MustParsePrefix("203.0.113.0/24"), Via: addr("192.0.2.253"), Table: 100, Proto: 4, OnLink: true, NoTrack: true},
				"203.0.113.0/24 via 192.0.2.253 table 100 proto 4 onlink",
				VRoute{Dst: netip.MustParsePrefix("203.0.113.7/32"), Dev: "eth0", Scope: "link", Metric: 7, Table: 254},
				"203.0.113.7/32 dev eth0 scope link table 254 metric 7",
				VRoute{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: addr("192.0.2.254"), Table: 200},
				"0.0.0.0/0 via 192.0.2.254 table 200",
				VRoute{Type: "blackhole", Dst: netip.MustParsePrefix("198.51.100.128/25"), Table: 100},
				"blackhole 198.51.100.128/25 table 100",
				VRoute{Type: "unreachable", Dst: netip.MustParsePrefix("2001:db8::/32"), Proto: 99},
				"unreachable 2001:db8::/32 proto 99",
				[]string{"src", "192.0.2.1", "to", "198.51.100.0/24", "via", "192.0.2.254", "dev", "eth1", "metric", "5"},
			}},
		{"static_routes", "static_routes {\n 10.8.0.0/16 via 10.9.0.254 dev eth0\n}",
			func(c *Config) any { return c.StaticRoutes[0].Words }, []string{"10.8.0.0/16", "via", "10.9.0.254", "dev", "eth0"}},

		// vrrp_sync_group
		{"sync group", vrrpInst() + "vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 52\n}\n" +
			"vrrp_sync_group G1 {\n group {\n  VI_1\n  VI_2\n }\n notify_master /gm.sh\n global_tracking\n}",
			func(c *Config) any {
				g := c.SyncGroups[0]
				return [5]any{g.Name, g.Group, g.Notify.Master.Args, g.GlobalTracking, c.Instances[1].SyncGroup}
			}, [5]any{"G1", []string{"VI_1", "VI_2"}, []string{"/gm.sh"}, true, "G1"}},

		// virtual_server
		{"lvs_sched", virtServer("lvs_sched rr", realServer()), func(c *Config) any { return vs0(c).Scheduler }, "rr"},
		{"lb_algo alias", virtServer("lb_algo sh", "sh-port", "sh-fallback", realServer()),
			func(c *Config) any { return [2]any{vs0(c).Scheduler, vs0(c).SchedFlags} }, [2]any{"sh", []string{"sh-port", "sh-fallback"}}},
		{"lvs_method", virtServer("lvs_method DR", "real_server 192.168.0.1 80 {\n}"), func(c *Config) any { return vs0(c).Forwarding }, Forwarding{Method: "DR"}},
		{"lb_kind alias", virtServer("lb_kind TUN", realServer()), func(c *Config) any { return vs0(c).Forwarding }, Forwarding{Method: "TUN", TunnelType: "ipip"}},
		{"TUN gue port", virtServer("lvs_method TUN type gue port 6080", realServer()),
			func(c *Config) any { return vs0(c).Forwarding }, Forwarding{Method: "TUN", TunnelType: "gue", TunnelPort: 6080}},
		{"TUN gue port csum", virtServer("lvs_method TUN type gue port 6080 remcsum", realServer()),
			func(c *Config) any { return vs0(c).Forwarding }, Forwarding{Method: "TUN", TunnelType: "gue", TunnelPort: 6080, TunnelCsum: "remcsum"}},
		{"TUN gre", virtServer("lvs_method TUN type gre nocsum", realServer()),
			func(c *Config) any { return vs0(c).Forwarding }, Forwarding{Method: "TUN", TunnelType: "gre", TunnelCsum: "nocsum"}},
		{"protocol", virtServer("protocol udp", realServer()), func(c *Config) any { return vs0(c).Protocol }, "UDP"},
		{"persistence_granularity", virtServer("persistence_timeout 60", "persistence_granularity 255.255.255.0", realServer()),
			func(c *Config) any { return vs0(c).PersistenceGranularity }, addr("255.255.255.0")},
		{"persistence_granularity as a length", virtServer("persistence_timeout 60", "persistence_granularity 24", realServer()),
			func(c *Config) any { return vs0(c).PersistenceGranularity }, addr("255.255.255.0")},
		{"persistence_engine", virtServer("persistence_engine sip", realServer()), func(c *Config) any { return vs0(c).PersistenceEngine }, "sip"},
		{"ops", virtServer("protocol UDP", "ops", realServer()), func(c *Config) any { return vs0(c).OPS }, true},
		{"ha_suspend", virtServer("ha_suspend", realServer()), func(c *Config) any { return vs0(c).HASuspend }, true},
		{"virtualhost", virtServer("virtualhost a.example", realServer()), func(c *Config) any { return vs0(c).VirtualHost }, "a.example"},
		{"alpha omega", virtServer("alpha", "omega", realServer()), func(c *Config) any { return [2]bool{vs0(c).Alpha, vs0(c).Omega} }, [2]bool{true, true}},
		{"quorum hysteresis", virtServer("quorum 3", "hysteresis 1", realServer("weight 3")), func(c *Config) any { return [2]int{vs0(c).Quorum, vs0(c).Hysteresis} }, [2]int{3, 1}},
		{"quorum_up quorum_down", virtServer("quorum_up \"/up.sh 1\"", "quorum_down /down.sh", realServer()),
			func(c *Config) any { return [2][]string{vs0(c).QuorumUp.Args, vs0(c).QuorumDown.Args} }, [2][]string{{"/up.sh", "1"}, {"/down.sh"}}},
		{"ip_family", "virtual_server fwmark 1 {\n ip_family inet6\n" + realServer() + "\n}", func(c *Config) any { return vs0(c).IPFamily }, "inet6"},
		{"sorry_server", virtServer("sorry_server 10.9.9.9 8081", "sorry_server_inhibit", "sorry_server_lvs_method DR", realServer()),
			func(c *Config) any {
				s := vs0(c).SorryServer
				return [4]any{s.Addr, s.Port, s.Forwarding.Method, s.InhibitOnFailure}
			},
			[4]any{addr("10.9.9.9"), 8081, "DR", true}},
		{"smtp_alert on a virtual server", virtServer("smtp_alert", realServer()), func(c *Config) any { return vs0(c).SMTPAlert }, boolp(true)},

		// real_server
		{"weight", virtServer(realServer("weight 3")), func(c *Config) any { return rs0(c).Weight }, 3},
		{"weight 0", virtServer(realServer("weight 0"), "real_server 192.168.0.2 {\n}"), func(c *Config) any { return rs0(c).Weight }, 0},
		{"real server inhibit_on_failure", virtServer(realServer("inhibit_on_failure")), func(c *Config) any { return rs0(c).InhibitOnFailure }, true},
		{"notify_up notify_down", virtServer(realServer("notify_up /u.sh", "notify_down \"/d.sh a\"")),
			func(c *Config) any { return [2][]string{rs0(c).NotifyUp.Args, rs0(c).NotifyDown.Args} }, [2][]string{{"/u.sh"}, {"/d.sh", "a"}}},
		{"thresholds", virtServer(realServer("uthreshold 100", "lthreshold 10")), func(c *Config) any { return [2]int{rs0(c).UThreshold, rs0(c).LThreshold} }, [2]int{100, 10}},
		{"real server virtualhost", virtServer("virtualhost vs.example", realServer("virtualhost rs.example")), func(c *Config) any { return rs0(c).VirtualHost }, "rs.example"},

		// checkers
		{"connection options", virtServer(realServer(checkerBlock(CheckTCP, "connect_ip 10.1.1.1", "connect_port 81", "bindto 10.0.0.9", "bind_port 5000", "bind_if eth1", "fwmark 3"))),
			func(c *Config) any {
				k := chk0(c)
				return [6]any{k.ConnectIP, k.ConnectPort, k.BindTo, k.BindPort, k.BindIf, k.Fwmark}
			}, [6]any{addr("10.1.1.1"), 81, addr("10.0.0.9"), 5000, "eth1", uint32(3)}},
		{"checker alpha and log_all_failures", virtServer(realServer(checkerBlock(CheckTCP, "alpha off", "log_all_failures"))),
			func(c *Config) any { return [2]any{chk0(c).Alpha, chk0(c).LogAllFailures} }, [2]any{boolp(false), true}},
		{"HTTP_GET url", virtServer(realServer(checkerBlock(CheckHTTP, "url {\n path /health\n digest 9b3a0c85a887a256d6939da88aabd8cd\n status_code 200 301-302\n virtualhost h.example\n regex ^ok\n regex_no_match\n}"))),
			func(c *Config) any { u := chk0(c).URLs[0]; u.Pos = Pos{}; return u },
			URL{Path: "/health", Digest: "9b3a0c85a887a256d6939da88aabd8cd", StatusCodes: []CodeRange{{200, 200}, {301, 302}}, VirtualHost: "h.example", Regex: "^ok", RegexNoMatch: true}},
		{"HTTP_GET options", virtServer(realServer(checkerBlock(CheckHTTP, "url {\n path /\n}", "virtualhost c.example", "http_protocol 1.1", "fast_recovery"))),
			func(c *Config) any { k := chk0(c); return [3]any{k.VirtualHost, k.HTTPProtocol, k.FastRecovery} }, [3]any{"c.example", "1.1", true}},
		{"http_protocol 1.0C", virtServer(realServer(checkerBlock(CheckHTTP, "url {\n path /\n}", "http_protocol 1.0c"))),
			func(c *Config) any { return chk0(c).HTTPProtocol }, "1.0C"},
		{"checker virtualhost from the real server", virtServer("virtualhost vs.example", realServer(checkerBlock(CheckHTTP, "url {\n path /\n}"))),
			func(c *Config) any { return chk0(c).VirtualHost }, "vs.example"},
		{"SSL_GET enable_sni", virtServer(realServer(checkerBlock(CheckSSL, "url {\n path /\n}", "enable_sni"))),
			func(c *Config) any { return chk0(c).EnableSNI }, true},
		{"MISC_CHECK quoted path with args", virtServer(realServer(checkerBlock(CheckMisc, `misc_path "/usr/bin/check.sh -p 'a b' 10.0.0.1:80"`, "misc_timeout 5", "misc_dynamic", "user nobody"))),
			func(c *Config) any {
				k := chk0(c)
				return [4]any{k.MiscPath.Args, k.MiscTimeout, k.MiscDynamic, k.MiscPath.User}
			},
			[4]any{[]string{"/usr/bin/check.sh", "-p", "a b", "10.0.0.1:80"}, 5 * time.Second, true, "nobody"}},
		{"MISC_CHECK unquoted path with args", virtServer(realServer(checkerBlock(CheckMisc, "misc_path /bin/chk a b"))),
			func(c *Config) any { return chk0(c).MiscPath.Args }, []string{"/bin/chk", "a", "b"}},
		{"DNS_CHECK type and name", virtServer(realServer(checkerBlock(CheckDNS, "type a", "name www.example.com"))),
			func(c *Config) any { return [2]string{chk0(c).DNSType, chk0(c).DNSName} }, [2]string{"A", "www.example.com"}},
		{"UDP_CHECK", virtServer(realServer(checkerBlock(CheckUDP, "payload 0102 a", "require_reply ab cd", "min_reply_length 2", "max_reply_length 100"))),
			func(c *Config) any {
				k := chk0(c)
				return [5]any{k.Payload, k.RequireReply, k.ReplyPattern, k.MinReplyLength, k.MaxReplyLength}
			},
			[5]any{[]byte{1, 2, 0x0a}, true, "ab cd", 2, 100}},
		{"SMTP_CHECK helo_name", virtServer(realServer(checkerBlock(CheckSMTP, "helo_name lvsd.example"))),
			func(c *Config) any { return chk0(c).HeloName }, "lvsd.example"},
		{"EXPECT_CHECK", virtServer(realServer(checkerBlock(CheckExpect, `send "PING\r\n"`, "expect +PONG", `expect_regex "^\\+PONG"`))),
			func(c *Config) any { k := chk0(c); return [3]string{k.Send, k.Expect, k.ExpectRegex} }, [3]string{"PING\r\n", "+PONG", `^\+PONG`}},
		{"several checkers", virtServer(realServer(checkerBlock(CheckTCP), checkerBlock(CheckHTTP, "url {\n path /a\n}\nurl {\n path /b\n}"))),
			func(c *Config) any {
				k := rs0(c).Checkers
				return [3]any{k[0].Type, k[1].Type, len(k[1].URLs)}
			}, [3]any{CheckTCP, CheckHTTP, 2}},
	})
}

// TestSMTPCheckHosts: an SMTP_CHECK with host blocks is one checker per host,
// each with its own position, connection options, and the block's common settings.
func TestSMTPCheckHosts(t *testing.T) {
	text := virtServer(realServer(checkerBlock(CheckSMTP,
		"connect_timeout 3",
		"helo_name lvsd.example",
		"connect_port 2525",
		"host {\n connect_ip 10.0.0.5\n connect_port 25\n}",
		"host {\n connect_ip 10.0.0.6\n bindto 10.0.0.9\n}",
	)))
	cks := parseClean(t, text).VirtualServers[0].RealServers[0].Checkers
	var got []string
	for _, c := range cks {
		got = append(got, fmt.Sprintf("%s line %d: %v:%d bind %v helo %s timeout %v",
			c.Type, c.Pos.Line, c.ConnectIP, c.ConnectPort, c.BindTo, c.HeloName, c.Timers.ConnectTimeout))
	}
	want := []string{
		"SMTP_CHECK line 10: 10.0.0.5:25 bind invalid IP helo lvsd.example timeout 3s",
		"SMTP_CHECK line 14: 10.0.0.6:2525 bind 10.0.0.9 helo lvsd.example timeout 3s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("SMTP_CHECK hosts:\n got %q\nwant %q\nin:\n%s", got, want, text)
	}
}

// TestVSGroupRanges: the address forms of virtual_server_group.
func TestVSGroupRanges(t *testing.T) {
	text := "virtual_server_group G {\n" +
		" 192.168.200.3-10 80\n" +
		" 10.0.0.1-10.0.1.5 443\n" +
		" 10.1.0.9/29 8080\n" +
		" 10.2.0.1\n" +
		" 2001:db8::1-ff 80\n" +
		" 2001:db8:1::/126 80\n" +
		" fwmark 7\n" +
		" fwmark 8 inet6\n" +
		"}\n"
	g := parseClean(t, text).VSGroups[0]
	var got []string
	for _, a := range g.Addrs {
		got = append(got, fmt.Sprintf("%d: %s-%s %d", a.Pos.Line, a.First, a.Last, a.Port))
	}
	for _, f := range g.Fwmarks {
		got = append(got, fmt.Sprintf("%d: fwmark %d %s", f.Pos.Line, f.Mark, f.Family))
	}
	want := []string{
		"2: 192.168.200.3-192.168.200.10 80",
		"3: 10.0.0.1-10.0.1.5 443",
		"4: 10.1.0.8-10.1.0.15 8080",
		"5: 10.2.0.1-10.2.0.1 0",
		"6: 2001:db8::1-2001:db8::ff 80",
		"7: 2001:db8:1::-2001:db8:1::3 80",
		"8: fwmark 7 ",
		"9: fwmark 8 inet6",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("group entries:\n got:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// TestParseDefaultConfigID: without -i, Parse (like Load) takes the short host
// name as the config id, for @ID lines and ${_INSTANCE}.
func TestParseDefaultConfigID(t *testing.T) {
	id := DefaultConfigID()
	if id == "" {
		t.Skip("no host name")
	}
	cfg, _ := Parse("t.conf", "global_defs {\n @"+id+" router_id mine\n @^"+id+" router_id other\n}\n", Options{})
	if cfg.Global.RouterID != "mine" {
		t.Fatalf("router_id %q, want the @%s line's", cfg.Global.RouterID, id)
	}
}
