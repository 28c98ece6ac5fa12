package vrrp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/lvsd/lvsd/vrrp/advert"
	"github.com/lvsd/lvsd/vrrp/internal/checksum"
)

// Network namespace tests: two engines in two namespaces joined by a bridge
// in a third. They run only with LVSD_INTEGRATION set (as root); then a
// missing prerequisite is a failure.

func requireIntegration(t *testing.T) {
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
}

func ipCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

type testNet struct {
	a, b, br string // namespace names
}

var nsSeq struct {
	sync.Mutex
	n int
}

// newTestNet builds: ns a (eth0 192.0.2.1/24) and ns b (eth0 192.0.2.2/24),
// each linked by a veth to bridge br0 in ns br (ports va and vb).
func newTestNet(t *testing.T) *testNet {
	t.Helper()
	nsSeq.Lock()
	nsSeq.n++
	p := fmt.Sprintf("lvsdv%d-%d", os.Getpid()%100000, nsSeq.n)
	nsSeq.Unlock()
	n := &testNet{a: p + "a", b: p + "b", br: p + "br"}
	for _, ns := range []string{n.a, n.b, n.br} {
		ipCmd(t, "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	ipCmd(t, "-n", n.br, "link", "add", "br0", "type", "bridge")
	ipCmd(t, "-n", n.br, "link", "set", "br0", "up")
	for _, x := range []struct{ ns, port, addr string }{{n.a, "va", "192.0.2.1/24"}, {n.b, "vb", "192.0.2.2/24"}} {
		ipCmd(t, "-n", n.br, "link", "add", x.port, "type", "veth", "peer", "name", "eth0", "netns", x.ns)
		ipCmd(t, "-n", n.br, "link", "set", x.port, "master", "br0", "up")
		ipCmd(t, "-n", x.ns, "addr", "add", x.addr, "dev", "eth0")
		ipCmd(t, "-n", x.ns, "link", "set", "eth0", "up")
		ipCmd(t, "-n", x.ns, "link", "set", "lo", "up")
	}
	return n
}

func (n *testNet) addrs(t *testing.T, ns string) string {
	return ipCmd(t, "-n", ns, "-4", "-o", "addr", "show", "dev", "eth0")
}

// --- capture on a bridge port

type vrrpFrame struct {
	at       time.Time
	src      netip.Addr
	ttl, tos int
	adv      *advert.Advert
	ethSrc   net.HardwareAddr
}

type arpFrame struct {
	at      time.Time
	op      uint16
	sender  netip.Addr
	target  netip.Addr
	bcastTo bool
	ethSrc  net.HardwareAddr // Ethernet source
	sha     net.HardwareAddr // ARP sender hardware address
}

// naFrame is an ICMPv6 neighbour advertisement seen on the wire.
type naFrame struct {
	at               time.Time
	ethSrc, ethDst   net.HardwareAddr
	src, dst, target netip.Addr
	hopLimit         int
	flags            byte // R 0x80, S 0x40, O 0x20
	tlla             net.HardwareAddr
	checksumOK       bool
}

type capture struct {
	mu    sync.Mutex
	vrrp  []vrrpFrame
	arp   []arpFrame
	na    []naFrame
	drops map[advert.DropReason]int
}

func (c *capture) neighbourAdverts() []naFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]naFrame(nil), c.na...)
}

func (c *capture) snapshot() ([]vrrpFrame, []arpFrame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]vrrpFrame(nil), c.vrrp...), append([]arpFrame(nil), c.arp...)
}

// startCapture opens an AF_PACKET socket on a port of the bridge namespace
// and records VRRP and ARP frames until the test ends.
func startCapture(t *testing.T, ns, ifname string) *capture {
	t.Helper()
	conn := func() *packet.Conn {
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
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			t.Fatal(err)
		}
		c, err := packet.Listen(ifi, packet.Raw, 0x0003 /* ETH_P_ALL */, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}()
	c := &capture{drops: map[advert.DropReason]int{}}
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { close(stop); <-done; conn.Close() })
	// Frames are stamped by the kernel (SO_TIMESTAMPNS) when they reach
	// the socket: a read delayed by a busy machine does not move them.
	rc, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil || serr != nil {
		t.Fatalf("SO_TIMESTAMPNS: %v %v", err, serr)
	}
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		oob := make([]byte, 128)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			var n, oobn int
			var rerr error
			err := rc.Read(func(fd uintptr) bool {
				n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_DONTWAIT)
				return rerr != unix.EAGAIN
			})
			if err != nil || rerr != nil {
				continue
			}
			c.parse(kernelStamp(oob[:oobn]), buf[:n])
		}
	}()
	return c
}

// kernelStamp returns the SCM_TIMESTAMPNS of a message, or now.
func kernelStamp(oob []byte) time.Time {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err == nil {
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
				sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
				nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
				return time.Unix(sec, nsec)
			}
		}
	}
	return time.Now()
}

func (c *capture) parse(at time.Time, f []byte) {
	if len(f) < 14 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch binary.BigEndian.Uint16(f[12:14]) {
	case 0x0800:
		payload, info, err := advert.SplitIPv4(f[14:])
		if err != nil {
			return
		}
		a, drop := advert.Decode(payload, info)
		if drop != advert.DropNone {
			c.drops[drop]++
			return
		}
		c.vrrp = append(c.vrrp, vrrpFrame{at: at, src: info.Src, ttl: info.TTL, tos: int(f[15]), adv: a, ethSrc: net.HardwareAddr(bytes.Clone(f[6:12]))})
	case etherTypeIPv6:
		ip6 := f[14:]
		if len(ip6) < 40+24 || ip6[6] != 58 || ip6[40] != 136 {
			return
		}
		src, dst := netip.AddrFrom16([16]byte(ip6[8:24])), netip.AddrFrom16([16]byte(ip6[24:40]))
		plen := int(binary.BigEndian.Uint16(ip6[4:6]))
		if 40+plen > len(ip6) {
			return
		}
		na := ip6[40 : 40+plen]
		fr := naFrame{
			at: at, ethDst: net.HardwareAddr(bytes.Clone(f[0:6])), ethSrc: net.HardwareAddr(bytes.Clone(f[6:12])),
			src: src, dst: dst, target: netip.AddrFrom16([16]byte(na[8:24])),
			hopLimit: int(ip6[7]), flags: na[4],
			checksumOK: checksum.Sum(na, checksum.Pseudo6(src, dst, len(na), 58)) == 0,
		}
		if len(na) >= 32 && na[24] == 2 && na[25] == 1 {
			fr.tlla = net.HardwareAddr(bytes.Clone(na[26:32]))
		}
		c.na = append(c.na, fr)
	case etherTypeARP:
		a := f[14:]
		if len(a) < 28 {
			return
		}
		c.arp = append(c.arp, arpFrame{
			at: at, op: binary.BigEndian.Uint16(a[6:8]),
			sender:  netip.AddrFrom4([4]byte(a[14:18])),
			target:  netip.AddrFrom4([4]byte(a[24:28])),
			bcastTo: bytes.Equal(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}),
			ethSrc:  net.HardwareAddr(bytes.Clone(f[6:12])),
			sha:     net.HardwareAddr(bytes.Clone(a[8:14])),
		})
	}
}

// --- helper processes

func startHelper(t *testing.T, ns, name string, hc helperConfig) *helperProc {
	t.Helper()
	hc.Name = name
	if hc.LifetimeMS == 0 {
		hc.LifetimeMS = 120000
	}
	cfg, _ := json.Marshal(hc)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// "ip netns exec" execs the program: the process is the helper itself.
	cmd := exec.Command("ip", "netns", "exec", ns, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(cfg))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helperProc{name: name, lines: make(chan helperLine, 256), done: make(chan struct{})}
	h.kill = func(sig syscall.Signal) { _ = cmd.Process.Signal(sig) }
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l helperLine
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				h.lines <- l
			}
		}
		close(h.lines)
	}()
	go func() { _ = cmd.Wait(); close(h.done) }()
	t.Cleanup(func() {
		h.kill(syscall.SIGKILL)
		<-h.done
		if t.Failed() {
			fmtStderr(name, &stderr)
		}
	})
	h.await(t, 10*time.Second, func(l helperLine) bool { return l.Event == "ready" })
	return h
}

// expectNone fails if a line matching bad arrives within d.
func (h *helperProc) expectNone(t *testing.T, d time.Duration, bad func(helperLine) bool) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case l, open := <-h.lines:
			if !open {
				t.Fatalf("%s exited", h.name)
			}
			if bad(l) {
				t.Fatalf("%s: unexpected %+v", h.name, l)
			}
		case <-deadline:
			return
		}
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
}

func TestNetnsFailover(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	capA := startCapture(t, n.br, "va")
	capB := startCapture(t, n.br, "vb")

	const vip = "192.0.2.100"
	base := helperConfig{
		Interface: "eth0", VRID: 51, Version: 2, AdvertMillis: 1000,
		VIP: vip + "/24", Brd: "192.0.2.255", Label: "eth0:1",
		GARPDelayMS: 2000, GARPRepeat: 5,
	}
	hcA, hcB := base, base
	hcA.Priority, hcB.Priority = 200, 100
	srcA, srcB := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	vipAddr := netip.MustParseAddr(vip)

	b := startHelper(t, n.b, "B", hcB)
	a := startHelper(t, n.a, "A", hcA)
	b.await(t, 2*time.Second, isTo("BACKUP"))
	a.await(t, 2*time.Second, isTo("BACKUP"))

	// Election: A (200) wins after its Master_Down_Interval; B stays BACKUP.
	aMaster := a.await(t, 6*time.Second, isTo("MASTER"))
	b.expectNone(t, 3500*time.Millisecond, isTo("MASTER"))
	if s := n.addrs(t, n.a); !strings.Contains(s, "inet "+vip+"/24 brd 192.0.2.255") || !strings.Contains(s, "eth0:1") {
		t.Fatalf("VIP with brd and label not on the master:\n%s", s)
	}
	if s := n.addrs(t, n.b); strings.Contains(s, vip) {
		t.Fatalf("VIP on the backup:\n%s", s)
	}

	// Adverts: TTL 255, TOS 0xc0, priority 200, every advert_int.
	adv, arps := capA.snapshot()
	var fromA []vrrpFrame
	for _, f := range adv {
		if f.src == srcA {
			fromA = append(fromA, f)
		}
	}
	if len(fromA) < 3 {
		t.Fatalf("only %d adverts from A captured", len(fromA))
	}
	for i, f := range fromA {
		if f.ttl != 255 || f.tos != advert.TOS || f.adv.Priority != 200 || f.adv.VRID != 51 || f.adv.Version != 2 {
			t.Fatalf("advert %d: ttl %d tos %#x %+v", i, f.ttl, f.tos, f.adv)
		}
		if i > 0 {
			if gap := f.at.Sub(fromA[i-1].at); gap < 850*time.Millisecond || gap > 1150*time.Millisecond {
				t.Fatalf("advert interval %v, want ~1s", gap)
			}
		}
	}
	// GARP: 5 at takeover, 5 more after garp_master_delay (2s).
	var burst1, burst2 int
	for _, f := range arps {
		if f.sender != vipAddr || f.target != vipAddr || f.op != 1 || !f.bcastTo {
			continue
		}
		switch d := f.at.Sub(aMaster.At); {
		case d > -200*time.Millisecond && d < 500*time.Millisecond:
			burst1++
		case d > 1800*time.Millisecond && d < 2500*time.Millisecond:
			burst2++
		}
	}
	t.Logf("%d adverts from A, GARP bursts %d + %d", len(fromA), burst1, burst2)
	if burst1 != 5 || burst2 != 5 {
		t.Fatalf("GARP bursts %d and %d, want 5 and 5 (%d ARP frames)", burst1, burst2, len(arps))
	}

	// Kill the master abruptly (no priority 0): B takes over one
	// Master_Down_Interval after A's last advert.
	a.kill(syscall.SIGKILL)
	<-a.done
	adv, _ = capA.snapshot()
	var lastA time.Time
	for _, f := range adv {
		if f.src == srcA {
			if f.adv.Priority == 0 {
				t.Fatal("killed master sent priority 0")
			}
			lastA = f.at
		}
	}
	bMaster := b.await(t, 6*time.Second, isTo("MASTER"))
	mdi := 3*time.Second + 156*time.Second/256
	t.Logf("kill -9: takeover %v after A's last advert (MDI %v)", bMaster.At.Sub(lastA), mdi)
	if d := bMaster.At.Sub(lastA); d < mdi-150*time.Millisecond || d > mdi+400*time.Millisecond {
		t.Fatalf("takeover %v after the last advert, want Master_Down_Interval %v", d, mdi)
	}
	waitFor(t, 2*time.Second, "VIP on B", func() bool { return strings.Contains(n.addrs(t, n.b), vip) })

	// Restart A: it removes its leftover VIP at start, then preempts B.
	a = startHelper(t, n.a, "A2", hcA)
	a.await(t, 2*time.Second, isTo("BACKUP"))
	if s := n.addrs(t, n.a); strings.Contains(s, vip) {
		t.Fatalf("leftover VIP not removed at start:\n%s", s)
	}
	a.await(t, 6*time.Second, isTo("MASTER"))
	b.await(t, 3*time.Second, isTo("BACKUP"))
	waitFor(t, 2*time.Second, "VIP gone from B", func() bool { return !strings.Contains(n.addrs(t, n.b), vip) })

	// A VIP deleted by someone else while MASTER is restored.
	ipCmd(t, "-n", n.a, "addr", "del", vip+"/24", "dev", "eth0")
	waitFor(t, 2*time.Second, "VIP restored on A", func() bool { return strings.Contains(n.addrs(t, n.a), vip) })

	// Graceful stop: priority 0, VIP removed, B takes over after Skew_Time.
	a.kill(syscall.SIGTERM)
	stats := a.await(t, 3*time.Second, func(l helperLine) bool { return l.Event == "stats" })
	if stats.Stats["pri_zero_sent"] != 1 || stats.Stats["vip_restored"] != 1 {
		t.Fatalf("A stats %v", stats.Stats)
	}
	bMaster = b.await(t, 3*time.Second, isTo("MASTER"))
	adv, _ = capA.snapshot()
	var prio0 time.Time
	for _, f := range adv {
		if f.src == srcA && f.adv.Priority == 0 {
			prio0 = f.at
		}
	}
	if prio0.IsZero() {
		t.Fatal("no priority 0 advert captured")
	}
	skew := 156 * time.Second / 256
	t.Logf("graceful stop: takeover %v after priority 0 (Skew_Time %v)", bMaster.At.Sub(prio0), skew)
	if d := bMaster.At.Sub(prio0); d < skew-100*time.Millisecond || d > skew+300*time.Millisecond {
		t.Fatalf("takeover %v after priority 0, want Skew_Time %v", d, skew)
	}
	<-a.done
	if s := n.addrs(t, n.a); strings.Contains(s, vip) {
		t.Fatalf("VIP left on A after graceful stop:\n%s", s)
	}
	advB, _ := capB.snapshot()
	var fromB int
	for _, f := range advB {
		if f.src == srcB && f.ttl == 255 && f.adv.Priority == 100 {
			fromB++
		}
	}
	if fromB == 0 {
		t.Fatal("no adverts from B captured")
	}
	if len(capA.drops)+len(capB.drops) > 0 {
		t.Fatalf("undecodable VRRP frames on the wire: %v %v", capA.drops, capB.drops)
	}
}

// VRRPv3 in unicast mode with a sub-second interval: the v3 checksum with
// the unicast destination in the pseudo-header, and failover.
func TestNetnsUnicastV3(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	capA := startCapture(t, n.br, "va")
	base := helperConfig{Interface: "eth0", VRID: 7, Version: 3, AdvertMillis: 200, VIP: "203.0.113.10/32", GARPRepeat: 1}
	hcA, hcB := base, base
	hcA.Priority, hcA.UnicastPeers = 150, []string{"192.0.2.2"}
	hcB.Priority, hcB.UnicastPeers = 100, []string{"192.0.2.1"}
	// A first: B's Master_Down_Interval (0.72 s) is shorter than a helper's
	// start on a loaded machine, so B started first could rightly win.
	a := startHelper(t, n.a, "A", hcA)
	a.await(t, 3*time.Second, isTo("MASTER"))
	b := startHelper(t, n.b, "B", hcB)
	b.expectNone(t, 1500*time.Millisecond, isTo("MASTER"))
	adv, _ := capA.snapshot()
	var uni int
	for _, f := range adv {
		if f.src.String() == "192.0.2.1" && f.adv.Version == 3 && f.adv.Interval == 200*time.Millisecond {
			uni++
		}
	}
	if uni < 5 || len(capA.drops) > 0 {
		t.Fatalf("%d v3 unicast adverts decoded, drops %v", uni, capA.drops)
	}
	a.kill(syscall.SIGKILL)
	killed := time.Now()
	bm := b.await(t, 3*time.Second, isTo("MASTER"))
	// MDI = 3*0.2s + 156*0.2s/256 = 0.72s from A's last advert
	t.Logf("unicast v3: %d adverts decoded; takeover %v after kill", uni, bm.At.Sub(killed))
	if d := bm.At.Sub(killed); d > 720*time.Millisecond+300*time.Millisecond {
		t.Fatalf("unicast takeover took %v", d)
	}
}
