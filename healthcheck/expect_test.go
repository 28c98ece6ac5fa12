package healthcheck

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// expectConf has retry 2, delay_before_retry 0.1, connect_timeout 0.2.
func expectConf(port int, alpha bool, body string) string {
	a := ""
	if alpha {
		a = "alpha"
	}
	return fmt.Sprintf(`
virtual_server 192.0.2.1 6379 {
    protocol TCP
  delay_loop 1
  %s
  real_server 127.0.0.1 %d {
    EXPECT_CHECK {
      connect_timeout 0.2
      retry 2
      delay_before_retry 0.1
      warmup 0
      %s
    }
  }
}`, a, port, body)
}

func TestExpect(t *testing.T) {
	t.Parallel()
	lines := listen(t, lineServer)
	banner := listen(t, func(c net.Conn) {
		io.WriteString(c, "220 mail.example ESMTP ready\r\n")
		hold(c)
	})
	closes := listen(t, func(c net.Conn) {
		io.WriteString(c, "bye\r\n")
		c.Close()
	})
	const timesOut = 3*200*time.Millisecond + 2*100*time.Millisecond
	for _, tc := range []struct {
		name   string
		port   int
		body   string
		wantUp bool
		downAt time.Duration
		reason string
	}{
		{name: "match", port: lines, body: "send \"PING\\r\\n\"\nexpect \"+PONG\"", wantUp: true},
		{name: "mismatch", port: lines, body: "send \"HELLO\\r\\n\"\nexpect \"+PONG\"", downAt: timesOut, reason: "-ERR unknown"},
		{name: "regex", port: lines, body: "send \"PING\\r\\n\"\nexpect_regex ^\\+PO[N]G\\r\\n$", wantUp: true},
		{name: "regex mismatch", port: lines, body: "send \"PING\\r\\n\"\nexpect_regex ^-", downAt: timesOut, reason: "did not match"},
		{name: "expect and regex", port: lines, body: "send \"PING\\r\\n\"\nexpect PONG\nexpect_regex ^\\+", wantUp: true},
		{name: "banner without send", port: banner, body: "expect \"220 \"", wantUp: true},
		{name: "closed without match", port: closes, body: "send \"PING\\r\\n\"\nexpect \"+PONG\"", downAt: 200 * time.Millisecond, reason: "did not match (5 bytes"},
		{name: "closed cleanly without match", port: closes, body: "expect \"+PONG\"", downAt: 200 * time.Millisecond, reason: "connection closed"},
		{name: "refused", port: closedPort(t), body: "send \"PING\\r\\n\"\nexpect \"+PONG\"", downAt: 200 * time.Millisecond, reason: "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.wantUp {
				r := startRun(t, expectConf(tc.port, true, tc.body), Options{})
				r.expect(t, false, 0)
				r.expect(t, true, 0)
				return
			}
			r := startRun(t, expectConf(tc.port, false, tc.body), Options{})
			r.expect(t, true, 0)
			ev := r.expect(t, false, tc.downAt)
			if !strings.Contains(ev.Reason, tc.reason) {
				t.Errorf("reason %q, want it to mention %q", ev.Reason, tc.reason)
			}
		})
	}
}
