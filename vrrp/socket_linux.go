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

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// Conn is a raw IPv4 socket for protocol 112 bound to one interface:
// SO_BINDTODEVICE, IP_MULTICAST_ALL off, multicast group joined (unless
// unicast), TTL 255, TOS 0xc0, multicast loopback off so that our own
// adverts do not come back; TTL, destination and interface of received
// packets are read from control messages.
type Conn struct {
	pc      *ipv4.PacketConn
	ifi     *net.Interface
	unicast bool
}

// ConnConfig configures ListenConn.
type ConnConfig struct {
	Interface string
	Group     netip.Addr // multicast group; default 224.0.0.18
	Unicast   bool       // do not join the group
	TTL       int        // unicast TTL; default 255
}

// ListenConn opens the socket.
func ListenConn(cfg ConnConfig) (*Conn, error) {
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
			if serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0); serr != nil {
				serr = os.NewSyscallError("IP_MULTICAST_ALL", serr)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := lc.ListenPacket(context.Background(), fmt.Sprintf("ip4:%d", IPProtocol), "0.0.0.0")
	if err != nil {
		return nil, fmt.Errorf("vrrp: raw socket on %s: %w", cfg.Interface, err)
	}
	pc := ipv4.NewPacketConn(c)
	conn := &Conn{pc: pc, ifi: ifi, unicast: cfg.Unicast}
	fail := func(what string, err error) (*Conn, error) {
		pc.Close()
		return nil, fmt.Errorf("vrrp: socket on %s: %s: %w", cfg.Interface, what, err)
	}
	if err := pc.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst|ipv4.FlagInterface|ipv4.FlagSrc, true); err != nil {
		return fail("control messages", err)
	}
	if err := pc.SetTOS(TOS); err != nil {
		return fail("TOS", err)
	}
	ttl := cfg.TTL
	if ttl == 0 {
		ttl = TTL
	}
	if err := pc.SetTTL(ttl); err != nil {
		return fail("TTL", err)
	}
	if !cfg.Unicast {
		group := cfg.Group
		if !group.IsValid() {
			group = MulticastGroup
		}
		if err := pc.JoinGroup(ifi, &net.IPAddr{IP: group.AsSlice()}); err != nil {
			return fail("join group", err)
		}
		if err := pc.SetMulticastInterface(ifi); err != nil {
			return fail("multicast interface", err)
		}
		if err := pc.SetMulticastTTL(TTL); err != nil {
			return fail("multicast TTL", err)
		}
		if err := pc.SetMulticastLoopback(false); err != nil {
			return fail("multicast loopback", err)
		}
	}
	return conn, nil
}

// SendAdvert sends one VRRP packet from src to dst.
func (c *Conn) SendAdvert(payload []byte, src, dst netip.Addr) error {
	cm := &ipv4.ControlMessage{IfIndex: c.ifi.Index, Src: src.AsSlice()}
	_, err := c.pc.WriteTo(payload, cm, &net.IPAddr{IP: dst.AsSlice()})
	return err
}

// Serve reads packets until ctx is done and hands each one (a fresh
// buffer) to handle. Reads wake up at least every pollInterval to notice ctx.
func (c *Conn) Serve(ctx context.Context, handle func(payload []byte, info PacketInfo)) error {
	const pollInterval = 200 * time.Millisecond
	buf := make([]byte, 65536)
	for ctx.Err() == nil {
		if err := c.pc.SetReadDeadline(time.Now().Add(pollInterval)); err != nil {
			return err
		}
		n, cm, src, err := c.pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		info := PacketInfo{TTL: -1}
		if ipa, ok := src.(*net.IPAddr); ok {
			info.Src, _ = netip.AddrFromSlice(ipa.IP.To4())
		}
		if cm != nil {
			info.TTL = cm.TTL
			info.IfIndex = cm.IfIndex
			info.Dst, _ = netip.AddrFromSlice(cm.Dst.To4())
		}
		if info.IfIndex != 0 && info.IfIndex != c.ifi.Index {
			continue
		}
		handle(append([]byte(nil), buf[:n]...), info)
	}
	return nil
}

// Close closes the socket.
func (c *Conn) Close() error { return c.pc.Close() }
