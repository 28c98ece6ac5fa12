package addrguard

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
)

func TestFromConfig(t *testing.T) {
	const text = `vrrp_instance VI_1 {
  interface lo
  virtual_router_id 51
  priority 100
  virtual_ipaddress {
    192.0.2.100/24
  }
  virtual_ipaddress_excluded {
    198.51.100.7/32
    2001:db8::100/64
  }
}
static_ipaddress {
  203.0.113.200/24 dev lo
}
virtual_server 203.0.113.10 80 {
  real_server 192.0.2.50 80 {
  }
}
virtual_server_group G1 {
  203.0.113.20-29 443
  2001:db8::20 443
}
virtual_server group G1 {
  real_server 192.0.2.51 443 {
  }
}
`
	cfg, diags := conf.Parse("k.conf", text, conf.Options{ConfigID: "t"})
	for _, d := range diags {
		if d.Level >= conf.Error {
			t.Fatalf("parse: %v", d)
		}
	}
	s := FromConfig(cfg)
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"192.0.2.100", true},
		{"::ffff:192.0.2.100", true}, // a dual-stack socket's view
		{"2001:db8::100", true},
		{"198.51.100.7", true},
		{"203.0.113.10", true},
		{"203.0.113.20", true},
		{"203.0.113.25", true},
		{"203.0.113.29", true},
		{"2001:db8::20", true},
		{"203.0.113.30", false},
		{"203.0.113.19", false},
		{"203.0.113.200", false}, // static_ipaddress: the host's own
		{"192.0.2.50", false},    // a real server
		{"192.0.2.1", false},
		{"127.0.0.1", false},
	} {
		if got := s.Contains(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("Contains(%s) = %v, want %v", c.addr, got, c.want)
		}
	}
	if FromConfig(nil).Contains(netip.MustParseAddr("192.0.2.100")) {
		t.Error("an empty configuration manages an address")
	}
}

// serveEcho accepts on l and answers each line with "ok <line>".
func serveEcho(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "ok "+line)
		}()
	}
}

// talk connects to addr, sends a line and returns the answer (or the
// error: a refused connection reads EOF or a reset).
func talk(t *testing.T, addr string) (string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	if len(b) == 0 && err == nil {
		err = io.EOF
	}
	return string(b), err
}

// TestListenerLoopback: one listener on every address; connections to the
// managed 127.0.0.2 are closed at accept (nothing answered) and counted,
// connections to 127.0.0.1 on the same port are answered; SetManaged
// swaps which is which at once.
func TestListenerLoopback(t *testing.T) {
	inner, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	port := inner.Addr().(*net.TCPAddr).Port
	var s Set
	s.Add(netip.MustParseAddr("127.0.0.2"))
	l := New(inner, &s)
	defer l.Close()
	go serveEcho(l)
	at := func(ip string) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }

	if got, err := talk(t, at("127.0.0.1")); err != nil || got != "ok hello\n" {
		t.Fatalf("127.0.0.1 (not managed): %q, %v", got, err)
	}
	for i := range 3 {
		got, err := talk(t, at("127.0.0.2"))
		if got != "" || err == nil {
			t.Fatalf("127.0.0.2 (managed) #%d answered %q, %v", i, got, err)
		}
	}
	waitRefused(t, l, 3)

	var s2 Set
	s2.AddRange(netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.1"))
	s2.AddRange(netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.9"))
	l.SetManaged(&s2)
	if got, err := talk(t, at("127.0.0.2")); err != nil || got != "ok hello\n" {
		t.Fatalf("127.0.0.2 after SetManaged: %q, %v", got, err)
	}
	for _, ip := range []string{"127.0.0.1", "127.0.0.5"} {
		if got, err := talk(t, at(ip)); got != "" || err == nil {
			t.Fatalf("%s (managed now) answered %q, %v", ip, got, err)
		}
	}
	waitRefused(t, l, 5)
	if got, err := talk(t, at("127.0.0.10")); err != nil || got != "ok hello\n" {
		t.Fatalf("127.0.0.10 (past the range): %q, %v", got, err)
	}
	l.Close()
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) && (err == nil || !strings.Contains(err.Error(), "closed")) {
		t.Errorf("Accept after Close: %v", err)
	}
}

func waitRefused(t *testing.T, l *Listener, want uint64) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for l.Refused() != want {
		if time.Now().After(deadline) {
			t.Fatalf("refused %d, want %d", l.Refused(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
