package localaddr

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/lvsd/lvsd/internal/netwatch"
)

// Watch follows the addresses of a network namespace of its own: an
// address added is reported, so is its removal.
func TestWatchNetns(t *testing.T) {
	if os.Getenv("LVSD_INTEGRATION") == "" {
		t.Skip("netns test: set LVSD_INTEGRATION=1 (needs root)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("LVSD_INTEGRATION is set but the test is not running as root")
	}
	name := fmt.Sprintf("lvsdla%d", os.Getpid()%100000)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	ip("netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	ip("-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
	ip("-n", name, "link", "set", "eth0", "up")
	ip("-n", name, "addr", "add", "198.51.100.1/24", "dev", "eth0")
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	sets := make(chan map[netip.Addr]bool, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var resize func(int, bool) error
	opts := Options{Namespace: &h, ReadBuffer: 300000, ForceBuffer: true, Resize: func(f func(int, bool) error) { resize = f }}
	if err := Watch(ctx, opts, func(m map[netip.Addr]bool) { sets <- m }); err != nil {
		t.Fatal(err)
	}
	// The socket's receive buffer as asked (forced: twice the size, as
	// the kernel reports it), then resized as a reload does.
	rb := func() string {
		out, err := exec.Command("ip", "netns", "exec", name, "ss", "-f", "netlink", "-m", "-n").CombinedOutput()
		if err != nil {
			t.Fatalf("ss: %v: %s", err, out)
		}
		return string(out)
	}
	if out := rb(); !strings.Contains(out, "rb600000,") {
		t.Fatalf("no netlink socket with the receive buffer asked for (600000):\n%s", out)
	}
	if resize == nil {
		t.Fatal("Options.Resize not called")
	}
	if err := resize(400000, true); err != nil {
		t.Fatal(err)
	}
	if out := rb(); !strings.Contains(out, "rb800000,") || strings.Contains(out, "rb600000,") {
		t.Fatalf("after the resize, want the buffer 800000:\n%s", out)
	}
	vip := netip.MustParseAddr("198.51.100.7")
	first := <-sets // before Watch returned
	if !first[netip.MustParseAddr("198.51.100.1")] || first[vip] {
		t.Fatalf("initial set %v", first)
	}
	waitFor := func(present bool) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case m := <-sets:
				if m[vip] == present {
					return
				}
			case <-deadline:
				t.Fatalf("no report with %v present=%v", vip, present)
			}
		}
	}
	ip("-n", name, "addr", "add", "198.51.100.7/32", "dev", "eth0")
	waitFor(true)
	ip("-n", name, "addr", "del", "198.51.100.7/32", "dev", "eth0")
	waitFor(false)
	ip("-n", name, "addr", "add", "2001:db8::7/128", "dev", "eth0", "nodad")
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m := <-sets:
			if m[netip.MustParseAddr("2001:db8::7")] {
				return
			}
		case <-deadline:
			t.Fatal("IPv6 address not reported")
		}
	}
}

// The set follows address events by interface and address; link events
// and events that change nothing do not count as changes.
func TestApply(t *testing.T) {
	set := map[entry]bool{}
	ev := func(k netwatch.Kind, index int, p string) netwatch.Event {
		return netwatch.Event{Kind: k, Index: index, Prefix: netip.MustParsePrefix(p)}
	}
	for i, c := range []struct {
		e       netwatch.Event
		changed bool
		want    []string
	}{
		{ev(netwatch.AddrAdded, 2, "192.0.2.1/24"), true, []string{"192.0.2.1"}},
		{ev(netwatch.AddrAdded, 2, "192.0.2.1/24"), false, []string{"192.0.2.1"}},
		{ev(netwatch.AddrAdded, 3, "192.0.2.1/32"), true, []string{"192.0.2.1"}}, // on another interface too
		{ev(netwatch.AddrAdded, 3, "2001:db8::1/64"), true, []string{"192.0.2.1", "2001:db8::1"}},
		{netwatch.Event{Kind: netwatch.LinkDown, Index: 3, Name: "eth1"}, false, []string{"192.0.2.1", "2001:db8::1"}},
		{ev(netwatch.AddrDeleted, 2, "192.0.2.1/24"), true, []string{"192.0.2.1", "2001:db8::1"}},
		{ev(netwatch.AddrDeleted, 3, "192.0.2.1/32"), true, []string{"2001:db8::1"}},
		{ev(netwatch.AddrDeleted, 3, "192.0.2.1/32"), false, []string{"2001:db8::1"}},
	} {
		if got := apply(set, c.e); got != c.changed {
			t.Errorf("%d: apply(%v) = %v", i, c.e, got)
		}
		var got []string
		for a := range flatten(set) {
			got = append(got, a.String())
		}
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("%d: after %v: %v; want %v", i, c.e, got, c.want)
		}
	}
}

// ha_suspend after a netlink overrun: the consumer of the set is stalled
// (as a paused process is) while thousands of addresses change, the kernel
// drops notifications (a receive buffer of the kernel's minimum), and
// afterwards the set is the namespace's again: an address deleted during
// the storm is gone, the storm's are there, the watch is resynced (told
// through Options.Resynced) and follows an address added afterwards.
func TestWatchOverrunNetns(t *testing.T) {
	if os.Getenv("LVSD_INTEGRATION") == "" {
		t.Skip("netns test: set LVSD_INTEGRATION=1 (needs root)")
	}
	name := fmt.Sprintf("lvsdlo%d", os.Getpid()%100000)
	ip := func(stdin string, args ...string) {
		t.Helper()
		cmd := exec.Command("ip", args...)
		if stdin != "" {
			cmd.Stdin = strings.NewReader(stdin)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	ip("", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	ip("", "-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
	ip("", "-n", name, "link", "set", "eth0", "up")
	ip("", "-n", name, "addr", "add", "198.51.100.1/24", "dev", "eth0")
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var resyncs atomic.Int64
	sets := make(chan map[netip.Addr]bool, 64)
	stalled, release := make(chan struct{}), make(chan struct{})
	calls := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err = Watch(ctx, Options{Namespace: &h, ReadBuffer: 1, Resynced: func() { resyncs.Add(1) }}, func(m map[netip.Addr]bool) {
		if calls++; calls == 2 { // the first change after the listing
			close(stalled)
			<-release
		}
		select {
		case sets <- m:
		default: // only the last ones matter
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	ip("", "-n", name, "addr", "add", "203.0.113.1/32", "dev", "eth0")
	select {
	case <-stalled:
	case <-time.After(5 * time.Second):
		t.Fatal("not called")
	}
	const flood = 2000
	var batch strings.Builder
	for i := range flood {
		fmt.Fprintf(&batch, "addr add 10.%d.%d.%d/32 dev eth0\n", 80+i/62500, (i/250)%250, 1+i%250)
	}
	batch.WriteString("addr del 198.51.100.1/24 dev eth0\n")
	ip(batch.String(), "-n", name, "-batch", "-")
	close(release)
	want := func(m map[netip.Addr]bool) bool {
		return len(m) == flood+1 && m[netip.MustParseAddr("203.0.113.1")] && !m[netip.MustParseAddr("198.51.100.1")] &&
			m[netip.MustParseAddr("10.80.0.1")] && m[netip.MustParseAddr(fmt.Sprintf("10.80.%d.%d", ((flood-1)/250)%250, 1+(flood-1)%250))]
	}
	deadline := time.After(10 * time.Second)
	for ok := false; !ok; {
		select {
		case m := <-sets:
			ok = want(m)
		case <-deadline:
			t.Fatalf("the set never matched the namespace after the storm (resyncs %d)", resyncs.Load())
		}
	}
	if resyncs.Load() == 0 {
		t.Fatal("no resync: the storm did not overrun the buffer, the test tested nothing")
	}
	ip("", "-n", name, "addr", "add", "203.0.113.9/32", "dev", "eth0")
	deadline = time.After(5 * time.Second)
	for {
		select {
		case m := <-sets:
			if m[netip.MustParseAddr("203.0.113.9")] {
				t.Logf("%d resyncs", resyncs.Load())
				return
			}
		case <-deadline:
			t.Fatal("an address added after the storm is not reported")
		}
	}
}
