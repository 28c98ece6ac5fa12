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
type rawConnect struct {
	family int
	sa     syscall.Sockaddr // the destination
	la     syscall.Sockaddr // bindto / bind_port; nil: none
	opts   sockopts
	addr   *net.TCPAddr // the destination and source, for error messages
	src    *net.TCPAddr
	// quick: the last connection was up by the time connect returned (a
	// local destination), so look before waiting for it in the poller.
	quick bool
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
	r := &rawConnect{opts: so, addr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port)))}
	if ip.Is4() {
		r.family = syscall.AF_INET
		r.sa = &syscall.SockaddrInet4{Port: port, Addr: ip.As4()}
	} else {
		r.family = syscall.AF_INET6
		r.sa = &syscall.SockaddrInet6{Port: port, Addr: ip.As16()}
	}
	if bindTo.IsValid() || bindPort != 0 {
		r.src = &net.TCPAddr{Port: bindPort}
		if bindTo.IsValid() {
			r.src.IP = bindTo.AsSlice()
		}
		if r.family == syscall.AF_INET {
			sa := &syscall.SockaddrInet4{Port: bindPort}
			if bindTo.IsValid() {
				sa.Addr = bindTo.As4()
			}
			r.la = sa
		} else {
			sa := &syscall.SockaddrInet6{Port: bindPort}
			if bindTo.IsValid() {
				sa.Addr = bindTo.As16()
			}
			r.la = sa
		}
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
// sooner) and closes it. Its errors read as net.Dialer's.
func (r *rawConnect) connect(ctx context.Context, timeout time.Duration) error {
	if err := ctx.Err(); err != nil {
		return r.opError(ctxError(err))
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	fd, err := syscall.Socket(r.family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return r.opError(os.NewSyscallError("socket", err))
	}
	if err := r.opts.apply(fd); err != nil {
		syscall.Close(fd)
		return r.opError(err)
	}
	if r.la != nil {
		if err := syscall.Bind(fd, r.la); err != nil {
			syscall.Close(fd)
			return r.opError(os.NewSyscallError("bind", err))
		}
	}
	switch err := syscall.Connect(fd, r.sa); err {
	case nil, syscall.EISCONN:
		syscall.Close(fd)
		return nil
	case syscall.EINPROGRESS, syscall.EALREADY, syscall.EINTR:
	default:
		syscall.Close(fd)
		return r.opError(os.NewSyscallError("connect", err))
	}
	if r.quick {
		if done, err := r.outcome(fd); done {
			syscall.Close(fd)
			return err
		}
		r.quick = false
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
	first := true
	err = rc.Write(func(fd uintptr) bool {
		done, err := r.outcome(int(fd))
		if done && first && err == nil {
			r.quick = true
		}
		first = false
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
		v, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ERROR)
		if err != nil {
			return true, os.NewSyscallError("getsockopt", err)
		}
		if v == 0 {
			v = int(syscall.ECONNRESET) // closed, its error already taken
		}
		return true, os.NewSyscallError("connect", syscall.Errno(v))
	}
	return true, nil // established (and maybe already closed by the peer)
}

func (r *rawConnect) opError(err error) error {
	oe := &net.OpError{Op: "dial", Net: "tcp", Addr: r.addr, Err: err}
	if r.src != nil {
		oe.Source = r.src
	}
	return oe
}

func ctxError(err error) error {
	if errors.Is(err, context.Canceled) {
		return errCanceled
	}
	return err // context.DeadlineExceeded: "timeout"
}
