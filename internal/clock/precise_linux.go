package clock

import (
	"container/heap"
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
//
// All Precise timers of the process share one timerfd, armed for the
// earliest deadline of a heap, and one goroutine that reads it and calls
// the due timers' functions. A timerfd
// per timer (create, arm, register with the poller, read, close: seven
// system calls, a goroutine and a finalizer per timer) was two thirds of
// lvsd's CPU at 255 VRRP instances with 100 ms adverts (issue 17).
type Precise struct{}

// Now returns time.Now().
func (Precise) Now() time.Time { return time.Now() }

// AfterFunc calls f after d, from the goroutine shared by every Precise
// timer: f must not block (a goroutine each cost a thread wake-up per
// timer). If the timerfd cannot be made it falls back to time.AfterFunc.
func (Precise) AfterFunc(d time.Duration, f func()) Timer {
	l, err := sharedLoop()
	if err != nil {
		return time.AfterFunc(d, f)
	}
	return l.add(d, f)
}

var (
	loopOnce sync.Once
	loop     *timerLoop
	loopErr  error
)

func sharedLoop() (*timerLoop, error) {
	loopOnce.Do(func() { loop, loopErr = newTimerLoop() })
	return loop, loopErr
}

// timerLoop is the timerfd and the heap of pending timers behind Precise.
// mu guards heap and armed; the goroutine of run reads the timerfd and
// calls the due timers' functions.
type timerLoop struct {
	fd    int
	file  *os.File
	epoch time.Time // deadlines are monotonic nanoseconds since epoch

	mu    sync.Mutex
	heap  timerHeap
	armed int64 // the deadline the timerfd is armed for; 0: not armed
	due   []func()
}

type fdTimer struct {
	loop *timerLoop
	when int64
	f    func()
	idx  int // in loop.heap; -1 once fired or stopped
}

func newTimerLoop() (*timerLoop, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	l := &timerLoop{fd: fd, file: os.NewFile(uintptr(fd), "timerfd"), epoch: time.Now()}
	go l.run()
	return l, nil
}

func (l *timerLoop) now() int64 { return int64(time.Since(l.epoch)) }

func (l *timerLoop) add(d time.Duration, f func()) *fdTimer {
	t := &fdTimer{loop: l, f: f}
	l.mu.Lock()
	t.when = l.now() + int64(max(d, 0))
	heap.Push(&l.heap, t)
	if l.armed == 0 || t.when < l.armed {
		l.arm(t.when)
	}
	l.mu.Unlock()
	return t
}

// arm sets the timerfd to fire at when (l.mu held). The timerfd is
// relative: the kernel counts from its own later reading of the same
// clock, so it never fires before when.
func (l *timerLoop) arm(when int64) {
	d := max(when-l.now(), 1) // a zero it_value would disarm the timer
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(d)}
	if err := unix.TimerfdSettime(l.fd, 0, &spec, nil); err != nil {
		// Cannot happen with a valid fd and value; fire on the next
		// read instead of never.
		l.armed = 0
		return
	}
	l.armed = when
}

func (l *timerLoop) run() {
	var buf [8]byte
	for {
		// Parks in the poller until the timerfd expires. A read error
		// other than EAGAIN cannot happen on a timerfd that stays open;
		// the loop goes on and fires what is due either way.
		l.file.Read(buf[:])
		l.fire()
	}
}

// fire calls the function of every timer that is due and re-arms the timerfd for the
// next one. A wake-up with nothing due (the earliest timer was stopped)
// only re-arms.
func (l *timerLoop) fire() {
	l.mu.Lock()
	now := l.now()
	for len(l.heap) > 0 && l.heap[0].when <= now {
		t := heap.Pop(&l.heap).(*fdTimer)
		l.due = append(l.due, t.f)
	}
	l.armed = 0
	if len(l.heap) > 0 {
		l.arm(l.heap[0].when)
	}
	due := l.due
	l.due = l.due[:0]
	l.mu.Unlock()
	for i, f := range due {
		f()
		due[i] = nil
	}
}

// Stop prevents the timer from firing; it reports whether it did (false
// once the timer fired or was stopped). The timerfd stays armed: a
// wake-up with nothing due costs less than re-arming on every Stop.
func (t *fdTimer) Stop() bool {
	l := t.loop
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.idx < 0 {
		return false
	}
	heap.Remove(&l.heap, t.idx)
	return true
}

// timerHeap is a min-heap of pending timers by deadline (container/heap).
type timerHeap []*fdTimer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].when < h[j].when }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*fdTimer)
	t.idx = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.idx = -1
	return t
}
