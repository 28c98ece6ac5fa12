package netwatch

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

var nativeEndian = binary.NativeEndian

// Operational states of a link (IFLA_OPERSTATE, RFC 2863) that are not up.
const (
	operDown           = 2
	operLowerLayerDown = 3
)

// Up reports whether a link with these interface flags (IFF_*) and
// operational state (IFLA_OPERSTATE, 0 when unknown) is up: administratively
// up and not operationally down, nor down below (a veth whose peer is down,
// a port without carrier).
func Up(flags uint32, operState uint8) bool {
	return flags&unix.IFF_UP != 0 && operState != operDown && operState != operLowerLayerDown
}

// decode reads the event that one rtnetlink message states, before it is
// compared with what is known: false for any other message, or one that
// cannot be read.
func decode(m syscall.NetlinkMessage) (Event, bool) {
	switch m.Header.Type {
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
		return decodeLink(m)
	case unix.RTM_NEWADDR, unix.RTM_DELADDR:
		return decodeAddr(m)
	}
	return Event{}, false
}

// decodeLink reads a struct ifinfomsg (family, pad, type: 4 bytes; index,
// flags, change: 4 bytes each) and its IFLA_IFNAME and IFLA_OPERSTATE.
func decodeLink(m syscall.NetlinkMessage) (Event, bool) {
	if len(m.Data) < unix.SizeofIfInfomsg {
		return Event{}, false
	}
	// The bridge reports its ports with AF_BRIDGE messages, RTM_DELLINK
	// when a port leaves it: the link is still there.
	if m.Data[0] != unix.AF_UNSPEC {
		return Event{}, false
	}
	attrs, err := syscall.ParseNetlinkRouteAttr(&m)
	if err != nil {
		return Event{}, false
	}
	e := Event{Index: int(int32(nativeEndian.Uint32(m.Data[4:8])))}
	var oper uint8
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFLA_IFNAME:
			name := a.Value
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			e.Name = string(name)
		case unix.IFLA_OPERSTATE:
			if len(a.Value) > 0 {
				oper = a.Value[0]
			}
		}
	}
	switch {
	case m.Header.Type == unix.RTM_DELLINK:
		e.Kind = LinkGone
	case Up(nativeEndian.Uint32(m.Data[8:12]), oper):
		e.Kind = LinkUp
	default:
		e.Kind = LinkDown
	}
	return e, true
}

// decodeAddr reads a struct ifaddrmsg (family, prefix length, flags,
// scope: 1 byte each; index: 4 bytes) and its address: IFA_LOCAL, or
// IFA_ADDRESS without it (on a point-to-point link IFA_ADDRESS is the
// peer's).
func decodeAddr(m syscall.NetlinkMessage) (Event, bool) {
	if len(m.Data) < unix.SizeofIfAddrmsg {
		return Event{}, false
	}
	attrs, err := syscall.ParseNetlinkRouteAttr(&m)
	if err != nil {
		return Event{}, false
	}
	var addr, local []byte
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFA_ADDRESS:
			addr = a.Value
		case unix.IFA_LOCAL:
			local = a.Value
		}
	}
	if local != nil {
		addr = local
	}
	ip, ok := netip.AddrFromSlice(addr)
	if !ok {
		return Event{}, false
	}
	p := netip.PrefixFrom(ip, int(m.Data[1]))
	if !p.IsValid() {
		return Event{}, false
	}
	e := Event{Kind: AddrAdded, Index: int(nativeEndian.Uint32(m.Data[4:8])), Prefix: p}
	if m.Header.Type == unix.RTM_DELADDR {
		e.Kind = AddrDeleted
	}
	return e, true
}
