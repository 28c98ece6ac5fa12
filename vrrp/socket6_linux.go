package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Conn6 is a raw IPv6 socket for protocol 112 bound to one interface, for
// VRRPv3 over IPv6 (RFC 5798): SO_BINDTODEVICE, IPV6_MULTICAST_ALL off,
// group ff02::12 joined (unless unicast), hop limit 255, traffic class
// 0xc0 (as keepalived), multicast loopback off. The checksum is computed
// and checked here, over the IPv6 pseudo-header. Received packets carry no
// IP header: source, destination, hop limit and interface come from
// recvmsg and its control messages.
type Conn6 struct {
	pc  *ipv6.PacketConn
	raw syscall.RawConn
	ifi *net.Interface
}

func listenConn6(cfg ConnConfig) (*Conn6, error) {
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, err
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, cfg.Interface); serr != nil {
				serr = os.NewSyscallError("SO_BINDTODEVICE", serr)
				return
			}
			if serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0); serr != nil {
				serr = os.NewSyscallError("IPV6_MULTICAST_ALL", serr)
				return
			}
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); serr != nil {
				serr = os.NewSyscallError("SO_TIMESTAMPNS", serr)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := lc.ListenPacket(context.Background(), fmt.Sprintf("ip6:%d", IPProtocol), "::")
	if err != nil {
		return nil, fmt.Errorf("vrrp: raw IPv6 socket on %s: %w", cfg.Interface, err)
	}
	pc := ipv6.NewPacketConn(c)
	conn := &Conn6{pc: pc, ifi: ifi}
	if sc, ok := c.(syscall.Conn); ok {
		if conn.raw, err = sc.SyscallConn(); err != nil {
			pc.Close()
			return nil, fmt.Errorf("vrrp: raw IPv6 socket on %s: %w", cfg.Interface, err)
		}
	}
	fail := func(what string, err error) (*Conn6, error) {
		pc.Close()
		return nil, fmt.Errorf("vrrp: IPv6 socket on %s: %s: %w", cfg.Interface, what, err)
	}
	if err := pc.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true); err != nil {
		return fail("control messages", err)
	}
	if err := pc.SetTrafficClass(TOS); err != nil {
		return fail("traffic class", err)
	}
	hops := cfg.TTL
	if hops == 0 {
		hops = TTL
	}
	if err := pc.SetHopLimit(hops); err != nil {
		return fail("hop limit", err)
	}
	if !cfg.Unicast {
		group := cfg.Group
		if !group.IsValid() {
			group = MulticastGroup6
		}
		if err := pc.JoinGroup(ifi, &net.IPAddr{IP: group.AsSlice()}); err != nil {
			return fail("join group", err)
		}
		if err := pc.SetMulticastInterface(ifi); err != nil {
			return fail("multicast interface", err)
		}
		if err := pc.SetMulticastHopLimit(TTL); err != nil {
			return fail("multicast hop limit", err)
		}
		if err := pc.SetMulticastLoopback(false); err != nil {
			return fail("multicast loopback", err)
		}
	}
	return conn, nil
}

// SendAdvert sends one VRRP packet from src (the interface's link-local
// address) to dst.
func (c *Conn6) SendAdvert(payload []byte, src, dst netip.Addr) error {
	cm := &ipv6.ControlMessage{IfIndex: c.ifi.Index, Src: src.AsSlice()}
	to := &net.IPAddr{IP: dst.AsSlice()}
	if dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() {
		to.Zone = c.ifi.Name
	}
	_, err := c.pc.WriteTo(payload, cm, to)
	return err
}

// Serve reads packets until ctx is done and hands each one (a fresh
// buffer) to handle, as Conn.Serve.
func (c *Conn6) Serve(ctx context.Context, handle func(payload []byte, info PacketInfo)) error {
	const pollInterval = 200 * time.Millisecond
	buf := make([]byte, 65536)
	oob := make([]byte, 512)
	for ctx.Err() == nil {
		if err := c.pc.SetReadDeadline(time.Now().Add(pollInterval)); err != nil {
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
		sa, ok := from.(*unix.SockaddrInet6)
		if !ok {
			continue
		}
		info := PacketInfo{Src: netip.AddrFrom16(sa.Addr), TTL: -1}
		parseOOB6(oob[:oobn], &info)
		if info.IfIndex != 0 && info.IfIndex != c.ifi.Index {
			continue
		}
		handle(append([]byte(nil), buf[:n]...), info)
	}
	return nil
}

// parseOOB6 reads the hop limit, destination, interface and kernel
// timestamp from the control messages.
func parseOOB6(oob []byte, info *PacketInfo) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= unix.SizeofInet6Pktinfo:
			pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&m.Data[0]))
			info.IfIndex = int(pi.Ifindex)
			info.Dst = netip.AddrFrom16(pi.Addr)
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_HOPLIMIT && len(m.Data) >= 4:
			info.TTL = int(*(*int32)(unsafe.Pointer(&m.Data[0])))
		case m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})):
			ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			info.At = time.Unix(int64(ts.Sec), int64(ts.Nsec))
		}
	}
}

// Close closes the socket.
func (c *Conn6) Close() error { return c.pc.Close() }

// PrimaryIPv6 returns the link-local address of the named interface, the
// source of VRRP adverts over IPv6 (RFC 5798 section 5.1.2.1).
func PrimaryIPv6(ifname string) (netip.Addr, error) {
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
