package healthcheck

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// rawConnect is the connect of TCP_CHECK, done as keepalived does it: a
// non-blocking socket, connect, a wait for the outcome (in Go's netpoller),
// close. It skips what net.Dialer does for a connection that is going to be
// used (address parsing, a context and timer per dial, TCP_NODELAY,
// getsockname/getpeername), which is most of the CPU of a check.
//
// A rawConnect is used by one goroutine at a time (that of its checker).
//
// Its system calls are raw (syscall.RawSyscall): none of them blocks (the
// socket is non-blocking), and a raw call skips the runtime's bookkeeping
// around a system call, which wakes its monitor thread each time the
// process comes back from idle.
type rawConnect struct {
	family int
	sa     rawSockaddr // the destination
	la     rawSockaddr // bindto / bind_port; len 0: none
	opts   sockopts
}

// rawSockaddr is a socket address as the kernel takes it.
type rawSockaddr struct {
	buf [syscall.SizeofSockaddrInet6]byte
	len uintptr
}

// addrPort decodes the address (for error messages: the checkers keep
// only the form the kernel takes).
func (a *rawSockaddr) addrPort() netip.AddrPort {
	if a.len == syscall.SizeofSockaddrInet4 {
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&a.buf[0]))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	}
	sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&a.buf[0]))
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
}

func newRawSockaddr(ip netip.Addr, port int) rawSockaddr {
	var a rawSockaddr
	if ip.Is4() {
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&a.buf[0]))
		sa.Family = syscall.AF_INET
		sa.Addr = ip.As4()
		setPort(&sa.Port, port)
		a.len = syscall.SizeofSockaddrInet4
	} else {
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&a.buf[0]))
		sa.Family = syscall.AF_INET6
		sa.Addr = ip.As16()
		setPort(&sa.Port, port)
		a.len = syscall.SizeofSockaddrInet6
	}
	return a
}

// setPort stores port in network byte order.
func setPort(p *uint16, port int) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

// newRawConnect returns nil where the lean path does not apply as is (scoped
// IPv6 addresses, IPv4-mapped ones, mixed families): net.Dialer does those.
func newRawConnect(ip netip.Addr, port int, bindTo netip.Addr, bindPort int, so sockopts) *rawConnect {
	if !ip.IsValid() || ip.Zone() != "" || ip.Is4In6() || port < 0 || port > 65535 || bindPort < 0 || bindPort > 65535 {
		return nil
	}
	if bindTo.IsValid() && (bindTo.Zone() != "" || bindTo.Is4In6() || bindTo.Is4() != ip.Is4() ||
		(so.dev != "" && bindTo.Is6() && bindTo.IsLinkLocalUnicast())) {
		return nil
	}
	r := &rawConnect{opts: so}
	r.family = syscall.AF_INET
	if ip.Is6() {
		r.family = syscall.AF_INET6
	}
	r.sa = newRawSockaddr(ip, port)
	if bindTo.IsValid() || bindPort != 0 {
		if !bindTo.IsValid() {
			bindTo = netip.IPv4Unspecified()
			if r.family == syscall.AF_INET6 {
				bindTo = netip.IPv6Unspecified()
			}
		}
		r.la = newRawSockaddr(bindTo, bindPort)
	}
	return r
}

// Linux TCP states (tcp_info.tcpi_state).
const (
	tcpSynSent = 2
	tcpClose   = 7
)

// errCanceled is what net.Dialer reports when its context is canceled.
var errCanceled = errors.New("operation was canceled")

// aLongTimeAgo is a deadline that has passed.
var aLongTimeAgo = time.Unix(1, 0)

// connect opens a TCP connection within timeout (or ctx's deadline if
// sooner) and closes it. Its errors read as net.Dialer's. It waits for a
// pending connection in Go's netpoller (the scheduler's own loop does not
// call it: it begins the connection and watches it in its poller).
func (r *rawConnect) connect(ctx context.Context, timeout time.Duration) error {
	if err := ctx.Err(); err != nil {
		return r.opError(ctxError(err))
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	fd, done, err := r.begin()
	if done {
		return err
	}
	// Wait for the outcome in the netpoller: the socket becomes writable
	// when the connection is up or has failed.
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	if err := f.SetWriteDeadline(deadline); err != nil {
		return r.opError(err)
	}
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { f.SetWriteDeadline(aLongTimeAgo) })
		defer stop()
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return r.opError(err)
	}
	var cerr error
	err = rc.Write(func(fd uintptr) bool {
		done, err := r.outcome(int(fd))
		cerr = err
		return done
	})
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return r.opError(ctxError(cerr))
		}
		return r.opError(err) // i/o timeout
	}
	if cerr != nil {
		return r.opError(cerr)
	}
	return nil
}

// begin starts a connection without blocking: socket, options, bind,
// connect, and one look at its state. When done, the socket is closed and
// err is the outcome (nil: up); otherwise fd is the socket of the pending
// connection, to watch for writability, then settle or abandon.
func (r *rawConnect) begin() (fd int, done bool, err error) {
	fd, err = rawSocket(r.family)
	if err != nil {
		return -1, true, r.opError(err)
	}
	if err := r.opts.apply(fd); err != nil {
		closeFD(fd)
		return -1, true, r.opError(err)
	}
	if r.la.len != 0 {
		if _, _, e := syscall.RawSyscall(syscall.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(&r.la.buf[0])), r.la.len); e != 0 {
			closeFD(fd)
			return -1, true, r.opError(os.NewSyscallError("bind", e))
		}
	}
	_, _, e := syscall.RawSyscall(syscall.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&r.sa.buf[0])), r.sa.len)
	switch e {
	case 0, syscall.EISCONN:
		closeFD(fd)
		return -1, true, nil
	case syscall.EINPROGRESS, syscall.EALREADY, syscall.EINTR:
	default:
		closeFD(fd)
		return -1, true, r.opError(os.NewSyscallError("connect", e))
	}
	if done, err := r.settle(fd); done {
		return -1, true, err
	}
	return fd, false, nil
}

// settle looks at the pending connection on fd: when it is settled, it
// closes fd and returns the outcome.
func (r *rawConnect) settle(fd int) (bool, error) {
	done, err := r.outcome(fd)
	if !done {
		return false, nil
	}
	closeFD(fd)
	if err != nil {
		return true, r.opError(err)
	}
	return true, nil
}

// abandon closes a pending connection that timed out and returns the error
// net.Dialer reports then.
func (r *rawConnect) abandon(fd int) error {
	closeFD(fd)
	return r.opError(os.ErrDeadlineExceeded)
}

func rawSocket(family int) (int, error) {
	fd, _, e := syscall.RawSyscall(syscall.SYS_SOCKET, uintptr(family), syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if e != 0 {
		return -1, os.NewSyscallError("socket", e)
	}
	return int(fd), nil
}

// closeFD closes a socket whose connection is pending or settled: it does
// not block (no SO_LINGER).
func closeFD(fd int) {
	syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(fd), 0, 0)
}

// outcome reports whether the connection on fd is settled, and its error.
func (r *rawConnect) outcome(fd int) (bool, error) {
	// tcpi_state, the first byte of TCP_INFO: one system call tells up
	// from pending from failed.
	var info [8]byte
	n := uint32(len(info))
	_, _, e := syscall.RawSyscall6(syscall.SYS_GETSOCKOPT, uintptr(fd), syscall.IPPROTO_TCP, syscall.TCP_INFO,
		uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 {
		return true, os.NewSyscallError("getsockopt", e)
	}
	switch info[0] {
	case tcpSynSent:
		return false, nil
	case tcpClose:
		var v int32
		n = 4
		_, _, e := syscall.RawSyscall6(syscall.SYS_GETSOCKOPT, uintptr(fd), syscall.SOL_SOCKET, syscall.SO_ERROR,
			uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&n)), 0)
		if e != 0 {
			return true, os.NewSyscallError("getsockopt", e)
		}
		if v == 0 {
			v = int32(syscall.ECONNRESET) // closed, its error already taken
		}
		return true, os.NewSyscallError("connect", syscall.Errno(v))
	}
	return true, nil // established (and maybe already closed by the peer)
}

func (r *rawConnect) opError(err error) error {
	oe := &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(r.sa.addrPort()), Err: err}
	if r.la.len > 0 {
		oe.Source = net.TCPAddrFromAddrPort(r.la.addrPort())
	}
	return oe
}

func ctxError(err error) error {
	if errors.Is(err, context.Canceled) {
		return errCanceled
	}
	return err // context.DeadlineExceeded: "timeout"
}
