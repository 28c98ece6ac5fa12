package proctrack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The process connector's protocol (linux/connector.h, linux/cn_proc.h).
const (
	cnIdxProc         = 1
	cnValProc         = 1
	procCnMcastListen = 1
	procCnMcastIgnore = 2

	procEventFork = 0x00000001
	procEventExec = 0x00000002
	procEventComm = 0x00000200
	procEventExit = 0x80000000

	cnMsgLen     = 20 // struct cn_msg: id (idx, val), seq, ack, len, flags
	procEventHdr = 16 // struct proc_event: what, cpu, timestamp_ns
)

// connector is the kernel's process connector: a NETLINK_CONNECTOR socket
// bound to the CN_IDX_PROC group, subscribed with PROC_CN_MCAST_LISTEN.
type connector struct {
	f      *os.File
	events chan Event
	once   sync.Once
	done   chan struct{}
}

// openConnector subscribes to process events. Where the kernel has no
// connector (EPROTONOSUPPORT), does not let us listen (EPERM) or does not
// answer in this network namespace (ECONNREFUSED), the error wraps
// ErrNoConnector.
func openConnector(readBuffer int, force bool) (Source, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_CONNECTOR)
	if err != nil {
		return nil, noConnector("socket", err)
	}
	if readBuffer > 0 {
		opt := unix.SO_RCVBUF
		if force {
			opt = unix.SO_RCVBUFFORCE
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, readBuffer); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("proctrack: process connector: receive buffer %d: %w", readBuffer, err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc}); err != nil {
		unix.Close(fd)
		return nil, noConnector("bind", err)
	}
	if err := unix.Send(fd, mcastMsg(procCnMcastListen), 0); err != nil {
		unix.Close(fd)
		return nil, noConnector("listen", err)
	}
	c := &connector{f: os.NewFile(uintptr(fd), "cn_proc"), events: make(chan Event, 1024), done: make(chan struct{})}
	go c.read()
	return c, nil
}

func noConnector(op string, err error) error {
	if errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("%w: %s: %v", ErrNoConnector, op, err)
	}
	return fmt.Errorf("proctrack: process connector: %s: %w", op, err)
}

// mcastMsg is a netlink message carrying a cn_msg with the operation op.
func mcastMsg(op uint32) []byte {
	b := make([]byte, unix.SizeofNlMsghdr+cnMsgLen+4)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.NLMSG_DONE)
	h := b[unix.SizeofNlMsghdr:]
	ne.PutUint32(h[0:], cnIdxProc)
	ne.PutUint32(h[4:], cnValProc)
	ne.PutUint16(h[16:], 4)
	ne.PutUint32(h[cnMsgLen:], op)
	return b
}

func (c *connector) Events() <-chan Event { return c.events }

// Close unsubscribes and closes the socket; the read goroutine ends.
func (c *connector) Close() error {
	c.once.Do(func() {
		if rc, err := c.f.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) { _ = unix.Send(int(fd), mcastMsg(procCnMcastIgnore), 0) })
		}
		close(c.done)
		c.f.Close()
	})
	return nil
}

// read receives the events through the runtime's poller (Close wakes it)
// and sends them on; a full channel holds the reading up, the kernel then
// drops events and says so (ENOBUFS: a Lost event).
func (c *connector) read() {
	defer close(c.events)
	rc, err := c.f.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 64<<10)
	for {
		var n int
		var from unix.Sockaddr
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
			return rerr != unix.EAGAIN && rerr != unix.EINTR
		})
		if err != nil {
			return // closed
		}
		if rerr == unix.ENOBUFS {
			if !c.send(Event{Kind: Lost}) {
				return
			}
			continue
		}
		if rerr != nil {
			return
		}
		if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 {
			continue // not from the kernel
		}
		for _, ev := range parseEvents(buf[:n]) {
			if !c.send(ev) {
				return
			}
		}
	}
}

func (c *connector) send(ev Event) bool {
	select {
	case c.events <- ev:
		return true
	case <-c.done:
		return false
	}
}

// parseEvents decodes the process events of a datagram: forks of
// processes (not of threads), and execs, comm changes and exits of
// processes (the thread group leader), as keepalived keeps them.
func parseEvents(b []byte) []Event {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return nil
	}
	ne := binary.NativeEndian
	var out []Event
	for _, m := range msgs {
		if m.Header.Type == unix.NLMSG_ERROR || m.Header.Type == unix.NLMSG_NOOP {
			continue
		}
		d := m.Data
		if len(d) < cnMsgLen+procEventHdr+8 {
			continue
		}
		if ne.Uint32(d[0:]) != cnIdxProc || ne.Uint32(d[4:]) != cnValProc || ne.Uint32(d[12:]) != 0 {
			continue
		}
		ev := d[cnMsgLen:]
		what := ne.Uint32(ev[0:])
		data := ev[procEventHdr:]
		u32 := func(i int) int {
			if len(data) < 4*i+4 {
				return -1
			}
			return int(ne.Uint32(data[4*i:]))
		}
		switch what {
		case procEventFork: // parent_pid, parent_tgid, child_pid, child_tgid
			if child := u32(3); child > 0 && child == u32(2) {
				out = append(out, Event{Kind: Fork, PID: child, Parent: u32(1)})
			}
		case procEventExec: // process_pid, process_tgid
			if pid := u32(1); pid > 0 && pid == u32(0) {
				out = append(out, Event{Kind: Exec, PID: pid})
			}
		case procEventComm: // process_pid, process_tgid, comm[16]
			if pid := u32(1); pid > 0 && pid == u32(0) && len(data) >= 8+16 {
				name := data[8 : 8+16]
				for i, ch := range name {
					if ch == 0 {
						name = name[:i]
						break
					}
				}
				out = append(out, Event{Kind: Comm, PID: pid, Comm: string(name)})
			}
		case procEventExit: // process_pid, process_tgid, ...
			if pid := u32(1); pid > 0 && pid == u32(0) {
				out = append(out, Event{Kind: Exit, PID: pid})
			}
		}
	}
	return out
}
