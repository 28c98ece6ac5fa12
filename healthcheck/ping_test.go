package healthcheck

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
)

func pingConf(addr string, alpha bool, body string) string {
	a := ""
	if alpha {
		a = "alpha"
	}
	return fmt.Sprintf(`
virtual_server fwmark 1 {
  delay_loop 1
  %s
  real_server %s {
    PING_CHECK {
      connect_timeout 0.2
      retry 2
      delay_before_retry 0.1
      warmup 0
      %s
    }
  }
}`, a, addr, body)
}

// pingSocketAllowed reports whether this process may open ping sockets.
func pingSocketAllowed(v6 bool) bool {
	family, proto := syscall.AF_INET, syscall.IPPROTO_ICMP
	if v6 {
		family, proto = syscall.AF_INET6, syscall.IPPROTO_ICMPV6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, proto)
	if err != nil {
		return false
	}
	syscall.Close(fd)
	return true
}

// needRoot skips a test that needs root (raw sockets, namespaces) unless
// LVSD_INTEGRATION is set; then not being root is a failure.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("LVSD_INTEGRATION") == "" {
		t.Skip("needs root (set LVSD_INTEGRATION=1 and run as root)")
	}
	t.Fatal("LVSD_INTEGRATION is set but the test is not running as root")
}

// PING_CHECK of loopback, through the scheduler: up at the first attempt.
func TestPingLoopback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, addr string }{{"IPv4", "127.0.0.1"}, {"IPv6", "::1"}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v6 := strings.Contains(tc.addr, ":")
			if !pingSocketAllowed(v6) {
				needRoot(t) // the raw socket
			}
			if v6 && !haveIPv6Loopback() {
				t.Skip("no ::1")
			}
			r := startRun(t, pingConf(tc.addr, true, ""), Options{})
			r.expect(t, false, 0)
			ev := r.expect(t, true, 0)
			if pingSocketAllowed(v6) && !strings.Contains(ev.Reason, "ping socket") {
				t.Errorf("reason %q: want the ping socket used when allowed", ev.Reason)
			}
		})
	}
}

func haveIPv6Loopback() bool {
	fd, err := syscall.Socket(syscall.AF_INET6, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer syscall.Close(fd)
	return syscall.Connect(fd, &syscall.SockaddrInet6{Port: 9, Addr: [16]byte{15: 1}}) == nil
}

// The raw socket path, attempt by attempt: echo replies are told apart by
// identifier and sequence number (on loopback the raw socket also sees the
// requests, which it must skip).
func TestPingRawSocket(t *testing.T) {
	needRoot(t)
	for _, addr := range []string{"127.0.0.1", "::1"} {
		if addr == "::1" && !haveIPv6Loopback() {
			continue
		}
		rs := &conf.RealServer{Addr: netip.MustParseAddr(addr)}
		c := &conf.Checker{Type: conf.CheckPing, Timers: conf.CheckTimers{ConnectTimeout: time.Second}}
		p := newPingProbe(c, rs)
		p.rawOnly = true
		for i := 0; i < 3; i++ {
			start := time.Now()
			res := p.probe(context.Background())
			if !res.ok || res.reason != "echo reply (raw socket)" {
				t.Fatalf("%s attempt %d: %+v", addr, i, res)
			}
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("%s attempt %d took %v", addr, i, d)
			}
		}
	}
}

// TestPingNetns runs its body in a network namespace of its own (the test
// binary re-executed with CLONE_NEWNET), where 198.51.100.2 and 2001:db8::2
// are on a veth whose peer has no address: they never answer.
// It runs twice: with ping sockets not allowed (ping_group_range defaults to
// "1 0" in a new namespace), so with raw sockets, and with ping sockets.
func TestPingNetns(t *testing.T) {
	if os.Getenv("LVSD_PING_NETNS") == "1" {
		pingNetnsChild(t)
		return
	}
	if os.Getenv("LVSD_INTEGRATION") == "" {
		t.Skip("netns test: set LVSD_INTEGRATION=1 (needs root)")
	}
	needRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("LVSD_INTEGRATION is set but iproute2 (ip) is missing")
	}
	for _, sockets := range []string{"raw", "ping"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPingNetns$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "LVSD_PING_NETNS=1", "LVSD_PING_SOCKETS="+sockets)
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestPingNetns") {
			t.Fatalf("in a new network namespace (%s sockets): %v\n%s", sockets, err, out)
		}
		t.Logf("in a new network namespace (%s sockets):\n%s", sockets, out)
	}
}

func pingNetnsChild(t *testing.T) {
	sockets := os.Getenv("LVSD_PING_SOCKETS")
	if sockets == "ping" {
		// This namespace's own setting (the default, "1 0", allows no one).
		if err := os.WriteFile("/proc/sys/net/ipv4/ping_group_range", []byte("0 2147483647"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "d0", "type", "veth", "peer", "name", "d1"},
		{"link", "set", "d0", "up"},
		{"link", "set", "d1", "up"},
		{"addr", "add", "198.51.100.1/24", "dev", "d0"},
		{"-6", "addr", "add", "2001:db8::1/64", "dev", "d0", "nodad"},
		// Frames to these go to d1, which has no address: dropped.
		{"neigh", "add", "198.51.100.2", "lladdr", "02:00:00:00:00:02", "dev", "d0", "nud", "permanent"},
		{"neigh", "add", "2001:db8::2", "lladdr", "02:00:00:00:00:02", "dev", "d0", "nud", "permanent"},
		{"route", "add", "prohibit", "203.0.113.0/24"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	const timesOut = 3*200*time.Millisecond + 2*100*time.Millisecond
	const fails = 2 * 100 * time.Millisecond
	for _, tc := range []struct {
		name, addr string
		body       string
		wantUp     bool
		downAt     time.Duration
		reason     string
	}{
		{name: "loopback", addr: "127.0.0.1", wantUp: true},
		{name: "IPv6 loopback", addr: "::1", wantUp: true},
		{name: "connect_ip", addr: "198.51.100.2", body: "connect_ip 127.0.0.1", wantUp: true},
		{name: "bindto", addr: "127.0.0.1", body: "bindto 198.51.100.1", wantUp: true},
		{name: "fwmark and bind_if", addr: "127.0.0.1", body: "fwmark 7\nbind_if lo", wantUp: true},
		{name: "no answer", addr: "198.51.100.2", downAt: timesOut, reason: "no echo reply: timeout"},
		{name: "IPv6 no answer", addr: "2001:db8::2", downAt: timesOut, reason: "no echo reply: timeout"},
		{name: "prohibited", addr: "203.0.113.1", downAt: fails, reason: "permission denied"}, // the prohibit route,
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.wantUp {
				r := startRun(t, pingConf(tc.addr, true, tc.body), Options{})
				r.expect(t, false, 0)
				if ev := r.expect(t, true, 0); !strings.Contains(ev.Reason, sockets+" socket") {
					t.Errorf("reason %q: want a %s socket used", ev.Reason, sockets)
				}
				return
			}
			r := startRun(t, pingConf(tc.addr, false, tc.body), Options{})
			r.expect(t, true, 0)
			ev := r.expect(t, false, tc.downAt)
			if !strings.Contains(ev.Reason, tc.reason) {
				t.Errorf("reason %q, want it to mention %q", ev.Reason, tc.reason)
			}
		})
	}
}
