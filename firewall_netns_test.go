package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// strictConf is a vrrp_strict configuration with an IPv4 instance (two
// VIPs, an IPv4 and an IPv6 excluded address) and an IPv6 one (a
// link-local and a global VIP).
func strictConf(prio int, strict bool) string {
	g := "  nftables_counters\n"
	if strict {
		g += "  vrrp_strict\n"
	}
	return fmt.Sprintf(`global_defs {
%s}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority %[2]d
  advert_int 1
  virtual_ipaddress {
    192.0.2.100/24
    192.0.2.101/32
  }
  virtual_ipaddress_excluded {
    192.0.2.50/24
    2001:db8::50/64
  }
}
vrrp_instance VI_6 {
  state BACKUP
  interface eth0
  virtual_router_id 52
  priority %[2]d
  advert_int 1
  virtual_ipaddress {
    fe80::100/64
    2001:db8::100/64
  }
}
`, g, prio)
}

// keepalivedProc is keepalived 2.2.7 in a namespace, with its own pid
// files.
type keepalivedProc struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan struct{}
}

func startKeepalivedConf(t *testing.T, ns, text string) *keepalivedProc {
	t.Helper()
	dir := t.TempDir()
	cf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(cf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	k := &keepalivedProc{out: &lockedBuffer{}, exited: make(chan struct{})}
	k.cmd = exec.Command("ip", "netns", "exec", ns, "keepalived", "-n", "-l", "-D", "-P", "-f", cf,
		"-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "v.pid"), "-c", filepath.Join(dir, "c.pid"))
	k.cmd.Stdout, k.cmd.Stderr = k.out, k.out
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = k.cmd.Wait(); close(k.exited) }()
	t.Cleanup(func() {
		_ = k.cmd.Process.Signal(syscall.SIGKILL)
		<-k.exited
		if t.Failed() {
			t.Logf("keepalived in %s:\n%s", ns, k.out.String())
		}
	})
	return k
}

// stop sends SIGTERM and waits for the exit (ip netns exec execs the
// daemon: same pid).
func stopProc(t *testing.T, p *os.Process, exited chan struct{}) {
	t.Helper()
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		t.Fatal("no exit 15 s after SIGTERM")
	}
}

// listenTCP accepts (and closes) connections on addr in ns until the test
// ends.
func listenTCP(t *testing.T, ns, addr string) {
	t.Helper()
	var ln net.Listener
	if err := inNetns(ns, func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// dialTCP connects from ns to addr (one try, 1 s).
func dialTCP(ns, addr string) error {
	return inNetns(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
}

var nftCounters = regexp.MustCompile(`counter packets \d+ bytes \d+`)

// nftTable is `nft list table FAMILY keepalived` in ns with the counters'
// values masked; "" when there is no such table.
func nftTable(t *testing.T, ns, family string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "table", family, "keepalived").CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "No such file or directory") {
			return ""
		}
		t.Fatalf("nft list table %s keepalived: %v %s", family, err, out)
	}
	return nftCounters.ReplaceAllString(string(out), "counter packets N bytes N")
}

func nftRuleset(t *testing.T, ns string) string {
	return runCmd(t, "ip", "netns", "exec", ns, "nft", "list", "ruleset")
}

// sameTables waits until both namespaces' tables are equal and satisfy
// ok, and returns them.
func sameTables(t *testing.T, what, lvsdNS, kaNS string, ok func(ip, ip6 string) bool) (string, string) {
	t.Helper()
	var l4, l6, k4, k6 string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		l4, l6, k4, k6 = nftTable(t, lvsdNS, "ip"), nftTable(t, lvsdNS, "ip6"), nftTable(t, kaNS, "ip"), nftTable(t, kaNS, "ip6")
		if l4 == k4 && l6 == k6 && ok(l4, l6) {
			return l4, l6
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: lvsd's tables:\n%s%s\nkeepalived's:\n%s%s", what, l4, l6, k4, k6)
	return "", ""
}

// TestNetnsFirewallLikeKeepalived runs lvsd and keepalived 2.2.7 on the
// same vrrp_strict configuration, each in a namespace of its own network,
// and compares `nft list table ip|ip6 keepalived`: none before MASTER, the
// VIPs in the sets as MASTER, the sets emptied as BACKUP (a keepalived
// peer of higher priority), the tables gone on stop; and for lvsd, a table
// left by kill -9 is gone at the next start. Traffic to a VIP of the
// MASTER is dropped on both.
func TestNetnsFirewallLikeKeepalived(t *testing.T) {
	integration(t, "ip", "nft", "keepalived")
	bin := buildLvsd(t)
	nl, nk := newOpsNet(t), newOpsNet(t)
	conf := strictConf(150, true)

	l := startDirectorConf(t, bin, nl.a, "lb-a", conf, []string{"-P"})
	k := startKeepalivedConf(t, nk.a, conf)
	// BACKUP for 3 s (Master_Down_Interval): no table yet, as keepalived.
	time.Sleep(1500 * time.Millisecond)
	if r, rk := nftRuleset(t, nl.a), nftRuleset(t, nk.a); r != "" || rk != "" {
		t.Fatalf("a table before MASTER: lvsd %q, keepalived %q", r, rk)
	}

	master4, master6 := sameTables(t, "MASTER", nl.a, nk.a, func(ip, ip6 string) bool {
		return strings.Contains(ip, "192.0.2.100") && strings.Contains(ip6, "2001:db8::100") && strings.Contains(ip6, "fe80::100")
	})
	for _, want := range []string{"set vips", "192.0.2.50", "ip saddr @vips counter", "ip daddr @vips counter",
		"type filter hook output priority filter - 1; policy accept;", "type filter hook input priority filter - 1; policy accept;"} {
		if !strings.Contains(master4, want) {
			t.Errorf("table ip keepalived lacks %q:\n%s", want, master4)
		}
	}
	for _, want := range []string{"set neighbor-discovery", "set vips_link_local", `fe80::100 . "eth0"`, "2001:db8::50", "goto in_link_local"} {
		if !strings.Contains(master6, want) {
			t.Errorf("table ip6 keepalived lacks %q:\n%s", want, master6)
		}
	}
	// The VIPs are up, and dropped: a service of the MASTER answers on
	// its own address, not on the VIP.
	for _, n := range []*opsNet{nl, nk} {
		if !hasAddr(t, n.a, "192.0.2.100/24") {
			t.Fatalf("VIP not on %s", n.a)
		}
		listenTCP(t, n.a, ":18080")
		if err := dialTCP(n.c, "192.0.2.100:18080"); err == nil {
			t.Errorf("%s accepts a connection to its VIP under vrrp_strict", n.a)
		}
		if err := dialTCP(n.c, "192.0.2.1:18080"); err != nil {
			t.Errorf("%s refuses a connection to its own address: %v", n.a, err)
		}
	}

	// A keepalived peer of higher priority: BACKUP, the sets emptied, the
	// tables kept.
	peer := strictConf(200, false)
	pl := startKeepalivedConf(t, nl.b, peer)
	startKeepalivedConf(t, nk.b, peer)
	sameTables(t, "BACKUP", nl.a, nk.a, func(ip, ip6 string) bool {
		return ip != "" && ip6 != "" && !strings.Contains(ip+ip6, "elements = { 192") && !strings.Contains(ip6, "2001:db8::100")
	})
	if hasAddr(t, nl.a, "192.0.2.100/24") {
		t.Fatal("VIP still on lvsd as BACKUP")
	}

	// Stop: the tables go.
	stopProc(t, l.cmd.Process, l.exited)
	stopProc(t, k.cmd.Process, k.exited)
	if r, rk := nftRuleset(t, nl.a), nftRuleset(t, nk.a); r != "" || rk != "" {
		t.Fatalf("a table after stop: lvsd %q, keepalived %q", r, rk)
	}

	// kill -9 as MASTER leaves the table; the next start removes it at
	// once (keepalived replaces it only when it next goes MASTER).
	stopProc(t, pl.cmd.Process, pl.exited)
	l2 := startDirectorConf(t, bin, nl.a, "lb-a2", conf, []string{"-P"})
	sameTables(t, "MASTER again", nl.a, nl.a, func(ip, ip6 string) bool { return ip == master4 && ip6 == master6 })
	_ = l2.cmd.Process.Signal(syscall.SIGKILL)
	<-l2.exited
	if nftTable(t, nl.a, "ip") == "" {
		t.Fatal("kill -9 removed the table")
	}
	l3 := startDirectorConf(t, bin, nl.a, "lb-a3", conf, []string{"-P"})
	waitUntil(t, 2*time.Second, "the stale table removed at start", func() bool { return nftRuleset(t, nl.a) == "" })
	sameTables(t, "MASTER after kill -9", nl.a, nl.a, func(ip, ip6 string) bool { return ip == master4 && ip6 == master6 })
	stopProc(t, l3.cmd.Process, l3.exited)

	// no_accept without vrrp_strict, the table's name and priority; an
	// instance with strict_mode and accept (VRRPv3) drops nothing.
	named := `global_defs {
  nftables mytab
  nftables_priority -150
}
vrrp_instance A {
  interface eth0
  virtual_router_id 5
  priority 100
  no_accept
  virtual_ipaddress {
    192.0.2.9
  }
}
vrrp_instance B {
  interface eth0
  virtual_router_id 6
  priority 100
  strict_mode
  version 3
  accept
  virtual_ipaddress {
    192.0.2.19
  }
}
`
	startDirectorConf(t, bin, nl.a, "lb-named", named, []string{"-P"})
	startKeepalivedConf(t, nk.a, named)
	var rl, rk string
	waitUntil(t, 15*time.Second, "the same ruleset with nftables mytab", func() bool {
		rl, rk = nftRuleset(t, nl.a), nftRuleset(t, nk.a)
		return rl == rk && strings.Contains(rl, "table ip mytab") && strings.Contains(rl, "priority mangle;") && strings.Contains(rl, "192.0.2.9")
	})
	// B (strict_mode with accept on VRRPv3) is MASTER and not dropped.
	if strings.Contains(rl, "192.0.2.19") || !hasAddr(t, nl.a, "192.0.2.19/32") || !hasAddr(t, nk.a, "192.0.2.19/32") {
		t.Errorf("strict_mode with accept: ruleset %q", rl)
	}
}

// linkView is what `ip -d -j link` and `ip -j addr` say of a VMAC that
// keepalived and lvsd must agree on.
func linkView(t *testing.T, ns, dev string) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-d", "-j", "link", "show", "dev", dev).Output()
	if err != nil {
		return ""
	}
	var links []struct {
		Ifname    string `json:"ifname"`
		Link      string `json:"link"`
		Address   string `json:"address"`
		Operstate string `json:"operstate"`
		Linkinfo  struct {
			Kind string         `json:"info_kind"`
			Data map[string]any `json:"info_data"`
		} `json:"linkinfo"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -d -j link show %s: %v %s", dev, err, out)
	}
	l := links[0]
	addrs := runCmd(t, "ip", "-n", ns, "-o", "addr", "show", "dev", dev)
	var a []string
	for _, f := range strings.Split(strings.TrimSpace(addrs), "\n") {
		w := strings.Fields(f)
		if len(w) >= 4 {
			a = append(a, w[2]+" "+w[3])
		}
	}
	return fmt.Sprintf("%s@%s %s %s %s mode %v addrs %v", l.Ifname, l.Link, l.Address, l.Operstate, l.Linkinfo.Kind, l.Linkinfo.Data["mode"], a)
}

// TestNetnsStrictVMACLikeKeepalived is issue 13's acceptance case: one
// MASTER instance with vrrp_strict and use_vmac. The macvlan (name, MAC,
// mode, the VIP on it) and the whole nftables ruleset (vips, vmac_map and
// its IGMP rule, handed to the firewall by the VRRP engine as it makes
// the VMAC) are the same for lvsd and keepalived 2.2.7; a VMAC deleted by
// hand is made again and mapped under its new index; on stop both the
// VMAC and the table are gone.
func TestNetnsStrictVMACLikeKeepalived(t *testing.T) {
	integration(t, "ip", "nft", "keepalived")
	bin := buildLvsd(t)
	nl, nk := newOpsNet(t), newOpsNet(t)
	conf := `global_defs {
  vrrp_strict
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  use_vmac
  virtual_ipaddress {
    192.0.2.100/24
  }
}
`
	l := startDirectorConf(t, bin, nl.a, "lb-vmac", conf, []string{"-P"})
	k := startKeepalivedConf(t, nk.a, conf)
	var rl, rk string
	waitUntil(t, 15*time.Second, "both MASTER with the same ruleset", func() bool {
		rl = nftCounters.ReplaceAllString(nftRuleset(t, nl.a), "counter packets N bytes N")
		rk = nftCounters.ReplaceAllString(nftRuleset(t, nk.a), "counter packets N bytes N")
		return rl == rk && strings.Contains(rl, "192.0.2.100") && strings.Contains(rl, "vmac_map") && strings.Contains(rl, `"vrrp.51"`)
	})
	for _, want := range []string{"set vips", "map vmac_map", `elements = { "vrrp.51" : "eth0" }`, "igmp"} {
		if !strings.Contains(rl, want) {
			t.Errorf("lvsd's ruleset lacks %q:\n%s", want, rl)
		}
	}
	vl, vk := linkView(t, nl.a, "vrrp.51"), linkView(t, nk.a, "vrrp.51")
	if vl != vk || !strings.Contains(vl, "00:00:5e:00:01:33") || !strings.Contains(vl, "macvlan mode private") || !strings.Contains(vl, "192.0.2.100/24") {
		t.Fatalf("VMAC: lvsd %s\nkeepalived %s", vl, vk)
	}
	t.Logf("VMAC %s; ruleset:\n%s", vl, rl)

	// Deleted by hand: made again (a new index) and mapped again.
	runCmd(t, "ip", "-n", nl.a, "link", "del", "vrrp.51")
	waitUntil(t, 10*time.Second, "the VMAC made again and mapped", func() bool {
		r := nftCounters.ReplaceAllString(nftRuleset(t, nl.a), "counter packets N bytes N")
		return linkView(t, nl.a, "vrrp.51") == vl && r == rl
	})

	stopProc(t, l.cmd.Process, l.exited)
	stopProc(t, k.cmd.Process, k.exited)
	for _, ns := range []string{nl.a, nk.a} {
		if r := nftRuleset(t, ns); r != "" {
			t.Errorf("%s: a table after stop:\n%s", ns, r)
		}
		if v := linkView(t, ns, "vrrp.51"); v != "" {
			t.Errorf("%s: the VMAC after stop: %s", ns, v)
		}
	}

	// use_vmac without vrrp_strict: keepalived writes the table for the
	// VMAC alone (vmac_map, no VIP dropped), and so does lvsd.
	plain := strings.Replace(conf, "  vrrp_strict\n", "", 1)
	l = startDirectorConf(t, bin, nl.a, "lb-vmac2", plain, []string{"-P"})
	k = startKeepalivedConf(t, nk.a, plain)
	waitUntil(t, 15*time.Second, "the same VMAC-only ruleset", func() bool {
		rl = nftCounters.ReplaceAllString(nftRuleset(t, nl.a), "counter packets N bytes N")
		rk = nftCounters.ReplaceAllString(nftRuleset(t, nk.a), "counter packets N bytes N")
		return rl == rk && strings.Contains(rl, `"vrrp.51" : "eth0"`) && hasAddrOn(t, nl.a, "vrrp.51", "192.0.2.100/24")
	})
	if strings.Contains(rl, "192.0.2.100") {
		t.Errorf("use_vmac without strict drops the VIP:\n%s", rl)
	}
	stopProc(t, l.cmd.Process, l.exited)
	stopProc(t, k.cmd.Process, k.exited)
}

func hasAddrOn(t *testing.T, ns, dev, addr string) bool {
	return strings.Contains(runCmd(t, "ip", "-n", ns, "-o", "addr", "show", "dev", dev), " "+addr+" ")
}
