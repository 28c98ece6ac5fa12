package vrrp

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// devGARP records the addresses announced on one named interface.
type devGARP struct {
	mu   sync.Mutex
	dev  string
	sent []string
	at   []time.Time
}

func (d *devGARP) SendGARP(ip netip.Addr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sent = append(d.sent, d.dev+" "+ip.String())
	d.at = append(d.at, time.Now())
	return nil
}

func (d *devGARP) snapshot() ([]string, []time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.sent...), append([]time.Time(nil), d.at...)
}

func TestPacedGARPSpacesEachFamily(t *testing.T) {
	in := &devGARP{dev: "eth0"}
	const iv4, iv6 = 40 * time.Millisecond, 20 * time.Millisecond
	g := newPacedGARP(in, iv4, iv6)
	defer g.Close()
	v4, v6 := netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")
	for range 4 {
		if err := g.SendGARP(v4); err != nil {
			t.Fatal(err)
		}
		if err := g.SendGARP(v6); err != nil {
			t.Fatal(err)
		}
	}
	// The first of each family goes at once, the rest are queued.
	if sent, _ := in.snapshot(); len(sent) != 2 || g.Queued() != 6 {
		t.Fatalf("sent at once %v, queued %d; want 2 and 6", sent, g.Queued())
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.Queued() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	sent, at := in.snapshot()
	if len(sent) != 8 {
		t.Fatalf("sent %v", sent)
	}
	var last4, last6 time.Time
	n4, n6 := 0, 0
	for i, s := range sent {
		if strings.Contains(s, ":") {
			if n6 > 0 && at[i].Sub(last6) < iv6 {
				t.Fatalf("NA %d only %v after the previous one", n6, at[i].Sub(last6))
			}
			last6, n6 = at[i], n6+1
		} else {
			if n4 > 0 && at[i].Sub(last4) < iv4 {
				t.Fatalf("GARP %d only %v after the previous one", n4, at[i].Sub(last4))
			}
			last4, n4 = at[i], n4+1
		}
	}
	if n4 != 4 || n6 != 4 {
		t.Fatalf("%d GARPs, %d NAs", n4, n6)
	}
}

func TestPacedGARPZeroIntervalSendsAtOnce(t *testing.T) {
	in := &devGARP{dev: "eth0"}
	g := newPacedGARP(in, 0, 0)
	for range 5 {
		_ = g.SendGARP(netip.MustParseAddr("192.0.2.10"))
	}
	if sent, _ := in.snapshot(); len(sent) != 5 || g.Queued() != 0 {
		t.Fatalf("sent %v, queued %d", sent, g.Queued())
	}
	// Close drops what is queued and stops sending.
	g.SetIntervals(time.Hour, 0)
	_ = g.SendGARP(netip.MustParseAddr("192.0.2.10"))
	_ = g.SendGARP(netip.MustParseAddr("192.0.2.10"))
	if g.Queued() != 1 {
		t.Fatalf("queued %d, want 1", g.Queued())
	}
	g.Close()
	if g.Queued() != 0 {
		t.Fatal("Close kept the queue")
	}
}

// TestRunnerAnnouncesVIPOnItsOwnDevice: a VIP declared with dev is
// announced through that interface's sender, the others through the
// instance's.
func TestRunnerAnnouncesVIPOnItsOwnDevice(t *testing.T) {
	eth0, eth1 := &devGARP{dev: "eth0"}, &devGARP{dev: "eth1"}
	c := instCfg(func(c *instanceConfig) {
		c.VIPs = []VIP{testVIP, {Addr: netip.MustParsePrefix("198.51.100.7/24"), Dev: "eth1"}, {Addr: netip.MustParsePrefix("203.0.113.7/24"), Dev: "eth0"}}
		c.ExcludedVIPs = []VIP{{Addr: netip.MustParsePrefix("2001:db8::7/64"), Dev: "eth1"}, {Addr: netip.MustParsePrefix("203.0.113.8/24"), Dev: "eth9"}}
	})
	clk := newFakeClock()
	rec := &recorder{clk: clk, addrs: map[netip.Prefix]bool{}}
	lookup := func(dev string) GARPSender {
		if dev == "eth1" {
			return eth1
		}
		return nil // eth9: no sender, the instance's interface is used
	}
	r, err := newRunner("G", []memberSpec{{Config: c, Sender: rec, Addrs: rec, GARP: eth0, GARPDev: lookup}}, runnerOptions{
		Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	r.Flush()
	h := &harness{t: t, clk: clk, rec: rec, r: r}
	h.advance(mdi100)
	r.Flush()
	s0, _ := eth0.snapshot()
	s1, _ := eth1.snapshot()
	want0 := map[string]int{"eth0 192.0.2.100": 5, "eth0 203.0.113.7": 5, "eth0 203.0.113.8": 5}
	want1 := map[string]int{"eth1 198.51.100.7": 5, "eth1 2001:db8::7": 5}
	for _, tc := range []struct {
		got  []string
		want map[string]int
	}{{s0, want0}, {s1, want1}} {
		n := map[string]int{}
		for _, s := range tc.got {
			n[s]++
		}
		if len(n) != len(tc.want) {
			t.Fatalf("announced %v, want %v", n, tc.want)
		}
		for k, v := range tc.want {
			if n[k] != v {
				t.Fatalf("announced %v, want %v", n, tc.want)
			}
		}
	}
}
