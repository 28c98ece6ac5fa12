package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/internal/localaddr"
	"github.com/lvsd/lvsd/ipvs"
)

// ha_suspend end to end: the daemon follows the addresses of a network
// namespace (standing for this director) through netlink; the TCP_CHECKs of
// a virtual server with ha_suspend reach its real server (a listener on
// loopback counting connections) only while the VIP is configured there.
func TestHASuspendFollowsVIP(t *testing.T) {
	if os.Getenv("LVSD_INTEGRATION") == "" {
		t.Skip("netns test: set LVSD_INTEGRATION=1 (needs root)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("LVSD_INTEGRATION is set but the test is not running as root")
	}
	ns := fmt.Sprintf("lvsdha%d", os.Getpid()%100000)
	runCmd(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	runCmd(t, "ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
	runCmd(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	text := fmt.Sprintf(`virtual_server 203.0.113.10 80 {
  protocol TCP
  delay_loop 1
  ha_suspend
  real_server 127.0.0.1 %d {
    TCP_CHECK {
      connect_timeout 1
      warmup 0
    }
  }
}
`, port)
	cfg, diags := conf.Parse("t.conf", text, conf.Options{ConfigID: "t"})
	if conf.MaxLevel(diags) >= conf.Error {
		t.Fatalf("%v", diags)
	}
	k := newMemKernel()
	d, err := newDaemon(&options{checkOnly: true}, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg, deps{
		newKernel: func() (ipvs.Kernel, error) { return k, nil },
		watchAddrs: func(ctx context.Context, fn func(map[netip.Addr]bool)) error {
			return localaddr.Watch(ctx, localaddr.Options{Namespace: &h}, fn)
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); d.wait() }()
	d.start(ctx, cfg)
	<-d.programmed()
	time.Sleep(2500 * time.Millisecond)
	if n := accepted.Load(); n != 0 {
		t.Fatalf("%d checks reached the real server while the VIP is elsewhere", n)
	}
	if st := d.hc.Snapshot(); len(st) != 1 || !st[0].Suspended || st[0].Checkers[0].Skipped == 0 {
		t.Fatalf("status: %+v", st)
	}
	runCmd(t, "ip", "-n", ns, "addr", "add", "203.0.113.10/32", "dev", "eth0")
	deadline := time.Now().Add(5 * time.Second)
	for accepted.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d checks reached the real server in 5 s with the VIP here", accepted.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	runCmd(t, "ip", "-n", ns, "addr", "del", "203.0.113.10/32", "dev", "eth0")
	time.Sleep(300 * time.Millisecond) // the netlink notification
	before := accepted.Load()
	time.Sleep(2500 * time.Millisecond)
	if n := accepted.Load() - before; n != 0 {
		t.Fatalf("%d checks reached the real server after the VIP left", n)
	}
	if st := d.hc.Snapshot(); !st[0].Up || !st[0].Suspended {
		t.Fatalf("status: %+v (the state is kept while suspended)", st[0])
	}
}
