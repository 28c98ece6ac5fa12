package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/lvsd/lvsd/conf"
)

// result is the outcome of one check attempt.
type result struct {
	ok     bool
	reason string // why the attempt failed (or what succeeded)
	weight int    // MISC_CHECK misc_dynamic weight (exit status - 2); -1 when none
}

func pass(reason string) result { return result{ok: true, reason: reason, weight: -1} }

func fail(format string, a ...any) result {
	return result{reason: fmt.Sprintf(format, a...), weight: -1}
}

// prober runs one check attempt. It honours ctx (shutdown) and its own timeouts,
// and is called from one goroutine at a time per checker.
type prober interface {
	probe(ctx context.Context) result
}

// connector opens the TCP connection of a checker with its connection options
// (connect_ip, connect_port, bindto, bind_port, bind_if, fwmark).
type connector struct {
	remote, local netip.AddrPort // local: when bound
	bound         bool
	so            sockopts
	timeout       time.Duration // connect_timeout
	raw           *rawConnect   // the lean connect of TCP_CHECK; nil: dial
}

func newConnector(c *conf.Checker, rs *conf.RealServer) *connector {
	remote, local, bound := checkerAddrs(c, rs)
	so := sockopts{mark: int(c.Fwmark), dev: c.BindIf, reuse: c.BindPort != 0, noPort: c.BindTo.IsValid() && c.BindPort == 0}
	return &connector{
		remote: remote, local: local, bound: bound, so: so,
		timeout: connectTimeout(c),
		raw:     newRawConnect(remote.Addr(), c.ConnectPort, c.BindTo, c.BindPort, so),
	}
}

// checkerAddrs are the ends of a checker's connection: connect_ip (else the
// real server's address) and connect_port; bindto and bind_port, bound when
// either is set. bind_if is the zone of a link-local IPv6 address without one.
func checkerAddrs(c *conf.Checker, rs *conf.RealServer) (remote, local netip.AddrPort, bound bool) {
	remote = netip.AddrPortFrom(linkZone(connectIP(c, rs), c.BindIf), uint16(c.ConnectPort))
	if c.BindTo.IsValid() || c.BindPort != 0 {
		local, bound = netip.AddrPortFrom(linkZone(c.BindTo, c.BindIf), uint16(c.BindPort)), true
	}
	return remote, local, bound
}

// linkZone gives ip the zone dev when it is a link-local IPv6 address
// without one.
func linkZone(ip netip.Addr, dev string) netip.Addr {
	if dev != "" && ip.Is6() && ip.IsLinkLocalUnicast() && ip.Zone() == "" {
		return ip.WithZone(dev)
	}
	return ip
}

// connectTimeout is a checker's connect_timeout, 5 s by default.
func connectTimeout(c *conf.Checker) time.Duration {
	if c.Timers.ConnectTimeout > 0 {
		return c.Timers.ConnectTimeout
	}
	return 5 * time.Second
}

// open dials, and closes the connection if ctx ends first (a blocked read
// or write then returns at shutdown); done undoes that and closes it.
func (cn *connector) open(ctx context.Context) (c net.Conn, done func(), err error) {
	c, err = cn.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	return c, func() { stop(); c.Close() }, nil
}

// dial connects within connect_timeout. (Not Dialer.DialTCP: without a local
// address it binds to port 0 before connecting, which searches the whole port
// space and, with many connections in TIME_WAIT, runs out of ports.)
// The dialer is made for each connection (these checkers allocate far more
// per attempt) rather than kept by every checker.
func (cn *connector) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: cn.timeout, KeepAlive: -1, Control: cn.so.control(nil)}
	if cn.bound {
		d.LocalAddr = net.TCPAddrFromAddrPort(cn.local)
	}
	return d.DialContext(ctx, "tcp", cn.remote.String())
}

// describe shortens a network error for a log line and an event reason.
func describe(err error) string {
	if err == nil {
		return ""
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return "connection refused"
	}
	if errors.Is(err, syscall.ECONNRESET) {
		return "connection reset"
	}
	if errors.Is(err, syscall.EHOSTUNREACH) {
		return "host unreachable"
	}
	if errors.Is(err, syscall.ENETUNREACH) {
		return "network unreachable"
	}
	s := err.Error()
	// "dial tcp 127.0.0.1:1: connect: ..." → "connect: ..."
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.HasPrefix(s, "dial ") {
		if j := strings.Index(s, ": "); j >= 0 && j < i {
			return s[j+2:]
		}
	}
	return s
}

// tcpProbe is TCP_CHECK: a connection that completes within connect_timeout.
type tcpProbe struct {
	conn *connector
}

func (p *tcpProbe) probe(ctx context.Context) result {
	if r := p.conn.raw; r != nil {
		return connectResult(r.connect(ctx, p.conn.timeout))
	}
	c, err := p.conn.dial(ctx)
	if err != nil {
		return connectResult(err)
	}
	c.Close()
	return pass("")
}

func connectResult(err error) result {
	if err != nil {
		return fail("connect: %s", describe(err))
	}
	return pass("")
}

// quickProber is a prober whose attempt starts without blocking (TCP_CHECK's
// lean connect): the scheduler runs it in its own loop, and watches a
// connection still pending in its poller instead of handing the attempt to
// a worker. It is used by one goroutine at a time, as probe.
type quickProber interface {
	prober
	// quick reports whether begin applies (else: probe).
	quick() bool
	// begin starts an attempt. done: res is its outcome. Otherwise fd is
	// the socket of the pending connection, which fails after timeout: the
	// caller calls settle when the socket has an event, or abandon.
	begin() (res result, fd int, timeout time.Duration, done bool)
	// settle looks at the pending connection on fd; done: res is the
	// outcome and fd is closed.
	settle(fd int) (res result, done bool)
	// abandon closes fd, whose connection timed out, and says so.
	abandon(fd int) result
}

func (p *tcpProbe) quick() bool { return p.conn.raw != nil }

func (p *tcpProbe) begin() (result, int, time.Duration, bool) {
	fd, done, err := p.conn.raw.begin()
	if done {
		return connectResult(err), -1, 0, true
	}
	return result{}, fd, p.conn.timeout, false
}

func (p *tcpProbe) settle(fd int) (result, bool) {
	done, err := p.conn.raw.settle(fd)
	if !done {
		return result{}, false
	}
	return connectResult(err), true
}

func (p *tcpProbe) abandon(fd int) result { return connectResult(p.conn.raw.abandon(fd)) }
