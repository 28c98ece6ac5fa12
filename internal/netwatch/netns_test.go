package netwatch

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// Real-kernel tests, each in a network namespace of its own. They run only
// with LVSD_INTEGRATION set (as root); then a missing prerequisite is a
// failure.

var nsSeq struct {
	sync.Mutex
	n int
}

// testNS is a fresh network namespace.
type testNS struct {
	name string
	h    netns.NsHandle
}

func newTestNS(t *testing.T) *testNS {
	t.Helper()
	if os.Getenv("LVSD_INTEGRATION") == "" {
		t.Skip("netns test: set LVSD_INTEGRATION=1 (needs root)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("LVSD_INTEGRATION is set but the test is not running as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("LVSD_INTEGRATION is set but iproute2 (ip) is missing")
	}
	nsSeq.Lock()
	nsSeq.n++
	n := &testNS{name: fmt.Sprintf("lvsdnw%d-%d", os.Getpid()%100000, nsSeq.n)}
	nsSeq.Unlock()
	n.ip(t, "", "netns", "add", n.name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.name).Run() })
	h, err := netns.GetFromName(n.name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	n.h = h
	return n
}

// ip runs ip -n NS args, with stdin if not empty (for -batch -).
func (n *testNS) ip(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	if args[0] != "netns" {
		args = append([]string{"-n", n.name}, args...)
	}
	cmd := exec.Command("ip", args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// index is the interface index of a link, as ip shows it.
func (n *testNS) index(t *testing.T, name string) int {
	t.Helper()
	out := n.ip(t, "", "-o", "link", "show", "dev", name)
	i, err := strconv.Atoi(out[:strings.IndexByte(out, ':')])
	if err != nil {
		t.Fatalf("index of %s in %q: %v", name, out, err)
	}
	return i
}

// run runs w until the test ends and returns the batches it delivers.
func run(t *testing.T, w *Watcher, fn func([]Event)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, fn) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// await reads events until want has been seen, in any order.
func await(t *testing.T, ch <-chan []Event, want ...Event) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for len(want) > 0 {
		select {
		case evs := <-ch:
			for _, e := range evs {
				if i := slices.Index(want, e); i >= 0 {
					want = slices.Delete(want, i, i+1)
				}
			}
		case <-deadline:
			t.Fatalf("not seen in 5 s: %v", want)
		}
	}
}

// A watcher lists what is there, then reports links coming up, going down,
// renamed and deleted, and addresses added and deleted.
func TestWatchNetns(t *testing.T) {
	n := newTestNS(t)
	n.ip(t, "", "link", "add", "a0", "type", "veth", "peer", "name", "a1")
	n.ip(t, "", "addr", "add", "198.51.100.1/24", "dev", "a0")
	lo, a0, a1 := n.index(t, "lo"), n.index(t, "a0"), n.index(t, "a1")
	w, err := New(Options{Namespace: &n.h})
	if err != nil {
		t.Fatal(err)
	}
	v4 := netip.MustParsePrefix("198.51.100.1/24")
	links := []Link{{lo, "lo", false}, {a0, "a0", false}, {a1, "a1", false}}
	slices.SortFunc(links, func(a, b Link) int { return a.Index - b.Index })
	if got := w.Links(); !slices.Equal(got, links) {
		t.Fatalf("Links() = %v; want %v", got, links)
	}
	if got, want := w.Addrs(), []Addr{{a0, v4}}; !slices.Equal(got, want) {
		t.Fatalf("Addrs() = %v; want %v", got, want)
	}
	ch := make(chan []Event, 64)
	run(t, w, func(evs []Event) { ch <- slices.Clone(evs) })
	select {
	case got := <-ch:
		var want []Event
		for _, l := range links {
			want = append(want, Event{Kind: LinkDown, Index: l.Index, Name: l.Name})
		}
		want = append(want, Event{Kind: AddrAdded, Index: a0, Name: "a0", Prefix: v4})
		if !slices.Equal(got, want) {
			t.Fatalf("first events %v; want %v", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no first events")
	}

	n.ip(t, "", "link", "set", "a0", "up") // its peer is down: a0 is not up yet
	n.ip(t, "", "link", "set", "a1", "up")
	await(t, ch, Event{Kind: LinkUp, Index: a0, Name: "a0"}, Event{Kind: LinkUp, Index: a1, Name: "a1"})
	for _, p := range []string{"198.51.100.7/32", "2001:db8::7/64"} {
		pfx := netip.MustParsePrefix(p)
		n.ip(t, "", "addr", "add", p, "dev", "a0", "nodad")
		await(t, ch, Event{Kind: AddrAdded, Index: a0, Name: "a0", Prefix: pfx})
		n.ip(t, "", "addr", "del", p, "dev", "a0")
		await(t, ch, Event{Kind: AddrDeleted, Index: a0, Name: "a0", Prefix: pfx})
	}
	n.ip(t, "", "link", "set", "a1", "down")
	await(t, ch, Event{Kind: LinkDown, Index: a0, Name: "a0"}, Event{Kind: LinkDown, Index: a1, Name: "a1"})
	n.ip(t, "", "link", "set", "a0", "down")
	n.ip(t, "", "link", "set", "a0", "name", "b0")
	await(t, ch, Event{Kind: LinkDown, Index: a0, Name: "b0"})
	n.ip(t, "", "link", "del", "b0") // and its peer
	await(t, ch, Event{Kind: AddrDeleted, Index: a0, Name: "b0", Prefix: v4},
		Event{Kind: LinkGone, Index: a0, Name: "b0"}, Event{Kind: LinkGone, Index: a1, Name: "a1"})
	if got, want := w.Links(), []Link{{lo, "lo", false}}; !slices.Equal(got, want) {
		t.Fatalf("Links() = %v; want %v", got, want)
	}
	if got := w.Addrs(); len(got) != 0 {
		t.Fatalf("Addrs() = %v; want none", got)
	}
	if w.Overruns() != 0 {
		t.Fatalf("%d overruns", w.Overruns())
	}
}

// Notifications that overflow the receive buffer while the handler is
// busy are lost by the kernel; the watcher notices, lists again and
// reports what changed meanwhile, each change once.
func TestWatchOverrunNetns(t *testing.T) {
	n := newTestNS(t)
	n.ip(t, "", "link", "add", "a0", "type", "veth", "peer", "name", "a1")
	n.ip(t, "", "addr", "add", "198.51.100.1/24", "dev", "a0")
	n.ip(t, "", "addr", "add", "203.0.113.2/24", "dev", "a0")
	a0 := n.index(t, "a0")
	w, err := New(Options{Namespace: &n.h, ReadBuffer: 1}) // the kernel's minimum, a few messages
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan []Event, 4096)
	stalled, release := make(chan struct{}), make(chan struct{})
	calls := 0
	run(t, w, func(evs []Event) {
		if calls++; calls == 2 { // the first change after the listing
			close(stalled)
			<-release
		}
		ch <- slices.Clone(evs)
	})
	n.ip(t, "", "addr", "add", "198.51.100.3/32", "dev", "a0")
	select {
	case <-stalled:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler was not called")
	}
	const flood = 300
	var batch strings.Builder
	want := map[Event]int{{Kind: AddrDeleted, Index: a0, Name: "a0", Prefix: netip.MustParsePrefix("203.0.113.2/24")}: 0}
	for i := range flood {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 77, byte(i / 250), byte(1 + i%250)}), 32)
		fmt.Fprintf(&batch, "addr add %v dev a0\n", p)
		want[Event{Kind: AddrAdded, Index: a0, Name: "a0", Prefix: p}] = 0
	}
	batch.WriteString("addr del 203.0.113.2/24 dev a0\n")
	n.ip(t, batch.String(), "-batch", "-")
	close(release)

	deadline := time.After(10 * time.Second)
	for seen := 0; seen < len(want); {
		select {
		case evs := <-ch:
			for _, e := range evs {
				if c, ok := want[e]; ok {
					if c == 0 {
						seen++
					}
					want[e] = c + 1
				}
			}
		case <-deadline:
			var missing []Event
			for e, c := range want {
				if c == 0 {
					missing = append(missing, e)
				}
			}
			t.Fatalf("%d changes not reported in 10 s (overruns %d), such as %v", len(missing), w.Overruns(), missing[0])
		}
	}
	if w.Overruns() == 0 {
		t.Fatal("no overrun noticed: the test did not test it")
	}
	for e, c := range want {
		if c != 1 {
			t.Errorf("%v reported %d times", e, c)
		}
	}
	if got := len(w.Addrs()); got != flood+2 {
		t.Errorf("%d addresses known; want %d", got, flood+2)
	}
	t.Logf("%d overruns", w.Overruns())
}

// A socket that fails (here: closed under the watcher) is reopened and
// listed again: what changed meanwhile is reported, then Resynced, and
// later changes are followed on the new socket.
func TestWatchReopenNetns(t *testing.T) {
	n := newTestNS(t)
	n.ip(t, "", "link", "add", "a0", "type", "veth", "peer", "name", "a1")
	n.ip(t, "", "addr", "add", "198.51.100.1/24", "dev", "a0")
	a0 := n.index(t, "a0")
	w, err := New(Options{Namespace: &n.h})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan []Event, 64)
	run(t, w, func(evs []Event) { ch <- slices.Clone(evs) })
	await(t, ch, Event{Kind: AddrAdded, Index: a0, Name: "a0", Prefix: netip.MustParsePrefix("198.51.100.1/24")})
	w.mu.Lock()
	old := w.s
	w.mu.Unlock()
	old.close() // the read fails as a broken socket's would
	n.ip(t, "", "addr", "del", "198.51.100.1/24", "dev", "a0")
	await(t, ch, Event{Kind: AddrDeleted, Index: a0, Name: "a0", Prefix: netip.MustParsePrefix("198.51.100.1/24")}, Event{Kind: Resynced})
	n.ip(t, "", "addr", "add", "203.0.113.7/32", "dev", "a0")
	await(t, ch, Event{Kind: AddrAdded, Index: a0, Name: "a0", Prefix: netip.MustParsePrefix("203.0.113.7/32")})
	if w.Reopens() != 1 || w.Resyncs() != 1 {
		t.Fatalf("reopens %d, resyncs %d; want 1, 1", w.Reopens(), w.Resyncs())
	}
}

// The receive buffer is what Options asks for: SO_RCVBUF (which the kernel
// doubles, capped at rmem_max), or SO_RCVBUFFORCE beyond rmem_max.
func TestWatchReadBufferNetns(t *testing.T) {
	n := newTestNS(t)
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Fatal(err)
	}
	rmemMax, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		size  int
		force bool
		want  int
	}{
		{64 << 10, false, min(64<<10, rmemMax) * 2},
		{rmemMax + 1<<20, false, rmemMax * 2},
		{rmemMax + 1<<20, true, (rmemMax + 1<<20) * 2},
	} {
		w, err := New(Options{Namespace: &n.h, ReadBuffer: c.size, ForceBuffer: c.force})
		if err != nil {
			t.Fatal(err)
		}
		got, err := w.s.readBuffer()
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("ReadBuffer %d force %v: the kernel says %d; want %d", c.size, c.force, got, c.want)
		}
	}

	// Resized while running (a reload), and the size kept by a reopened
	// socket.
	w, err := New(Options{Namespace: &n.h, ReadBuffer: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	want := (rmemMax + 1<<20) * 2
	if err := w.SetReadBuffer(rmemMax+1<<20, true); err != nil {
		t.Fatal(err)
	}
	if got, err := w.ReadBuffer(); err != nil || got != want {
		t.Fatalf("after SetReadBuffer: %d %v; want %d", got, err, want)
	}
	if _, err := w.reopen(); err != nil {
		t.Fatal(err)
	}
	if got, err := w.ReadBuffer(); err != nil || got != want {
		t.Fatalf("after a reopen: %d %v; want %d", got, err, want)
	}
}
