package vrrp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

type nopSender struct{}

func (nopSender) SendAdvert([]byte, netip.Addr, netip.Addr) error { return nil }

type nopAddrs struct{}

func (nopAddrs) AddAddr(VIP) error { return nil }
func (nopAddrs) DelAddr(VIP) error { return nil }

// BenchmarkSafetyNetPass100 is one pass of the safety net over 100 MASTER
// instances with one VIP each on one interface of a network namespace: the
// listing of its links and addresses over a netlink command socket, and
// every runner comparing its instance with it (VIPs, link state, advert
// source). Everything is in place, so nothing is repaired. cpu-ns/op is
// the process's CPU time (user and system, the runners' goroutines
// included) per pass: at one pass a second, the share of a CPU is
// cpu-ns/op / 1e9. Needs LVSD_INTEGRATION=1 and root (a namespace).
func BenchmarkSafetyNetPass100(b *testing.B) {
	if os.Getenv("LVSD_INTEGRATION") == "" {
		b.Skip("netns benchmark: set LVSD_INTEGRATION=1 (needs root)")
	}
	const instances = 100
	ns := fmt.Sprintf("lvsdsn%d", os.Getpid()%100000)
	ip := func(stdin string, args ...string) {
		b.Helper()
		cmd := exec.Command("ip", args...)
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	ip("", "netns", "add", ns)
	b.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	var batch strings.Builder
	batch.WriteString("link add eth0 type veth peer name eth1\nlink set eth1 up\nlink set eth0 up\naddr add 192.0.2.1/24 dev eth0\n")
	for i := range instances {
		fmt.Fprintf(&batch, "addr add 198.51.100.%d/32 dev eth0\n", i+1)
	}
	ip(batch.String(), "-n", ns, "-batch", "-")
	h, err := netns.GetFromName(ns)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		b.Fatal(err)
	}
	defer nh.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	repairs := &Repairs{}
	managed := map[netip.Addr]bool{}
	var runners []*runner
	for i := range instances {
		vip := netip.MustParsePrefix(fmt.Sprintf("198.51.100.%d/32", i+1))
		managed[vip.Addr()] = true
		ic := instanceConfig{
			Machine: machineConfig{Name: fmt.Sprintf("VI_%d", i+1), VRID: uint8(i + 1), Version: 2, Priority: 255,
				AdvertInterval: time.Second, PrimaryIP: netip.MustParseAddr("192.0.2.1")},
			Interface: "eth0", VIPs: []VIP{{Addr: vip}}, AutoSource: true,
		}
		r, err := newRunner(ic.Machine.Name, []memberSpec{{Config: ic, Sender: nopSender{}, Addrs: nopAddrs{}, OwnInterface: "eth0"}},
			runnerOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Repairs: repairs})
		if err != nil {
			b.Fatal(err)
		}
		go func() { _ = r.Run(ctx) }()
		runners = append(runners, r)
	}
	for _, r := range runners {
		r.Flush()
		if st := r.Status(); st[0].State != StateMaster {
			b.Fatalf("%s is %v", st[0].Name, st[0].State)
		}
	}
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	for b.Loop() {
		ks, err := listState(nh, false)
		if err != nil {
			b.Fatal(err)
		}
		ks.managed = managed
		for _, r := range runners {
			r.Verify(ks)
		}
		for _, r := range runners {
			r.Flush()
		}
	}
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() - before.Utime.Nano() + after.Stime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	if m := repairs.Map(); m["vip"]+m["link"]+m["source"] != 0 {
		b.Fatalf("repairs in a sound namespace: %v", m)
	}
}
