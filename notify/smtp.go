package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"strconv"
	"strings"
	"time"

	"github.com/lvsd/lvsd/conf"
)

// Mail is one alert, ready to send.
type Mail struct {
	Server  string // host:port
	Helo    string
	From    string
	To      []string
	Subject string
	Body    string
	Date    time.Time
	Timeout time.Duration // smtp_connect_timeout: connecting, and each exchange
}

// VRRPMail builds keepalived's alert for a transition; ok is false when no
// e-mail is configured (no smtp_server or no notification_email) or the
// state has no alert.
func VRRPMail(g *conf.Global, ev Event, now time.Time) (Mail, bool) {
	if g.SMTPServer == "" || len(g.NotificationEmail) == 0 {
		return Mail{}, false
	}
	var subject, body string
	if ev.Group {
		switch ev.State {
		case "MASTER", "BACKUP", "FAULT":
			subject = "Entering " + ev.State + " state"
			body = "=> All VRRP group instances are now in " + ev.State + " state <="
		case "STOP":
			subject, body = "Stopping", "=> All VRRP group instances are now stopping <="
		default:
			return Mail{}, false
		}
		subject = fmt.Sprintf("[%s] VRRP Group %s - %s", g.RouterID, ev.Name, subject)
	} else {
		switch ev.State {
		case "MASTER":
			subject, body = "Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <="
		case "BACKUP", "FAULT":
			subject, body = "Entering "+ev.State+" state", "=> VRRP Instance is no longer owning VRRP VIPs <="
		case "STOP":
			subject, body = "Stopping", "=> VRRP Instance stopping <="
		default:
			return Mail{}, false
		}
		subject = fmt.Sprintf("[%s] VRRP Instance %s - %s", g.RouterID, ev.Name, subject)
	}
	return newMail(g, subject, body, now), true
}

// newMail addresses an alert with the global settings.
func newMail(g *conf.Global, subject, body string, now time.Time) Mail {
	port := g.SMTPPort
	if port == 0 {
		port = 25
	}
	helo := g.SMTPHeloName
	if helo == "" {
		helo = "localhost"
	}
	timeout := g.SMTPConnectTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return Mail{
		Server: net.JoinHostPort(g.SMTPServer, strconv.Itoa(port)), Helo: helo,
		From: g.NotificationEmailFrom, To: append([]string(nil), g.NotificationEmail...),
		Subject: subject, Body: body, Date: now, Timeout: timeout,
	}
}

// Message returns the message as sent after DATA: keepalived's headers
// and a one-line body.
func (m Mail) Message() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Date: %s\r\n", m.Date.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	fmt.Fprintf(&b, "From: %s\r\n", m.From)
	fmt.Fprintf(&b, "Subject: %s\r\n", m.Subject)
	b.WriteString("X-Mailer: lvsd\r\n")
	fmt.Fprintf(&b, "To: %s\r\n\r\n", strings.Join(m.To, ", "))
	fmt.Fprintf(&b, "%s\r\n", m.Body)
	return b.String()
}

// Send delivers the mail with plain SMTP (no TLS, no authentication, as
// keepalived). Every step is bounded by Timeout.
func (m Mail) Send(ctx context.Context) error {
	for _, s := range append([]string{m.From, m.Helo}, m.To...) {
		if strings.ContainsAny(s, "\r\n") {
			return errors.New("notify: line break in an address or the HELO name")
		}
	}
	d := net.Dialer{Timeout: m.Timeout}
	conn, err := d.DialContext(ctx, "tcp", m.Server)
	if err != nil {
		return err
	}
	defer conn.Close()
	// The whole exchange is a handful of lines: one deadline per step
	// would need a wrapper; a bound of a few steps' worth is enough.
	_ = conn.SetDeadline(time.Now().Add(4 * m.Timeout))
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	host, _, _ := net.SplitHostPort(m.Server)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello(m.Helo); err != nil {
		return err
	}
	if err := c.Mail(m.From); err != nil {
		return err
	}
	for _, to := range m.To {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("RCPT TO %s: %w", to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(m.Message())); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
