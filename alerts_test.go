package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/internal/smtptest"
	"github.com/lvsd/lvsd/ipvs"
)

// smtp_alert of the checkers, end to end: a real server whose listener
// closes is taken out of the table and its TCP_CHECK mails a DOWN, its
// virtual server's quorum loss mails too; when it listens again, UP and
// gained quorum; at start-up, as keepalived, "Starting with quorum up". The
// mails go to a real SMTP server on loopback.
func TestCheckerSMTPAlerts(t *testing.T) {
	sink := smtptest.Start(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rsPort := l.Addr().(*net.TCPAddr).Port
	text := fmt.Sprintf(`global_defs {
  router_id lb1
  notification_email {
    ops@example.com
  }
  notification_email_from lvsd@example.net
  smtp_server 127.0.0.1 %d
  smtp_alert_checker
}
virtual_server 192.0.2.1 80 {
  protocol TCP
  delay_loop 1
  quorum 1
  real_server 127.0.0.1 %d {
    TCP_CHECK {
      connect_timeout 1
      retry 0
      warmup 0
    }
  }
}
`, sink.Port, rsPort)
	cfg, diags := conf.Parse("t.conf", text, conf.Options{ConfigID: "t"})
	if conf.MaxLevel(diags) >= conf.Error {
		t.Fatalf("%v", diags)
	}
	o := &options{checkOnly: true}
	k := newMemKernel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d, err := newDaemon(o, log, cfg, deps{newKernel: func() (ipvs.Kernel, error) { return k, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); d.wait() }()
	d.start(ctx, cfg)
	<-d.programmed()
	sk := ipvs.ServiceKey{Family: ipvs.INET, Proto: ipvs.TCP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 80}
	dk := ipvs.DestKey{Addr: netip.MustParseAddr("127.0.0.1"), Port: uint16(rsPort)}
	waitWeight := func(want int) {
		t.Helper()
		for i := 0; i < 100; i++ {
			if k.weight(sk, dk) == want {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("weight %d in the table, want %d", k.weight(sk, dk), want)
	}
	waitWeight(1)
	// As keepalived: the quorum is gained at start-up, and mailed.
	start := sink.Wait(t, 1, 10*time.Second)
	checkMails(t, start, []string{"Subject: [lb1] Virtualserver [192.0.2.1]:tcp:80 - UP\r\n"})
	if !strings.Contains(start[0].Data, "=> Starting with quorum up 1+0=1 <= 1 <=") {
		t.Errorf("start-up mail:\n%s", start[0].Data)
	}
	time.Sleep(1500 * time.Millisecond) // a check or two that succeed: no mail
	if n := len(sink.Received()); n != 1 {
		t.Fatalf("%d mails while the real server is up", n-1)
	}
	l.Close()
	waitWeight(-1)
	msgs := sink.Wait(t, 3, 10*time.Second)[1:]
	rs := fmt.Sprintf("[127.0.0.1]:tcp:%d", rsPort)
	wantDown := []string{
		"Subject: [lb1] Realserver " + rs + " of virtual server [192.0.2.1]:tcp:80 - DOWN\r\n",
		"Subject: [lb1] Virtualserver [192.0.2.1]:tcp:80 - DOWN\r\n",
	}
	checkMails(t, msgs, wantDown)
	if !strings.Contains(msgs[0].Data+msgs[1].Data, "=> TCP_CHECK failed on service: ") {
		t.Errorf("no checker body:\n%s\n%s", msgs[0].Data, msgs[1].Data)
	}
	l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", rsPort))
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	waitWeight(1)
	msgs = sink.Wait(t, 5, 10*time.Second)
	checkMails(t, msgs[3:], []string{
		"Subject: [lb1] Realserver " + rs + " of virtual server [192.0.2.1]:tcp:80 - UP\r\n",
		"Subject: [lb1] Virtualserver [192.0.2.1]:tcp:80 - UP\r\n",
	})
}

// checkMails asserts that each subject is in one of the mails (the checker
// and the quorum mails are queued by two goroutines: any order).
func checkMails(t *testing.T, msgs []smtptest.Mail, subjects []string) {
	t.Helper()
	if len(msgs) != len(subjects) {
		t.Fatalf("%d mails, want %d", len(msgs), len(subjects))
	}
	for _, s := range subjects {
		found := false
		for _, m := range msgs {
			found = found || strings.Contains(m.Data, s)
		}
		if !found {
			var all []string
			for _, m := range msgs {
				all = append(all, m.Data)
			}
			t.Fatalf("no mail with %q among:\n%s", s, strings.Join(all, "\n"))
		}
	}
}
