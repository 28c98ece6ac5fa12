package notify

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// smtpFault is a local TCP server misbehaving in one way: "silent"
// accepts and never says a word, "refuse" greets with 554 and hangs up.
func smtpFault(t *testing.T, mode string) (port int, accepted func() int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	n := 0
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			n++
			conns = append(conns, c)
			mu.Unlock()
			if mode == "refuse" {
				_, _ = io.WriteString(c, "554 5.3.2 no service here\r\n")
				_, _ = bufio.NewReader(c).ReadString('\n') // QUIT, or nothing
				c.Close()
			}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().(*net.TCPAddr).Port, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// hangScript sleeps for an hour; loudScript writes 16 MB to its standard
// output, then records that it finished.
func faultScripts(t *testing.T, dir string) (hang, loud, loudDone string) {
	t.Helper()
	hang = filepath.Join(dir, "hang.sh")
	loud = filepath.Join(dir, "loud.sh")
	loudDone = filepath.Join(dir, "loud.done")
	if err := os.WriteFile(hang, []byte("#!/bin/sh\nexec sleep 3600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(loud, []byte("#!/bin/sh\nhead -c 16000000 /dev/zero\necho $* >> "+loudDone+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return hang, loud, loudDone
}

// TestFaultsNeverBlockPost: the faults of notify scripts and mail servers
// never reach the poster (the VRRP runner's goroutine, through the
// daemon's Sink). With a notify_master that hangs, a notify that writes
// 16 MB to its standard output, and a mail server that accepts and never
// answers, 1,000 transitions posted in a row each return in well under a
// millisecond on average; the script queue and the mail queue stay bounded
// (maxQueue) and every job beyond is dropped and counted; the loud script
// runs to its end (its output goes to /dev/null: no pipe fills); the same
// with a mail server that refuses, whose mails are counted as failed.
func TestFaultsNeverBlockPost(t *testing.T) {
	for _, mode := range []string{"silent", "refuse"} {
		t.Run(mode, func(t *testing.T) {
			port, accepted := smtpFault(t, mode)
			dir := t.TempDir()
			hang, loud, loudDone := faultScripts(t, dir)
			c := parseConf(t, fmt.Sprintf(`
global_defs {
  notification_email { ops@example.com }
  notification_email_from lvsd@example.com
  smtp_server 127.0.0.1 %d
  smtp_connect_timeout 30
  smtp_alert
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  priority 100
  virtual_ipaddress { 192.0.2.1 }
  notify_master %s
}
vrrp_instance VI_2 {
  interface eth0
  virtual_router_id 2
  priority 100
  virtual_ipaddress { 192.0.2.2 }
  notify %s
}
`, port, hang, loud))
			n := New(c, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CloseWait: 100 * time.Millisecond})
			defer n.Close()
			// VI_2's loud script first, alone: it must finish.
			n.Post(Event{Name: "VI_2", State: "MASTER", Priority: 100})
			waitFor(t, 10*time.Second, "the loud script's end", func() bool { _, err := os.Stat(loudDone); return err == nil })

			const events = 1000
			var worst time.Duration
			t0 := time.Now()
			for i := range events {
				st := "MASTER"
				if i%2 == 1 {
					st = "BACKUP"
				}
				p0 := time.Now()
				n.Post(Event{Name: "VI_1", State: st, Priority: 100})
				worst = max(worst, time.Since(p0))
			}
			took := time.Since(t0)
			t.Logf("%d transitions posted in %v (worst Post %v)", events, took, worst)
			if took > 500*time.Millisecond || worst > 100*time.Millisecond {
				t.Errorf("posting %d transitions took %v (worst %v): a fault reached the poster", events, took, worst)
			}
			// VI_1: 500 MASTER transitions, each a hanging script: one
			// runs, maxQueue wait, the rest are dropped and counted.
			s := n.Stats()
			// One more is dropped when the first hung script had not left
			// the queue yet as the next ones came.
			if want := uint64(events/2 - 1 - maxQueue); s.ScriptsDropped != want && s.ScriptsDropped != want+1 {
				t.Errorf("scripts dropped %d, want %d or %d (500 queued on a hung script, %d waiting)", s.ScriptsDropped, want, want+1, maxQueue)
			}
			// 1,001 mails: one being sent (or already failed), at most
			// maxQueue waiting, the rest dropped.
			switch mode {
			case "silent":
				waitFor(t, 5*time.Second, "the mailer's connection", func() bool { return accepted() >= 1 })
				if s.MailSent != 0 || s.MailFailed != 0 {
					t.Errorf("a silent server: %d sent, %d failed", s.MailSent, s.MailFailed)
				}
				if want := uint64(events + 1 - 1 - maxQueue); s.MailDropped < want-1 || s.MailDropped > want {
					t.Errorf("mails dropped %d, want %d (one in flight, %d queued)", s.MailDropped, want, maxQueue)
				}
				if got := accepted(); got != 1 {
					t.Errorf("%d connections to the silent server, want 1 (the mailer waits on it)", got)
				}
			case "refuse":
				// Refused mails fail fast: the queue drains, every mail
				// is failed or dropped, none sent.
				waitFor(t, 20*time.Second, "every mail failed or dropped", func() bool {
					s := n.Stats()
					return s.MailFailed+s.MailDropped == events+1
				})
				s = n.Stats()
				if s.MailSent != 0 || s.MailFailed < maxQueue {
					t.Errorf("a refusing server: %d sent, %d failed, %d dropped", s.MailSent, s.MailFailed, s.MailDropped)
				}
			}
			// The loud script ran once, to its end.
			if got := readLines(t, loudDone); len(got) != 1 || got[0] != "INSTANCE VI_2 MASTER 100" {
				t.Errorf("loud script: %q", got)
			}
		})
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
