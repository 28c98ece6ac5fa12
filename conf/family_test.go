package conf

import (
	"net/netip"
	"testing"
)

func v6Inst(lines string) string {
	return "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n" + lines + "\n}\n"
}

// An instance's address family, as keepalived 2.2.7 decides it (checked
// with its -t): the first of mcast_src_ip/unicast_src_ip, mcast_dst_ip,
// unicast_peer and virtual_ipaddress in the block sets it; later ones of
// the other family are dropped with an error; virtual_ipaddress_excluded
// takes either family.
func TestVRRPInstanceFamily(t *testing.T) {
	vips := func(c *Config) (out []string) {
		for _, v := range inst0(c).VIPs {
			out = append(out, v.Prefix.String())
		}
		return out
	}
	runDiagCases(t, []diagCase{
		{
			name: "IPv4 instance with IPv6 excluded addresses",
			conf: v6Inst(" virtual_ipaddress {\n  192.0.2.10/24\n }\n virtual_ipaddress_excluded {\n  2001:db8::10/64\n  2001:db8::11\n  198.51.100.1\n }"),
			check: func(t *testing.T, c *Config) {
				in := inst0(c)
				if in.IPv6() || in.Version != 2 || len(in.ExcludedVIPs) != 3 || in.ExcludedVIPs[1].Prefix != netip.MustParsePrefix("2001:db8::11/128") {
					t.Errorf("v6 %v version %d excluded %v", in.IPv6(), in.Version, in.ExcludedVIPs)
				}
			},
		},
		{
			name: "a virtual_ipaddress of the other family is dropped",
			conf: v6Inst(" virtual_ipaddress {\n  192.0.2.10/24\n  2001:db8::11 #a\n  192.0.2.11\n }"),
			want: []string{"a: error: 2001:db8::11: (VI_1) address family must match VRRP instance [2001:db8::11] - ignoring"},
			check: func(t *testing.T, c *Config) {
				if got := vips(c); len(got) != 2 || got[1] != "192.0.2.11/32" || inst0(c).IPv6() {
					t.Errorf("VIPs %v", got)
				}
			},
		},
		{
			name: "an IPv6 first VIP makes an IPv6 (VRRPv3) instance",
			conf: v6Inst(" virtual_ipaddress {\n  2001:db8::10/64\n  192.0.2.10 #a\n }\n virtual_ipaddress_excluded {\n  192.0.2.11/24\n }"),
			want: []string{"a: error: 192.0.2.10: (VI_1) address family must match VRRP instance [192.0.2.10] - ignoring"},
			check: func(t *testing.T, c *Config) {
				if in := inst0(c); !in.IPv6() || in.Version != 3 || len(in.VIPs) != 1 || len(in.ExcludedVIPs) != 1 {
					t.Errorf("v6 %v version %d VIPs %v excluded %v", in.IPv6(), in.Version, in.VIPs, in.ExcludedVIPs)
				}
			},
		},
		{
			name: "unicast_src_ip before the VIPs sets the family",
			conf: v6Inst(" unicast_src_ip 192.0.2.1\n virtual_ipaddress {\n  2001:db8::10/64 #a\n  192.0.2.10/24\n }"),
			want: []string{"a: error: 2001:db8::10/64: (VI_1) address family must match VRRP instance [2001:db8::10/64] - ignoring"},
			check: func(t *testing.T, c *Config) {
				if got := vips(c); len(got) != 1 || got[0] != "192.0.2.10/24" || inst0(c).IPv6() {
					t.Errorf("VIPs %v", got)
				}
			},
		},
		{
			name: "a unicast peer sets it too",
			conf: v6Inst(" unicast_peer {\n  2001:db8::2\n }\n unicast_src_ip 192.0.2.1 #s\n virtual_ipaddress {\n  192.0.2.10/24 #a\n }"),
			want: []string{
				"s: error: unicast_src_ip: (VI_1) source address 192.0.2.1 and the VRRP instance must be of the same family - skipping",
				"a: error: 192.0.2.10/24: (VI_1) address family must match VRRP instance",
			},
			check: func(t *testing.T, c *Config) {
				if in := inst0(c); !in.IPv6() || in.UnicastSrcIP.IsValid() || len(in.VIPs) != 0 {
					t.Errorf("v6 %v src %v VIPs %v", in.IPv6(), in.UnicastSrcIP, in.VIPs)
				}
			},
		},
		{
			name: "and mcast_dst_ip",
			conf: v6Inst(" mcast_dst_ip ff02::12\n mcast_src_ip 192.0.2.1 #s\n virtual_ipaddress {\n  192.0.2.10/24 #a\n  2001:db8::1\n }"),
			want: []string{
				"s: error: mcast_src_ip: (VI_1) source address 192.0.2.1",
				"a: error: 192.0.2.10/24: (VI_1) address family must match VRRP instance",
			},
			check: func(t *testing.T, c *Config) {
				if in := inst0(c); !in.IPv6() || in.McastDstIP != netip.MustParseAddr("ff02::12") || len(in.VIPs) != 1 {
					t.Errorf("v6 %v dst %v VIPs %v", in.IPv6(), in.McastDstIP, in.VIPs)
				}
			},
		},
		{
			name: "mcast_dst_ip of the other family",
			conf: v6Inst(" virtual_ipaddress {\n  192.0.2.10/24\n }\n mcast_dst_ip ff02::12 #d"),
			want: []string{"d: error: mcast_dst_ip: (VI_1) mcast dest address ff02::12 must match the VRRP instance family - skipping"},
			check: func(t *testing.T, c *Config) {
				if in := inst0(c); in.McastDstIP.IsValid() {
					t.Errorf("dst %v", in.McastDstIP)
				}
			},
		},
		{
			name: "no broadcast, scope or label for IPv6",
			conf: v6Inst(" virtual_ipaddress {\n  192.0.2.10/24\n }\n virtual_ipaddress_excluded {\n  2001:db8::10/64 brd 2001:db8::ff #b\n  2001:db8::11/64 scope site label eth0:3 #s\n }"),
			want: []string{
				"b: error: 2001:db8::10/64: broadcast 2001:db8::ff given for the IPv6 address 2001:db8::10/64 - skipping the address",
				"s: warning: 2001:db8::11/64: cannot specify scope for IPv6 addresses",
				"s: warning: 2001:db8::11/64: cannot specify label for IPv6 addresses",
			},
			check: func(t *testing.T, c *Config) {
				e := inst0(c).ExcludedVIPs
				if len(e) != 1 || e[0].Scope != "" || e[0].Label != "" {
					t.Errorf("excluded %+v", e)
				}
			},
		},
	})
}
