package vrrp

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func conf6(prio int) string {
	return fmt.Sprintf(`vrrp_instance V6 {
  state BACKUP
  interface eth0
  virtual_router_id 62
  priority %d
  advert_int 1
  virtual_ipaddress {
    2001:db8::200/64
  }
  virtual_ipaddress_excluded {
    192.0.2.200/24
  }
}
`, prio)
}

// startKeepalivedText runs keepalived (VRRP only, foreground, console
// log) in ns with the configuration text.
func startKeepalivedText(t *testing.T, ns, text string) (*lockedBuf, func(syscall.Signal), chan struct{}) {
	t.Helper()
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		t.Fatal("LVSD_INTEGRATION is set but keepalived is not installed")
	}
	dir := t.TempDir()
	cf := filepath.Join(dir, "k.conf")
	if err := os.WriteFile(cf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, bin, "-n", "-l", "-D", "-P", "-f", cf,
		"-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "v.pid"))
	out := &lockedBuf{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	kill := func(sig syscall.Signal) { _ = cmd.Process.Signal(sig) }
	t.Cleanup(func() {
		kill(syscall.SIGKILL)
		<-done
		if t.Failed() {
			fmt.Fprintf(os.Stderr, "--- keepalived output:\n%s", out.String())
		}
	})
	return out, kill, done
}

// waitLinkLocal waits for the link-local address of eth0 in ns to leave
// duplicate address detection (it is the advert source).
func waitLinkLocal(t *testing.T, ns string) {
	t.Helper()
	waitFor(t, 5*time.Second, "link-local address in "+ns, func() bool {
		out := ipCmd(t, "-n", ns, "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link")
		return strings.Contains(out, "fe80::") && !strings.Contains(out, "tentative")
	})
}

// VRRPv3 over IPv6 against keepalived 2.2.7 both ways: lvsd with the
// higher priority is MASTER and keepalived stays BACKUP (its adverts and
// ours are accepted by each other), then keepalived takes over when lvsd
// stops; keepalived with the higher priority is MASTER and lvsd takes over
// when it is killed.
func TestNetnsInteropKeepalivedIPv6(t *testing.T) {
	requireIntegration(t)
	t.Run("lvsd master", func(t *testing.T) {
		n := newTestNet(t)
		waitLinkLocal(t, n.a)
		waitLinkLocal(t, n.b)
		a := startLvsd(t, n.a, "A", conf6(150))
		a.waitState(t, "V6", "MASTER", 6*time.Second)
		kout, _, _ := startKeepalivedText(t, n.b, conf6(100))
		waitFor(t, 5*time.Second, "keepalived BACKUP", func() bool { return strings.Contains(kout.String(), "Entering BACKUP STATE") })
		time.Sleep(5 * time.Second) // > Master_Down_Interval: keepalived hears us
		if s := kout.String(); strings.Contains(s, "Entering MASTER STATE") {
			t.Fatalf("keepalived became MASTER beside lvsd:\n%s", s)
		}
		if addr6Line(t, n.a, "eth0", "2001:db8::200/64") == "" || addr6Line(t, n.b, "eth0", "2001:db8::200/64") != "" {
			t.Fatal("the IPv6 VIP is not only on lvsd")
		}
		if !hasAddr(t, n.a, "eth0", "192.0.2.200") {
			t.Fatal("the excluded IPv4 VIP is not on lvsd")
		}
		a.signal(syscall.SIGTERM)
		waitFor(t, 3*time.Second, "keepalived MASTER", func() bool { return strings.Contains(kout.String(), "Entering MASTER STATE") })
		waitFor(t, 2*time.Second, "VIP on keepalived", func() bool { return addr6Line(t, n.b, "eth0", "2001:db8::200/64") != "" })
		if addr6Line(t, n.a, "eth0", "2001:db8::200/64") != "" {
			t.Fatal("the IPv6 VIP left on the stopped lvsd")
		}
	})
	t.Run("keepalived master", func(t *testing.T) {
		n := newTestNet(t)
		waitLinkLocal(t, n.a)
		waitLinkLocal(t, n.b)
		kout, kill, kdone := startKeepalivedText(t, n.b, conf6(200))
		waitFor(t, 8*time.Second, "keepalived MASTER", func() bool { return strings.Contains(kout.String(), "Entering MASTER STATE") })
		a := startLvsd(t, n.a, "A", conf6(100))
		a.waitState(t, "V6", "BACKUP", 3*time.Second)
		time.Sleep(5 * time.Second)
		if s := a.state("V6"); s != "BACKUP" {
			t.Fatalf("lvsd is %s beside a keepalived MASTER", s)
		}
		if addr6Line(t, n.a, "eth0", "2001:db8::200/64") != "" {
			t.Fatal("the IPv6 VIP is on the lvsd BACKUP")
		}
		kill(syscall.SIGKILL)
		<-kdone
		a.waitState(t, "V6", "MASTER", 5*time.Second)
		waitFor(t, time.Second, "VIP on lvsd", func() bool { return addr6Line(t, n.a, "eth0", "2001:db8::200/64") != "" })
	})
}
