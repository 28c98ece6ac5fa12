package healthcheck

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// poller is the scheduler's wait, as keepalived's checker waits: one epoll
// instance holds a timerfd armed for the next due time, an eventfd that other
// goroutines write to wake the loop (wake), and the sockets of the TCP_CHECK
// connections still pending (watch).
//
// The epoll instance is itself in Go's netpoller, and the whole run loop is
// the callback of one RawConn.Read on it: a wake-up is a netpoller event
// that hands the loop's goroutine to the thread that polled, so a check costs
// no timer goroutine, no channel hand-off, and no other thread woken (a timer
// or a channel readies a goroutine through the runtime's wakep, which wakes
// a second thread to spin for work on every fire). Its own system calls are
// raw, for the same reason as rawConnect's.
type poller struct {
	ep, tfd, efd int
	f            *os.File // ep
	rc           syscall.RawConn

	woken    atomic.Bool  // an eventfd write is on its way
	closeMu  sync.RWMutex // wake vs close
	isClosed bool
	armed    time.Time // the timerfd's expiry; zero: disarmed or fired
	sockets  int       // watched (watch, unwatch)
	evs      [64]syscall.EpollEvent
}

// newPoller returns a poller, or an error where one cannot be made (the
// scheduler then waits on channels and timers).
func newPoller() (*poller, error) {
	p := &poller{ep: -1, tfd: -1, efd: -1}
	var err error
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	p.ep, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err = syscall.SetNonblock(p.ep, true); err != nil {
		return nil, err
	}
	const clockMonotonic = 1
	fd, _, e := syscall.Syscall(syscall.SYS_TIMERFD_CREATE, clockMonotonic, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if e != 0 {
		err = os.NewSyscallError("timerfd_create", e)
		return nil, err
	}
	p.tfd = int(fd)
	fd, _, e = syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if e != 0 {
		err = os.NewSyscallError("eventfd2", e)
		return nil, err
	}
	p.efd = int(fd)
	for _, fd := range []int{p.tfd, p.efd} {
		// Edge-triggered: each expiry and each write is an event, and
		// neither file is ever read (timerfd_settime clears the
		// expiry count; the eventfd's count never nears its limit).
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | -syscall.EPOLLET, Fd: int32(fd)}
		if err = syscall.EpollCtl(p.ep, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			err = os.NewSyscallError("epoll_ctl", err)
			return nil, err
		}
	}
	p.f = os.NewFile(uintptr(p.ep), "healthcheck-poller")
	p.rc, err = p.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	// Go's netpoller must have taken the epoll fd: a read deadline can only
	// be set on a file it polls.
	if err = p.f.SetReadDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *poller) close() {
	p.closeMu.Lock()
	p.isClosed = true
	p.closeMu.Unlock()
	if p.f != nil {
		p.f.Close()
	} else if p.ep >= 0 {
		syscall.Close(p.ep)
	}
	if p.tfd >= 0 {
		syscall.Close(p.tfd)
	}
	if p.efd >= 0 {
		syscall.Close(p.efd)
	}
}

// run calls step until it returns stop, waiting before each call but the
// first for an event: the deadline step returned (zero: none), a wake, or a
// watched socket's. Before step, drain hands it the sockets that had events.
// step also returns the time it last read (no later than its return).
func (p *poller) run(onFD func(fd int), step func() (now, deadline time.Time, stop bool)) error {
	return p.rc.Read(func(uintptr) bool {
		for {
			p.woken.Store(false)
			// Without sockets the events can only be the timer's and
			// wake's, which need no reading: the netpoller reports a
			// new event of the epoll instance whether or not the
			// earlier ones were taken.
			if p.sockets > 0 {
				if err := p.drain(onFD); err != nil {
					panic(err) // EBADF / EINVAL: a bug
				}
			}
			now, deadline, stop := step()
			if stop {
				return true
			}
			if !p.armed.IsZero() && !now.Before(p.armed) {
				p.armed = time.Time{} // expired
			}
			if deadline.IsZero() {
				p.arm(0)
				return false
			}
			if d := deadline.Sub(now); d > 0 {
				if !deadline.Equal(p.armed) {
					p.arm(d)
					p.armed = deadline
				}
				return false
			}
		}
	})
}

// drain takes the events of the epoll instance, all of them: the netpoller
// reports it again only once a new event comes.
func (p *poller) drain(onFD func(fd int)) error {
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(p.ep), uintptr(unsafe.Pointer(&p.evs[0])), uintptr(len(p.evs)), 0, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return os.NewSyscallError("epoll_pwait", e)
		}
		for _, ev := range p.evs[:n] {
			switch int(ev.Fd) {
			case p.tfd:
				p.armed = time.Time{}
			case p.efd:
			default:
				onFD(int(ev.Fd))
			}
		}
		if int(n) < len(p.evs) {
			return nil
		}
	}
}

type itimerspec struct {
	interval, value syscall.Timespec
}

// arm sets the timerfd to expire in d; 0 disarms it.
func (p *poller) arm(d time.Duration) {
	if d == 0 && p.armed.IsZero() {
		return
	}
	its := itimerspec{value: syscall.NsecToTimespec(int64(d))}
	syscall.RawSyscall6(syscall.SYS_TIMERFD_SETTIME, uintptr(p.tfd), 0, uintptr(unsafe.Pointer(&its)), 0, 0, 0)
	if d == 0 {
		p.armed = time.Time{}
	}
}

// wake makes the loop call step soon; any goroutine may call it.
func (p *poller) wake() {
	if p.woken.CompareAndSwap(false, true) {
		p.closeMu.RLock()
		if !p.isClosed {
			one := uint64(1)
			syscall.RawSyscall(syscall.SYS_WRITE, uintptr(p.efd), uintptr(unsafe.Pointer(&one)), 8)
		}
		p.closeMu.RUnlock()
	}
}

// watch adds a socket whose connection is pending: its events (writable:
// the connection is up; or an error) go to run's onFD. Closing the socket
// removes it; the caller then says so with unwatch.
func (p *poller) watch(fd int) error {
	ev := syscall.EpollEvent{Events: syscall.EPOLLOUT | -syscall.EPOLLET, Fd: int32(fd)}
	_, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(p.ep), syscall.EPOLL_CTL_ADD, uintptr(fd), uintptr(unsafe.Pointer(&ev)), 0, 0)
	if e != 0 {
		return os.NewSyscallError("epoll_ctl", e)
	}
	p.sockets++
	return nil
}

// unwatch counts out a watched socket, closed.
func (p *poller) unwatch() { p.sockets-- }
