package vrrp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvsd/lvsd/vrrp/advert"
)

// ipv4Packet wraps a VRRP packet in the IPv4 header a raw socket reads.
func ipv4Packet(payload []byte, src, dst netip.Addr) []byte {
	b := make([]byte, 20, 20+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:4], uint16(20+len(payload)))
	b[8], b[9] = advert.TTL, advert.IPProtocol
	s, d := src.As4(), dst.As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	return append(b, payload...)
}

// TestSocketDrops: what a socket drops is counted by reason, against the
// instance the packet names when it names one, on the dispatcher
// otherwise; the packets it keeps reach the instance.
func TestSocketDrops(t *testing.T) {
	h := newHarness(t, instCfg(nil))
	var d dispatcher
	if err := d.Register(51, h.r, 0); err != nil {
		t.Fatal(err)
	}
	a := advert.Advert{Version: 2, VRID: 51, Priority: 150, Interval: time.Second, Addrs: []netip.Addr{testVIP.Addr.Addr()}}
	vrrpPkt, err := a.Marshal(peer, advert.MulticastGroup)
	if err != nil {
		t.Fatal(err)
	}
	pkt := ipv4Packet(vrrpPkt, peer, advert.MulticastGroup)
	on := func(ifindex int) []byte {
		return controlMessage(unix.IPPROTO_IP, unix.IP_PKTINFO, &unix.Inet4Pktinfo{Ifindex: int32(ifindex)})
	}
	c := &vrrpConn{fam: &ipv4Family}
	c.ifi.Store(&net.Interface{Index: 5, Name: "eth0"})
	serve := func(b, oob []byte, from unix.Sockaddr) {
		payload, info, drop := c.parse(b, oob, from)
		if drop != advert.DropNone {
			d.Drop(payload, info, drop)
			return
		}
		d.Handle(payload, info)
	}

	serve(pkt, on(5), nil)                                                  // ours
	serve(pkt, on(7), nil)                                                  // another interface's
	serve(pkt[:12], nil, nil)                                               // truncated IPv4 header: names no instance
	serve(pkt[:30], nil, nil)                                               // shorter than its header's total length: the same
	serve(ipv4Packet(vrrpPkt[:1], peer, advert.MulticastGroup), on(5), nil) // one byte of VRRP: too short to name one

	c6 := &vrrpConn{fam: &ipv6Family}
	c6.ifi.Store(&net.Interface{Index: 5, Name: "eth0"})
	payload, info, drop := c6.parse(vrrpPkt, nil, &unix.SockaddrInet4{}) // sender not IPv6
	if drop != advert.DropIPHeader {
		t.Fatalf("IPv6 socket, IPv4 sender: %v", drop)
	}
	d.Drop(payload, info, drop)
	oob6 := controlMessage(unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, &unix.Inet6Pktinfo{Addr: advert.MulticastGroup6.As16(), Ifindex: 9})
	_, info, drop = c6.parse(vrrpPkt, oob6, &unix.SockaddrInet6{Addr: netip.MustParseAddr("fe80::1").As16()})
	if drop != advert.DropWrongInterface || info.Dst != advert.MulticastGroup6 || info.IfIndex != 9 || info.TTL != -1 {
		t.Fatalf("IPv6 socket, other interface: %v %+v", drop, info)
	}
	h.r.Flush()

	st := h.r.Stats(0)
	if got := st.AdvertRcvd.Load(); got != 1 {
		t.Errorf("accepted %d, want 1", got)
	}
	for r, want := range map[advert.DropReason]uint64{advert.DropWrongInterface: 1, advert.DropIPHeader: 1} {
		if got := st.Drops[r].Load(); got != want {
			t.Errorf("instance: %v drops %d, want %d", r, got, want)
		}
	}
	for r, want := range map[advert.DropReason]uint64{advert.DropIPHeader: 2, advert.DropTooShort: 1} {
		if got := d.Drops[r].Load(); got != want {
			t.Errorf("dispatcher: %v drops %d, want %d", r, got, want)
		}
	}
	if got := st.Drops[advert.DropTooShort].Load(); got != 0 {
		t.Errorf("too short counted against the instance: %d", got)
	}
}

// TestControlMessage: what controlMessage builds, ParseSocketControlMessage
// and parseOOB read back.
func TestControlMessage(t *testing.T) {
	oob := append(controlMessage(unix.IPPROTO_IP, unix.IP_PKTINFO, &unix.Inet4Pktinfo{Ifindex: 3}),
		controlMessage(unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, &unix.Timespec{Sec: 1700000000, Nsec: 5})...)
	var info advert.PacketInfo
	parseOOB(oob, &info)
	if info.IfIndex != 3 || !info.At.Equal(time.Unix(1700000000, 5)) {
		t.Fatalf("%+v", info)
	}
}
