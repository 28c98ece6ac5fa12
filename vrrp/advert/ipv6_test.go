package advert

import (
	"bytes"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// Captured from keepalived v2.2.7 as MASTER of an IPv6 instance (VRID 52,
// priority 150, advert_int 1, two VIPs), sent from fe80::c8:a3ff:fe26:82d8
// to ff02::12 with hop limit 255 and traffic class 0xc0: the VRRPv3 packet.
const keepalivedAdvert6 = "3134 9602 0064 b6fc" +
	"2001 0db8 0000 0000 0000 0000 0000 0100" +
	"2001 0db8 0000 0000 0000 0000 0000 0101"

func TestAdvertIPv6MatchesKeepalived(t *testing.T) {
	src, dst := netip.MustParseAddr("fe80::c8:a3ff:fe26:82d8"), MulticastGroup6
	want := mustHex(t, keepalivedAdvert6)
	a := &Advert{Version: 3, VRID: 52, Priority: 150, Interval: time.Second,
		Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::100"), netip.MustParseAddr("2001:db8::101")}}
	got, err := a.Marshal(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got  %x\nwant %x", got, want)
	}
	d, drop := Decode(want, PacketInfo{Src: src, Dst: dst, TTL: 255})
	if drop != DropNone || !reflect.DeepEqual(d.Addrs, a.Addrs) || d.Priority != 150 || d.Interval != time.Second {
		t.Fatalf("decode: %v %+v", drop, d)
	}
	// The checksum covers the IPv6 pseudo-header: another source fails.
	if _, drop := Decode(want, PacketInfo{Src: netip.MustParseAddr("fe80::1"), Dst: dst, TTL: 255}); drop != DropChecksum {
		t.Fatalf("wrong source: %v", drop)
	}
	// IPv6 addresses need VRRPv3 and one family.
	a.Version, a.AuthType = 2, AuthNone
	if _, err := a.Marshal(src, dst); err == nil {
		t.Fatal("VRRPv2 with IPv6 addresses accepted")
	}
	a.Version, a.Addrs = 3, append(a.Addrs, netip.MustParseAddr("192.0.2.1"))
	if _, err := a.Marshal(src, dst); err == nil {
		t.Fatal("mixed families accepted")
	}
}
