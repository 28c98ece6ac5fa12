package clock

import (
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Precise is the real clock with timers on timerfd(2). Go's own
// timers wake an idle process through epoll_wait, whose timeout is in
// milliseconds: a timer can fire up to 1ms late (0.5ms on average), which
// shows in the takeover time at short advert intervals. A timerfd is an
// ordinary file descriptor in the runtime's poller: it wakes epoll_wait
// at its nanosecond deadline.
type Precise struct{}

// Now returns time.Now().
func (Precise) Now() time.Time { return time.Now() }

type fdTimer struct {
	mu      sync.Mutex
	f       *os.File
	stopped bool
	fired   bool
}

// AfterFunc calls f in its own goroutine after d. If a timerfd cannot be
// made it falls back to time.AfterFunc.
func (Precise) AfterFunc(d time.Duration, f func()) Timer {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return time.AfterFunc(d, f)
	}
	if d <= 0 {
		d = 1 // a zero it_value would disarm the timer
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	if err := unix.TimerfdSettime(fd, 0, &spec, nil); err != nil {
		unix.Close(fd)
		return time.AfterFunc(d, f)
	}
	t := &fdTimer{f: os.NewFile(uintptr(fd), "timerfd")}
	go func() {
		var buf [8]byte
		_, err := t.f.Read(buf[:]) // parks in the poller until expiry or Close
		t.mu.Lock()
		run := err == nil && !t.stopped
		if run {
			t.fired = true
		}
		if !t.stopped {
			t.f.Close()
		}
		t.mu.Unlock()
		if run {
			f()
		}
	}()
	return t
}

// Stop prevents the timer from firing; it reports whether it did.
func (t *fdTimer) Stop() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped || t.fired {
		return false
	}
	t.stopped = true
	t.f.Close()
	return true
}
