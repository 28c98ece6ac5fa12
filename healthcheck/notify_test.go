package healthcheck

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// notify_down and notify_up run without blocking the checks, in order.
func TestNotify(t *testing.T) {
	t.Parallel()
	log := filepath.Join(t.TempDir(), "log")
	// notify_down takes a second: the checks and events must not wait for it.
	down := scriptPath("notifydown") + " arg1 " + log
	up := `"` + scriptPath("notifyup") + " " + log + `"`
	port := closedPort(t)
	text := fmt.Sprintf(`
virtual_server 192.0.2.1 80 {
    protocol TCP
  delay_loop 0.5
  real_server 127.0.0.1 %d {
    notify_down "%s"
    notify_up %s
    TCP_CHECK {
      connect_timeout 0.2
      retry 0
      warmup 0
    }
  }
}`, port, down, up)
	r := startRun(t, text, Options{})
	r.expect(t, true, 0)
	r.expect(t, false, 0)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Skipf("port %d taken meanwhile: %v", port, err)
	}
	defer ln.Close()
	go func() {
		for i := 0; i < 100; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	// Up at the next period (0.5 s), while notify_down still sleeps.
	r.expect(t, true, 500*time.Millisecond)
	deadline := time.Now().Add(3 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(log)
		got = string(b)
		if strings.Count(got, "\n") >= 3 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if want := "down arg1\ndown-done\nup\n"; got != want {
		t.Fatalf("notify scripts ran as %q, want %q (in order, one at a time)", got, want)
	}
}

// A hanging notify script is killed at NotifyTimeout.
func TestNotifyTimeout(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "pid")
	hang := `"` + scriptPath("hangself") + " " + pidFile + `"`
	text := fmt.Sprintf(`
virtual_server 192.0.2.1 80 {
    protocol TCP
  delay_loop 5
  real_server 127.0.0.1 %d {
    notify_down %s
    TCP_CHECK {
      retry 0
      warmup 0
    }
  }
}`, closedPort(t), hang)
	r := startRun(t, text, Options{NotifyTimeout: 200 * time.Millisecond})
	r.expect(t, true, 0)
	r.expect(t, false, 0)
	var pid int
	for i := 0; i < 100 && pid == 0; i++ {
		time.Sleep(10 * time.Millisecond)
		if b, err := os.ReadFile(pidFile); err == nil {
			fmt.Sscan(string(b), &pid)
		}
	}
	if pid == 0 {
		t.Fatal("notify_down did not run")
	}
	time.Sleep(400 * time.Millisecond)
	if alive(pid) {
		t.Fatalf("notify_down (pid %d) still runs after its timeout", pid)
	}
}

// Run returns when its context ends and closes Events; a second Run fails.
func TestRunLifecycle(t *testing.T) {
	t.Parallel()
	s := New(mustParse(t, tcpConf(blackhole(t), "")), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	if ev := <-s.Events(); !ev.Up {
		t.Fatalf("initial event %+v", ev)
	}
	time.Sleep(50 * time.Millisecond) // a check is in flight (connect_timeout 0.2)
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return")
	}
	if d := time.Since(start); d > 150*time.Millisecond {
		t.Errorf("Run took %v to stop: the running check was not cancelled", d)
	}
	for i := 0; i < 10; i++ {
		if _, ok := <-s.Events(); !ok {
			break
		}
		if i == 9 {
			t.Fatal("Events not closed")
		}
	}
	if err := s.Run(context.Background()); err == nil {
		t.Fatal("second Run succeeded")
	}
}
