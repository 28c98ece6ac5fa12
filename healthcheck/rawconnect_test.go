package healthcheck

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

// The lean connect of TCP_CHECK reports what net.Dialer reports: up,
// refused, timeout, and canceled (shutdown) without waiting for the timeout.
func TestRawConnect(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	up := newRawConnect(lo, ln.Addr().(*net.TCPAddr).Port, netip.Addr{}, 0, sockopts{})
	for i := 0; i < 3; i++ {
		if err := up.connect(context.Background(), time.Second); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if _, done, err := up.begin(); !done || err != nil {
		t.Errorf("a loopback connection was not found up at once: done %v, %v", done, err)
	}

	refused := newRawConnect(lo, closedPort(t), netip.Addr{}, 0, sockopts{})
	err = refused.connect(context.Background(), time.Second)
	_, derr := net.DialTimeout("tcp", refused.sa.addrPort().String(), time.Second)
	if describe(err) != "connection refused" || describe(err) != describe(derr) {
		t.Errorf("refused: %v (dialer: %v)", err, derr)
	}

	bh := newRawConnect(lo, blackhole(t), netip.Addr{}, 0, sockopts{})
	start := time.Now()
	err = bh.connect(context.Background(), 200*time.Millisecond)
	if describe(err) != "timeout" || time.Since(start) < 150*time.Millisecond {
		t.Errorf("blackhole: %v after %v", err, time.Since(start))
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	err = bh.connect(ctx, 10*time.Second)
	if err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("canceled: %v after %v", err, time.Since(start))
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	err = bh.connect(ctx, 10*time.Second)
	if describe(err) != "timeout" {
		t.Errorf("context deadline: %v", err)
	}
}
