package notify

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lvsd/lvsd/internal/smtptest"
)

// The checkers' and the quorum's alerts: keepalived's inheritance
// (real_server smtp_alert, else virtual_server's, else smtp_alert_checker,
// else smtp_alert), its subjects, and no_checker_emails.
func TestCheckerAlerts(t *testing.T) {
	sink := smtptest.Start(t)
	c := parseConf(t, fmt.Sprintf(`
global_defs {
  router_id lb1
  notification_email {
    ops@example.com
  }
  notification_email_from lvsd@example.net
  smtp_server 127.0.0.1 %d
  smtp_alert false
  smtp_alert_checker
  no_checker_emails
}
virtual_server 192.0.2.1 80 {
  protocol TCP
  quorum 2
  hysteresis 1
  real_server 10.0.0.1 8080 {
  }
  real_server 10.0.0.2 8080 {
    smtp_alert off
  }
}
virtual_server fwmark 7 {
  smtp_alert no
  real_server 10.0.0.3 80 {
    smtp_alert
  }
  real_server 10.0.0.4 80 {
  }
}
virtual_server_group G {
  192.0.2.10 443
}
virtual_server group G {
  protocol TCP
  real_server 10.0.0.5 443 {
  }
}
`, sink.Port))
	n := New(c, Options{Now: func() time.Time { return time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC) }})
	defer n.Close()
	vs1, vs2, vs3 := c.VirtualServers[0], c.VirtualServers[1], c.VirtualServers[2]
	n.RealServerAlert(vs1, vs1.RealServers[0], false, true, CheckerBody("TCP_CHECK", false, "connection refused"))
	n.RealServerAlert(vs1, vs1.RealServers[0], false, false, CheckerBody("HTTP_GET", false, "")) // no_checker_emails
	n.RealServerAlert(vs1, vs1.RealServers[1], false, true, "rs smtp_alert off")
	n.RealServerAlert(vs2, vs2.RealServers[0], true, true, CheckerBody("MISC_CHECK", true, "exit 0"))
	n.RealServerAlert(vs2, vs2.RealServers[1], true, true, "vs smtp_alert no")
	n.RealServerAlert(vs3, vs3.RealServers[0], true, true, CheckerBody("TCP_CHECK", true, ""))
	n.QuorumAlert(vs1, false, false, 1)
	n.QuorumAlert(vs2, true, false, 1) // vs smtp_alert no
	n.QuorumAlert(vs1, true, false, 3)
	msgs := sink.Wait(t, 5, 10*time.Second)
	if !n.Flush(5 * time.Second) {
		t.Fatal("mailer did not finish")
	}
	time.Sleep(100 * time.Millisecond)
	msgs = sink.Received()
	want := [][2]string{
		{"[lb1] Realserver [10.0.0.1]:tcp:8080 of virtual server [192.0.2.1]:tcp:80 - DOWN", "=> TCP_CHECK failed on service: connection refused <="},
		{"[lb1] Realserver [10.0.0.3]:tcp:80 of virtual server FWM 7 - UP", "=> MISC_CHECK succeeded on service <="},
		{"[lb1] Realserver [10.0.0.5]:tcp:443 of virtual server [G]:0 - UP", "=> TCP_CHECK succeeded on service <="},
		{"[lb1] Virtualserver [192.0.2.1]:tcp:80 - DOWN", "=> Lost quorum 2+1=1 <= 1 <="},
		{"[lb1] Virtualserver [192.0.2.1]:tcp:80 - UP", "=> Gained quorum 2+1=3 <= 3 <="},
	}
	if len(msgs) != len(want) {
		var subj []string
		for _, m := range msgs {
			subj = append(subj, m.Data)
		}
		t.Fatalf("%d mails, want %d:\n%s", len(msgs), len(want), strings.Join(subj, "\n"))
	}
	for i, m := range msgs {
		if !strings.Contains(m.Data, "Subject: "+want[i][0]+"\r\n") || !strings.Contains(m.Data, "\r\n\r\n"+want[i][1]+"\r\n") {
			t.Errorf("mail %d:\n%s\nwant subject %q, body %q", i, m.Data, want[i][0], want[i][1])
		}
		if m.From != "lvsd@example.net" || strings.Join(m.To, ",") != "ops@example.com" {
			t.Errorf("mail %d envelope from %q to %q", i, m.From, m.To)
		}
	}
}

// Without smtp_server (or without notification_email) nothing is sent,
// whatever smtp_alert says.
func TestCheckerAlertsNeedAServer(t *testing.T) {
	c := parseConf(t, `
global_defs {
  smtp_alert
}
virtual_server 192.0.2.1 80 {
  protocol TCP
  real_server 10.0.0.1 80 {
  }
}
`)
	n := New(c, Options{})
	defer n.Close()
	vs := c.VirtualServers[0]
	n.RealServerAlert(vs, vs.RealServers[0], false, true, "x")
	n.QuorumAlert(vs, false, false, 0)
	if !n.mail.Idle() {
		t.Fatal("a mail was queued without smtp_server")
	}
}
