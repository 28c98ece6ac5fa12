package localaddr

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
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
	if err := Watch(ctx, Options{Namespace: &h}, func(m map[netip.Addr]bool) { sets <- m }); err != nil {
		t.Fatal(err)
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
