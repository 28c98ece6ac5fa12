package netwatch

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// groups are the multicast groups a watcher joins.
const groups = unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR

// errLost wraps a read error that means notifications were lost: the
// receive buffer overran (ENOBUFS), or a datagram was larger than the
// buffer it was read into.
var errLost = errors.New("notifications lost")

// recvSize is the read buffer; the kernel makes no listing datagram larger
// than 32 KiB.
const recvSize = 64 << 10

// socket is an rtnetlink socket, non-blocking under the Go poller so that
// closing it ends a read that waits.
type socket struct {
	f         *os.File
	rc        syscall.RawConn
	pid       uint32 // port id, the destination of the replies to requests
	seq       uint32
	buf       []byte
	closeOnce sync.Once
}

// openSocket creates the socket; bind subscribes it.
func openSocket(ns *netns.NsHandle) (*socket, error) {
	fd, err := socketIn(ns)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "rtnetlink")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &socket{f: f, rc: rc, buf: make([]byte, recvSize)}, nil
}

// setReadBuffer sets the receive buffer (SO_RCVBUF, or SO_RCVBUFFORCE).
func (s *socket) setReadBuffer(n int, force bool) error {
	opt, name := unix.SO_RCVBUF, "SO_RCVBUF"
	if force {
		opt, name = unix.SO_RCVBUFFORCE, "SO_RCVBUFFORCE"
	}
	var serr error
	if err := s.rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, n) }); err != nil {
		return err
	}
	return os.NewSyscallError("setsockopt "+name, serr)
}

// readBuffer is the receive buffer the kernel gave the socket.
func (s *socket) readBuffer() (int, error) {
	var n int
	var serr error
	if err := s.rc.Control(func(fd uintptr) { n, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) }); err != nil {
		return 0, err
	}
	return n, os.NewSyscallError("getsockopt SO_RCVBUF", serr)
}

// bind subscribes the socket to the groups and learns its port id.
func (s *socket) bind() error {
	var pid uint32
	var serr error
	if err := s.rc.Control(func(fd uintptr) { pid, serr = bindFD(int(fd)) }); err != nil {
		return err
	}
	s.pid = pid
	return serr
}

func bindFD(fd int) (pid uint32, err error) {
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		return 0, os.NewSyscallError("bind", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0, os.NewSyscallError("getsockname", err)
	}
	nl, ok := sa.(*unix.SockaddrNetlink)
	if !ok {
		return 0, errors.New("getsockname: not a netlink address")
	}
	return nl.Pid, nil
}

// socketIn creates the socket in namespace ns (nil: the caller's). A
// socket belongs to the namespace it was created in; the thread that
// enters ns for that is never unlocked, so it ends with its goroutine
// instead of going back to the pool in the wrong namespace.
func socketIn(ns *netns.NsHandle) (int, error) {
	open := func() (int, error) {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
		return fd, os.NewSyscallError("socket", err)
	}
	if ns == nil {
		return open()
	}
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(*ns); err != nil {
			ch <- result{-1, err}
			return
		}
		fd, err := open()
		ch <- result{fd, err}
	}()
	r := <-ch
	return r.fd, r.err
}

func (s *socket) close() { s.closeOnce.Do(func() { s.f.Close() }) }

// read returns the messages of the next datagram from the kernel, waiting
// for one if block, or else failing with EAGAIN when none is queued. The
// messages are valid until the next read.
func (s *socket) read(block bool) ([]syscall.NetlinkMessage, error) {
	for {
		var (
			n    int
			from unix.Sockaddr
			rerr error
		)
		err := s.rc.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), s.buf, unix.MSG_TRUNC)
			return !block || rerr != unix.EAGAIN
		})
		switch {
		case err != nil:
			return nil, err
		case rerr == unix.ENOBUFS:
			return nil, fmt.Errorf("%w: %w", errLost, rerr)
		case rerr != nil:
			return nil, os.NewSyscallError("recvfrom", rerr)
		case n > len(s.buf):
			return nil, fmt.Errorf("%w: a datagram larger than the read buffer", errLost)
		}
		if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 {
			continue // not from the kernel
		}
		return syscall.ParseNetlinkMessage(s.buf[:n])
	}
}

// dump sends a listing request (NLM_F_DUMP) and returns its sequence
// number, which its replies carry.
func (s *socket) dump(typ uint16, body []byte) (uint32, error) {
	s.seq++
	b := make([]byte, unix.NLMSG_HDRLEN+len(body))
	nativeEndian.PutUint32(b[0:4], uint32(len(b)))
	nativeEndian.PutUint16(b[4:6], typ)
	nativeEndian.PutUint16(b[6:8], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	nativeEndian.PutUint32(b[8:12], s.seq)
	nativeEndian.PutUint32(b[12:16], s.pid)
	copy(b[unix.NLMSG_HDRLEN:], body)
	var werr error
	err := s.rc.Write(func(fd uintptr) bool {
		werr = unix.Sendto(int(fd), b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return werr != unix.EAGAIN
	})
	if err == nil && werr != nil {
		err = os.NewSyscallError("sendto", werr)
	}
	return s.seq, err
}
