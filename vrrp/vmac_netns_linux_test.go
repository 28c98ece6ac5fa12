package vrrp

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// vmacConf is a configuration with use_vmac instances: VI_1 (VRID 61) on
// vrrp.61, VI_6 (IPv6, VRID 62) on vrrp.62 and VI_2 (VRID 63) on vrrp.63
// with vmac_xmit_base; only VI_1 when one is false.
func vmacConf(prio int, all bool) string {
	s := fmt.Sprintf(`vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 61
  priority %d
  advert_int 1
  use_vmac
  virtual_ipaddress {
    192.0.2.200/24
  }
}
`, prio)
	if all {
		s += fmt.Sprintf(`vrrp_instance VI_6 {
  state BACKUP
  interface eth0
  virtual_router_id 62
  priority %d
  advert_int 1
  use_vmac
  virtual_ipaddress {
    2001:db8::200/64
  }
}
vrrp_instance VI_2 {
  state BACKUP
  interface eth0
  virtual_router_id 63
  priority %d
  advert_int 1
  use_vmac
  vmac_xmit_base
  virtual_ipaddress {
    192.0.2.201/24
  }
}
`, prio, prio)
	}
	return s
}

var (
	linkIndexRE = regexp.MustCompile(`(?m)^\d+: `)
	lifetimeRE  = regexp.MustCompile(`\\\s+valid_lft.*$`)
)

// vmacSnapshot is what the kernel shows of the VMACs of ns and of the
// sysctls keepalived sets, with what differs between two namespaces (link
// indexes, the base's MAC and link-local address) replaced by names.
func vmacSnapshot(t *testing.T, ns string, vmacs ...string) string {
	t.Helper()
	baseMAC := ifMAC(t, ns, "eth0").String()
	ll := regexp.MustCompile(`inet6 (fe80::\S+)/64`).FindStringSubmatch(ipCmd(t, "-n", ns, "-o", "addr", "show", "dev", "eth0"))
	var b strings.Builder
	norm := func(s string) string {
		s = linkIndexRE.ReplaceAllString(s, "")
		s = strings.ReplaceAll(s, baseMAC, "BASEMAC")
		if ll != nil {
			s = strings.ReplaceAll(s, ll[1], "BASELL")
		}
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			lines = append(lines, strings.Join(strings.Fields(lifetimeRE.ReplaceAllString(l, "")), " "))
		}
		return strings.Join(lines, "\n")
	}
	for _, dev := range append([]string{"eth0"}, vmacs...) {
		if dev != "eth0" {
			fmt.Fprintf(&b, "%s\n%s\n", norm(ipCmd(t, "-n", ns, "-d", "-o", "link", "show", "dev", dev)), norm(ipCmd(t, "-n", ns, "-o", "addr", "show", "dev", dev)))
		}
		for _, k := range []string{"arp_ignore", "arp_filter", "accept_local", "rp_filter", "promote_secondaries"} {
			fmt.Fprintf(&b, "%s %s=%s ", dev, k, nsSysctl(ns, "ipv4", dev, k))
		}
		fmt.Fprintf(&b, "disable_ipv6=%s\n", nsSysctl(ns, "ipv6", dev, "disable_ipv6"))
	}
	return b.String()
}

// nsSysctl reads an interface's sysctl in ns ("-" if none).
func nsSysctl(ns, fam, dev, key string) string {
	out, err := exec.Command("ip", "netns", "exec", ns, "cat", filepath.Join("/proc/sys/net", fam, "conf", dev, key)).Output()
	if err != nil {
		return "-"
	}
	return strings.TrimSpace(string(out))
}

// wireMACs sums up, per VRID, the Ethernet source of the adverts and of
// the gratuitous ARPs (sender MAC too) and neighbour advertisements seen
// in c, the base's MAC written BASEMAC.
func wireMACs(c *capture, baseMAC net.HardwareAddr, vips map[string]uint8) map[string]string {
	name := func(m net.HardwareAddr) string {
		if m.String() == baseMAC.String() {
			return "BASEMAC"
		}
		return m.String()
	}
	out := map[string]string{}
	add := func(k, v string) {
		if !strings.Contains(out[k], v) {
			out[k] = strings.TrimSpace(out[k] + " " + v)
		}
	}
	frames, arps := c.snapshot()
	for _, f := range frames {
		add(fmt.Sprintf("advert vrid %d", f.adv.VRID), name(f.ethSrc))
	}
	for _, a := range arps {
		if id, ok := vips[a.sender.String()]; ok {
			add(fmt.Sprintf("garp vrid %d", id), name(a.ethSrc)+"/"+name(a.sha))
		}
	}
	for _, na := range c.neighbourAdverts() {
		if id, ok := vips[na.target.String()]; ok {
			add(fmt.Sprintf("na vrid %d", id), name(na.ethSrc)+"/"+name(na.tlla))
		}
	}
	return out
}

func ifMAC(t *testing.T, ns, dev string) net.HardwareAddr {
	t.Helper()
	m := regexp.MustCompile(`link/ether (\S+)`).FindStringSubmatch(ipCmd(t, "-n", ns, "-o", "link", "show", "dev", dev))
	mac, err := net.ParseMAC(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return mac
}

func sortedKeys(m map[string]string) string {
	var ks []string
	for k, v := range m {
		ks = append(ks, k+": "+v)
	}
	sort.Strings(ks)
	return strings.Join(ks, "\n")
}

// The VMACs of keepalived and of lvsd for the same configuration, each
// MASTER alone in its namespace: the same links (macvlan, private mode,
// name, MAC, addrgenmode), the same addresses on them, the same sysctls
// on them and their base, and on the wire the same source MACs: adverts
// and gratuitous ARPs (neighbour advertisements for IPv6) from the virtual
// MAC, adverts from the base with vmac_xmit_base. Once stopped, no VMAC is
// left.
func TestNetnsVMACMatchesKeepalived(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	vmacs := []string{"vrrp.61", "vrrp.62", "vrrp.63"}
	vips := map[string]uint8{"192.0.2.200": 61, "2001:db8::200": 62, "192.0.2.201": 63}
	run := func(ns, port string, start func() (func(), func() bool)) (string, map[string]string) {
		c := startCapture(t, n.br, port)
		stop, master := start()
		waitFor(t, 10*time.Second, "three MASTERs", master)
		time.Sleep(1500 * time.Millisecond) // adverts and GARPs on the wire
		snap := vmacSnapshot(t, ns, vmacs...)
		wire := wireMACs(c, ifMAC(t, ns, "eth0"), vips)
		stop()
		waitFor(t, 5*time.Second, "VMACs removed", func() bool {
			return !strings.Contains(ipCmd(t, "-n", ns, "-o", "link"), "vrrp.")
		})
		return snap, wire
	}
	kSnap, kWire := run(n.b, "vb", func() (func(), func() bool) {
		out, kill, done := startKeepalivedConf(t, n.b, vmacConf(100, true))
		return func() { kill(syscall.SIGTERM); <-done }, func() bool { return strings.Count(out.String(), "Entering MASTER STATE") == 3 }
	})
	lSnap, lWire := run(n.a, "va", func() (func(), func() bool) {
		p := startLvsd(t, n.a, "A", vmacConf(100, true))
		return func() { p.signal(syscall.SIGTERM); <-p.done }, func() bool {
			return p.state("VI_1") == "MASTER" && p.state("VI_2") == "MASTER" && p.state("VI_6") == "MASTER"
		}
	})
	if kSnap != lSnap {
		t.Errorf("kernel state differs\n--- keepalived:\n%s--- lvsd:\n%s", kSnap, lSnap)
	}
	if !strings.Contains(lSnap, "macvlan mode private") || !strings.Contains(lSnap, "link/ether 00:00:5e:00:01:3d") || !strings.Contains(lSnap, "inet 192.0.2.200/24 scope global vrrp.61") {
		t.Errorf("lvsd's VMAC is not the expected one:\n%s", lSnap)
	}
	if k, l := sortedKeys(kWire), sortedKeys(lWire); k != l {
		t.Errorf("source MACs on the wire differ\n--- keepalived:\n%s\n--- lvsd:\n%s", k, l)
	}
	for k, v := range map[string]string{"advert vrid 61": "00:00:5e:00:01:3d", "garp vrid 61": "00:00:5e:00:01:3d/00:00:5e:00:01:3d", "advert vrid 63": "BASEMAC"} {
		if lWire[k] != v {
			t.Errorf("lvsd %s: source %q, want %q (all: %v)", k, lWire[k], v, lWire)
		}
	}
	t.Logf("lvsd:\n%s%s", lSnap, sortedKeys(lWire))
}

// keepalived and lvsd both with use_vmac, takeover both ways: keepalived
// MASTER and lvsd BACKUP (no VIP on its VMAC); keepalived stops, lvsd takes
// over with the VIP on its VMAC and adverts from the virtual MAC; a
// keepalived of higher priority starts and takes it back.
func TestNetnsVMACInteropKeepalived(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	capA := startCapture(t, n.br, "va")
	kout, kkill, kdone := startKeepalivedConf(t, n.b, vmacConf(200, false))
	waitFor(t, 8*time.Second, "keepalived MASTER", func() bool { return strings.Contains(kout.String(), "Entering MASTER STATE") })
	a := startLvsd(t, n.a, "A", vmacConf(100, false))
	a.waitState(t, "VI_1", "BACKUP", 5*time.Second)
	time.Sleep(4 * time.Second)
	if s := a.state("VI_1"); s != "BACKUP" {
		t.Fatalf("lvsd %s while keepalived is MASTER", s)
	}
	if !strings.Contains(ipCmd(t, "-n", n.a, "-d", "link", "show", "dev", "vrrp.61"), "macvlan mode private") || hasAddr(t, n.a, "vrrp.61", "192.0.2.200") {
		t.Fatal("lvsd's backup VMAC wrong or holding the VIP")
	}

	kkill(syscall.SIGTERM)
	<-kdone
	a.waitState(t, "VI_1", "MASTER", 3*time.Second)
	waitFor(t, 3*time.Second, "VIP on lvsd's VMAC", func() bool { return hasAddr(t, n.a, "vrrp.61", "192.0.2.200") })
	time.Sleep(1500 * time.Millisecond)
	frames, arps := capA.snapshot()
	var ours, garps int
	for _, f := range advertsFrom(frames, netip.MustParseAddr("192.0.2.1")) {
		if f.ethSrc.String() != "00:00:5e:00:01:3d" {
			t.Fatalf("lvsd advert from %v", f.ethSrc)
		}
		ours++
	}
	for _, g := range arps {
		if g.sender.String() == "192.0.2.200" {
			if g.ethSrc.String() != "00:00:5e:00:01:3d" || g.sha.String() != "00:00:5e:00:01:3d" {
				t.Fatalf("lvsd GARP from %v (sender %v)", g.ethSrc, g.sha)
			}
			garps++
		}
	}
	if ours == 0 || garps == 0 {
		t.Fatalf("lvsd as MASTER: %d adverts, %d GARPs seen", ours, garps)
	}

	kout2, _, _ := startKeepalivedConf(t, n.b, vmacConf(250, false))
	waitFor(t, 8*time.Second, "keepalived takes over", func() bool { return strings.Contains(kout2.String(), "Entering MASTER STATE") })
	a.waitState(t, "VI_1", "BACKUP", 3*time.Second)
	waitFor(t, 3*time.Second, "VIP off lvsd's VMAC", func() bool { return !hasAddr(t, n.a, "vrrp.61", "192.0.2.200") })
	if s := kout2.String(); strings.Count(s, "Entering MASTER STATE") != 1 {
		t.Fatalf("keepalived flapped:\n%s", s)
	}
}

// A VMAC deleted by hand is made again. A VMAC left behind by a kill -9
// is removed at the next start when the
// configuration no longer asks for it; a reload adds a VMAC (the VIP moves
// to it) and removes it (the VIP back on the base). Priority 255: MASTER at
// once.
func TestNetnsVMACKillAndReload(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	a := startLvsd(t, n.a, "A", vmacConf(255, false))
	a.waitState(t, "VI_1", "MASTER", 6*time.Second)
	waitFor(t, 2*time.Second, "VIP on the VMAC", func() bool { return hasAddr(t, n.a, "vrrp.61", "192.0.2.200") })
	// Deleted by hand: the safety net makes it again, with the VIP, and
	// the adverts go on from it.
	capA := startCapture(t, n.br, "va")
	ipCmd(t, "-n", n.a, "link", "del", "vrrp.61")
	deleted := time.Now()
	waitFor(t, 5*time.Second, "VMAC and VIP back", func() bool {
		return strings.Contains(ipCmd(t, "-n", n.a, "-o", "link"), "vrrp.61") && hasAddr(t, n.a, "vrrp.61", "192.0.2.200")
	})
	time.Sleep(2500 * time.Millisecond)
	frames, _ := capA.snapshot()
	after := 0
	for _, f := range advertsFrom(frames, netip.MustParseAddr("192.0.2.1")) {
		if f.at.After(deleted.Add(1500*time.Millisecond)) && f.ethSrc.String() == "00:00:5e:00:01:3d" {
			after++
		}
	}
	if after == 0 || a.state("VI_1") != "MASTER" {
		t.Fatalf("after the VMAC was made again: %d adverts from it, state %s", after, a.state("VI_1"))
	}
	if !strings.Contains(a.out.String(), "VMAC deleted by someone else; made again") {
		t.Fatal("repair not logged")
	}
	a.signal(syscall.SIGKILL)
	<-a.done
	if !strings.Contains(ipCmd(t, "-n", n.a, "-o", "link"), "vrrp.61") {
		t.Fatal("the VMAC went with the process")
	}

	plain := strings.Replace(vmacConf(255, false), "  use_vmac\n", "  promote_secondaries\n", 1)
	b := startLvsd(t, n.a, "B", plain)
	waitFor(t, 3*time.Second, "leftover VMAC removed", func() bool { return !strings.Contains(ipCmd(t, "-n", n.a, "-o", "link"), "vrrp.61") })
	b.waitState(t, "VI_1", "MASTER", 6*time.Second)
	waitFor(t, 2*time.Second, "VIP on eth0", func() bool { return hasAddr(t, n.a, "eth0", "192.0.2.200") })
	if v := nsSysctl(n.a, "ipv4", "eth0", "promote_secondaries"); v != "1" {
		t.Errorf("promote_secondaries: eth0 has %s", v)
	}

	// The killed lvsd left arp_ignore and arp_filter set on the base; the
	// operator puts them back before the reload.
	for _, k := range []string{"arp_ignore", "arp_filter"} {
		ipCmd(t, "netns", "exec", n.a, "sysctl", "-qw", "net.ipv4.conf.eth0."+k+"=0")
	}
	b.rewrite(t, vmacConf(255, false))
	b.signal(syscall.SIGHUP)
	waitFor(t, 8*time.Second, "VIP on the VMAC after the reload", func() bool {
		return strings.Contains(ipCmd(t, "-n", n.a, "-o", "link"), "vrrp.61") && hasAddr(t, n.a, "vrrp.61", "192.0.2.200") && !hasAddr(t, n.a, "eth0", "192.0.2.200")
	})
	b.rewrite(t, plain)
	b.signal(syscall.SIGHUP)
	waitFor(t, 8*time.Second, "VMAC removed by the reload, VIP on eth0", func() bool {
		return !strings.Contains(ipCmd(t, "-n", n.a, "-o", "link"), "vrrp.61") && hasAddr(t, n.a, "eth0", "192.0.2.200")
	})
	// The base has its arp_ignore and arp_filter back.
	for _, k := range []string{"arp_ignore", "arp_filter"} {
		if v := nsSysctl(n.a, "ipv4", "eth0", k); v != "0" {
			t.Errorf("eth0 %s=%s after its VMAC was removed", k, v)
		}
	}
}

// unicast_ttl, min_ttl and max_ttl with keepalived as the peer: each
// sends its unicast adverts with its unicast_ttl; keepalived's, sent with
// TTL 9, are dropped by our min_ttl 10 (counted as ttl drops), so both are
// MASTER. Then, with max_ttl 9 allowed, we accept them and stay BACKUP.
func TestNetnsUnicastTTL(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	capA, capB := startCapture(t, n.br, "va"), startCapture(t, n.br, "vb")
	inst := func(prio, ttl int, peer string) string {
		return fmt.Sprintf(`vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 71
  priority %d
  advert_int 1
  unicast_ttl %d
  unicast_peer {
    %s
  }
  virtual_ipaddress {
    192.0.2.210/24
  }
}
`, prio, ttl, peer)
	}
	kout, _, _ := startKeepalivedConf(t, n.b, inst(200, 9, "192.0.2.1"))
	waitFor(t, 8*time.Second, "keepalived MASTER", func() bool { return strings.Contains(kout.String(), "Entering MASTER STATE") })
	h := startHelper(t, n.a, "ours", helperConfig{ConfText: inst(100, 7, "192.0.2.2 min_ttl 10")})
	h.await(t, 6*time.Second, isTo("MASTER"))
	st := h.await(t, 2*time.Second, func(l helperLine) bool { return l.Event == "status" && l.Stats["drop_ttl"] > 0 })
	time.Sleep(1500 * time.Millisecond)
	check := func(c *capture, src string, want int) {
		frames, _ := c.snapshot()
		got := advertsFrom(frames, netip.MustParseAddr(src))
		if len(got) == 0 {
			t.Fatalf("no advert from %s", src)
		}
		for _, f := range got {
			if f.ttl != want {
				t.Fatalf("unicast advert from %s with TTL %d, want %d", src, f.ttl, want)
			}
		}
	}
	check(capA, "192.0.2.1", 7)
	check(capB, "192.0.2.2", 9)
	t.Logf("ours: %d of keepalived's adverts dropped for their TTL", st.Stats["drop_ttl"])

	h2 := startHelper(t, n.a, "ours2", helperConfig{ConfText: inst(100, 7, "192.0.2.2 min_ttl 9 max_ttl 9")})
	h.kill(syscall.SIGTERM)
	h2.await(t, 2*time.Second, isTo("BACKUP"))
	h2.expectNone(t, 5*time.Second, isTo("MASTER"))
}

// unicast_fault_no_peer with an empty unicast_peer block: FAULT and silent,
// as keepalived ("Cannot use unicast without any peers - going to fault
// state"); without it both multicast.
func TestNetnsUnicastFaultNoPeer(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	capA, capB := startCapture(t, n.br, "va"), startCapture(t, n.br, "vb")
	cf := `vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 72
  advert_int 1
  unicast_fault_no_peer
  unicast_peer {
  }
  virtual_ipaddress {
    192.0.2.211/24
  }
}
`
	kout, _, _ := startKeepalivedConf(t, n.b, cf)
	h := startHelper(t, n.a, "ours", helperConfig{ConfText: cf})
	h.await(t, 3*time.Second, isTo("FAULT"))
	h.expectNone(t, 5*time.Second, isTo("MASTER"))
	if !strings.Contains(kout.String(), "going to fault state") || strings.Contains(kout.String(), "Entering MASTER STATE") {
		t.Fatalf("keepalived:\n%s", kout.String())
	}
	for _, c := range []*capture{capA, capB} {
		if frames, _ := c.snapshot(); len(frames) != 0 {
			t.Fatalf("%d adverts sent", len(frames))
		}
	}
	if hasAddr(t, n.a, "eth0", "192.0.2.211") {
		t.Fatal("VIP on a FAULT instance")
	}
}
