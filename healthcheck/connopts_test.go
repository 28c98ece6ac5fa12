package healthcheck

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// peerRecorder accepts and closes connections, keeping their source addresses.
type peerRecorder struct {
	mu    sync.Mutex
	peers []string
}

func (p *peerRecorder) serve(c net.Conn) {
	p.mu.Lock()
	p.peers = append(p.peers, c.RemoteAddr().String())
	p.mu.Unlock()
	c.Close()
}

func (p *peerRecorder) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.peers...)
}

func connConf(rs string, port int, opts string) string {
	return fmt.Sprintf(`
virtual_server 192.0.2.1 80 {
    protocol TCP
  delay_loop 0.2
  alpha
  real_server %s %d {
    TCP_CHECK {
      connect_timeout 0.5
      warmup 0
      %s
    }
  }
}`, rs, port, opts)
}

// bindto and bind_port set the source of the connection; successive attempts
// reuse the port.
func TestConnectBind(t *testing.T) {
	t.Parallel()
	pr := &peerRecorder{}
	port := listen(t, pr.serve)
	src := closedPort(t)
	r := startRun(t, connConf("127.0.0.1", port, fmt.Sprintf("bindto 127.0.0.1\nbind_port %d", src)), Options{})
	r.expect(t, false, 0)
	r.expect(t, true, 0)
	time.Sleep(500 * time.Millisecond)
	peers := pr.list()
	if len(peers) < 2 {
		t.Fatalf("%d connections, want at least 2", len(peers))
	}
	for _, p := range peers {
		if p != fmt.Sprintf("127.0.0.1:%d", src) {
			t.Fatalf("connection from %s, want 127.0.0.1:%d", p, src)
		}
	}
	if st := r.s.Snapshot()[0]; !st.Up || st.Checkers[0].Failures != 0 {
		t.Fatalf("snapshot %+v", st)
	}
}

// connect_ip and connect_port override the real server's address.
func TestConnectIPPort(t *testing.T) {
	t.Parallel()
	pr := &peerRecorder{}
	port := listen(t, pr.serve)
	r := startRun(t, connConf("10.0.0.1", 80, fmt.Sprintf("connect_ip 127.0.0.1\nconnect_port %d\nbindto 127.0.0.1", port)), Options{})
	r.expect(t, false, 0)
	r.expect(t, true, 0)
}

// IPv6 loopback: TCP and HTTP (whose Host is [::1]:port).
func TestIPv6(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	rr := &requestRecorder{}
	go func() {
		for i := 0; i < 100; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go rr.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	text := fmt.Sprintf(`
virtual_server 2001:db8::1 80 {
    protocol TCP
  delay_loop 1
  alpha
  real_server ::1 %d {
    HTTP_GET {
      url {
        path /v6
      }
      warmup 0
    }
  }
}`, port)
	r := startRun(t, text, Options{})
	r.expect(t, false, 0)
	r.expect(t, true, 0)
	if got, want := rr.first(t), fmt.Sprintf("Host: [::1]:%d\r\n", port); !strings.Contains(got, want) {
		t.Fatalf("request %q lacks %q", got, want)
	}
}

// fwmark (SO_MARK) and bind_if (SO_BINDTODEVICE) need CAP_NET_ADMIN / root.
func TestConnectMarkAndDevice(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root for SO_MARK and SO_BINDTODEVICE")
	}
	port := listen(t, nil)
	r := startRun(t, connConf("127.0.0.1", port, "fwmark 7\nbind_if lo"), Options{})
	r.expect(t, false, 0)
	r.expect(t, true, 0)
	// An interface that does not exist: every attempt fails, with the reason.
	r2 := startRun(t, connConf("127.0.0.1", port, "bind_if lvsd-nonexistent0"), Options{})
	r2.expect(t, false, 0)
	r2.none(t, 300*time.Millisecond)
	if st := r2.s.Snapshot()[0]; st.Up || !strings.Contains(st.Checkers[0].LastReason, "SO_BINDTODEVICE") {
		t.Fatalf("snapshot %+v", st)
	}
}
