package healthcheck

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/lvsd/lvsd/conf"
)

// pingPayload is the data of PING_CHECK's echo requests: keepalived's 128
// octets.
var pingPayload = checkFiller(128)

// pingProbe is PING_CHECK: one ICMP (or ICMPv6) echo request to connect_ip,
// else the real server; the check passes when the echo reply (same
// identifier and sequence number) comes within connect_timeout, and fails
// otherwise, or at once when the socket reports an error (or, on a raw
// socket, when the target answers destination unreachable).
//
// It uses an unprivileged ICMP datagram socket ("ping socket", allowed by
// net.ipv4.ping_group_range), whose replies the kernel sorts by identifier,
// else a raw socket (CAP_NET_RAW), where it sorts them itself. bindto
// (source address), bind_if (SO_BINDTODEVICE) and fwmark (SO_MARK) apply.
type pingProbe struct {
	dst     netip.Addr
	zone    string // bind_if, for a link-local destination
	v6      bool
	bind    netip.Addr
	so      sockopts
	timeout time.Duration
	id      uint16 // of a raw socket's requests
	seq     uint16 // of the last request (one goroutine at a time: see prober)
	rawOnly bool   // tests: do not try a ping socket
}

func newPingProbe(c *conf.Checker, rs *conf.RealServer) *pingProbe {
	ip := connectIP(c, rs).Unmap()
	p := &pingProbe{dst: ip.WithZone(""), zone: ip.Zone(), v6: ip.Is6(), bind: c.BindTo.Unmap(), timeout: connectTimeout(c),
		so: sockopts{mark: int(c.Fwmark), dev: c.BindIf}, id: uint16(rand.Uint32()), seq: uint16(rand.Uint32())}
	if p.zone == "" && p.v6 && ip.IsLinkLocalUnicast() {
		p.zone = c.BindIf
	}
	return p
}

// pingErrPermission: the ping socket is not allowed (ping_group_range) or
// not available; try a raw one.
func pingErrPermission(err error) bool {
	return errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) ||
		errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.ESOCKTNOSUPPORT)
}

// open returns a socket connected to the target: raw reports a raw socket.
func (p *pingProbe) open() (pc net.PacketConn, raw bool, err error) {
	family, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if p.v6 {
		family, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	fd, err := -1, error(unix.EPERM)
	if !p.rawOnly {
		fd, err = unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, proto)
	}
	if err != nil && pingErrPermission(err) {
		raw = true
		fd, err = unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, proto)
	}
	if err != nil {
		return nil, raw, os.NewSyscallError("socket", err)
	}
	f := os.NewFile(uintptr(fd), "ping")
	defer f.Close()
	if err := p.so.apply(fd); err != nil {
		return nil, raw, err
	}
	if p.bind.IsValid() {
		sa, err := sockaddr(p.bind, p.so.dev)
		if err != nil {
			return nil, raw, err
		}
		if err := unix.Bind(fd, sa); err != nil {
			return nil, raw, os.NewSyscallError("bind", err)
		}
	}
	sa, err := sockaddr(p.dst, p.zone)
	if err != nil {
		return nil, raw, err
	}
	if err := unix.Connect(fd, sa); err != nil {
		return nil, raw, os.NewSyscallError("connect", err)
	}
	pc, err = net.FilePacketConn(f)
	return pc, raw, err
}

// sockaddr is ip's socket address (port 0); zone names the interface of a
// link-local IPv6 address.
func sockaddr(ip netip.Addr, zone string) (unix.Sockaddr, error) {
	if ip.Is4() {
		return &unix.SockaddrInet4{Addr: ip.As4()}, nil
	}
	sa := &unix.SockaddrInet6{Addr: ip.As16()}
	if ip.Zone() != "" {
		zone = ip.Zone()
	}
	if zone != "" && ip.IsLinkLocalUnicast() {
		ifi, err := net.InterfaceByName(zone)
		if err != nil {
			return nil, err
		}
		sa.ZoneId = uint32(ifi.Index)
	}
	return sa, nil
}

func (p *pingProbe) probe(ctx context.Context) result {
	pc, raw, err := p.open()
	if err != nil {
		return fail("%s", describe(err))
	}
	defer pc.Close()
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()
	pc.SetDeadline(time.Now().Add(p.timeout))

	p.seq++
	seq := p.seq
	var typ icmp.Type = ipv4.ICMPTypeEcho
	proto := 1 // ICMP
	if p.v6 {
		typ, proto = ipv6.ICMPTypeEchoRequest, 58
	}
	// The kernel fills a ping socket's identifier, and the ICMPv6 checksum.
	req, err := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: int(p.id), Seq: int(seq), Data: pingPayload}}).Marshal(nil)
	if err != nil {
		return fail("echo request: %v", err)
	}
	if _, err := pc.(interface{ Write([]byte) (int, error) }).Write(req); err != nil {
		return fail("send: %s", describe(err))
	}
	buf := make([]byte, 1500)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return fail("%s", describe(ctx.Err()))
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fail("no echo reply: timeout")
			}
			return fail("receive: %s", describe(err))
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil {
			continue
		}
		switch m.Type {
		case ipv4.ICMPTypeEchoReply, ipv6.ICMPTypeEchoReply:
			if e, ok := m.Body.(*icmp.Echo); ok && e.Seq == int(seq) && (!raw || e.ID == int(p.id)) {
				if raw {
					return pass("echo reply (raw socket)")
				}
				return pass("echo reply (ping socket)")
			}
		case ipv4.ICMPTypeDestinationUnreachable, ipv6.ICMPTypeDestinationUnreachable,
			ipv4.ICMPTypeTimeExceeded, ipv6.ICMPTypeTimeExceeded:
			// Only a raw socket sees these (a ping socket reports errors).
			if raw && p.quotesOurs(m, seq) {
				return fail("%s", icmpDescribe(m))
			}
		}
		// Anything else: another program's traffic, our own request on
		// loopback, a late reply.
	}
}

// quotesOurs reports whether an ICMP error quotes our echo request.
func (p *pingProbe) quotesOurs(m *icmp.Message, seq uint16) bool {
	var data []byte
	switch b := m.Body.(type) {
	case *icmp.DstUnreach:
		data = b.Data
	case *icmp.TimeExceeded:
		data = b.Data
	default:
		return false
	}
	hl, echo := 40, byte(128) // IPv6 header (no extension headers), echo request
	if !p.v6 {
		if len(data) < 1 {
			return false
		}
		hl, echo = int(data[0]&0x0f)*4, 8
	}
	if len(data) < hl+8 {
		return false
	}
	q := data[hl:]
	return q[0] == echo && binary.BigEndian.Uint16(q[4:]) == p.id && binary.BigEndian.Uint16(q[6:]) == seq
}

func icmpDescribe(m *icmp.Message) string {
	proto := "ICMP"
	if _, ok := m.Type.(ipv6.ICMPType); ok {
		proto = "ICMPv6"
	}
	return fmt.Sprintf("%s %v (code %d)", proto, m.Type, m.Code)
}
