package healthcheck

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// slack is how late past its ideal time an event may come on a loaded machine.
const slack = 400 * time.Millisecond // CI runs the VM and netns tiers beside these on 2 cores

type runner struct {
	s      *Scheduler
	t0     time.Time
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// stop ends Run and waits (at most 5 s) for it to return.
func (r *runner) stop(t *testing.T) {
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5s of its context's end")
		}
	})
}

// startRun runs the scheduler of a configuration until the test ends.
func startRun(t *testing.T, text string, opts Options) *runner {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := New(mustParse(t, text), opts)
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{s: s, cancel: cancel, done: make(chan error, 1), t0: time.Now()}
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// next returns the next event, failing the test after within.
func (r *runner) next(t *testing.T, within time.Duration) Event {
	t.Helper()
	select {
	case ev, ok := <-r.s.Events():
		if !ok {
			t.Fatal("events closed")
		}
		return ev
	case <-time.After(within):
		t.Fatalf("no event within %v", within)
	}
	return Event{}
}

// none asserts that no event comes within d.
func (r *runner) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case ev := <-r.s.Events():
		t.Fatalf("unexpected event %+v at %v", ev, ev.At.Sub(r.t0))
	case <-time.After(d):
	}
}

// expect asserts the next event: its state, and that it came between lo and
// lo+slack after the start.
func (r *runner) expect(t *testing.T, up bool, lo time.Duration) Event {
	t.Helper()
	ev := r.next(t, lo+slack+2*time.Second)
	if ev.Up != up {
		t.Fatalf("event up=%v (%s), want up=%v", ev.Up, ev.Reason, up)
	}
	if d := ev.At.Sub(r.t0); d < lo || d > lo+slack {
		t.Fatalf("event up=%v at %v after start, want in [%v, %v] (%s)", up, d, lo, lo+slack, ev.Reason)
	}
	return ev
}

// listen accepts connections on 127.0.0.1 and hands each to serve (nil: close at once).
func listen(t *testing.T, serve func(net.Conn)) (port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if serve == nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// closedPort is a port nobody listens on (connections are refused).
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// blackhole is a listener whose accept queue is full: connections to it
// neither complete nor fail (the SYNs are dropped) until the client gives up.
func blackhole(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	port := sa.(*syscall.SockaddrInet4).Port
	var fill []net.Conn
	full := false
	for i := 0; i < 8 && !full; i++ {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 100*time.Millisecond)
		if err != nil {
			full = true
			break
		}
		fill = append(fill, c)
	}
	if !full {
		t.Fatal("could not fill the accept queue")
	}
	t.Cleanup(func() {
		for _, c := range fill {
			c.Close()
		}
		syscall.Close(fd)
	})
	return port
}

// hold accepts and never answers.
func hold(c net.Conn) {
	io.Copy(io.Discard, c)
}

// lineServer answers each line: "PING" → "+PONG", anything else "-ERR unknown".
func lineServer(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for i := 0; i < 100; i++ {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if strings.TrimSpace(line) == "PING" {
			io.WriteString(c, "+PONG\r\n")
		} else {
			io.WriteString(c, "-ERR unknown command\r\n")
		}
	}
}
