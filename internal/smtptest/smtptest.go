// Package smtptest runs a real SMTP server (go-smtp) on loopback that
// keeps what it receives: the tests of smtp_alert use it.
package smtptest

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// Mail is one message as received.
type Mail struct {
	Helo string
	From string
	To   []string
	Data string // headers and body, as sent after DATA
}

// Sink is the server's mailbox.
type Sink struct {
	mu   sync.Mutex
	msgs []Mail
	got  chan struct{}
	Port int
}

type session struct {
	s   *Sink
	cur Mail
}

func (s *session) Reset()        { s.cur = Mail{Helo: s.cur.Helo} }
func (s *session) Logout() error { return nil }
func (s *session) Mail(from string, _ *gosmtp.MailOptions) error {
	s.cur.From = from
	return nil
}
func (s *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.cur.To = append(s.cur.To, to)
	return nil
}
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data = string(b)
	s.s.mu.Lock()
	s.s.msgs = append(s.s.msgs, s.cur)
	s.s.mu.Unlock()
	select {
	case s.s.got <- struct{}{}:
	default:
	}
	return nil
}

// Start runs a server on 127.0.0.1 (port in Sink.Port) until the test ends.
func Start(t testing.TB) *Sink {
	t.Helper()
	sink := &Sink{got: make(chan struct{}, 1)}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &session{s: sink, cur: Mail{Helo: c.Hostname()}}, nil
	}))
	srv.Domain = "mx.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sink.Port = l.Addr().(*net.TCPAddr).Port
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return sink
}

// Wait returns the messages once there are at least n, failing the test
// after timeout.
func (s *Sink) Wait(t testing.TB, n int, timeout time.Duration) []Mail {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			out := append([]Mail(nil), s.msgs...)
			s.mu.Unlock()
			return out
		}
		have := len(s.msgs)
		s.mu.Unlock()
		select {
		case <-s.got:
		case <-deadline:
			t.Fatalf("%d mails received, want %d", have, n)
		}
	}
}

// Received returns the messages so far.
func (s *Sink) Received() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.msgs...)
}
