package advert

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

// Packets captured with tcpdump from keepalived v2.2.7 (Debian 12) running in
// a network namespace on 192.0.2.1/24, full IPv4 header included:
//
//	vrrp_instance V2 { version 2; virtual_router_id 51; priority 100;
//	  advert_int 1; authentication { auth_type PASS; auth_pass secret }
//	  virtual_ipaddress { 192.0.2.100/24 } }
//	vrrp_instance V3 { version 3; virtual_router_id 52; priority 150;
//	  advert_int 0.5; virtual_ipaddress { 192.0.2.101/24; 198.51.100.7/32 } }
//
// The priority 0 packets were sent when keepalived was stopped.
var keepalivedCaptures = []struct {
	name string
	ip   string
	adv  Advert
}{
	{
		name: "v2 PASS prio 100",
		ip:   "45c0002800010000ff701891c0000201e0000012 2133640101017b19c00002647365637265740000",
		adv: Advert{Version: 2, Type: 1, VRID: 51, Priority: 100, Interval: time.Second,
			AuthType: AuthPass, AuthData: Password("secret"), Addrs: []netip.Addr{vip1}},
	},
	{
		name: "v2 PASS prio 0 on stop",
		ip:   "45c0002800070000ff70188bc0000201e0000012 213300010101df19c00002647365637265740000",
		adv: Advert{Version: 2, Type: 1, VRID: 51, Priority: 0, Interval: time.Second,
			AuthType: AuthPass, AuthData: Password("secret"), Addrs: []netip.Addr{vip1}},
	},
	{
		name: "v3 prio 150 50cs two VIPs",
		ip:   "45c0002400010000ff701895c0000201e0000012 313496020032a961c0000265c6336407",
		adv: Advert{Version: 3, Type: 1, VRID: 52, Priority: 150, Interval: 500 * time.Millisecond,
			Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.101"), vip2}},
	},
	{
		name: "v3 prio 0 on stop",
		ip:   "45c0002400100000ff701886c0000201e0000012 3134000200323f62c0000265c6336407",
		adv: Advert{Version: 3, Type: 1, VRID: 52, Priority: 0, Interval: 500 * time.Millisecond,
			Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.101"), vip2}},
	},
}

func TestKeepalivedCaptures(t *testing.T) {
	for _, c := range keepalivedCaptures {
		t.Run(c.name, func(t *testing.T) {
			raw := mustHex(t, c.ip)
			payload, info, err := SplitIPv4(raw)
			if err != nil {
				t.Fatal(err)
			}
			if info.TTL != 255 || info.Src != srcA || info.Dst != mcast || raw[1] != TOS {
				t.Fatalf("IP header: %+v tos %#x", info, raw[1])
			}
			a, r := Decode(payload, info)
			if r != DropNone {
				t.Fatalf("Decode dropped keepalived's packet: %v", r)
			}
			if a.Priority != c.adv.Priority || a.VRID != c.adv.VRID || a.Interval != c.adv.Interval ||
				a.AuthType != c.adv.AuthType || a.AuthData != c.adv.AuthData || len(a.Addrs) != len(c.adv.Addrs) {
				t.Fatalf("decoded %+v, want %+v", a, c.adv)
			}
			// Our encoder produces the same bytes as keepalived.
			mine := c.adv
			b, err := mine.Marshal(info.Src, info.Dst)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, payload) {
				t.Fatalf("Marshal\n got %x\nwant %x (keepalived)", b, payload)
			}
			exp := Expect{Version: c.adv.Version, VRID: c.adv.VRID, Interval: c.adv.Interval,
				AuthType: c.adv.AuthType, AuthData: c.adv.AuthData, Addrs: c.adv.Addrs}
			if got := exp.Validate(a, info); got.Drop != DropNone || got.AddrListMismatch || got.PriorityZero != (c.adv.Priority == 0) {
				t.Fatalf("Validate: %+v", got)
			}
		})
	}
}

func TestSplitIPv4Errors(t *testing.T) {
	good := mustHex(t, keepalivedCaptures[0].ip)
	for name, b := range map[string][]byte{
		"short":     good[:19],
		"ipv6":      append([]byte{0x60}, good[1:]...),
		"ihl 4":     append([]byte{0x41}, good[1:]...),
		"truncated": good[:30],
		"udp":       func() []byte { c := bytes.Clone(good); c[9] = 17; return c }(),
	} {
		if _, _, err := SplitIPv4(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
