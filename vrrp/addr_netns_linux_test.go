package vrrp

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// inNamespace runs fn on a thread in namespace ns (the watchers subscribe
// in the namespace of the thread that starts them).
func inNamespace(t *testing.T, ns string, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(err) // a thread left in the wrong namespace must not be reused
		}
	}()
	fn()
}

func next[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s in 5 s", what)
		panic("unreachable")
	}
}

func none[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %v", what, v)
	case <-time.After(300 * time.Millisecond):
	}
}

// watchLink reports the state of one link now and when it changes, not
// the same state twice; watchAddrDeleted reports addresses deleted.
func TestWatchLinkAndAddrDeletedNetns(t *testing.T) {
	requireIntegration(t)
	ns := fmt.Sprintf("lvsdwl%d", os.Getpid()%100000)
	ipCmd(t, "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	ipCmd(t, "-n", ns, "link", "add", "e0", "type", "veth", "peer", "name", "e1")
	ipCmd(t, "-n", ns, "link", "set", "e0", "up") // its peer is down: not up yet
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ups, lateUps, dels := make(chan bool, 16), make(chan bool, 16), make(chan netip.Prefix, 16)
	inNamespace(t, ns, func() {
		if err := watchLink(ctx, nil, "e0", func(up bool) { ups <- up }, nil); err != nil {
			t.Fatal(err)
		}
		if err := watchLink(ctx, nil, "late", func(up bool) { lateUps <- up }, nil); err != nil {
			t.Fatal(err)
		}
		if err := watchAddrDeleted(ctx, nil, func(p netip.Prefix) { dels <- p }, nil); err != nil {
			t.Fatal(err)
		}
	})
	if next(t, ups, "link state") {
		t.Fatal("e0 reported up with its peer down")
	}
	ipCmd(t, "-n", ns, "link", "set", "e1", "up")
	if !next(t, ups, "link state") {
		t.Fatal("e0 not reported up with its peer up")
	}
	ipCmd(t, "-n", ns, "link", "set", "e1", "down")
	if next(t, ups, "link state") {
		t.Fatal("e0 not reported down with its peer down")
	}
	ipCmd(t, "-n", ns, "link", "set", "e0", "down") // still not up
	none(t, ups, "link state")

	for _, p := range []string{"192.0.2.5/24", "2001:db8::5/128"} {
		ipCmd(t, "-n", ns, "addr", "add", p, "dev", "e0", "nodad")
		ipCmd(t, "-n", ns, "addr", "del", p, "dev", "e0")
		// The IPv6 link-local addresses of e0 and e1 come and go too.
		for got := next(t, dels, "deletion"); got != netip.MustParsePrefix(p); got = next(t, dels, "deletion") {
			if !got.Addr().IsLinkLocalUnicast() {
				t.Fatalf("%v reported deleted; want %v", got, p)
			}
		}
	}

	none(t, lateUps, "state of a link not there")
	ipCmd(t, "-n", ns, "link", "add", "late", "type", "veth", "peer", "name", "late1")
	if next(t, lateUps, "link state") {
		t.Fatal("a new link reported up")
	}
	ipCmd(t, "-n", ns, "link", "set", "late", "up")
	ipCmd(t, "-n", ns, "link", "set", "late1", "up")
	if !next(t, lateUps, "link state") {
		t.Fatal("late not reported up")
	}
	ipCmd(t, "-n", ns, "link", "del", "late")
	if next(t, lateUps, "link state") {
		t.Fatal("a link deleted reported up")
	}
	none(t, lateUps, "link state")
	none(t, ups, "link state")

	// Followed by name: renamed away and up under another name, it is
	// not reported; renamed back, it is.
	ipCmd(t, "-n", ns, "link", "set", "e0", "name", "e9")
	ipCmd(t, "-n", ns, "link", "set", "e9", "up")
	ipCmd(t, "-n", ns, "link", "set", "e1", "up")
	none(t, ups, "link state of e0 renamed e9")
	ipCmd(t, "-n", ns, "link", "set", "e9", "down")
	ipCmd(t, "-n", ns, "link", "set", "e9", "name", "e0")
	none(t, ups, "link state of e0 renamed back, down as before")
	ipCmd(t, "-n", ns, "link", "set", "e0", "up")
	if !next(t, ups, "link state") {
		t.Fatal("e0 renamed back not reported up")
	}
}
