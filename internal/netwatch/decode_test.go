package netwatch

import (
	"net/netip"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// attr encodes one route attribute (struct rtattr and value, padded).
func attr(typ uint16, v []byte) []byte {
	b := make([]byte, 4+len(v), (4+len(v)+3)&^3)
	nativeEndian.PutUint16(b[0:2], uint16(4+len(v)))
	nativeEndian.PutUint16(b[2:4], typ)
	copy(b[4:], v)
	return b[:cap(b)]
}

func msg(typ uint16, body []byte, attrs ...[]byte) syscall.NetlinkMessage {
	for _, a := range attrs {
		body = append(body, a...)
	}
	return syscall.NetlinkMessage{Header: syscall.NlMsghdr{Len: uint32(unix.NLMSG_HDRLEN + len(body)), Type: typ}, Data: body}
}

func ifinfomsg(family uint8, index int32, flags uint32) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	b[0] = family
	nativeEndian.PutUint32(b[4:8], uint32(index))
	nativeEndian.PutUint32(b[8:12], flags)
	return b
}

func ifaddrmsg(family, bits uint8, index uint32) []byte {
	b := make([]byte, unix.SizeofIfAddrmsg)
	b[0], b[1] = family, bits
	nativeEndian.PutUint32(b[4:8], index)
	return b
}

func TestDecode(t *testing.T) {
	name := func(s string) []byte { return attr(unix.IFLA_IFNAME, append([]byte(s), 0)) }
	oper := func(o uint8) []byte { return attr(unix.IFLA_OPERSTATE, []byte{o}) }
	ip := func(typ uint16, s string) []byte { return attr(typ, netip.MustParseAddr(s).AsSlice()) }
	const up, operUp = unix.IFF_UP | unix.IFF_RUNNING, 6
	for _, c := range []struct {
		name string
		m    syscall.NetlinkMessage
		want Event // Kind 0: no event
	}{
		{"link up", msg(unix.RTM_NEWLINK, ifinfomsg(unix.AF_UNSPEC, 3, up), name("eth0"), oper(operUp)),
			Event{Kind: LinkUp, Index: 3, Name: "eth0"}},
		{"link up, operational state unknown", msg(unix.RTM_NEWLINK, ifinfomsg(unix.AF_UNSPEC, 1, up), oper(0), name("lo")),
			Event{Kind: LinkUp, Index: 1, Name: "lo"}},
		{"link up without IFLA_OPERSTATE", msg(unix.RTM_NEWLINK, ifinfomsg(unix.AF_UNSPEC, 1, up), name("lo")),
			Event{Kind: LinkUp, Index: 1, Name: "lo"}},
		{"link administratively down", msg(unix.RTM_NEWLINK, ifinfomsg(unix.AF_UNSPEC, 3, 0), name("eth0"), oper(operUp)),
			Event{Kind: LinkDown, Index: 3, Name: "eth0"}},
		{"link operationally down", msg(unix.RTM_NEWLINK, ifinfomsg(unix.AF_UNSPEC, 3, up), name("eth0"), oper(operDown)),
			Event{Kind: LinkDown, Index: 3, Name: "eth0"}},
		{"link down below (veth peer down)", msg(unix.RTM_NEWLINK, ifinfomsg(unix.AF_UNSPEC, 3, up), name("eth0"), oper(operLowerLayerDown)),
			Event{Kind: LinkDown, Index: 3, Name: "eth0"}},
		{"link deleted", msg(unix.RTM_DELLINK, ifinfomsg(unix.AF_UNSPEC, 3, 0), name("eth0")),
			Event{Kind: LinkGone, Index: 3, Name: "eth0"}},
		{"bridge port left its bridge", msg(unix.RTM_DELLINK, ifinfomsg(unix.AF_BRIDGE, 3, up), name("eth0")), Event{}},
		{"short ifinfomsg", msg(unix.RTM_NEWLINK, make([]byte, unix.SizeofIfInfomsg-1)), Event{}},
		{"bad attribute", msg(unix.RTM_NEWLINK, ifinfomsg(unix.AF_UNSPEC, 3, up), []byte{200, 0, 3, 0}), Event{}},
		{"IPv4 address added", msg(unix.RTM_NEWADDR, ifaddrmsg(unix.AF_INET, 24, 3), ip(unix.IFA_ADDRESS, "192.0.2.1"), ip(unix.IFA_LOCAL, "192.0.2.1")),
			Event{Kind: AddrAdded, Index: 3, Prefix: netip.MustParsePrefix("192.0.2.1/24")}},
		{"IPv4 point-to-point: the local address, not the peer", msg(unix.RTM_NEWADDR, ifaddrmsg(unix.AF_INET, 32, 4), ip(unix.IFA_ADDRESS, "192.0.2.9"), ip(unix.IFA_LOCAL, "192.0.2.1")),
			Event{Kind: AddrAdded, Index: 4, Prefix: netip.MustParsePrefix("192.0.2.1/32")}},
		{"IPv6 address deleted", msg(unix.RTM_DELADDR, ifaddrmsg(unix.AF_INET6, 128, 3), ip(unix.IFA_ADDRESS, "2001:db8::7")),
			Event{Kind: AddrDeleted, Index: 3, Prefix: netip.MustParsePrefix("2001:db8::7/128")}},
		{"address without IFA_ADDRESS", msg(unix.RTM_NEWADDR, ifaddrmsg(unix.AF_INET, 24, 3), attr(unix.IFA_LABEL, []byte("eth0\x00"))), Event{}},
		{"prefix longer than the address", msg(unix.RTM_NEWADDR, ifaddrmsg(unix.AF_INET, 33, 3), ip(unix.IFA_ADDRESS, "192.0.2.1")), Event{}},
		{"short ifaddrmsg", msg(unix.RTM_DELADDR, make([]byte, unix.SizeofIfAddrmsg-1)), Event{}},
		{"route", msg(unix.RTM_NEWROUTE, make([]byte, unix.SizeofRtMsg)), Event{}},
	} {
		got, ok := decode(c.m)
		if ok != (c.want.Kind != 0) || got != c.want {
			t.Errorf("%s: decode = %v, %v; want %v", c.name, got, ok, c.want)
		}
	}
}
