package healthcheck

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

func udpConf(port int, alpha bool, body string) string {
	a := ""
	if alpha {
		a = "alpha"
	}
	return fmt.Sprintf(`
virtual_server 192.0.2.1 9000 {
  protocol UDP
  delay_loop 1
  %s
  real_server 127.0.0.1 %d {
    UDP_CHECK {
      connect_timeout 0.2
      retry 2
      delay_before_retry 0.1
      warmup 0
      %s
    }
  }
}`, a, port, body)
}

func TestUDP(t *testing.T) {
	t.Parallel()
	payloads := make(chan []byte, 1)
	echo := udpServer(t, func(q []byte) [][]byte {
		select {
		case payloads <- q:
		default:
		}
		return [][]byte{q}
	})
	silent := udpServer(t, func([]byte) [][]byte { return nil })
	closed := closedUDPPort(t)
	const timesOut = 3*200*time.Millisecond + 2*100*time.Millisecond
	const fails = 2 * 100 * time.Millisecond
	for _, tc := range []struct {
		name   string
		port   int
		body   string
		upAt   time.Duration // when it comes up (alpha)
		wantUp bool
		downAt time.Duration
		reason string
	}{
		{name: "echo", port: echo, wantUp: true},
		{name: "silence is enough", port: silent, wantUp: true, upAt: 200 * time.Millisecond},
		{name: "port unreachable", port: closed, downAt: fails, reason: "ICMP port unreachable"},
		{name: "port unreachable, reply required", port: closed, body: "require_reply", downAt: fails, reason: "ICMP port unreachable"},
		{name: "reply required", port: echo, body: "require_reply", wantUp: true},
		{name: "reply required, none", port: silent, body: "require_reply", downAt: timesOut, reason: "no reply: timeout"},
		{name: "pattern", port: echo, body: "payload deadbeef\nrequire_reply de ad", wantUp: true},
		{name: "pattern with wildcards", port: echo, body: "payload deadbeef\nrequire_reply xe aX bx", wantUp: true},
		{name: "pattern longer than the reply", port: echo, body: "payload dead\nrequire_reply deadbeef", wantUp: true},
		{name: "pattern mismatch", port: echo, body: "payload deadbeef\nrequire_reply de af", downAt: fails, reason: "did not match at octet 1"},
		{name: "reply too long", port: echo, body: "payload deadbeef\nrequire_reply de\nmax_reply_length 3", downAt: fails, reason: "more than max_reply_length 3"},
		{name: "reply too short", port: echo, body: "payload deadbeef\nrequire_reply de\nmin_reply_length 5", downAt: fails, reason: "under min_reply_length 5"},
		// As keepalived, the lengths apply with a pattern only.
		{name: "lengths without a pattern", port: echo, body: "payload deadbeef\nrequire_reply\nmax_reply_length 3", wantUp: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.wantUp {
				r := startRun(t, udpConf(tc.port, true, tc.body), Options{})
				r.expect(t, false, 0)
				r.expect(t, true, tc.upAt)
				return
			}
			r := startRun(t, udpConf(tc.port, false, tc.body), Options{})
			r.expect(t, true, 0)
			ev := r.expect(t, false, tc.downAt)
			if !strings.Contains(ev.Reason, tc.reason) {
				t.Errorf("reason %q, want it to mention %q", ev.Reason, tc.reason)
			}
		})
	}
	t.Run("default payload", func(t *testing.T) {
		t.Parallel()
		select {
		case p := <-payloads:
			if string(p) != "keepalived check - keepalived ch" {
				t.Errorf("payload %q, want keepalived's 32 octets", p)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("no datagram")
		}
	})
}

// A closed port takes a checker without require_reply down; a listener on
// it (silent) brings it back at the next period.
func TestUDPRecovers(t *testing.T) {
	t.Parallel()
	port := closedUDPPort(t)
	r := startRun(t, udpConf(port, false, ""), Options{})
	r.expect(t, true, 0)
	r.expect(t, false, 200*time.Millisecond)
	reopened := udpServerOn(t, port)
	if !reopened {
		t.Skipf("port %d taken meanwhile", port)
	}
	// The period restarts after the last retry (at ~0.2 s); the next attempt
	// at ~1.2 s is unanswered: up when connect_timeout passes.
	r.expect(t, true, 1400*time.Millisecond)
}

// udpServerOn reads and drops datagrams on 127.0.0.1:port until the test
// ends; false if the port cannot be had.
func udpServerOn(t *testing.T, port int) bool {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		return false
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			if _, _, err := c.ReadFromUDP(buf); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return true
}
