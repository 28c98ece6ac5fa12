package vrrp

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Named faults of docs/RELIABILITY.md on the built lvsd binary in network
// namespaces (see lvsd_netns_linux_test.go): netlink overruns while the
// process is stopped, the VRRP interface re-created, renamed, its primary
// address changed, a VIP deleted by hand, a link down and up.

const reliabilityMetrics = "127.0.0.1:9165"

// metric reads one series (name with its labels, as exposed) from lvsd's
// /metrics in namespace ns; -1 when it cannot be read.
func metric(t *testing.T, ns, series string) float64 {
	t.Helper()
	v := -1.0
	inNamespace(t, ns, func() { // the connection is made on this thread, in ns
		c, err := net.DialTimeout("tcp", reliabilityMetrics, 2*time.Second)
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.WriteString(c, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n"); err != nil {
			return
		}
		sc := bufio.NewScanner(c)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
				if f, err := strconv.ParseFloat(rest, 64); err == nil {
					v = f
				}
			}
		}
	})
	return v
}

// awaitMetric waits until series reaches at least min.
func awaitMetric(t *testing.T, ns, series string, min float64, d time.Duration) float64 {
	t.Helper()
	var v float64
	waitFor(t, d, series, func() bool { v = metric(t, ns, series); return v >= min })
	return v
}

// ipBatch runs "ip -n ns -batch -" with the lines.
func ipBatch(t *testing.T, ns string, lines []string) {
	t.Helper()
	cmd := exec.Command("ip", "-n", ns, "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip -batch: %v: %s", err, out)
	}
}

// The overflow scenario. lvsd MASTER in namespace a; stopped
// (SIGSTOP) while 5,000 addresses are added and removed on another
// interface, resumed: the address and link watchers overran (counted in
// lvsd_netlink_resyncs_total) and resynced; a VIP deleted by hand is back
// within 2 s. Stopped again while 100 veth pairs are created and deleted,
// resumed: the link watch resynced; eth0 down gives FAULT within 1 s and
// the VIP is released; eth0 up again gives MASTER with the VIP.
func TestLvsdNetlinkOverrunWhileStopped(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	ipCmd(t, "-n", n.a, "link", "add", "st0", "type", "veth", "peer", "name", "st1")
	a := startLvsd(t, n.a, "A", lvsdConf(150, ""), "--metrics-listen", reliabilityMetrics)
	a.waitState(t, "VI_1", "MASTER", 6*time.Second)
	waitFor(t, 3*time.Second, "VIP on A", func() bool { return hasAddr(t, n.a, "eth0", "192.0.2.100") })
	const addrSeries, linkSeries = `lvsd_netlink_resyncs_total{watch="vrrp_address"}`, `lvsd_netlink_resyncs_total{watch="vrrp_link"}`
	if v := metric(t, n.a, addrSeries); v != 0 {
		t.Fatalf("%s = %v before any storm", addrSeries, v)
	}

	// The address storm, lvsd stopped.
	a.signal(syscall.SIGSTOP)
	const storm = 5000 // 25 times what the 128 KiB buffer holds; the counter shows the overrun
	lines := make([]string, 0, storm)
	for i := range storm {
		lines = append(lines, fmt.Sprintf("addr add 10.%d.%d.%d/32 dev st0", 64+i/62500, (i/250)%250, 1+i%250))
	}
	ipBatch(t, n.a, lines)
	ipCmd(t, "-n", n.a, "addr", "flush", "dev", "st0")
	a.signal(syscall.SIGCONT)
	v := awaitMetric(t, n.a, addrSeries, 1, 10*time.Second)
	t.Logf("after %d address additions and removals: %s %v", storm, addrSeries, v)

	ipCmd(t, "-n", n.a, "addr", "del", "192.0.2.100/24", "dev", "eth0")
	deleted := time.Now()
	waitFor(t, 2*time.Second, "the VIP deleted by hand back", func() bool { return hasAddr(t, n.a, "eth0", "192.0.2.100") })
	t.Logf("VIP deleted by hand restored in %v", time.Since(deleted).Round(time.Millisecond))

	// The link storm, lvsd stopped.
	before := metric(t, n.a, linkSeries)
	a.signal(syscall.SIGSTOP)
	lines = lines[:0]
	for i := range 100 {
		lines = append(lines, fmt.Sprintf("link add s%d type veth peer name s%dp", i, i))
	}
	for i := range 100 {
		lines = append(lines, fmt.Sprintf("link del s%d", i))
	}
	ipBatch(t, n.a, lines)
	a.signal(syscall.SIGCONT)
	v = awaitMetric(t, n.a, linkSeries, before+1, 10*time.Second)
	t.Logf("after 100 veth pairs created and deleted: %s %v", linkSeries, v)

	ipCmd(t, "-n", n.a, "link", "set", "eth0", "down")
	down := time.Now()
	a.waitState(t, "VI_1", "FAULT", time.Second)
	t.Logf("FAULT %v after eth0 down", time.Since(down).Round(time.Millisecond))
	waitFor(t, time.Second, "VIP released in FAULT", func() bool { return !hasAddr(t, n.a, "eth0", "192.0.2.100") })

	ipCmd(t, "-n", n.a, "link", "set", "eth0", "up")
	a.waitState(t, "VI_1", "MASTER", 6*time.Second)
	waitFor(t, 3*time.Second, "VIP back after eth0 up", func() bool { return hasAddr(t, n.a, "eth0", "192.0.2.100") })
}

// recreateEth0 deletes eth0 of namespace ns (its bridge port port in
// brNS) and creates it again with the same name and address; it returns
// when the new eth0 is up.
func recreateEth0(t *testing.T, brNS, ns, port, addr string) {
	t.Helper()
	ipCmd(t, "-n", brNS, "link", "del", port)
	createEth0(t, brNS, ns, port, addr)
}

// createEth0 is the second half of recreateEth0.
func createEth0(t *testing.T, brNS, ns, port, addr string) {
	t.Helper()
	ipCmd(t, "-n", brNS, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
	ipCmd(t, "-n", brNS, "link", "set", port, "master", "br0", "up")
	ipCmd(t, "-n", ns, "addr", "add", addr, "dev", "eth0")
	ipCmd(t, "-n", ns, "link", "set", "eth0", "up")
}

// keepalivedState is the state keepalived's log entered last ("" if none).
func keepalivedState(out string) string {
	i := strings.LastIndex(out, "Entering ")
	if i < 0 {
		return ""
	}
	st, _, _ := strings.Cut(out[i+len("Entering "):], " ")
	return st
}

// firstAdvertAfter waits up to d for an advert from src captured after t0
// and returns when it was captured.
func firstAdvertAfter(t *testing.T, c *capture, src netip.Addr, t0 time.Time, d time.Duration, what string) time.Time {
	t.Helper()
	var at time.Time
	waitFor(t, d, what, func() bool {
		frames, _ := c.snapshot()
		for _, f := range advertsFrom(frames, src) {
			if f.at.After(t0) {
				at = f.at
				return true
			}
		}
		return false
	})
	return at
}

// The VRRP interface deleted and created again (same name, same address,
// a new index and MAC), with keepalived 2.2.7 as the peer, A (lvsd,
// priority 150) MASTER.
//
// Quick: eth0 deleted just after one of A's adverts and back 0.6 s
// later. A returns to MASTER at once (no BACKUP between): its advert is
// on the wire within one advert interval of the interface coming back,
// and every interval after; keepalived never becomes MASTER (its log, no
// advert from it, the VIP never on it) through the time its
// Master_Down_Interval would have ended.
//
// Slow: eth0 deleted until keepalived has taken over (MASTER), then back.
// A goes FAULT, BACKUP, MASTER (Master_Down_Interval, keepalived's path);
// its adverts are on the wire within one advert interval of it becoming
// MASTER, and go on every interval, with no send error; its gratuitous
// ARPs carry the new MAC; keepalived is BACKUP within 1.5 s of A's first
// advert and stays so. Then the reference: keepalived in A's place, a
// re-creation at once; lvsd's slow first advert after the interface came
// back is no later than keepalived's (keepalived leaves FAULT for BACKUP
// and waits Master_Down_Interval, since the peer's lower-priority
// adverts are discarded while preempting).
func TestLvsdInterfaceRecreated(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	capB := startCapture(t, n.br, "vb") // va is re-created: capture on the peer's port
	a := startLvsd(t, n.a, "A", lvsdConf(150, ""), "--metrics-listen", reliabilityMetrics)
	kB, _, _ := startKeepalivedText(t, n.b, lvsdConf(100, ""))
	a.waitState(t, "VI_1", "MASTER", 6*time.Second)
	waitFor(t, 6*time.Second, "keepalived BACKUP", func() bool { return keepalivedState(kB.String()) == "BACKUP" })
	src, srcB := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	mastersB := strings.Count(kB.String(), "Entering MASTER")

	// Quick.
	last := firstAdvertAfter(t, capB, src, time.Now(), 2*time.Second, "an advert from A")
	ipCmd(t, "-n", n.br, "link", "del", "va")
	gone := time.Now()
	a.waitState(t, "VI_1", "FAULT", time.Second)
	time.Sleep(time.Until(gone.Add(600 * time.Millisecond)))
	createEth0(t, n.br, n.a, "va", "192.0.2.1/24")
	back := time.Now()
	first := firstAdvertAfter(t, capB, src, back, 1500*time.Millisecond, "an advert from A after eth0 came back")
	t.Logf("quick: eth0 deleted %v after A's advert, back %v later; A's first advert %v after it came back",
		gone.Sub(last).Round(time.Millisecond), back.Sub(gone).Round(time.Millisecond), first.Sub(back).Round(time.Millisecond))
	if d := first.Sub(back); d > time.Second {
		t.Fatalf("A's first advert %v after eth0 came back; want within one advert interval (1 s)", d)
	}
	tr := a.transitions()
	if l := tr[len(tr)-1]; l.from != "FAULT" || l.to != "MASTER" || !strings.Contains(a.out.String(), "MASTER again at once") {
		t.Fatalf("A's last transition %+v; want FAULT to MASTER, the quick return", l)
	}
	// keepalived's Master_Down_Interval (3.61 s) would have ended 3.61 s
	// after A's last advert before the deletion: watch beyond it.
	for end := last.Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if hasAddr(t, n.b, "eth0", "192.0.2.100") {
			t.Fatalf("the VIP on keepalived's eth0: two masters\nkeepalived:\n%s", kB.String())
		}
	}
	frames, _ := capB.snapshot()
	fromA := 0
	for _, f := range frames {
		switch {
		case f.at.Before(gone):
		case f.src == srcB && f.adv.Priority != 0:
			t.Fatalf("keepalived advertised (priority %d) at %v, %v after eth0 came back: it became MASTER", f.adv.Priority, f.at, f.at.Sub(back))
		case f.src == src:
			fromA++
		}
	}
	if c := strings.Count(kB.String(), "Entering MASTER"); c != mastersB || keepalivedState(kB.String()) != "BACKUP" {
		t.Fatalf("keepalived entered MASTER (%d times, was %d), last state %s", c, mastersB, keepalivedState(kB.String()))
	}
	if fromA < 3 {
		t.Fatalf("%d adverts from A since eth0 came back (%v); want one every second", fromA, time.Since(back))
	}
	if out := a.out.String(); strings.Contains(out[strings.LastIndex(out, "socket follows it"):], "sending advert") {
		t.Fatalf("A failed to send on the re-created interface:\n%s", out)
	}

	// Slow.
	ipCmd(t, "-n", n.br, "link", "del", "va")
	waitFor(t, 6*time.Second, "keepalived MASTER while A's eth0 is gone", func() bool { return keepalivedState(kB.String()) == "MASTER" })
	nTr := len(a.transitions())
	createEth0(t, n.br, n.a, "va", "192.0.2.1/24")
	back = time.Now()

	ifi := ipCmd(t, "-n", n.a, "-o", "link", "show", "dev", "eth0")
	f := strings.Fields(ifi[strings.Index(ifi, "link/ether"):])
	mac, err := net.ParseMAC(f[1])
	if err != nil {
		t.Fatalf("MAC of the new eth0 in %q: %v", ifi, err)
	}
	var mastered time.Time
	waitFor(t, 10*time.Second, "A MASTER again", func() bool {
		tr := a.transitions()
		for i := len(tr) - 1; i >= nTr+1; i-- {
			if tr[i].to == "MASTER" && tr[i-1].to == "BACKUP" && tr[i-2].to == "FAULT" {
				mastered = time.Now()
				return true
			}
		}
		return false
	})
	// mastered is when the test saw it (polled every 50 ms).
	lvsdFirst := firstAdvertAfter(t, capB, src, back, 1200*time.Millisecond, "an advert from A on the wire after it is MASTER again")
	lvsdDelay := lvsdFirst.Sub(back)
	t.Logf("lvsd: MASTER %v after eth0 came back; first advert %v after it came back", mastered.Sub(back).Round(time.Millisecond), lvsdDelay.Round(time.Millisecond))
	waitFor(t, 1500*time.Millisecond, "keepalived BACKUP after A's advert", func() bool { return keepalivedState(kB.String()) == "BACKUP" })
	settled := time.Now()
	time.Sleep(2500 * time.Millisecond)
	frames, arps := capB.snapshot()
	fromA, fromB := 0, 0
	for _, f := range frames {
		if f.at.Before(settled.Add(100 * time.Millisecond)) {
			continue
		}
		switch f.src {
		case src:
			fromA++
		case netip.MustParseAddr("192.0.2.2"):
			if f.adv.Priority != 0 {
				fromB++
			}
		}
	}
	if fromA < 2 || fromB != 0 {
		t.Fatalf("in the 2.4 s after keepalived went BACKUP: %d adverts from A (want 2 or more), %d from keepalived (want 0)", fromA, fromB)
	}
	if s := keepalivedState(kB.String()); s != "BACKUP" {
		t.Fatalf("keepalived is %s: two masters", s)
	}
	newGARP := false
	for _, f := range arps {
		if f.at.After(back) && f.sender == netip.MustParseAddr("192.0.2.100") && f.sha.String() == mac.String() {
			newGARP = true
		}
	}
	if !newGARP {
		t.Fatalf("no gratuitous ARP for the VIP with the new MAC %v", mac)
	}
	if !hasAddr(t, n.a, "eth0", "192.0.2.100") || hasAddr(t, n.b, "eth0", "192.0.2.100") {
		t.Fatalf("VIP not only on A:\nA %s\nB %s", n.addrs(t, n.a), n.addrs(t, n.b))
	}
	// An advert sent as the interface was being deleted may fail; none
	// once its sockets follow the new one.
	out := a.out.String()
	i := strings.LastIndex(out, "socket follows it")
	if i < 0 {
		t.Fatal("A never logged its sockets following the new interface")
	}
	if after := out[i:]; strings.Contains(after, "no such device") || strings.Contains(after, "sending advert") {
		t.Fatalf("A failed to send on the re-created interface:\n%s", after)
	}
	if v := metric(t, n.a, `lvsd_vrrp_repairs_total{what="socket"}`); v < 2 {
		t.Fatalf("socket repairs %v; want the VRRP and the GARP sockets rebound", v)
	}

	// The reference: keepalived as A. lvsd stops (priority 0: keepalived
	// B takes over), keepalived starts in A's namespace and preempts.
	a.signal(syscall.SIGTERM)
	<-a.done
	kA, _, _ := startKeepalivedText(t, n.a, lvsdConf(150, ""))
	waitFor(t, 10*time.Second, "keepalived A MASTER", func() bool { return keepalivedState(kA.String()) == "MASTER" })
	waitFor(t, 3*time.Second, "keepalived B BACKUP", func() bool { return keepalivedState(kB.String()) == "BACKUP" })
	recreateEth0(t, n.br, n.a, "va", "192.0.2.1/24")
	back = time.Now()
	kaFirst := firstAdvertAfter(t, capB, src, back, 10*time.Second, "an advert from keepalived A after eth0 came back")
	kaDelay := kaFirst.Sub(back)
	t.Logf("keepalived: first advert %v after eth0 came back (lvsd: %v)", kaDelay.Round(time.Millisecond), lvsdDelay.Round(time.Millisecond))
	if lvsdDelay > kaDelay+500*time.Millisecond {
		t.Fatalf("lvsd's first advert after the interface came back took %v, keepalived's %v", lvsdDelay, kaDelay)
	}
}

// The VRRP interface's primary address replaced: the adverts come from
// the new one within 2 s (the deletion asks for a safety-net pass at once) (the VIP, a secondary of the old primary's
// subnet, went with it and is restored). Then eth0 renamed eth9: FAULT
// within 1 s and the VIP leaves eth9; renamed back: MASTER again, adverts
// resume.
func TestLvsdPrimaryChangedAndRenamed(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	capA := startCapture(t, n.br, "va")
	a := startLvsd(t, n.a, "A", lvsdConf(150, ""))
	a.waitState(t, "VI_1", "MASTER", 6*time.Second)

	oldSrc, newSrc := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.1")
	ipCmd(t, "-n", n.a, "addr", "add", "198.51.100.1/24", "dev", "eth0")
	ipCmd(t, "-n", n.a, "addr", "del", "192.0.2.1/24", "dev", "eth0")
	changed := time.Now()
	waitFor(t, 2*time.Second, "adverts from the new primary address", func() bool {
		frames, _ := capA.snapshot()
		for _, f := range advertsFrom(frames, newSrc) {
			if f.at.After(changed) {
				return true
			}
		}
		return false
	})
	t.Logf("adverts from %v %v after the primary address changed", newSrc, time.Since(changed).Round(time.Millisecond))
	time.Sleep(1500 * time.Millisecond)
	frames, _ := capA.snapshot()
	for _, f := range advertsFrom(frames, oldSrc) {
		if f.at.After(changed.Add(2 * time.Second)) {
			t.Fatalf("an advert from the old source %v at %v", oldSrc, f.at)
		}
	}
	waitFor(t, 2*time.Second, "VIP restored", func() bool { return hasAddr(t, n.a, "eth0", "192.0.2.100") })

	ipCmd(t, "-n", n.a, "link", "set", "eth0", "down")
	ipCmd(t, "-n", n.a, "link", "set", "eth0", "name", "eth9")
	ipCmd(t, "-n", n.a, "link", "set", "eth9", "up")
	renamed := time.Now()
	a.waitState(t, "VI_1", "FAULT", time.Second)
	waitFor(t, time.Second, "VIP gone from the renamed interface", func() bool { return !hasAddr(t, n.a, "eth9", "192.0.2.100") })
	t.Logf("FAULT %v after eth0 was renamed", time.Since(renamed).Round(time.Millisecond))
	time.Sleep(1500 * time.Millisecond) // a safety-net pass or two
	if s := a.state("VI_1"); s != "FAULT" {
		t.Fatalf("A is %s with no eth0", s)
	}

	ipCmd(t, "-n", n.a, "link", "set", "eth9", "down")
	ipCmd(t, "-n", n.a, "link", "set", "eth9", "name", "eth0")
	ipCmd(t, "-n", n.a, "link", "set", "eth0", "up")
	back := time.Now()
	a.waitState(t, "VI_1", "MASTER", 6*time.Second)
	waitFor(t, 1200*time.Millisecond, "adverts after the rename back", func() bool {
		frames, _ := capA.snapshot()
		for _, f := range advertsFrom(frames, newSrc) {
			if f.at.After(back) {
				return true
			}
		}
		return false
	})
	waitFor(t, 3*time.Second, "VIP back on eth0", func() bool { return hasAddr(t, n.a, "eth0", "192.0.2.100") })
}

// rtnetlinkBuffers counts lvsd's rtnetlink sockets in namespace ns by
// receive buffer (ss's skmem rb, the kernel's SO_RCVBUF): lvsd is the only
// process there.
func rtnetlinkBuffers(t *testing.T, ns string) map[int]int {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "ss", "-f", "netlink", "-m", "-n").CombinedOutput()
	if err != nil {
		t.Fatalf("ss: %v: %s", err, out)
	}
	got := map[int]int{}
	f := strings.Fields(string(out))
	for i, w := range f {
		if !strings.HasPrefix(w, "skmem:(") || i < 3 || !strings.HasPrefix(f[i-2], "0:") { // protocol 0: NETLINK_ROUTE
			continue
		}
		for _, kv := range strings.Split(strings.Trim(w[len("skmem:"):], "()"), ",") {
			if v, ok := strings.CutPrefix(kv, "rb"); ok {
				n, _ := strconv.Atoi(v)
				got[n]++
			}
		}
	}
	return got
}

// The netlink receive buffers follow the configuration, and a reload
// resizes the open sockets as keepalived does: lvsd starts with
// vrrp_netlink_monitor_rcv_bufs 300000 and vrrp_netlink_cmd_rcv_bufs
// 350000 (forced: the kernel then reports exactly twice the size); after
// a SIGHUP with 500000 and 450000 every one of its link and address
// watchers and its command socket has the new size, none the old.
func TestLvsdNetlinkBuffersReload(t *testing.T) {
	requireIntegration(t)
	if _, err := exec.LookPath("ss"); err != nil {
		t.Fatal("LVSD_INTEGRATION is set but ss (iproute2) is missing")
	}
	n := newTestNet(t)
	bufs := func(mon, cmd int) string {
		return fmt.Sprintf("global_defs {\n  vrrp_netlink_monitor_rcv_bufs %d\n  vrrp_netlink_monitor_rcv_bufs_force\n  vrrp_netlink_cmd_rcv_bufs %d\n  vrrp_netlink_cmd_rcv_bufs_force\n}\n", mon, cmd)
	}
	a := startLvsd(t, n.a, "A", bufs(300000, 350000)+lvsdConf(150, ""))
	a.waitState(t, "VI_1", "MASTER", 6*time.Second)
	var got map[int]int
	// Link (eth0) and address watchers; the command socket opens with the
	// first safety-net pass.
	waitFor(t, 3*time.Second, "the watchers and the command socket at the configured sizes", func() bool {
		got = rtnetlinkBuffers(t, n.a)
		return got[600000] >= 2 && got[700000] == 1
	})
	t.Logf("before the reload, rtnetlink sockets by receive buffer: %v", got)
	watchers := got[600000]

	a.rewrite(t, bufs(500000, 450000)+lvsdConf(150, ""))
	a.signal(syscall.SIGHUP)
	waitFor(t, 3*time.Second, "the sockets resized by the reload", func() bool {
		got = rtnetlinkBuffers(t, n.a)
		return got[1000000] >= watchers && got[900000] == 1 && got[600000] == 0 && got[700000] == 0
	})
	t.Logf("after the reload: %v", got)
	if s := a.state("VI_1"); s != "MASTER" {
		t.Fatalf("A is %s after the reload", s)
	}
}

// A tracked interface deleted and created again with the same name (a new
// index): the MASTER enters FAULT within 1 s and releases its VIP while
// the interface is gone, stays in FAULT (the safety net does not bring it
// back), and leaves FAULT once the new one is up: MASTER again, the VIP
// back, adverts on the wire.
func TestLvsdTrackedInterfaceRecreated(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	capA := startCapture(t, n.br, "va")
	mk := func() {
		ipCmd(t, "-n", n.a, "link", "add", "tr0", "type", "veth", "peer", "name", "tr1")
		ipCmd(t, "-n", n.a, "link", "set", "tr1", "up")
		ipCmd(t, "-n", n.a, "link", "set", "tr0", "up")
	}
	mk()
	a := startLvsd(t, n.a, "A", lvsdConf(150, "  track_interface {\n    tr0\n  }\n"))
	a.waitState(t, "VI_1", "MASTER", 6*time.Second)
	waitFor(t, 3*time.Second, "VIP on A", func() bool { return hasAddr(t, n.a, "eth0", "192.0.2.100") })

	ipCmd(t, "-n", n.a, "link", "del", "tr0")
	gone := time.Now()
	a.waitState(t, "VI_1", "FAULT", time.Second)
	t.Logf("FAULT %v after the tracked interface was deleted", time.Since(gone).Round(time.Millisecond))
	waitFor(t, time.Second, "VIP released in FAULT", func() bool { return !hasAddr(t, n.a, "eth0", "192.0.2.100") })
	time.Sleep(1500 * time.Millisecond) // a safety-net pass or two
	if s := a.state("VI_1"); s != "FAULT" {
		t.Fatalf("A is %s with its tracked interface gone", s)
	}

	mk()
	back := time.Now()
	a.waitState(t, "VI_1", "MASTER", 6*time.Second)
	t.Logf("MASTER %v after the tracked interface came back", time.Since(back).Round(time.Millisecond))
	waitFor(t, 3*time.Second, "VIP back", func() bool { return hasAddr(t, n.a, "eth0", "192.0.2.100") })
	firstAdvertAfter(t, capA, netip.MustParseAddr("192.0.2.1"), back, 6*time.Second, "adverts after the tracked interface came back")
}
