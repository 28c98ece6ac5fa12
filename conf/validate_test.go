package conf

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// diagCase is one configuration and every diagnostic it must produce, in order.
//
// A want entry reads "tag: level: keyword: message" where tag names a line of
// conf ending in the comment "#tag"; it stands for test.conf:<that line>. The
// diagnostic's String() must start with it (so the message may be cut short,
// but file, line, level and keyword are exact). check then asserts what the
// diagnostic did to the model: a diagnostic alone proves nothing.
type diagCase struct {
	name  string
	conf  string
	opt   Options
	want  []string
	check func(t *testing.T, c *Config)
}

var lineTag = regexp.MustCompile(`#(\w+)\s*$`)

func runDiagCases(t *testing.T, cases []diagCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tags := map[string]int{}
			for i, l := range strings.Split(tc.conf, "\n") {
				if m := lineTag.FindStringSubmatch(l); m != nil {
					if _, dup := tags[m[1]]; dup {
						t.Fatalf("tag #%s used twice", m[1])
					}
					tags[m[1]] = i + 1
				}
			}
			if tc.opt.ConfigID == "" {
				tc.opt.ConfigID = "test"
			}
			cfg, diags := Parse("test.conf", tc.conf, tc.opt)
			var want []string
			for _, w := range tc.want {
				tag, rest, ok := strings.Cut(w, ": ")
				line, known := tags[tag]
				if !ok || !known {
					t.Fatalf("want %q: no line tagged #%s", w, tag)
				}
				want = append(want, "test.conf:"+strconv.Itoa(line)+": "+rest)
			}
			got := diagStrings(diags)
			bad := len(got) != len(want)
			for i := 0; !bad && i < len(got); i++ {
				bad = !strings.HasPrefix(got[i], want[i])
			}
			if bad {
				t.Errorf("diagnostics:\n got:\n\t%s\nwant (prefixes):\n\t%s\nin:\n%s",
					strings.Join(got, "\n\t"), strings.Join(want, "\n\t"), numbered(tc.conf))
			}
			if tc.check != nil {
				tc.check(t, cfg)
			}
		})
	}
}

func numbered(text string) string {
	lines := strings.Split(text, "\n")
	for i := range lines {
		lines[i] = strconv.Itoa(i+1) + "\t" + lines[i]
	}
	return strings.Join(lines, "\n")
}

func wantInstances(t *testing.T, c *Config, names ...string) {
	t.Helper()
	var got []string
	for _, in := range c.Instances {
		got = append(got, in.Name)
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("instances %v, want %v", got, names)
	}
}

func TestValidateVRRPInstance(t *testing.T) {
	runDiagCases(t, []diagCase{
		{
			name: "VRID above range",
			conf: "vrrp_instance VI_1 { #i\n interface eth0\n virtual_router_id 300 #v\n}",
			want: []string{
				"v: error: virtual_router_id: 300 outside range [1, 255]",
				"i: error: virtual_router_id: (VI_1) virtual_router_id missing - removing instance",
			},
			check: func(t *testing.T, c *Config) { wantInstances(t, c) },
		},
		{
			name: "VRID zero",
			conf: "vrrp_instance VI_1 { #i\n interface eth0\n virtual_router_id 0 #v\n}",
			want: []string{
				"v: error: virtual_router_id: 0 outside range [1, 255]",
				"i: error: virtual_router_id: (VI_1) virtual_router_id missing - removing instance",
			},
			check: func(t *testing.T, c *Config) { wantInstances(t, c) },
		},
		{
			name: "VRID not a number",
			conf: "vrrp_instance VI_1 { #i\n interface eth0\n virtual_router_id ten #v\n}",
			want: []string{
				"v: error: virtual_router_id: invalid number 'ten'",
				"i: error: virtual_router_id: (VI_1) virtual_router_id missing - removing instance",
			},
			check: func(t *testing.T, c *Config) { wantInstances(t, c) },
		},
		{
			name:  "no interface",
			conf:  "vrrp_instance VI_1 { #i\n virtual_router_id 1\n}",
			want:  []string{"i: error: interface: (VI_1) no interface specified - removing instance"},
			check: func(t *testing.T, c *Config) { wantInstances(t, c) },
		},
		{
			name: "priority out of range",
			conf: vrrpInst("priority 256 #p", "priority 0 #q"),
			want: []string{
				"p: error: priority: 256 outside range [1, 255]",
				"q: error: priority: 0 outside range [1, 255]",
			},
			check: func(t *testing.T, c *Config) {
				if p := inst0(c).Priority; p != 100 {
					t.Errorf("priority %d, want the default 100", p)
				}
			},
		},
		{
			name: "v2 fractional advert_int rounds",
			conf: vrrpInst("advert_int 1.5 #a"),
			want: []string{"a: warning: advert_int: (VI_1) VRRPv2 advert_int must be whole seconds - rounding 1.5s to 2s"},
			check: func(t *testing.T, c *Config) {
				if a := inst0(c).AdvertInt; a != 2*time.Second {
					t.Errorf("advert_int %v, want 2s", a)
				}
			},
		},
		{
			name: "v2 fractional advert_int rounds down",
			conf: vrrpInst("advert_int 3.2 #a"),
			want: []string{"a: warning: advert_int: (VI_1) VRRPv2 advert_int must be whole seconds - rounding 3.2s to 3s"},
			check: func(t *testing.T, c *Config) {
				if a := inst0(c).AdvertInt; a != 3*time.Second {
					t.Errorf("advert_int %v, want 3s", a)
				}
			},
		},
		{
			name: "v2 advert_int below 1s",
			conf: vrrpInst("advert_int 0.5 #a"),
			want: []string{"a: error: advert_int: (VI_1) advert_int 500ms is below 1s for VRRPv2 - using 1s"},
			check: func(t *testing.T, c *Config) {
				if a := inst0(c).AdvertInt; a != time.Second {
					t.Errorf("advert_int %v, want 1s", a)
				}
			},
		},
		{
			name: "v3 advert_int above 40.95s",
			conf: vrrpInst("version 3", "advert_int 41 #a"),
			want: []string{"a: error: advert_int: (VI_1) advert_int 41s above 40.95s for VRRPv3 - using 40.95s"},
			check: func(t *testing.T, c *Config) {
				if a := inst0(c).AdvertInt; a != 40950*time.Millisecond {
					t.Errorf("advert_int %v, want 40.95s", a)
				}
			},
		},
		{
			name: "v3 advert_int rounds to centiseconds",
			conf: globalDefs("vrrp_version 3") + vrrpInst("advert_int 0.555 #a"),
			want: []string{"a: warning: advert_int: (VI_1) VRRPv3 advert_int is in centiseconds - rounding 555ms to 560ms"},
			check: func(t *testing.T, c *Config) {
				if a := inst0(c).AdvertInt; a != 560*time.Millisecond {
					t.Errorf("advert_int %v, want 560ms", a)
				}
			},
		},
		{
			name: "v3 advert_int fine in centiseconds",
			conf: vrrpInst("version 3", "advert_int 0.01"),
			check: func(t *testing.T, c *Config) {
				if a := inst0(c).AdvertInt; a != 10*time.Millisecond {
					t.Errorf("advert_int %v, want 10ms", a)
				}
			},
		},
		{
			name: "advert_int outside what any version allows",
			conf: vrrpInst("advert_int 0.001 #a", "advert_int 256 #b"),
			want: []string{
				"a: error: advert_int: 0.001 outside range [0.01, 255] seconds",
				"b: error: advert_int: 256 outside range [0.01, 255] seconds",
			},
		},
		{
			name: "v3 with authentication",
			conf: vrrpInst("version 3", "authentication { #a\n auth_type PASS\n auth_pass x\n}"),
			want: []string{"a: warning: authentication: (VI_1) cannot use authentication with VRRPv3 - ignoring"},
			check: func(t *testing.T, c *Config) {
				if a := inst0(c).Auth; a.Type != "" || a.Pass != "" {
					t.Errorf("auth %+v, want none", a)
				}
			},
		},
		{
			name: "PASS without a password",
			conf: vrrpInst("authentication { #a\n auth_type PASS\n}"),
			want: []string{"a: error: auth_pass: (VI_1) auth_type PASS without auth_pass - authentication disabled"},
			check: func(t *testing.T, c *Config) {
				if inst0(c).Auth.Type != "" {
					t.Errorf("auth %+v, want none", inst0(c).Auth)
				}
			},
		},
		{
			name: "password longer than 8",
			conf: vrrpInst("authentication {\n auth_type PASS\n auth_pass 0123456789 #p\n}"),
			want: []string{"p: warning: auth_pass: password longer than 8 characters, truncated as keepalived does"},
			check: func(t *testing.T, c *Config) {
				if p := inst0(c).Auth.Pass; p != "01234567" {
					t.Errorf("auth_pass %q", p)
				}
			},
		},
		{
			name: "unknown auth_type",
			conf: vrrpInst("authentication {\n auth_type MD5 #t\n}"),
			want: []string{"t: error: auth_type: unknown authentication type 'MD5' (want PASS or AH)"},
			check: func(t *testing.T, c *Config) {
				if a := inst0(c).Auth.Type; a != "" {
					t.Errorf("auth_type %q", a)
				}
			},
		},
		{
			name: "AH with state MASTER",
			conf: vrrpInst("state MASTER", "priority 100", "authentication { #a\n auth_type AH\n auth_pass x\n}"),
			want: []string{
				"a: warning: authentication: (VI_1) initial state master is incompatible with AH authentication - clearing",
				"a: notice: auth_type: AH authentication parsed, not supported yet",
			},
			check: func(t *testing.T, c *Config) {
				if s := inst0(c).State; s != "BACKUP" {
					t.Errorf("state %q, want BACKUP", s)
				}
			},
		},
		{
			name: "AH with state MASTER as the address owner",
			conf: vrrpInst("state MASTER", "authentication { #a\n auth_type AH\n auth_pass x\n}"),
			want: []string{"a: notice: auth_type: AH authentication parsed, not supported yet"},
			check: func(t *testing.T, c *Config) {
				if in := inst0(c); in.State != "MASTER" || in.Priority != 255 {
					t.Errorf("state %q priority %d, want MASTER 255", in.State, in.Priority)
				}
			},
		},
		{
			name: "nopreempt with state MASTER",
			conf: vrrpInst("state MASTER", "priority 150", "nopreempt #n"),
			want: []string{"n: warning: nopreempt: (VI_1) nopreempt will not work with initial state MASTER - clearing nopreempt"},
			check: func(t *testing.T, c *Config) {
				if in := inst0(c); in.State != "MASTER" || in.NoPreempt {
					t.Errorf("state %q nopreempt %v, want MASTER and preempting, as keepalived", in.State, in.NoPreempt)
				}
			},
		},
		{
			name: "nopreempt with priority 255",
			conf: vrrpInst("priority 255", "nopreempt #n"),
			want: []string{"n: warning: nopreempt: (VI_1) nopreempt is incompatible with priority 255 - resetting nopreempt"},
			check: func(t *testing.T, c *Config) {
				if inst0(c).NoPreempt {
					t.Error("nopreempt kept")
				}
			},
		},
		{
			name: "nopreempt with state MASTER and no priority",
			conf: vrrpInst("nopreempt #n", "state MASTER"),
			want: []string{"n: warning: nopreempt: (VI_1) nopreempt is incompatible with priority 255 - resetting nopreempt"},
		},
		{
			name: "nopreempt with state BACKUP",
			conf: vrrpInst("state BACKUP", "nopreempt"),
			check: func(t *testing.T, c *Config) {
				if in := inst0(c); !in.NoPreempt || in.State != "BACKUP" {
					t.Errorf("nopreempt %v state %q, want both kept", in.NoPreempt, in.State)
				}
			},
		},
		{
			name: "priority 255 with state BACKUP",
			conf: "vrrp_instance VI_1 { #i\n interface eth0\n virtual_router_id 1\n priority 255\n state BACKUP\n}",
			want: []string{"i: warning: priority: (VI_1) priority 255 is the address owner; initial state BACKUP ignored"},
			check: func(t *testing.T, c *Config) {
				if in := inst0(c); in.Priority != 255 || in.State != "BACKUP" {
					t.Errorf("priority %d state %q: the model keeps what was written", in.Priority, in.State)
				}
			},
		},
		{
			name: "unknown state",
			conf: vrrpInst("state FOO #s"),
			want: []string{"s: error: state: unknown state 'FOO' (want MASTER or BACKUP)"},
			check: func(t *testing.T, c *Config) {
				if s := inst0(c).State; s != "" {
					t.Errorf("state %q", s)
				}
			},
		},
		{
			name: "VRID used twice on one interface",
			conf: vrrpInst() + "vrrp_instance VI_2 { #j\n interface eth0\n virtual_router_id 51\n}\n" +
				"vrrp_instance VI_3 {\n interface eth1\n virtual_router_id 51\n}\n" +
				"vrrp_instance VI_6 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  fd00::1\n }\n}\n",
			want:  []string{"j: error: virtual_router_id: (VI_2) VRID 51 is already used on eth0 by VI_1 (test.conf:1) - removing instance"},
			check: func(t *testing.T, c *Config) { wantInstances(t, c, "VI_1", "VI_3", "VI_6") },
		},
		{
			name:  "instance name used twice",
			conf:  vrrpInst() + "vrrp_instance VI_1 { #j\n interface eth0\n virtual_router_id 52\n}\n",
			want:  []string{"j: error: vrrp_instance: vrrp_instance VI_1 already defined at test.conf:1 - ignoring"},
			check: func(t *testing.T, c *Config) { wantInstances(t, c, "VI_1") },
		},
		{
			name: "track_script not found",
			conf: vrrpScript() + vrrpInst("track_script {\n chk\n nochk #n\n}"),
			want: []string{"n: warning: track_script: (VI_1) track script nochk not found, ignoring"},
			check: func(t *testing.T, c *Config) {
				if ts := inst0(c).TrackScript; len(ts) != 1 || ts[0].Name != "chk" {
					t.Errorf("track_script %+v, want chk only", ts)
				}
			},
		},
		{
			name: "track weights out of range",
			conf: vrrpScript() + vrrpInst("track_interface {\n eth1 weight 300 #i\n eth2 foo #f\n}", "track_script {\n chk weight -255 #s\n}"),
			want: []string{
				"i: error: eth1: invalid weight '300' (-254..254)",
				"f: error: eth2: unexpected 'foo' (want: NAME [weight N [reverse]])",
				"s: error: chk: invalid weight '-255' (-254..254)",
			},
			check: func(t *testing.T, c *Config) {
				if len(inst0(c).TrackInterface) != 0 || len(inst0(c).TrackScript) != 0 {
					t.Errorf("track entries kept: %+v %+v", inst0(c).TrackInterface, inst0(c).TrackScript)
				}
			},
		},
		{
			name: "vrrp_script without script",
			conf: "vrrp_script chk { #s\n interval 2\n}",
			want: []string{"s: error: vrrp_script: no script set for vrrp_script chk - removing"},
			check: func(t *testing.T, c *Config) {
				if len(c.Scripts) != 0 {
					t.Error("script kept")
				}
			},
		},
		{
			name: "vrrp_script defined twice",
			conf: vrrpScript() + "vrrp_script chk { #s\n script /bin/false\n}",
			want: []string{"s: error: vrrp_script: vrrp_script chk already defined at test.conf:1 - ignoring"},
			check: func(t *testing.T, c *Config) {
				if len(c.Scripts) != 1 || c.Scripts[0].Script.Args[0] != "/bin/true" {
					t.Errorf("scripts %+v, want the first", c.Scripts)
				}
			},
		},
		{
			name: "unicast peer of another family",
			conf: vrrpInst("unicast_src_ip 10.0.0.1", "unicast_peer {\n fd00::2 #p\n}"),
			want: []string{"p: error: fd00::2: (VI_1) unicast peer address fd00::2 and the VRRP instance must be of the same family - skipping"},
			check: func(t *testing.T, c *Config) {
				if len(inst0(c).UnicastPeers) != 0 {
					t.Errorf("peers %v", inst0(c).UnicastPeers)
				}
			},
		},
		{
			name: "VIP listed twice",
			conf: vrrpInst("virtual_ipaddress {\n 10.0.0.1/24 #d\n}"),
			want: []string{"d: warning: virtual_ipaddress: (VI_1) address 10.0.0.1 listed twice - ignoring the second"},
			check: func(t *testing.T, c *Config) {
				if len(inst0(c).VIPs) != 1 {
					t.Errorf("VIPs %v", inst0(c).VIPs)
				}
			},
		},
	})
}

func TestValidateAddresses(t *testing.T) {
	runDiagCases(t, []diagCase{
		{
			name: "bad VIPs",
			conf: vrrpInst("virtual_ipaddress {",
				" 10.0.0.300 #a",
				" 10.0.0.2/33 #b",
				" fd00::1/129 #c",
				" 10.0.0.3/x #d",
				" fe80::1%eth0 #e",
				" 10.0.0.4 brd #f",
				" 10.0.0.5 brd 10.0.0.256 #g",
				" 10.0.0.6 scope galaxy #h",
				" 10.0.0.7 label eth0:0123456789ab #i",
				" 10.0.0.8 color #j",
				" 10.0.0.9/24",
				"}"),
			want: []string{
				"a: error: 10.0.0.300: invalid IP address '10.0.0.300'",
				"b: error: 10.0.0.2/33: invalid prefix length '33' for 10.0.0.2",
				"c: error: fd00::1/129: invalid prefix length '129' for fd00::1",
				"d: error: 10.0.0.3/x: invalid prefix length 'x' for 10.0.0.3",
				"e: error: fe80::1%eth0: invalid IP address 'fe80::1%eth0'",
				"f: error: 10.0.0.4: 'brd' needs a value",
				"g: error: 10.0.0.5: invalid IP address '10.0.0.256'",
				"h: error: 10.0.0.6: invalid scope 'galaxy'",
				"i: error: 10.0.0.7: label 'eth0:0123456789ab' longer than 15 characters",
				"j: error: 10.0.0.8: unknown address option 'color'",
			},
			check: func(t *testing.T, c *Config) {
				// Rejected addresses are dropped; an address with a bad option is kept.
				var got []string
				for _, v := range inst0(c).VIPs {
					got = append(got, v.Prefix.String())
				}
				want := "10.0.0.1/32 10.0.0.4/32 10.0.0.5/32 10.0.0.6/32 10.0.0.7/32 10.0.0.8/32 10.0.0.9/24"
				if strings.Join(got, " ") != want {
					t.Errorf("VIPs %v, want %s", got, want)
				}
			},
		},
		{
			name: "bad virtual_routes",
			conf: vrrpInst("virtual_routes {",
				" 198.51.100.0/24 via 192.0.2.300 #a",
				" 198.51.100.1/24 dev eth0 #b",
				" 198.51.100.0/33 #c",
				" src x 198.51.100.0/24 #d",
				" 198.51.100.0/24 via 192.0.2.254 color red #e",
				" 198.51.100.0/24 via 192.0.2.254 or 192.0.2.253 dev eth1 #f",
				" 198.51.100.0/24 table x #g",
				" 198.51.100.0/24 metric -1 #h",
				" 198.51.100.0/24 scope galaxy #i",
				" blackhole 198.51.100.0/24 via 192.0.2.254 #j",
				" 198.51.100.0/24 via 2001:db8::1 #k",
				" via 192.0.2.254 dev eth0 #l",
				" 198.51.100.0/24 dev #m",
				" 198.51.100.0/24 proto 256 #n",
				" 198.51.100.0/24 dev eth0 onlink #o",
				" 198.51.100.0/24 blackhole #p",
				" 198.51.100.0/24 nexthop via 192.0.2.1 #q",
				" 203.0.113.0/24 via 192.0.2.254",
				"}"),
			want: []string{
				"a: error: virtual_routes: via: invalid IP address '192.0.2.300'",
				"b: error: virtual_routes: invalid prefix '198.51.100.1/24': host bits set",
				"c: error: virtual_routes: invalid prefix length '33' for 198.51.100.0",
				"d: error: virtual_routes: src: invalid IP address 'x'",
				"e: error: virtual_routes: unknown route option 'color'",
				"f: error: virtual_routes: multipath routes ('or 192.0.2.253') are not supported",
				"g: error: virtual_routes: invalid table 'x'",
				"h: error: virtual_routes: invalid metric '-1'",
				"i: error: virtual_routes: invalid scope 'galaxy'",
				"j: error: virtual_routes: a blackhole route takes no via, dev or onlink",
				"k: error: virtual_routes: via 2001:db8::1 is not of the family of 198.51.100.0/24",
				"l: error: virtual_routes: route without a destination",
				"m: error: virtual_routes: 'dev' needs a value",
				"n: error: virtual_routes: invalid proto '256'",
				"o: error: virtual_routes: onlink needs a gateway (via)",
				"p: error: virtual_routes: 'blackhole' must come before the destination",
				"q: error: virtual_routes: multipath routes ('nexthop') are not supported",
			},
			check: func(t *testing.T, c *Config) {
				// Lines in error are dropped.
				if r := inst0(c).Routes; len(r) != 1 || r[0].Parsed.String() != "203.0.113.0/24 via 192.0.2.254" {
					t.Errorf("routes %+v", r)
				}
			},
		},
		{
			name: "bad instance addresses",
			conf: vrrpInst("mcast_src_ip 10.0.0 #a", "mcast_dst_ip 10.0.0.1 #b", "unicast_src_ip x #c",
				"unicast_peer {\n 10.0.0.256 #d\n 10.0.0.3 ttl #e\n 10.0.0.4 min_ttl 300 #f\n}"),
			want: []string{
				"a: error: mcast_src_ip: invalid IP address '10.0.0'",
				"b: error: mcast_dst_ip: '10.0.0.1' is not a multicast address",
				"c: error: unicast_src_ip: invalid IP address 'x'",
				"d: error: 10.0.0.256: invalid IP address '10.0.0.256'",
				"e: error: 10.0.0.3: unknown option 'ttl'",
				"f: error: 10.0.0.4: invalid min_ttl '300' (0-255)",
			},
			check: func(t *testing.T, c *Config) {
				if in := inst0(c); in.McastSrcIP.IsValid() || in.McastDstIP.IsValid() || len(in.UnicastPeers) != 2 {
					t.Errorf("mcast %v %v peers %v", in.McastSrcIP, in.McastDstIP, in.UnicastPeers)
				}
			},
		},
		{
			name: "global addresses",
			conf: globalDefs("vrrp_mcast_group4 10.0.0.1 #a", "vrrp_mcast_group4 ff02::12 #b", "smtp_server 10.0.0.1 70000 #c"),
			want: []string{
				"a: error: vrrp_mcast_group4: '10.0.0.1' is not an IPv4 multicast address",
				"b: error: vrrp_mcast_group4: 'ff02::12' is not an IPv4 multicast address",
				"c: error: smtp_server: invalid port '70000'",
			},
			check: func(t *testing.T, c *Config) {
				if g := c.Global.VRRPMcastGroup4; g != addr("224.0.0.18") {
					t.Errorf("vrrp_mcast_group4 %v, want the default", g)
				}
			},
		},
		{
			name: "bad virtual and real server addresses",
			conf: "virtual_server 10.0.0.300 80 { #a\n}\nvirtual_server 10.0.0.1 99999 { #b\n}\n" +
				virtServer("real_server 192.168.0.x 80 { #c\n}", "real_server fd00::1 80 { #d\n}", "real_server 192.168.0.1 80 {\n}", "real_server 192.168.0.1 80 { #e\n}"),
			want: []string{
				"a: error: virtual_server: invalid IP address '10.0.0.300'",
				"b: error: virtual_server: invalid port '99999'",
				"c: error: real_server: invalid IP address '192.168.0.x'",
				"d: error: real_server: virtual server 10.0.0.1:80: real server fd00::1 is of another address family - ignoring",
				"e: error: real_server: virtual server 10.0.0.1:80: real server 192.168.0.1:80 already defined - ignoring",
			},
			check: func(t *testing.T, c *Config) {
				if len(c.VirtualServers) != 1 || len(vs0(c).RealServers) != 1 {
					t.Errorf("%d virtual servers, %d real servers; want 1 and 1", len(c.VirtualServers), len(vs0(c).RealServers))
				}
			},
		},
		{
			name: "virtual_server_group ranges",
			conf: "virtual_server_group G {\n 192.168.0.10-5 80 #a\n 10.0.0.1-300 80 #b\n 10.0.0.1-fd00::1 80 #c\n 10.0.0.0/40 80 #d\n 10.0.0.9 http #e\n fwmark 0 #f\n fwmark 5 ipx #g\n 10.0.0.1-3 80\n}\n" +
				"virtual_server_group E { #h\n}",
			want: []string{
				"a: error: 192.168.0.10-5: invalid range '192.168.0.10-5': the end is before the start",
				"b: error: 10.0.0.1-300: invalid range end '300'",
				"c: error: 10.0.0.1-fd00::1: invalid range '10.0.0.1-fd00::1': the end is before the start",
				"d: error: 10.0.0.0/40: invalid prefix length '40' for 10.0.0.0",
				"e: error: 10.0.0.9: invalid port 'http'",
				"f: error: fwmark: 0 outside range [1, 4294967295]",
				"g: error: fwmark: invalid family 'ipx' (want inet or inet6)",
				"h: warning: virtual_server_group: virtual_server_group E is empty",
			},
			check: func(t *testing.T, c *Config) {
				g := c.VSGroups[0]
				if len(g.Addrs) != 1 || g.Addrs[0].Last != addr("10.0.0.3") || len(g.Fwmarks) != 1 {
					t.Errorf("group %+v", g)
				}
			},
		},
	})
}

func TestValidateSyncGroups(t *testing.T) {
	two := vrrpInst() + "vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 52\n}\n"
	runDiagCases(t, []diagCase{
		{
			name: "member missing",
			conf: two + "vrrp_sync_group G1 { #g\n group {\n  VI_1\n  VI_X\n }\n}",
			want: []string{
				"g: error: group: vrrp_sync_group G1: vrrp_instance VI_X does not exist - removing it from the group",
				"g: warning: vrrp_sync_group: sync group G1 has only 1 virtual router - this probably isn't what you want",
			},
			check: func(t *testing.T, c *Config) {
				if g := c.SyncGroups[0]; len(g.Group) != 1 || g.Group[0] != "VI_1" || c.Instances[0].SyncGroup != "G1" {
					t.Errorf("group %v, VI_1 in %q", g.Group, c.Instances[0].SyncGroup)
				}
			},
		},
		{
			name: "member of two groups",
			conf: two + "vrrp_sync_group G1 {\n group {\n  VI_1\n  VI_2\n }\n}\nvrrp_sync_group G2 { #g\n group {\n  VI_2\n }\n}",
			want: []string{
				"g: error: group: vrrp_instance VI_2 is already in sync group G1 - removing it from G2",
				"g: error: vrrp_sync_group: vrrp_sync_group G2 has no (valid) members - removing",
			},
			check: func(t *testing.T, c *Config) {
				if len(c.SyncGroups) != 1 || c.SyncGroups[0].Name != "G1" || c.Instances[1].SyncGroup != "G1" {
					t.Errorf("groups %+v", c.SyncGroups)
				}
			},
		},
		{
			name: "empty group",
			conf: two + "vrrp_sync_group G3 { #g\n group {\n }\n}",
			want: []string{"g: error: vrrp_sync_group: vrrp_sync_group G3 has no (valid) members - removing"},
			check: func(t *testing.T, c *Config) {
				if len(c.SyncGroups) != 0 {
					t.Error("empty group kept")
				}
			},
		},
		{
			name: "extra words on a member line",
			conf: two + "vrrp_sync_group G1 { #g\n group {\n  VI_1 VI_2 #m\n }\n}",
			want: []string{
				"m: warning: unknown keyword 'VI_2'",
				"g: warning: vrrp_sync_group: sync group G1 has only 1 virtual router",
			},
		},
		{
			name: "track_script of a group not found",
			conf: two + "vrrp_sync_group G1 {\n group {\n  VI_1\n  VI_2\n }\n track_script {\n  nochk #t\n }\n}",
			want: []string{"t: warning: track_script: (G1) track script nochk not found, ignoring"},
			check: func(t *testing.T, c *Config) {
				if len(c.SyncGroups[0].TrackScript) != 0 {
					t.Errorf("track_script %v", c.SyncGroups[0].TrackScript)
				}
			},
		},
	})
}

func TestValidateLVS(t *testing.T) {
	runDiagCases(t, []diagCase{
		{
			name: "unknown scheduler",
			conf: virtServer("lvs_sched foo #s", "persistence_timeout 100", realServer()),
			want: []string{"s: error: lvs_sched: unknown scheduler 'foo'"},
			check: func(t *testing.T, c *Config) {
				if vs := vs0(c); vs.Scheduler != "wlc" || vs.PersistenceTimeout != 100*time.Second {
					t.Errorf("scheduler %q persistence %v, want wlc and 100s", vs.Scheduler, vs.PersistenceTimeout)
				}
			},
		},
		{
			name: "unknown forwarding method",
			conf: virtServer("lb_kind XYZ #k", realServer("lvs_method BRIDGE #r")),
			want: []string{
				"k: error: lb_kind: unknown forwarding method 'XYZ' (want NAT, DR or TUN)",
				"r: error: lvs_method: unknown forwarding method 'BRIDGE' (want NAT, DR or TUN)",
			},
			check: func(t *testing.T, c *Config) {
				if vs0(c).Forwarding.Method != "NAT" || rs0(c).Forwarding.Method != "NAT" {
					t.Errorf("forwarding %v / %v, want NAT", vs0(c).Forwarding, rs0(c).Forwarding)
				}
			},
		},
		{
			name: "tunnel options",
			conf: virtServer("lvs_method TUN type gue #a", "lvs_method TUN type vxlan #b", "lvs_method NAT type ipip #c",
				"lvs_method TUN type gue port 0 #d", "lvs_method TUN bogus #e", "lvs_method TUN type gre", realServer()),
			want: []string{
				"a: error: lvs_method: gue tunnel needs 'port NUM'",
				"b: error: lvs_method: unknown tunnel type 'vxlan' (want ipip, gue or gre)",
				"c: error: lvs_method: unexpected 'type' after NAT",
				"e: error: lvs_method: unexpected 'bogus'",
			},
			check: func(t *testing.T, c *Config) {
				if f := vs0(c).Forwarding; f != (Forwarding{Method: "TUN", TunnelType: "gre"}) {
					t.Errorf("forwarding %+v, want the last valid one", f)
				}
			},
		},
		{
			name: "port omitted without persistence",
			conf: "virtual_server 10.0.0.1 { #v\n" + realServer() + "\n}",
			want: []string{"v: warning: virtual_server: virtual server 10.0.0.1:0: zero port only valid for persistent services - setting persistence_timeout 360"},
			check: func(t *testing.T, c *Config) {
				if vs := vs0(c); !vs.Persistent || vs.PersistenceTimeout != 360*time.Second {
					t.Errorf("persistent %v timeout %v, want made persistent as keepalived", vs.Persistent, vs.PersistenceTimeout)
				}
			},
		},
		{
			name: "port omitted with persistence",
			conf: "virtual_server 10.0.0.1 {\n persistence_timeout 60\n" + realServer() + "\n}",
			check: func(t *testing.T, c *Config) {
				if vs0(c).PersistenceTimeout != time.Minute {
					t.Errorf("timeout %v", vs0(c).PersistenceTimeout)
				}
			},
		},
		{
			name: "granularity without persistence",
			conf: virtServer("persistence_granularity 255.255.255.0 #g", realServer()),
			want: []string{"g: warning: persistence_granularity: virtual server 10.0.0.1:80: persistence_granularity without persistence_timeout has no effect"},
			check: func(t *testing.T, c *Config) {
				if vs := vs0(c); vs.Persistent || vs.PersistenceGranularity != addr("255.255.255.0") {
					t.Errorf("persistent %v granularity %v", vs.Persistent, vs.PersistenceGranularity)
				}
			},
		},
		{
			name: "granularity of the other family",
			conf: virtServer("persistence_timeout 60", "persistence_granularity ffff:ffff:: #g", realServer()),
			want: []string{"g: error: persistence_granularity: virtual server 10.0.0.1:80: granularity mask family differs from the address - ignoring"},
			check: func(t *testing.T, c *Config) {
				if vs0(c).PersistenceGranularity.IsValid() {
					t.Error("granularity kept")
				}
			},
		},
		{
			name: "bad granularity masks",
			conf: virtServer("persistence_timeout 60", "persistence_granularity 255.0.255.0 #a", "persistence_granularity 0 #b", "persistence_granularity x #c", realServer()),
			want: []string{
				"a: error: persistence_granularity: invalid netmask '255.0.255.0': not contiguous",
				"b: error: persistence_granularity: invalid netmask '0'",
				"c: error: persistence_granularity: invalid netmask 'x'",
			},
			check: func(t *testing.T, c *Config) {
				if g := vs0(c).PersistenceGranularity; g.IsValid() {
					t.Errorf("granularity %v", g)
				}
			},
		},
		{
			name: "persistence_timeout out of range",
			conf: virtServer("persistence_timeout 0 #p", realServer()),
			want: []string{"p: error: persistence_timeout: 0 outside range [1, 2147483647]"},
			check: func(t *testing.T, c *Config) {
				// keepalived's default applies when the value is rejected.
				if vs0(c).PersistenceTimeout != 360*time.Second {
					t.Errorf("timeout %v", vs0(c).PersistenceTimeout)
				}
			},
		},
		{
			name: "protocol",
			conf: virtServer("protocol ICMP #p", realServer()) + "virtual_server fwmark 1 {\n protocol UDP #f\n" + realServer() + "\n}",
			want: []string{
				"p: error: protocol: unknown protocol 'ICMP' (want TCP, UDP or SCTP)",
				"f: warning: protocol: virtual server FWM 1: protocol specified for fwmark - protocol will be ignored",
			},
			check: func(t *testing.T, c *Config) {
				if p := vs0(c).Protocol; p != "TCP" {
					t.Errorf("protocol %q", p)
				}
			},
		},
		{
			name: "scheduler flags and ops that do not apply",
			conf: "virtual_server 10.0.0.1 80 { #v\n protocol TCP\n sh-port\n ops\n" + realServer() + "\n}",
			want: []string{
				"v: warning: sh-port: virtual server 10.0.0.1:80: sh-port has no effect with scheduler wlc",
				"v: warning: ops: virtual server 10.0.0.1:80: one-packet scheduling only applies to UDP - ignoring",
			},
			check: func(t *testing.T, c *Config) {
				if vs0(c).OPS {
					t.Error("ops kept for TCP")
				}
			},
		},
		{
			name: "hysteresis not below quorum",
			conf: "virtual_server 10.0.0.1 80 { #v\n quorum 2\n hysteresis 2\n" + realServer("weight 5") + "\n}",
			want: []string{"v: warning: hysteresis: virtual server 10.0.0.1:80: hysteresis 2 >= quorum 2 - setting to 1"},
			check: func(t *testing.T, c *Config) {
				if vs0(c).Hysteresis != 1 {
					t.Errorf("hysteresis %d", vs0(c).Hysteresis)
				}
			},
		},
		{
			name: "virtual server defined twice",
			conf: virtServer(realServer()) + "virtual_server 10.0.0.1 80 { #d\n protocol TCP\n" + realServer() + "\n}\nvirtual_server 10.0.0.1 80 {\n protocol UDP\n" + realServer() + "\n}",
			want: []string{"d: error: virtual_server: virtual server 10.0.0.1:80 TCP already defined at test.conf:1 - ignoring"},
			check: func(t *testing.T, c *Config) {
				if len(c.VirtualServers) != 2 || c.VirtualServers[1].Protocol != "UDP" {
					t.Errorf("%d virtual servers", len(c.VirtualServers))
				}
			},
		},
		{
			name: "no real servers",
			conf: "virtual_server 10.0.0.1 80 { #v\n sorry_server 10.0.0.9 80\n}\n" +
				"virtual_server 10.0.0.2 80 { #w\n real_server fd00::1 80 { #r\n }\n}\n" + virtServer(realServer()),
			want: []string{
				"v: error: virtual_server: virtual server 10.0.0.1:80 has no real servers - ignoring",
				"r: error: real_server: virtual server 10.0.0.2:80: real server fd00::1 is of another address family - ignoring",
				"w: error: virtual_server: virtual server 10.0.0.2:80 has no real servers - ignoring",
			},
			check: func(t *testing.T, c *Config) {
				if len(c.VirtualServers) != 1 || vs0(c).Addr != addr("10.0.0.1") || len(vs0(c).RealServers) != 1 {
					t.Errorf("virtual servers %v, want the third only", c.VirtualServers)
				}
			},
		},
		{
			name: "quorum above the total weight",
			conf: "virtual_server 10.0.0.1 80 { #v\n quorum 10\n hysteresis 5\n" + realServer("weight 2") + "\nreal_server 192.168.0.2 8080 {\n weight 3\n}\n}",
			want: []string{
				"v: warning: quorum: virtual server 10.0.0.1:80: quorum 10 exceeds the total weight of its real servers 5 - reducing quorum to 5",
				"v: warning: hysteresis: virtual server 10.0.0.1:80: hysteresis 5 >= quorum 5 - setting to 4",
			},
			check: func(t *testing.T, c *Config) {
				if vs := vs0(c); vs.Quorum != 5 || vs.Hysteresis != 4 {
					t.Errorf("quorum %d hysteresis %d, want 5 and 4", vs.Quorum, vs.Hysteresis)
				}
			},
		},
		{
			name: "group that does not exist",
			conf: "virtual_server group NOPE { #v\n}",
			want: []string{"v: error: virtual_server: virtual_server_group NOPE does not exist - removing virtual server"},
			check: func(t *testing.T, c *Config) {
				if len(c.VirtualServers) != 0 {
					t.Error("kept")
				}
			},
		},
		{
			name: "DR cannot map ports",
			conf: virtServer("lvs_method DR", "real_server 192.168.0.1 8080 { #r\n}"),
			want: []string{"r: warning: real_server: virtual server 10.0.0.1:80: DR cannot map port 80 to 8080; the virtual port is used"},
			check: func(t *testing.T, c *Config) {
				// The model keeps the written port (checkers connect to it); IPVS uses the virtual one.
				if rs := rs0(c); rs.Port != 8080 || rs.Forwarding.Method != "DR" {
					t.Errorf("real server %v port %d", rs.Forwarding, rs.Port)
				}
			},
		},
		{
			name: "lvs_sync_daemon for an instance that does not exist",
			conf: globalDefs("lvs_sync_daemon eth0 VI_9 #s"),
			want: []string{"s: error: lvs_sync_daemon: vrrp_instance VI_9 does not exist - lvs_sync_daemon disabled"},
			check: func(t *testing.T, c *Config) {
				if c.Global.LVSSyncDaemon != nil {
					t.Error("sync daemon kept")
				}
			},
		},
	})
}

func TestValidateCheckers(t *testing.T) {
	runDiagCases(t, []diagCase{
		{
			name: "checker with no port",
			conf: "virtual_server fwmark 1 {\n real_server 192.168.0.1 {\n  TCP_CHECK { #t\n  }\n  HTTP_GET { #h\n   url {\n    path /\n   }\n  }\n  TCP_CHECK {\n   connect_port 22\n  }\n  PING_CHECK { #p\n  }\n }\n}",
			want: []string{
				"t: error: TCP_CHECK: real server 192.168.0.1 of FWM 1: checker has no port to use (set connect_port) - removing checker",
				"h: error: HTTP_GET: real server 192.168.0.1 of FWM 1: checker has no port to use (set connect_port) - removing checker",
			},
			check: func(t *testing.T, c *Config) {
				k := rs0(c).Checkers
				if len(k) != 2 || k[0].Type != CheckTCP || k[0].ConnectPort != 22 || k[1].Type != CheckPing {
					t.Errorf("checkers %+v, want TCP_CHECK on 22 and PING_CHECK", k)
				}
			},
		},
		{
			name: "MISC_CHECK without misc_path",
			conf: virtServer(realServer("MISC_CHECK { #m\n misc_timeout 3\n}")),
			want: []string{"m: error: MISC_CHECK: real server 192.168.0.1 of 10.0.0.1:80: MISC_CHECK without misc_path - removing checker"},
			check: func(t *testing.T, c *Config) {
				if len(rs0(c).Checkers) != 0 {
					t.Error("checker kept")
				}
			},
		},
		{
			name: "HTTP_GET without url",
			conf: virtServer(realServer("HTTP_GET { #h\n connect_timeout 3\n}", "SSL_GET { #s\n url { #u\n  digest 9b3a0c85a887a256d6939da88aabd8cd\n }\n}")),
			want: []string{
				"u: error: url: url without path - ignoring",
				"h: error: HTTP_GET: real server 192.168.0.1 of 10.0.0.1:80: HTTP_GET without url - removing checker",
				"s: error: SSL_GET: real server 192.168.0.1 of 10.0.0.1:80: SSL_GET without url - removing checker",
			},
			check: func(t *testing.T, c *Config) {
				if len(rs0(c).Checkers) != 0 {
					t.Error("checkers kept")
				}
			},
		},
		{
			name: "EXPECT_CHECK without expect",
			conf: virtServer(realServer("EXPECT_CHECK { #e\n send x\n}")),
			want: []string{"e: error: EXPECT_CHECK: real server 192.168.0.1 of 10.0.0.1:80: EXPECT_CHECK needs expect or expect_regex - removing checker"},
			check: func(t *testing.T, c *Config) {
				if len(rs0(c).Checkers) != 0 {
					t.Error("checker kept")
				}
			},
		},
		{
			name: "bad checker values",
			conf: virtServer(realServer("HTTP_GET {\n url {\n  path /\n  digest abc #d\n  status_code 200 99 300-200 2xx #s\n }\n http_protocol 2 #p\n}",
				"DNS_CHECK { #n\n type PTR #t\n}", "UDP_CHECK { #u\n payload zz #y\n}", "TCP_CHECK {\n connect_port 70000 #c\n connect_ip 1.2.3 #i\n}")),
			want: []string{
				"d: error: digest: invalid MD5 digest 'abc' (want 32 hex digits)",
				"s: error: status_code: invalid status code '99' (100-599 or a range)",
				"s: error: status_code: invalid status code '300-200' (100-599 or a range)",
				"s: error: status_code: invalid status code '2xx' (100-599 or a range)",
				"p: error: http_protocol: invalid http_protocol '2' (want 1.0, 1.0C or 1.1)",
				"t: error: type: unknown DNS type 'PTR'",
				"y: error: payload: invalid hex string 'zz'",
				"c: error: connect_port: invalid port '70000'",
				"i: error: connect_ip: invalid IP address '1.2.3'",
			},
			check: func(t *testing.T, c *Config) {
				k := rs0(c).Checkers
				if len(k) != 4 || len(k[0].URLs[0].StatusCodes) != 1 || k[0].HTTPProtocol != "1.0" || k[1].DNSType != "SOA" || k[3].ConnectPort != 8080 {
					t.Errorf("checkers after errors: %+v", k)
				}
			},
		},
		{
			name: "timers out of range",
			conf: virtServer("delay_loop 0 #a", realServer("retry -1 #b", "TCP_CHECK {\n connect_timeout x #c\n}")),
			want: []string{
				"a: error: delay_loop: 0 outside range [1e-06, 2.147483648e+09] seconds",
				"b: error: retry: -1 outside range [0, 2147483647]",
				"c: error: connect_timeout: invalid time 'x'",
			},
			check: func(t *testing.T, c *Config) {
				if tm := chk0(c).Timers; tm.DelayLoop != time.Minute || tm.Retry != 1 || tm.ConnectTimeout != 5*time.Second {
					t.Errorf("timers %+v, want the defaults", tm)
				}
			},
		},
	})
}

// TestValidateGeneric: unknown and unsupported keywords, block structure, and
// value syntax, wherever they occur.
func TestValidateGeneric(t *testing.T) {
	runDiagCases(t, []diagCase{
		{
			name: "unknown keywords warn and parsing goes on",
			conf: "bogus_top 1 #a\n" +
				globalDefs("bogus_global #b", "router_id r1") +
				vrrpScript("bogus_script #c", "rise 4") +
				"vrrp_instance VI_1 {\n interface eth0\n bogus_inst 1 2 #d\n virtual_router_id 7\n" +
				" authentication {\n  bogus_auth #e\n  auth_type PASS\n  auth_pass p\n }\n priority 42\n}\n" +
				"vrrp_sync_group G { #s\n bogus_group #f\n group {\n  VI_1\n }\n}\n" +
				virtServer("bogus_vs #g", "lvs_sched rr",
					realServer("bogus_rs #h", "weight 9",
						checkerBlock(CheckHTTP, "bogus_chk #i", "url {\n  bogus_url #j\n  path /ok\n}", "connect_port 81"))),
			want: []string{
				"b: warning: unknown keyword 'bogus_global'",
				"a: warning: unknown keyword 'bogus_top'",
				"c: warning: unknown keyword 'bogus_script'",
				"d: warning: unknown keyword 'bogus_inst'",
				"e: warning: unknown keyword 'bogus_auth'",
				"f: warning: unknown keyword 'bogus_group'",
				"g: warning: unknown keyword 'bogus_vs'",
				"h: warning: unknown keyword 'bogus_rs'",
				"i: warning: unknown keyword 'bogus_chk'",
				"j: warning: unknown keyword 'bogus_url'",
				"s: warning: vrrp_sync_group: sync group G has only 1 virtual router",
			},
			check: func(t *testing.T, c *Config) {
				in := inst0(c)
				k := chk0(c)
				if c.Global.RouterID != "r1" || c.Scripts[0].Rise != 4 || in.VRID != 7 || in.Priority != 42 || in.Auth.Pass != "p" ||
					vs0(c).Scheduler != "rr" || rs0(c).Weight != 9 || k.URLs[0].Path != "/ok" || k.ConnectPort != 81 {
					t.Errorf("keywords after an unknown one were lost: %+v", c)
				}
			},
		},
		{
			name: "unknown keyword with a block is skipped whole",
			conf: vrrpInst("bogus { #b\n priority 1\n virtual_router_id 9\n}", "priority 77"),
			want: []string{"b: warning: unknown keyword 'bogus'"},
			check: func(t *testing.T, c *Config) {
				if in := inst0(c); in.Priority != 77 || in.VRID != 51 {
					t.Errorf("priority %d vrid %d: the unknown block's content leaked", in.Priority, in.VRID)
				}
			},
		},
		{
			name: "track_file",
			conf: "track_file tf1 {\n file /run/tf1\n weight -10 reverse\n init_file 3 overwrite\n}\n" +
				"vrrp_track_file tf2 {\n file \"/run/t f2\"\n}\n" +
				"track_file tf2 { #a\n file /x\n}\n" +
				"track_file bad { #b\n weight 2\n}\n" +
				vrrpInst("track_file {\n tf1\n tf2 weight 254 reverse\n nosuch #c\n}"),
			want: []string{
				"b: error: track_file: no file set for track_file bad - removing",
				"a: error: track_file: track_file tf2 already defined at",
				"c: warning: track_file: (VI_1) track file nosuch not found, ignoring",
			},
			check: func(t *testing.T, c *Config) {
				if len(c.TrackFiles) != 2 {
					t.Fatalf("track files %+v", c.TrackFiles)
				}
				f1, f2 := c.TrackFiles[0], c.TrackFiles[1]
				if f1.Name != "tf1" || f1.Path != "/run/tf1" || f1.Weight != -10 || !f1.Reverse || !f1.InitFile || f1.InitValue != 3 || !f1.InitOverwrite {
					t.Errorf("tf1 %+v", f1)
				}
				if f2.Name != "tf2" || f2.Path != "/run/t f2" || f2.Weight != 1 || f2.Reverse || f2.InitFile {
					t.Errorf("tf2 %+v", f2)
				}
				tr := inst0(c).TrackFile
				if len(tr) != 2 || tr[0].Name != "tf1" || tr[0].Weight != nil || tr[1].Weight == nil || *tr[1].Weight != 254 || !tr[1].Reverse {
					t.Errorf("instance track_file %+v", tr)
				}
			},
		},
		{
			name: "parsed, not supported yet",
			conf: "bfd_instance p { #a\n}\n" + globalDefs("enable_traps #b") +
				vrrpInst("track_bfd { #c\n p\n}", "virtual_rules {\n from 10.1.0.0/16 table 1 priority 100\n}",
					"virtual_ipaddress {\n 10.0.0.2 home #f\n}") +
				virtServer("snmp_name web #g", realServer("BFD_CHECK { #h\n}", "TCP_CHECK {\n}")),
			want: []string{
				"b: notice: enable_traps: parsed, not supported yet",
				"a: notice: bfd_instance: parsed, not supported yet",
				"c: notice: track_bfd: parsed, not supported yet",
				"f: notice: home: parsed, not supported yet",
				"g: notice: snmp_name: parsed, not supported yet",
				"h: notice: BFD_CHECK: parsed, not supported yet",
			},
			check: func(t *testing.T, c *Config) {
				if len(inst0(c).Rules) != 1 || len(inst0(c).VIPs) != 2 || len(rs0(c).Checkers) != 1 {
					t.Errorf("parsed-but-unsupported keywords lost what they carry: %+v", inst0(c))
				}
			},
		},
		{
			name: "unterminated quote",
			conf: vrrpInst("notify_master \"/bin/x #q", "priority 90"),
			want: []string{"q: error: unterminated quoted string"},
			check: func(t *testing.T, c *Config) {
				if in := inst0(c); in.Notify.Master != nil || in.Priority != 90 {
					t.Errorf("notify %v priority %d: the bad line must go, the next stay", in.Notify.Master, in.Priority)
				}
			},
		},
		{
			name: "unmatched closing brace",
			conf: vrrpInst() + "} #u\n" + globalDefs("router_id after"),
			want: []string{"u: error: unmatched '}'"},
			check: func(t *testing.T, c *Config) {
				if c.Global.RouterID != "after" || len(c.Instances) != 1 {
					t.Errorf("parsing did not go on after the stray '}'")
				}
			},
		},
		{
			name:  "unclosed block",
			conf:  globalDefs("router_id r") + "vrrp_instance VI_1 { #o\n interface eth0\n virtual_router_id 3\n",
			want:  []string{"o: error: vrrp_instance: block is not closed: missing '}'"},
			check: func(t *testing.T, c *Config) { wantInstances(t, c, "VI_1") },
		},
		{
			name: "unclosed nested blocks, innermost first",
			conf: "virtual_server 10.0.0.1 80 { #v\n real_server 10.0.0.2 80 { #r\n",
			want: []string{
				"r: error: real_server: block is not closed: missing '}'",
				"v: error: virtual_server: block is not closed: missing '}'",
			},
			check: func(t *testing.T, c *Config) {
				if len(c.VirtualServers) != 1 || rs0(c).Addr != addr("10.0.0.2") {
					t.Errorf("the unclosed blocks were not parsed as far as they go: %v", c.VirtualServers)
				}
			},
		},
		{
			name: "opening brace with nothing to open",
			conf: "{ #a\n router_id x\n}\n" + vrrpInst() + "{ #b\n}",
			want: []string{
				"a: error: unexpected '{'",
				"b: error: unexpected '{'",
			},
			check: func(t *testing.T, c *Config) {
				if c.Global.RouterID == "x" {
					t.Error("a detached block took effect")
				}
			},
		},
		{
			name: "block where a value is wanted, and the reverse",
			conf: vrrpInst("priority { #p\n 1\n}", "virtual_ipaddress_excluded 10.0.0.9 #v", "track_interface eth1 #t") + "global_defs router_id x #g",
			want: []string{
				"g: error: global_defs: needs a { block }",
				"p: fatal: priority: missing a parameter after keyword priority (keepalived refuses to run such a file)",
				"v: error: virtual_ipaddress_excluded: needs a { block }",
				"t: error: track_interface: needs a { block }",
			},
			check: func(t *testing.T, c *Config) {
				in := inst0(c)
				if in.Priority != 100 || len(in.ExcludedVIPs) != 0 || len(in.TrackInterface) != 0 || c.Global.RouterID == "x" {
					t.Errorf("rejected statements took effect: %+v", in)
				}
			},
		},
		{
			name: "argument counts",
			conf: vrrpInst("priority #a", "priority 100 200 #b", "advert_int #c") + vrrpScript("weight 1 2 #d"),
			want: []string{
				"a: fatal: priority: missing a parameter after keyword priority (keepalived refuses to run such a file)",
				"b: warning: priority: extra arguments ignored: 200",
				"c: fatal: advert_int: missing a parameter after keyword advert_int (keepalived refuses to run such a file)",
				"d: error: weight: invalid option '2' (want reverse)",
			},
			check: func(t *testing.T, c *Config) {
				if inst0(c).Priority != 100 {
					t.Errorf("priority %d", inst0(c).Priority)
				}
			},
		},
		{
			name: "invalid boolean",
			conf: vrrpInst("nopreempt maybe #b"),
			want: []string{"b: error: nopreempt: invalid boolean 'maybe' (want on|off|true|false|yes|no)"},
			check: func(t *testing.T, c *Config) {
				if inst0(c).NoPreempt {
					t.Error("nopreempt set by an invalid boolean")
				}
			},
		},
	})
}

func TestValidateInterfaces(t *testing.T) {
	exists := func(name string) bool { return name == "eth0" || name == "lo" }
	conf := globalDefs("lvs_sync_daemon eth9 VI_1 #s") +
		vrrpInst("track_interface {\n eth0\n eth2 #t\n}", "virtual_ipaddress {\n 10.0.0.2 dev eth3 #v\n}") +
		"vrrp_instance VI_2 { #i\n interface eth1\n virtual_router_id 2\n}\n" +
		"static_ipaddress { #sa\n 10.9.0.1/24 dev eth4 #a\n}\nstatic_routes { #sr\n 10.8.0.0/16 via 10.9.0.254 dev eth5 #r\n}"
	var notices []string // none: static addresses and routes are applied
	runDiagCases(t, []diagCase{
		{
			name: "missing interfaces are fatal",
			conf: conf,
			opt:  Options{InterfaceExists: exists},
			want: []string{
				"s: fatal: interface: interface eth9 does not exist (set dynamic_interfaces to allow it)",
				"t: fatal: interface: interface eth2 does not exist",
				"v: fatal: interface: interface eth3 does not exist",
				"i: fatal: interface: interface eth1 does not exist",
				"a: fatal: interface: interface eth4 does not exist",
				"r: fatal: interface: interface eth5 does not exist",
			},
			check: func(t *testing.T, c *Config) { wantInstances(t, c, "VI_1", "VI_2") }, // reported, not removed
		},
		{
			name: "not with dynamic_interfaces",
			conf: globalDefs("dynamic_interfaces") + conf,
			opt:  Options{InterfaceExists: exists},
			want: notices,
		},
		{
			name: "not without InterfaceExists",
			conf: conf,
			want: notices,
		},
	})
	_, diags := Parse("test.conf", conf, Options{InterfaceExists: exists})
	if MaxLevel(diags) != Fatal {
		t.Errorf("MaxLevel %v, want fatal", MaxLevel(diags))
	}
}

// TestValidateIncludedPositions: diagnostics about statements read from an
// included file name that file and its line.
func TestValidateIncludedPositions(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"keepalived.conf": "include conf.d/*.conf\n",
		"conf.d/vi.conf":  "\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 999\n bogus\n}\n",
	})
	_, diags := Load(filepath.Join(dir, "keepalived.conf"), Options{ConfigID: "x"})
	f := filepath.Join(dir, "conf.d", "vi.conf")
	diffLines(t, diagStrings(diags), []string{
		f + ":4: error: virtual_router_id: 999 outside range [1, 255]",
		f + ":5: warning: unknown keyword 'bogus'",
		f + ":2: error: virtual_router_id: (VI_1) virtual_router_id missing - removing instance",
	})
}

// TestLoadMainFileMissing: the main file that cannot be read is fatal, named
// without a line.
func TestLoadMainFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.conf")
	cfg, diags := Load(path, Options{ConfigID: "x"})
	if cfg == nil {
		t.Fatal("nil Config")
	}
	if len(diags) != 1 || diags[0].Level != Fatal || diags[0].Pos != (Pos{File: path}) ||
		!strings.HasPrefix(diags[0].String(), path+": fatal: cannot read configuration: ") {
		t.Fatalf("diags: %v", diagStrings(diags))
	}
	if MaxLevel(diags) != Fatal {
		t.Errorf("MaxLevel = %v", MaxLevel(diags))
	}
}
