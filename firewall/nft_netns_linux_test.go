package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// testNS makes a namespace with eth0 (a veth, 192.0.2.1/24, up).
func testNS(t *testing.T, name string) {
	t.Helper()
	_ = exec.Command("ip", "netns", "del", name).Run()
	sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	sh(t, "ip", "-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
	sh(t, "ip", "-n", name, "addr", "add", "192.0.2.1/24", "dev", "eth0")
	for _, l := range []string{"lo", "eth0", "peer0"} {
		sh(t, "ip", "-n", name, "link", "set", l, "up")
	}
}

// TestNetnsVMACMapLikeKeepalived: with use_vmac and vrrp_strict, keepalived
// 2.2.7 makes vmac_map (and for IPv6 vmac_set) and their rules with the
// VMAC, then the drop of the VIPs as MASTER; the Firewall, handed the same
// VMAC (a macvlan made here as keepalived makes it) and VIPs, lists the
// same, for an IPv4 instance and an IPv6 one with counters.
func TestNetnsVMACMapLikeKeepalived(t *testing.T) {
	if os.Getenv("LVSD_INTEGRATION") == "" {
		t.Skip("set LVSD_INTEGRATION=1 (root, nft, keepalived)")
	}
	for _, tool := range []string{"ip", "nft", "keepalived"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("LVSD_INTEGRATION is set but %s is not installed", tool)
		}
	}
	for _, c := range []struct {
		name, global, vips, vmac string
		ipv6                     bool
		addrs                    []string // on vmac's interface if link-local
	}{
		{"IPv4", "", "192.0.2.100/24\n    192.0.2.101/32", "vrrp.51", false, []string{"192.0.2.100", "192.0.2.101"}},
		{"IPv6", "  nftables_counters\n", "fe80::9/64\n    2001:db8::9/64", "vrrp.51", true, []string{"fe80::9", "2001:db8::9"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			conf := "global_defs {\n  vrrp_strict\n" + c.global + "}\nvrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  priority 150\n  advert_int 1\n  use_vmac\n" +
				"  virtual_ipaddress {\n    " + c.vips + "\n  }\n}\n"
			want := keepalivedRuleset(t, conf, c.addrs[0])
			got := firewallRuleset(t, c.vmac, c.ipv6, c.addrs)
			if got != want {
				t.Errorf("ruleset:\n%s\nkeepalived's:\n%s", got, want)
			}
		})
	}
}

var nftCounters = regexp.MustCompile(`counter packets \d+ bytes \d+`)

func ruleset(t *testing.T, ns string) string {
	return nftCounters.ReplaceAllString(sh(t, "ip", "netns", "exec", ns, "nft", "list", "ruleset"), "counter packets N bytes N")
}

// keepalivedRuleset runs keepalived on conf in a namespace of its own
// until vip is in its ruleset, and returns the ruleset.
func keepalivedRuleset(t *testing.T, conf, vip string) string {
	t.Helper()
	kns := fmt.Sprintf("lvsdfwk%d", os.Getpid()%100000)
	testNS(t, kns)
	dir := t.TempDir()
	cf := filepath.Join(dir, "k.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	k := exec.Command("ip", "netns", "exec", kns, "keepalived", "-n", "-l", "-P", "-f", cf,
		"-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "v.pid"), "-c", filepath.Join(dir, "c.pid"))
	var kout strings.Builder
	k.Stdout, k.Stderr = &kout, &kout
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = k.Wait(); close(exited) }()
	defer func() {
		_ = k.Process.Signal(syscall.SIGTERM)
		<-exited
		if t.Failed() {
			t.Logf("keepalived:\n%s", kout.String())
		}
	}()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		r := ruleset(t, kns)
		if strings.Contains(r, vip) && strings.Contains(r, "vmac_map") {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("keepalived's ruleset:\n%s", r)
		}
	}
}

// firewallRuleset hands the Firewall, in a namespace of its own, the VMAC
// vmac (made here) over eth0 and the addresses, and returns the ruleset;
// after Run the ruleset must be empty.
func firewallRuleset(t *testing.T, vmac string, ipv6 bool, addrs []string) string {
	t.Helper()
	lns := fmt.Sprintf("lvsdfwl%d", os.Getpid()%100000)
	testNS(t, lns)
	sh(t, "ip", "-n", lns, "link", "add", vmac, "link", "eth0", "type", "macvlan", "mode", "private")
	ifindex := func(name string) int {
		var i int
		if _, err := fmt.Sscanf(sh(t, "ip", "-n", lns, "-o", "link", "show", name), "%d:", &i); err != nil {
			t.Fatal(err)
		}
		return i
	}
	ns, err := netns.GetFromName(lns)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	f := New(NewNFT(Options{Priority: -1, Counters: ipv6, NetNS: int(ns)}), true, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = f.Run(ctx); close(done) }()
	if err := f.SetVMAC(VMAC{Index: ifindex(vmac), Base: ifindex("eth0"), IPv6: ipv6}, true); err != nil {
		t.Fatal(err)
	}
	var as []Addr
	for _, a := range addrs {
		ip := netip.MustParseAddr(a)
		x := Addr{IP: ip}
		if ip.IsLinkLocalUnicast() {
			x.Ifindex = ifindex(vmac)
		}
		as = append(as, x)
	}
	if err := f.SetVIPs("VI_1", as); err != nil {
		t.Fatal(err)
	}
	got := ruleset(t, lns)
	cancel()
	<-done
	if r := ruleset(t, lns); r != "" {
		t.Errorf("after stop: %s", r)
	}
	return got
}
