package healthcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvsd/lvsd/conf"
)

// udpTarget opens the connected UDP socket of a UDP_CHECK or DNS_CHECK with
// the checker's connection options (connect_ip, connect_port, bindto,
// bind_port, bind_if, fwmark).
type udpTarget struct {
	addr    string
	dialer  net.Dialer
	timeout time.Duration // connect_timeout: the wait for the reply
}

// newUDPTarget: recvErr also asks for the ICMP errors the socket gets
// (IP_RECVERR), to read them from its error queue.
func newUDPTarget(c *conf.Checker, rs *conf.RealServer, recvErr bool) *udpTarget {
	remote, local, bound := checkerAddrs(c, rs)
	t := &udpTarget{addr: remote.String(), timeout: connectTimeout(c)}
	if bound {
		t.dialer.LocalAddr = net.UDPAddrFromAddrPort(local)
	}
	var more func(fd int) error
	if recvErr {
		more = setRecvErr(remote.Addr())
	}
	t.dialer.Control = sockopts{mark: int(c.Fwmark), dev: c.BindIf, reuse: c.BindPort != 0}.control(more)
	return t
}

// dial connects the socket (no packet is sent) and sets its deadline to
// connect_timeout from now; it is closed when ctx ends. done undoes that and
// closes it.
func (t *udpTarget) dial(ctx context.Context) (c *net.UDPConn, done func(), err error) {
	nc, err := t.dialer.DialContext(ctx, "udp", t.addr)
	if err != nil {
		return nil, nil, err
	}
	c = nc.(*net.UDPConn)
	c.SetDeadline(time.Now().Add(t.timeout))
	stop := context.AfterFunc(ctx, func() { c.Close() })
	return c, func() { stop(); c.Close() }, nil
}

// with runs one exchange on a freshly dialled socket (see dial): fn's
// result, or the failure to connect.
func (t *udpTarget) with(ctx context.Context, fn func(c *net.UDPConn) result) result {
	c, done, err := t.dial(ctx)
	if err != nil {
		return fail("connect: %s", describe(err))
	}
	defer done()
	return fn(c)
}

// defaultUDPPayload is what UDP_CHECK sends without payload: keepalived's
// 32 octets, "keepalived check - " repeated.
var defaultUDPPayload = checkFiller(32)

// checkFiller is n octets of "keepalived check - " repeated, the filler
// keepalived sends in UDP_CHECK and PING_CHECK packets.
func checkFiller(n int) []byte {
	return bytes.Repeat([]byte("keepalived check - "), n/19+1)[:n]
}

// udpProbe is UDP_CHECK: send payload on a connected socket, then wait
// connect_timeout for a reply. Without require_reply the check fails only on
// an ICMP destination unreachable (port, host, network...) for the datagram;
// silence passes. With require_reply a reply must come; with a pattern its
// length must lie in [min_reply_length, max_reply_length] and its first
// octets match the pattern (over the shorter of the two; x digits match
// anything).
type udpProbe struct {
	t          *udpTarget
	payload    []byte
	require    bool
	data, mask []byte // the require_reply pattern; data nil: none
	minLen     int
	maxLen     int
}

func newUDPProbe(c *conf.Checker, rs *conf.RealServer) (*udpProbe, error) {
	p := &udpProbe{t: newUDPTarget(c, rs, true), payload: c.Payload, require: c.RequireReply,
		minLen: c.MinReplyLength, maxLen: c.MaxReplyLength}
	if len(p.payload) == 0 {
		p.payload = defaultUDPPayload
	}
	if p.require {
		data, mask, err := c.ReplyMatch()
		if err != nil {
			return nil, fmt.Errorf("require_reply: %v", err)
		}
		p.data, p.mask = data, mask
	}
	return p, nil
}

func (p *udpProbe) probe(ctx context.Context) result {
	return p.t.with(ctx, func(c *net.UDPConn) result { return p.exchange(ctx, c) })
}

func (p *udpProbe) exchange(ctx context.Context, c *net.UDPConn) result {
	if _, err := c.Write(p.payload); err != nil {
		if icmp := readICMPError(c); icmp != "" {
			return fail("%s", icmp)
		}
		return fail("send: %s", describe(err))
	}
	buf := make([]byte, max(p.maxLen, 0)+1) // a longer reply shows as maxLen+1 octets
	for {
		n, err := c.Read(buf)
		if err == nil {
			return p.reply(buf[:n])
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
			if p.require {
				return fail("no reply: timeout")
			}
			return pass("no reply (none required)")
		}
		if ctx.Err() != nil {
			return fail("%s", describe(ctx.Err()))
		}
		// An ICMP error: destination unreachable fails the check, others
		// (time exceeded...) do not, as in keepalived.
		icmp, seen := drainICMPErrors(c)
		if icmp != "" {
			return fail("%s", icmp)
		}
		if !seen {
			return fail("receive: %s", describe(err))
		}
	}
}

func (p *udpProbe) reply(b []byte) result {
	if p.data == nil {
		return pass("")
	}
	if len(b) < p.minLen || len(b) > p.maxLen {
		if len(b) > p.maxLen {
			return fail("reply of more than max_reply_length %d octets", p.maxLen)
		}
		return fail("reply of %d octets, under min_reply_length %d", len(b), p.minLen)
	}
	for i := 0; i < len(b) && i < len(p.data); i++ {
		var m byte
		if p.mask != nil {
			m = p.mask[i]
		}
		if (b[i]^p.data[i])&^m != 0 {
			return fail("reply did not match at octet %d: % x", i, b[:min(len(b), 16)])
		}
	}
	return pass("")
}

// readICMPError returns the first ICMP destination unreachable queued on c
// (see drainICMPErrors), "" if none.
func readICMPError(c *net.UDPConn) string {
	s, _ := drainICMPErrors(c)
	return s
}

// drainICMPErrors reads the error queue of c (IP_RECVERR) and describes the
// first ICMP or ICMPv6 destination unreachable in it ("" if none); seen
// reports whether the queue held anything.
func drainICMPErrors(c *net.UDPConn) (unreachable string, seen bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return "", false
	}
	oob := make([]byte, 512)
	buf := make([]byte, 64)
	rc.Read(func(fd uintptr) bool {
		for i := 0; i < 64; i++ {
			_, oobn, _, _, err := unix.Recvmsg(int(fd), buf, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
			if err != nil {
				return true
			}
			seen = true
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				continue
			}
			for _, m := range msgs {
				if s := icmpUnreachable(m); s != "" && unreachable == "" {
					unreachable = s
				}
			}
		}
		return true
	})
	return unreachable, seen
}

// icmpUnreachable describes an IP_RECVERR / IPV6_RECVERR message that is an
// ICMP destination unreachable, else "".
func icmpUnreachable(m unix.SocketControlMessage) string {
	// struct sock_extended_err: errno u32, origin u8, type u8, code u8, ...
	if len(m.Data) < 7 {
		return ""
	}
	origin, typ, code := m.Data[4], m.Data[5], m.Data[6]
	switch {
	case m.Header.Level == unix.SOL_IP && m.Header.Type == unix.IP_RECVERR &&
		origin == unix.SO_EE_ORIGIN_ICMP && typ == 3:
		names := map[byte]string{0: "network unreachable", 1: "host unreachable", 2: "protocol unreachable",
			3: "port unreachable", 4: "fragmentation needed", 9: "network prohibited", 10: "host prohibited",
			13: "administratively prohibited"}
		return icmpName("ICMP", names, code)
	case m.Header.Level == unix.SOL_IPV6 && m.Header.Type == unix.IPV6_RECVERR &&
		origin == unix.SO_EE_ORIGIN_ICMP6 && typ == 1:
		names := map[byte]string{0: "no route", 1: "administratively prohibited", 3: "address unreachable",
			4: "port unreachable", 5: "source address failed policy", 6: "reject route"}
		return icmpName("ICMPv6", names, code)
	}
	return ""
}

func icmpName(proto string, names map[byte]string, code byte) string {
	if n, ok := names[code]; ok {
		return proto + " " + n
	}
	return fmt.Sprintf("%s destination unreachable (code %d)", proto, code)
}
