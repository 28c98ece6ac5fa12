package healthcheck

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// smtpConf has retry 2, delay_before_retry 0.1, connect_timeout 0.2.
func smtpConf(port int, alpha bool, body string) string {
	a := ""
	if alpha {
		a = "alpha"
	}
	return fmt.Sprintf(`
virtual_server 192.0.2.1 25 {
  protocol TCP
  delay_loop 1
  %s
  real_server 127.0.0.1 %d {
    SMTP_CHECK {
      connect_timeout 0.2
      retry 2
      delay_before_retry 0.1
      warmup 0
      %s
    }
  }
}`, a, port, body)
}

// smtpServer speaks the given greeting, answers HELO with helo (sending
// the HELO line to got) and QUIT with quit ("" : closes instead).
func smtpServer(greeting, helo, quit string, got chan<- string) func(net.Conn) {
	return func(c net.Conn) {
		defer c.Close()
		io.WriteString(c, greeting)
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			switch {
			case strings.HasPrefix(line, "HELO "):
				if got != nil {
					select {
					case got <- line:
					default:
					}
				}
				io.WriteString(c, helo)
			case line == "QUIT\r\n":
				if quit != "" {
					io.WriteString(c, quit)
				}
				return
			default:
				io.WriteString(c, "500 unknown\r\n")
			}
		}
	}
}

func TestSMTP(t *testing.T) {
	t.Parallel()
	heloSeen := make(chan string, 1)
	good := listen(t, smtpServer("220 mail.example ESMTP\r\n", "250 mail.example\r\n", "221 bye\r\n", heloSeen))
	named := make(chan string, 1)
	goodNamed := listen(t, smtpServer("220 mail.example ESMTP\r\n", "250 mail.example\r\n", "221 bye\r\n", named))
	multi := listen(t, smtpServer("220-mail.example ESMTP\r\n220-no UCE\r\n220 ready\r\n", "250-mail.example\r\n250 PIPELINING\r\n", "221 bye\r\n", nil))
	bare := listen(t, smtpServer("220\n", "250\n", "221\n", nil))
	const timesOut = 3*200*time.Millisecond + 2*100*time.Millisecond // three attempts, two delays
	const fails = 2 * 100 * time.Millisecond                         // retry × delay_before_retry
	for _, tc := range []struct {
		name   string
		port   int
		body   string
		wantUp bool
		downAt time.Duration
		reason string
		helo   chan string // the HELO line the server got
		want   string
	}{
		{name: "good", port: good, wantUp: true, helo: heloSeen, want: "HELO smtpchecker.keepalived.org\r\n"},
		{name: "helo_name", port: goodNamed, body: "helo_name lb1.example", wantUp: true, helo: named, want: "HELO lb1.example\r\n"},
		{name: "multi-line replies", port: multi, wantUp: true},
		{name: "bare codes", port: bare, wantUp: true},
		{name: "5xx greeting", port: listen(t, smtpServer("554 no service here\r\n", "250 x\r\n", "221 x\r\n", nil)),
			downAt: fails, reason: `bad greeting: "554 no service here"`},
		{name: "HELO refused", port: listen(t, smtpServer("220 x\r\n", "501 who are you\r\n", "221 x\r\n", nil)),
			downAt: fails, reason: `bad HELO reply: "501 who are you"`},
		{name: "garbage", port: listen(t, smtpServer("SSH-2.0-OpenSSH_9.6\r\n", "", "", nil)),
			downAt: fails, reason: "not an SMTP reply"},
		{name: "multi-line code change", port: listen(t, smtpServer("220-a\r\n250 b\r\n", "250 x\r\n", "221 x\r\n", nil)),
			downAt: fails, reason: "not an SMTP reply"},
		{name: "QUIT unanswered", port: listen(t, smtpServer("220 x\r\n", "250 x\r\n", "", nil)),
			downAt: fails, reason: "QUIT: connection closed"},
		{name: "no greeting", port: listen(t, hold), downAt: timesOut, reason: "greeting: timeout"},
		{name: "closed at once", port: listen(t, nil), downAt: fails, reason: "greeting: connection closed"},
		{name: "refused", port: closedPort(t), downAt: fails, reason: "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.wantUp {
				r := startRun(t, smtpConf(tc.port, true, tc.body), Options{})
				r.expect(t, false, 0)
				r.expect(t, true, 0)
				if tc.helo != nil {
					if l := <-tc.helo; l != tc.want {
						t.Errorf("server got %q, want %q", l, tc.want)
					}
				}
				return
			}
			r := startRun(t, smtpConf(tc.port, false, tc.body), Options{})
			r.expect(t, true, 0)
			ev := r.expect(t, false, tc.downAt)
			if !strings.Contains(ev.Reason, tc.reason) {
				t.Errorf("reason %q, want it to mention %q", ev.Reason, tc.reason)
			}
		})
	}
}

// Each step has connect_timeout of its own: a server that takes 0.15 s per
// reply (0.45 s in all, more than connect_timeout 0.2) is up.
func TestSMTPSlowSteps(t *testing.T) {
	t.Parallel()
	port := listen(t, func(c net.Conn) {
		defer c.Close()
		time.Sleep(150 * time.Millisecond)
		io.WriteString(c, "220 slow\r\n")
		br := bufio.NewReader(c)
		for _, reply := range []string{"250 slow\r\n", "221 slow\r\n"} {
			if _, err := br.ReadString('\n'); err != nil {
				return
			}
			time.Sleep(150 * time.Millisecond)
			io.WriteString(c, reply)
		}
	})
	r := startRun(t, smtpConf(port, true, ""), Options{})
	r.expect(t, false, 0)
	r.expect(t, true, 450*time.Millisecond)
}

func TestReadSMTPReply(t *testing.T) {
	for _, tc := range []struct {
		in   string
		code int
		last string
		err  string
	}{
		{in: "220 ok\r\n", code: 220, last: "220 ok"},
		{in: "220\r\n", code: 220, last: "220"},
		{in: "250-a\r\n250-b\n250 c\r\n", code: 250, last: "250 c"},
		{in: "25 x\r\n", err: "not an SMTP reply"},
		{in: "2200 x\r\n", err: "not an SMTP reply"},
		{in: "220-a\r\n221 b\r\n", err: "not an SMTP reply"},
		{in: "220 partial", err: "closed within a line"},
		{in: "", err: "EOF"},
		{in: "220 " + strings.Repeat("x", maxSMTPReply) + "\r\n", err: "reply longer than"},
	} {
		code, last, err := readSMTPReply(bufio.NewReaderSize(strings.NewReader(tc.in), 16))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%.20q: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || code != tc.code || last != tc.last {
			t.Errorf("%q: %d %q %v, want %d %q", tc.in, code, last, err, tc.code, tc.last)
		}
	}
}
