package healthcheck

import (
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ipBindAddressNoPort is Linux's IP_BIND_ADDRESS_NO_PORT: a socket bound to
// an address without a port gets its port at connect time, from the
// connection's 4-tuple, instead of reserving one for every destination.
const ipBindAddressNoPort = 24

// sockopts are the socket options of a checker's connection, set before it
// binds and connects.
type sockopts struct {
	mark   int    // SO_MARK (fwmark)
	dev    string // SO_BINDTODEVICE (bind_if)
	reuse  bool   // SO_REUSEADDR (bind_port)
	noPort bool   // IP_BIND_ADDRESS_NO_PORT (bindto without bind_port)
}

func (so *sockopts) apply(fd int) error {
	if so.reuse {
		// A fixed source port is reused by every attempt; allow it
		// while the previous connection is in TIME_WAIT.
		if e := rawSetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); e != nil {
			return os.NewSyscallError("setsockopt SO_REUSEADDR", e)
		}
	}
	if so.noPort {
		// Best effort (Linux 4.2+).
		rawSetsockoptInt(fd, syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	}
	if so.mark != 0 {
		if e := rawSetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_MARK, so.mark); e != nil {
			return os.NewSyscallError("setsockopt SO_MARK", e)
		}
	}
	if so.dev != "" {
		b := []byte(so.dev)
		if e := rawSetsockopt(fd, syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, unsafe.Pointer(&b[0]), uintptr(len(b))); e != nil {
			return os.NewSyscallError("setsockopt SO_BINDTODEVICE", e)
		}
	}
	return nil
}

// control is the net.Dialer Control that sets the options on the socket,
// then calls more (if not nil); nil when there is nothing to set.
func (so sockopts) control(more func(fd int) error) func(network, address string, rc syscall.RawConn) error {
	if so == (sockopts{}) && more == nil {
		return nil
	}
	return func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if serr = so.apply(int(fd)); serr == nil && more != nil {
				serr = more(int(fd))
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}

// setRecvErr sets IP_RECVERR, or IPV6_RECVERR for an IPv6 destination, on
// a socket.
func setRecvErr(dst netip.Addr) func(fd int) error {
	if dst.Is6() && !dst.Is4In6() {
		return func(fd int) error {
			return os.NewSyscallError("setsockopt IPV6_RECVERR", unix.SetsockoptInt(fd, unix.SOL_IPV6, unix.IPV6_RECVERR, 1))
		}
	}
	return func(fd int) error {
		return os.NewSyscallError("setsockopt IP_RECVERR", unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_RECVERR, 1))
	}
}

// rawSetsockopt sets a socket option whose value is at p, n bytes long.
func rawSetsockopt(fd, level, opt int, p unsafe.Pointer, n uintptr) error {
	_, _, e := syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(p), n, 0)
	if e != 0 {
		return e
	}
	return nil
}

func rawSetsockoptInt(fd, level, opt, v int) error {
	i := int32(v)
	return rawSetsockopt(fd, level, opt, unsafe.Pointer(&i), 4)
}
