package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/lvsd/lvsd/vrrp/advert"
)

// vrrpConn is a raw IP socket for protocol 112 on one interface: IPv4 (VRRPv2
// and VRRPv3) or IPv6 (VRRPv3, RFC 5798). It is bound to the interface
// (SO_BINDTODEVICE), receives only the groups it joined
// (IP_MULTICAST_ALL off), joins the VRRP group unless unicast, sends with
// TTL (hop limit) 255 and TOS (traffic class) 0xc0 as keepalived, with
// multicast loopback off so that our own adverts do not come back, and
// asks the kernel for the interface and arrival time of every packet.
//
// Over IPv4 the kernel hands us the IP header, whose TTL, source and
// destination we read; over IPv6 it does not: the source comes from
// recvmsg, the destination and the hop limit from control messages. The
// VRRPv3 checksum over the pseudo-header is ours to compute and check in
// both families (Marshal, Decode).
//
// The socket follows its interface by name: Rebind points it at the
// interface that now has the name (one deleted and created again, a bond
// or VLAN re-created by a network restart), with its membership and
// multicast interface, while Serve goes on reading.
type vrrpConn struct {
	fam *ipFamily
	cfg ConnConfig
	ip  *net.IPConn
	raw syscall.RawConn
	ifi atomic.Pointer[net.Interface]
}

// Interface is the name of the interface the socket follows.
func (c *vrrpConn) Interface() string { return c.cfg.Interface }

// Index is the interface index the socket is bound to.
func (c *vrrpConn) Index() int { return c.ifi.Load().Index }

// Rebind binds the socket to the interface that now has its name, index
// ifindex, when it is not bound to it already: SO_BINDTODEVICE, the group
// joined on it and multicast sent out of it. It reports whether it
// rebound.
func (c *vrrpConn) Rebind(ifindex int) (bool, error) {
	if c.ifi.Load().Index == ifindex {
		return false, nil
	}
	ifi, err := net.InterfaceByIndex(ifindex)
	if err != nil {
		return false, err
	}
	if ifi.Name != c.cfg.Interface {
		return false, fmt.Errorf("vrrp: interface %d is %s, not %s", ifindex, ifi.Name, c.cfg.Interface)
	}
	var serr error
	if err := c.raw.Control(func(fd uintptr) { serr = c.fam.bindIface(int(fd), c.cfg, ifindex) }); err != nil {
		return false, err
	}
	if serr != nil {
		return false, fmt.Errorf("vrrp: rebinding the %s socket to %s (index %d): %w", c.fam.name, ifi.Name, ifindex, serr)
	}
	c.ifi.Store(ifi)
	return true, nil
}

// ConnConfig configures listenConn.
type ConnConfig struct {
	Interface string
	Group     netip.Addr // multicast group; default 224.0.0.18 (ff02::12)
	Unicast   bool       // do not join the group
	TTL       int        // unicast TTL (hop limit); default 255
	// IPv6 opens a VRRPv3-over-IPv6 socket.
	IPv6 bool
}

// sockopt names one integer socket option.
type sockopt struct {
	name       string // as in the C headers, for errors
	level, opt int
}

var soTimestampNS = sockopt{"SO_TIMESTAMPNS", unix.SOL_SOCKET, unix.SO_TIMESTAMPNS}

func (o sockopt) set(fd, v int) error {
	return os.NewSyscallError("setsockopt "+o.name, unix.SetsockoptInt(fd, o.level, o.opt, v))
}

// ipFamily is what differs between VRRP over IPv4 and over IPv6: the
// options that say the same thing in the two, the default group, and
// where a received packet's payload and sender are.
type ipFamily struct {
	name    string     // "IPv4" or "IPv6", in errors
	network string     // of net.ListenPacket
	any     string     // the address bound
	group   netip.Addr // default multicast group

	// index picks the family's column of the option tables below.
	index int

	// joinGroup joins group on the interface; multicastIf sends multicast
	// out of it.
	joinGroup   func(fd, ifindex int, group netip.Addr) error
	multicastIf func(fd, ifindex int) error
	// split finds the VRRP packet in what recvmsg returned (b, and the
	// sender from) and what the IP layer tells of it.
	split func(b []byte, from unix.Sockaddr) ([]byte, advert.PacketInfo, advert.DropReason)
	// pktinfo is the control message that sends from src on ifindex.
	pktinfo func(ifindex int, src netip.Addr) []byte
}

// The options that say the same thing in the two families, IPv4's and
// IPv6's side by side (ipFamily.index picks one).
var (
	// off: only the groups joined here
	multicastAllOpt = [2]sockopt{{"IP_MULTICAST_ALL", unix.IPPROTO_IP, unix.IP_MULTICAST_ALL}, {"IPV6_MULTICAST_ALL", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL}}
	// on: the TTL / hop limit of received packets
	recvTTLOpt = [2]sockopt{{"IP_RECVTTL", unix.IPPROTO_IP, unix.IP_RECVTTL}, {"IPV6_RECVHOPLIMIT", unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT}}
	// on: their interface and destination
	recvPktinfoOpt = [2]sockopt{{"IP_PKTINFO", unix.IPPROTO_IP, unix.IP_PKTINFO}, {"IPV6_RECVPKTINFO", unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO}}
	// TOS / traffic class
	tosOpt = [2]sockopt{{"IP_TOS", unix.IPPROTO_IP, unix.IP_TOS}, {"IPV6_TCLASS", unix.IPPROTO_IPV6, unix.IPV6_TCLASS}}
	// unicast TTL / hop limit
	ttlOpt = [2]sockopt{{"IP_TTL", unix.IPPROTO_IP, unix.IP_TTL}, {"IPV6_UNICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS}}
	// multicast TTL / hop limit
	multicastTTLOpt = [2]sockopt{{"IP_MULTICAST_TTL", unix.IPPROTO_IP, unix.IP_MULTICAST_TTL}, {"IPV6_MULTICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS}}
	// off: our own multicast not looped back
	multicastLoopOpt = [2]sockopt{{"IP_MULTICAST_LOOP", unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP}, {"IPV6_MULTICAST_LOOP", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP}}
)

var ipv4Family = ipFamily{
	index: 0, name: "IPv4", network: fmt.Sprintf("ip4:%d", advert.IPProtocol), any: "0.0.0.0", group: advert.MulticastGroup,
	joinGroup: joinGroup4, multicastIf: multicastIf4,
	split: func(b []byte, _ unix.Sockaddr) ([]byte, advert.PacketInfo, advert.DropReason) {
		payload, info, err := advert.SplitIPv4(b)
		if err != nil {
			return nil, info, advert.DropIPHeader
		}
		return payload, info, advert.DropNone
	},
	pktinfo: func(ifindex int, src netip.Addr) []byte {
		return controlMessage(unix.IPPROTO_IP, unix.IP_PKTINFO, &unix.Inet4Pktinfo{Ifindex: int32(ifindex), Spec_dst: src.As4()})
	},
}

var ipv6Family = ipFamily{
	index: 1, name: "IPv6", network: fmt.Sprintf("ip6:%d", advert.IPProtocol), any: "::", group: advert.MulticastGroup6,
	joinGroup: joinGroup6, multicastIf: multicastIf6,
	split: func(b []byte, from unix.Sockaddr) ([]byte, advert.PacketInfo, advert.DropReason) {
		info := advert.PacketInfo{TTL: -1} // the hop limit comes with the control messages
		sa, ok := from.(*unix.SockaddrInet6)
		if !ok {
			return b, info, advert.DropIPHeader
		}
		info.Src = netip.AddrFrom16(sa.Addr)
		return b, info, advert.DropNone
	},
	pktinfo: func(ifindex int, src netip.Addr) []byte {
		return controlMessage(unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, &unix.Inet6Pktinfo{Addr: src.As16(), Ifindex: uint32(ifindex)})
	},
}

func joinGroup4(fd, ifindex int, group netip.Addr) error {
	mreq := &unix.IPMreqn{Multiaddr: group.As4(), Ifindex: int32(ifindex)}
	return os.NewSyscallError("setsockopt IP_ADD_MEMBERSHIP", unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq))
}

func multicastIf4(fd, ifindex int) error {
	mreq := &unix.IPMreqn{Ifindex: int32(ifindex)}
	return os.NewSyscallError("setsockopt IP_MULTICAST_IF", unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, mreq))
}

func joinGroup6(fd, ifindex int, group netip.Addr) error {
	mreq := &unix.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(ifindex)}
	return os.NewSyscallError("setsockopt IPV6_JOIN_GROUP", unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq))
}

func multicastIf6(fd, ifindex int) error {
	return sockopt{"IPV6_MULTICAST_IF", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF}.set(fd, ifindex)
}

// listenConn opens the socket.
func listenConn(cfg ConnConfig) (*vrrpConn, error) {
	fam := &ipv4Family
	if cfg.IPv6 {
		fam = &ipv6Family
	}
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, err
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = fam.setup(int(fd), cfg, ifi.Index) }); err != nil {
			return err
		}
		return serr
	}}
	c, err := lc.ListenPacket(context.Background(), fam.network, fam.any)
	if err != nil {
		return nil, fmt.Errorf("vrrp: raw %s socket on %s: %w", fam.name, cfg.Interface, err)
	}
	ip := c.(*net.IPConn)
	raw, err := ip.SyscallConn()
	if err != nil {
		ip.Close()
		return nil, fmt.Errorf("vrrp: raw %s socket on %s: %w", fam.name, cfg.Interface, err)
	}
	vc := &vrrpConn{fam: fam, cfg: cfg, ip: ip, raw: raw}
	vc.ifi.Store(ifi)
	return vc, nil
}

// setup sets the options of a new socket, before it is bound.
func (f *ipFamily) setup(fd int, cfg ConnConfig, ifindex int) error {
	ttl := cfg.TTL
	if ttl == 0 {
		ttl = advert.TTL
	}
	if err := setAll(fd, []setting{
		{multicastAllOpt[f.index], 0},
		// Receive timestamps: the Master_Down_Timer counts from the
		// arrival of the advert, not from when we got to it.
		{soTimestampNS, 1},
		{recvTTLOpt[f.index], 1},
		{recvPktinfoOpt[f.index], 1},
		{tosOpt[f.index], advert.TOS},
		{ttlOpt[f.index], ttl},
	}); err != nil {
		return err
	}
	if err := f.bindIface(fd, cfg, ifindex); err != nil {
		return err
	}
	if cfg.Unicast {
		return nil
	}
	return setAll(fd, []setting{{multicastTTLOpt[f.index], advert.TTL}, {multicastLoopOpt[f.index], 0}})
}

// bindIface ties the socket to the interface ifindex (named
// cfg.Interface): bound to it, and unless unicast, member of the group on
// it and sending multicast out of it. A membership already there is kept.
func (f *ipFamily) bindIface(fd int, cfg ConnConfig, ifindex int) error {
	if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, cfg.Interface); err != nil {
		return os.NewSyscallError("setsockopt SO_BINDTODEVICE", err)
	}
	if cfg.Unicast {
		return nil
	}
	group := cfg.Group
	if !group.IsValid() {
		group = f.group
	}
	if err := f.joinGroup(fd, ifindex, group); err != nil && !errors.Is(err, unix.EADDRINUSE) {
		return err
	}
	return f.multicastIf(fd, ifindex)
}

// setting is a value for an option.
type setting struct {
	o sockopt
	v int
}

func setAll(fd int, s []setting) error {
	for _, s := range s {
		if err := s.o.set(fd, s.v); err != nil {
			return err
		}
	}
	return nil
}

// controlMessage is one control message (cmsg) carrying *v.
func controlMessage[T any](level, typ int, v *T) []byte {
	n := int(unsafe.Sizeof(*v))
	b := make([]byte, unix.CmsgSpace(n))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = int32(level), int32(typ)
	h.SetLen(unix.CmsgLen(n))
	copy(b[unix.CmsgLen(0):], unsafe.Slice((*byte)(unsafe.Pointer(v)), n))
	return b
}

// SendAdvert sends one VRRP packet from src (over IPv6, the interface's
// link-local address) to dst, out of the socket's interface.
func (c *vrrpConn) SendAdvert(payload []byte, src, dst netip.Addr) error {
	ifi := c.ifi.Load()
	to := &net.IPAddr{IP: dst.AsSlice()}
	if dst.Is6() && (dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast()) {
		to.Zone = strconv.Itoa(ifi.Index) // the name may be stale for a moment
	}
	_, _, err := c.ip.WriteMsgIP(payload, c.fam.pktinfo(ifi.Index, src), to)
	return err
}

// PacketHandler is what a socket hands its packets to: a dispatcher.
type PacketHandler interface {
	// Handle receives one VRRP packet (the IP payload, a fresh buffer).
	Handle(payload []byte, info advert.PacketInfo)
	// Drop is told of a packet the socket dropped, with what could be
	// found of its VRRP packet (nil if nothing).
	Drop(payload []byte, info advert.PacketInfo, reason advert.DropReason)
}

// Serve reads packets until ctx is done and hands each one (a fresh
// buffer) to h, or tells h why it dropped it. Reads wake up at least every
// pollInterval to notice ctx.
func (c *vrrpConn) Serve(ctx context.Context, h PacketHandler) error {
	const pollInterval = 200 * time.Millisecond
	buf := make([]byte, 65536) // any IP packet
	oob := make([]byte, 512)
	for ctx.Err() == nil {
		if err := c.ip.SetReadDeadline(time.Now().Add(pollInterval)); err != nil {
			return err
		}
		var n, oobn int
		var from unix.Sockaddr
		var rerr error
		err := c.raw.Read(func(fd uintptr) bool {
			n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
			return rerr != unix.EAGAIN && rerr != unix.EINTR
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		payload, info, drop := c.parse(buf[:n], oob[:oobn], from)
		payload = append([]byte(nil), payload...)
		if drop != advert.DropNone {
			h.Drop(payload, info, drop)
			continue
		}
		h.Handle(payload, info)
	}
	return nil
}

// parse returns the VRRP packet in what recvmsg returned and what the IP
// layer tells of it, or the reason to drop it.
func (c *vrrpConn) parse(b, oob []byte, from unix.Sockaddr) ([]byte, advert.PacketInfo, advert.DropReason) {
	payload, info, drop := c.fam.split(b, from)
	if drop != advert.DropNone {
		return payload, info, drop
	}
	parseOOB(oob, &info)
	if info.IfIndex != 0 && info.IfIndex != c.ifi.Load().Index {
		return payload, info, advert.DropWrongInterface
	}
	return payload, info, advert.DropNone
}

// parseOOB reads the receiving interface, the kernel timestamp and, over
// IPv6, the destination and hop limit from the control messages.
func parseOOB(oob []byte, info *advert.PacketInfo) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for _, m := range msgs {
		switch l, t := m.Header.Level, m.Header.Type; {
		case l == unix.IPPROTO_IP && t == unix.IP_PKTINFO && len(m.Data) >= unix.SizeofInet4Pktinfo:
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&m.Data[0]))
			info.IfIndex = int(pi.Ifindex)
		case l == unix.IPPROTO_IPV6 && t == unix.IPV6_PKTINFO && len(m.Data) >= unix.SizeofInet6Pktinfo:
			pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&m.Data[0]))
			info.IfIndex = int(pi.Ifindex)
			info.Dst = netip.AddrFrom16(pi.Addr)
		case l == unix.IPPROTO_IPV6 && t == unix.IPV6_HOPLIMIT && len(m.Data) >= 4:
			info.TTL = int(*(*int32)(unsafe.Pointer(&m.Data[0])))
		case l == unix.SOL_SOCKET && t == unix.SO_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})):
			ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			info.At = time.Unix(int64(ts.Sec), int64(ts.Nsec))
		}
	}
}

// Close closes the socket.
func (c *vrrpConn) Close() error { return c.ip.Close() }

// primaryIPv6 returns the link-local address of the named interface, the
// source of VRRP adverts over IPv6 (RFC 5798 section 5.1.2.1).
func primaryIPv6(ifname string) (netip.Addr, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return netip.Addr{}, err
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Is6() && ip.IsLinkLocalUnicast() {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("vrrp: %s has no IPv6 link-local address", ifname)
}
