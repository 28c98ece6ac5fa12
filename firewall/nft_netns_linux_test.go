package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
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
// 2.2.7 makes vmac_map and the IGMP rule with the VMAC, then the drop of
// the VIPs as MASTER; the Firewall, handed the same VMAC (a macvlan made
// here as keepalived makes it) and VIPs, lists the same.
func TestNetnsVMACMapLikeKeepalived(t *testing.T) {
	if os.Getenv("LVSD_INTEGRATION") == "" {
		t.Skip("set LVSD_INTEGRATION=1 (root, nft, keepalived)")
	}
	for _, tool := range []string{"ip", "nft", "keepalived"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("LVSD_INTEGRATION is set but %s is not installed", tool)
		}
	}
	id := os.Getpid() % 100000
	kns, lns := fmt.Sprintf("lvsdfwk%d", id), fmt.Sprintf("lvsdfwl%d", id)
	testNS(t, kns)
	testNS(t, lns)

	dir := t.TempDir()
	cf := filepath.Join(dir, "k.conf")
	conf := "global_defs {\n  vrrp_strict\n}\nvrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  priority 150\n  advert_int 1\n  use_vmac\n" +
		"  virtual_ipaddress {\n    192.0.2.100/24\n    192.0.2.101/32\n  }\n}\n"
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
	var want string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		want = sh(t, "ip", "netns", "exec", kns, "nft", "list", "ruleset")
		if strings.Contains(want, "192.0.2.100") && strings.Contains(want, "vmac_map") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("keepalived's ruleset:\n%s", want)
		}
	}

	sh(t, "ip", "-n", lns, "link", "add", "vrrp.51", "link", "eth0", "type", "macvlan", "mode", "private")
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
	f := New(NewNFT(Options{Priority: -1, NetNS: int(ns)}), true, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = f.Run(ctx); close(done) }()
	if err := f.SetVMAC(ifindex("vrrp.51"), ifindex("eth0"), true); err != nil {
		t.Fatal(err)
	}
	if err := f.SetVIPs("VI_1", []Addr{{IP: netip.MustParseAddr("192.0.2.100")}, {IP: netip.MustParseAddr("192.0.2.101")}}); err != nil {
		t.Fatal(err)
	}
	got := sh(t, "ip", "netns", "exec", lns, "nft", "list", "ruleset")
	if got != want {
		t.Errorf("ruleset:\n%s\nkeepalived's:\n%s", got, want)
	}
	cancel()
	<-done
	if r := sh(t, "ip", "netns", "exec", lns, "nft", "list", "ruleset"); r != "" {
		t.Errorf("after stop: %s", r)
	}
}
