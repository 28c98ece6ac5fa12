package vrrp

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lvsd/lvsd/vrrp/advert"
	"github.com/lvsd/lvsd/vrrp/internal/checksum"
)

// Captured (tcpdump -xx) from keepalived v2.2.7 taking over, as MASTER of
// an IPv4 instance, the excluded address 2001:db8::10/64 on an interface
// with MAC ba:c9:09:ac:f8:89 that does not forward IPv6.
const keepalivedNA = "3333 0000 0001 bac9 09ac f889 86dd 6000" +
	"0000 0020 3aff 2001 0db8 0000 0000 0000" +
	"0000 0000 0010 ff02 0000 0000 0000 0000" +
	"0000 0000 0001 8800 3e0e 2000 0000 2001" +
	"0db8 0000 0000 0000 0000 0000 0010 0201" +
	"bac9 09ac f889"

func TestNAFrameMatchesKeepalived(t *testing.T) {
	mac, _ := net.ParseMAC("ba:c9:09:ac:f8:89")
	got, err := unsolicitedNA(mac, netip.MustParseAddr("2001:db8::10"), false)
	if err != nil {
		t.Fatal(err)
	}
	want := mustHex(t, keepalivedNA)
	if !bytes.Equal(got, want) {
		t.Fatalf("got  %x\nwant %x", got, want)
	}
	for _, bad := range []struct {
		mac net.HardwareAddr
		ip  string
	}{{mac[:4], "2001:db8::1"}, {mac, "192.0.2.1"}, {mac, "::ffff:192.0.2.1"}} {
		if _, err := unsolicitedNA(bad.mac, netip.MustParseAddr(bad.ip), false); err == nil {
			t.Errorf("NAFrame(%v, %s) accepted", bad.mac, bad.ip)
		}
	}
}

// The frame field by field, as RFC 4861 section 4.4 and keepalived's
// ndisc.c lay it out, with the router flag and a link-local target; the
// checksum verifies over the IPv6 pseudo-header.
func TestNAFrameFields(t *testing.T) {
	mac, _ := net.ParseMAC("02:00:5e:00:53:01")
	vip := netip.MustParseAddr("fe80::10")
	f, err := unsolicitedNA(mac, vip, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(f) != naFrameLen || naFrameLen != 86 {
		t.Fatalf("length %d", len(f))
	}
	if !bytes.Equal(f[0:6], []byte{0x33, 0x33, 0, 0, 0, 1}) || !bytes.Equal(f[6:12], mac) || binary.BigEndian.Uint16(f[12:14]) != 0x86dd {
		t.Fatalf("Ethernet header %x", f[:14])
	}
	ip6 := f[14:54]
	src, dst := netip.AddrFrom16([16]byte(ip6[8:24])), netip.AddrFrom16([16]byte(ip6[24:40]))
	if ip6[0]>>4 != 6 || binary.BigEndian.Uint16(ip6[4:6]) != 32 || ip6[6] != 58 || ip6[7] != 255 || src != vip || dst != netip.MustParseAddr("ff02::1") {
		t.Fatalf("IPv6 header %x", ip6)
	}
	na := f[54:]
	if na[0] != 136 || na[1] != 0 || na[4] != 0x80|0x20 || !bytes.Equal(na[5:8], []byte{0, 0, 0}) {
		t.Fatalf("type/code/flags %x", na[:8])
	}
	if netip.AddrFrom16([16]byte(na[8:24])) != vip || na[24] != 2 || na[25] != 1 || !bytes.Equal(na[26:32], mac) {
		t.Fatalf("target and option %x", na[8:])
	}
	if c := checksum.Sum(na, checksum.Pseudo6(src, dst, len(na), 58)); c != 0 {
		t.Fatalf("checksum does not verify: %#04x", c)
	}
}

const dualStackConf = `
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  priority 100
  advert_int 1
  garp_master_delay 0
  garp_master_repeat 2
  virtual_ipaddress {
    192.0.2.100/24
  }
  virtual_ipaddress_excluded {
    2001:db8::10/64
    2001:db8::11 -nodad
    2001:db8::12/64 preferred_lft 60
  }
}
`

// An IPv4 instance carries IPv6 addresses in virtual_ipaddress_excluded:
// converted with keepalived's defaults (/128 without a length, nodad
// unless -nodad), not advertised.
func TestFromConfigIPv6Excluded(t *testing.T) {
	specs, _, err := fromConfig(parseConf(t, dualStackConf))
	if err != nil {
		t.Fatal(err)
	}
	ic := specs[0].Instances[0]
	want := []VIP{
		{Addr: netip.MustParsePrefix("2001:db8::10/64")},
		{Addr: netip.MustParsePrefix("2001:db8::11/128"), DAD: true},
		{Addr: netip.MustParsePrefix("2001:db8::12/64"), PreferredSet: true, PreferredLft: 60},
	}
	if !reflect.DeepEqual(ic.ExcludedVIPs, want) || len(ic.VIPs) != 1 {
		t.Fatalf("VIPs %+v\nexcluded %+v", ic.VIPs, ic.ExcludedVIPs)
	}
	if ic.IPv6 || ic.defaultGroup() != advert.MulticastGroup {
		t.Fatalf("IPv6 %v group %v", ic.IPv6, ic.defaultGroup())
	}
	// An instance whose first VIP is IPv6 runs VRRPv3 over IPv6, to
	// ff02::12, with IPv4 addresses only in virtual_ipaddress_excluded.
	specs, _, err = fromConfig(parseConf(t, "vrrp_instance V6 {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress {\n  2001:db8::1/64\n }\n virtual_ipaddress_excluded {\n  192.0.2.9/24\n }\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	ic = specs[0].Instances[0]
	if !ic.IPv6 || ic.Machine.Version != 3 || ic.defaultGroup() != advert.MulticastGroup6 || len(ic.VIPs) != 1 || len(ic.ExcludedVIPs) != 1 {
		t.Fatalf("IPv6 instance %+v", ic)
	}
}

// As MASTER the engine adds the IPv6 excluded addresses and announces each
// address, IPv4 and IPv6, garp_master_repeat times (the GARP sender sends
// a neighbour advertisement for an IPv6 address); the adverts carry the
// IPv4 VIP only; on stop everything is removed.
func TestEngineIPv6Excluded(t *testing.T) {
	h := newEngineHarness(t, dualStackConf, nil)
	h.k.take()
	h.advance(5 * time.Second)
	if s := h.states(); s["VI_1"] != "MASTER/100" {
		t.Fatalf("states %v", s)
	}
	var got []string
	for _, c := range h.k.take() {
		if !strings.HasPrefix(c, "advert") || len(got) < 8 {
			got = append(got, c)
		}
	}
	want := []string{
		"advert vrid=1 prio=100 addrs=192.0.2.100",
		"add 192.0.2.100/24", "add 2001:db8::10/64", "add 2001:db8::11/128", "add 2001:db8::12/64",
		"garp 192.0.2.100", "garp 2001:db8::10", "garp 2001:db8::11", "garp 2001:db8::12",
		"garp 192.0.2.100", "garp 2001:db8::10", "garp 2001:db8::11", "garp 2001:db8::12",
	}
	if strings.Join(got[:len(want)], "\n") != strings.Join(want, "\n") {
		t.Fatalf("on takeover:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	h.stop()
	h.k.mu.Lock()
	defer h.k.mu.Unlock()
	if len(h.k.addrs) != 0 {
		t.Fatalf("left on stop: %v", h.k.addrs)
	}
}
