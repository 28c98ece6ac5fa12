package healthcheck

import (
	"fmt"
	"net"
	"testing"
	"time"
)

// retry 2, delay_before_retry 0.1, connect_timeout 0.2: a failing up checker
// goes down 2×0.1 s after its first failure plus three attempts' durations.
func tcpConf(port int, vsExtra string) string {
	return fmt.Sprintf(`
virtual_server 192.0.2.1 80 {
    protocol TCP
  delay_loop 1
  %s
  real_server 127.0.0.1 %d {
    TCP_CHECK {
      connect_timeout 0.2
      retry 2
      delay_before_retry 0.1
      warmup 0
    }
  }
}`, vsExtra, port)
}

func TestTCPUp(t *testing.T) {
	t.Parallel()
	port := listen(t, nil)
	r := startRun(t, tcpConf(port, "alpha"), Options{})
	if ev := r.expect(t, false, 0); ev.RS != ap(fmt.Sprintf("127.0.0.1:%d", port)) || ev.VS != "TCP/192.0.2.1:80" || ev.Weight != -1 {
		t.Fatalf("initial event %+v", ev)
	}
	r.expect(t, true, 0) // the first check, at once (warmup 0)
	r.none(t, 1200*time.Millisecond)
	st := r.s.Snapshot()
	if len(st) != 1 || !st[0].Up || st[0].Checkers[0].Checks < 2 || !st[0].Checkers[0].LastOK || st[0].Checkers[0].Type != "TCP_CHECK" {
		t.Fatalf("snapshot %+v", st)
	}
}

func TestTCPRefused(t *testing.T) {
	t.Parallel()
	r := startRun(t, tcpConf(closedPort(t), ""), Options{})
	r.expect(t, true, 0)
	ev := r.expect(t, false, 200*time.Millisecond) // retry × delay_before_retry
	if want := "TCP_CHECK 127.0.0.1"; len(ev.Reason) < len(want) || ev.Reason[:len(want)] != want {
		t.Errorf("reason %q", ev.Reason)
	}
	st := r.s.Snapshot()[0]
	if st.Up || st.Checkers[0].Failures != 3 || st.Transitions != 1 {
		t.Fatalf("snapshot %+v", st)
	}
}

func TestTCPTimeout(t *testing.T) {
	t.Parallel()
	r := startRun(t, tcpConf(blackhole(t), ""), Options{})
	r.expect(t, true, 0)
	// three attempts of connect_timeout, two delays before retry.
	ev := r.expect(t, false, 3*200*time.Millisecond+2*100*time.Millisecond)
	if !contains(ev.Reason, "timeout") {
		t.Errorf("reason %q", ev.Reason)
	}
}

// Down, then the service comes back: up at the next period's first success.
func TestTCPRecovers(t *testing.T) {
	t.Parallel()
	port := closedPort(t)
	r := startRun(t, tcpConf(port, ""), Options{})
	r.expect(t, true, 0)
	r.expect(t, false, 200*time.Millisecond)
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
	// The period restarts after the last retry (at ~0.2 s): next attempt ~1.2 s.
	r.expect(t, true, 1200*time.Millisecond)
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
