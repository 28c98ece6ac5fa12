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
	raw     syscall.RawConn
	ifi     *net.Interface
	unicast bool
}

// ConnConfig configures ListenConn.
type ConnConfig struct {
	Interface string
	Group     netip.Addr // multicast group; default 224.0.0.18
	Unicast   bool       // do not join the group
	TTL       int        // unicast TTL; default 255
	// IPv6 opens a VRRPv3-over-IPv6 socket (Conn6; group default ff02::12).
	IPv6 bool
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
				return
			}
			// Receive timestamps: the Master_Down_Timer counts from the
			// arrival of the advert, not from when we got to it.
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); serr != nil {
				serr = os.NewSyscallError("SO_TIMESTAMPNS", serr)
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
	if sc, ok := c.(syscall.Conn); ok {
		if conn.raw, err = sc.SyscallConn(); err != nil {
			pc.Close()
			return nil, fmt.Errorf("vrrp: raw socket on %s: %w", cfg.Interface, err)
		}
	}
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
// buffer) to handle. Reads wake up at least every pollInterval to notice
// ctx. It reads the whole IPv4 packet with recvmsg: TTL, source and
// destination come from the header, the interface from IP_PKTINFO and the
// arrival time from SO_TIMESTAMPNS.
func (c *Conn) Serve(ctx context.Context, handle func(payload []byte, info PacketInfo)) error {
	const pollInterval = 200 * time.Millisecond
	buf := make([]byte, 65536)
	oob := make([]byte, 512)
	for ctx.Err() == nil {
		if err := c.pc.SetReadDeadline(time.Now().Add(pollInterval)); err != nil {
			return err
		}
		var n, oobn int
		var rerr error
		err := c.raw.Read(func(fd uintptr) bool {
			n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
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
		payload, info, err := SplitIPv4(buf[:n])
		if err != nil {
			continue
		}
		parseOOB(oob[:oobn], &info)
		if info.IfIndex != 0 && info.IfIndex != c.ifi.Index {
			continue
		}
		handle(append([]byte(nil), payload...), info)
	}
	return nil
}

// parseOOB reads the receiving interface and the kernel timestamp from the
// control messages.
func parseOOB(oob []byte, info *PacketInfo) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= unix.SizeofInet4Pktinfo:
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&m.Data[0]))
			info.IfIndex = int(pi.Ifindex)
		case m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})):
			ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			info.At = time.Unix(int64(ts.Sec), int64(ts.Nsec))
		}
	}
}

// Close closes the socket.
func (c *Conn) Close() error { return c.pc.Close() }
