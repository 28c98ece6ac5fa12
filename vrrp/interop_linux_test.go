package vrrp

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func keepalivedConf(prio int) string {
	return fmt.Sprintf(`vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 61
  priority %d
  advert_int 1
  garp_master_delay 1
  authentication {
    auth_type PASS
    auth_pass s3cret
  }
  virtual_ipaddress {
    192.0.2.200/24
  }
}
`, prio)
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startKeepalived runs keepalived (VRRP only, foreground, console log) in ns.
func startKeepalived(t *testing.T, ns string, prio int) (*lockedBuf, func(syscall.Signal), chan struct{}) {
	t.Helper()
	return startKeepalivedConf(t, ns, keepalivedConf(prio))
}

// startKeepalivedConf runs keepalived in ns with the configuration text.
func startKeepalivedConf(t *testing.T, ns, confText string) (*lockedBuf, func(syscall.Signal), chan struct{}) {
	t.Helper()
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		t.Fatal("LVSD_INTEGRATION is set but keepalived is not installed")
	}
	dir := t.TempDir()
	cf := filepath.Join(dir, "k.conf")
	if err := os.WriteFile(cf, []byte(confText), 0o600); err != nil {
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

// Our Engine, configured from keepalived syntax, against the real
// keepalived on the wire (VRRPv2 with PASS authentication).
func TestNetnsInteropKeepalived(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	const vip = "192.0.2.200"

	// Phase 1: keepalived (200) is master; our engine (100) stays BACKUP,
	// which needs it to accept keepalived's adverts.
	kout, kkill, kdone := startKeepalived(t, n.b, 200)
	waitFor(t, 8*time.Second, "keepalived MASTER", func() bool { return strings.Contains(kout.String(), "Entering MASTER STATE") })
	ours := startHelper(t, n.a, "ours", helperConfig{ConfText: keepalivedConf(100)})
	ours.await(t, 2*time.Second, isTo("BACKUP"))
	ours.expectNone(t, 5*time.Second, isTo("MASTER"))
	if strings.Contains(n.addrs(t, n.a), vip) {
		t.Fatal("VIP on our backup")
	}

	// keepalived stops gracefully (priority 0): we take over quickly.
	kkill(syscall.SIGTERM)
	start := time.Now()
	ours.await(t, 3*time.Second, isTo("MASTER"))
	if d := time.Since(start); d > time.Second {
		t.Fatalf("takeover after keepalived's priority 0 took %v", d)
	}
	<-kdone
	waitFor(t, 2*time.Second, "VIP on our master", func() bool { return strings.Contains(n.addrs(t, n.a), vip) })

	// Phase 2: keepalived (50) starts while we are master: it must accept
	// our adverts and stay BACKUP.
	kout2, _, _ := startKeepalived(t, n.b, 50)
	waitFor(t, 3*time.Second, "keepalived BACKUP", func() bool { return strings.Contains(kout2.String(), "Entering BACKUP STATE") })
	time.Sleep(5 * time.Second)
	if s := kout2.String(); strings.Contains(s, "Entering MASTER STATE") || strings.Contains(s, "invalid") || strings.Contains(s, "mismatch") {
		t.Fatalf("keepalived did not accept our adverts:\n%s", s)
	}
	if strings.Contains(n.addrs(t, n.b), vip) {
		t.Fatal("VIP on keepalived's backup")
	}
}

// A wrong password on one side: each rejects the other's adverts (and
// counts them), both are MASTER, and neither flaps.
func TestNetnsInteropWrongPassword(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	capA := startCapture(t, n.br, "va")
	kout, _, _ := startKeepalived(t, n.b, 200)
	waitFor(t, 8*time.Second, "keepalived MASTER", func() bool { return strings.Contains(kout.String(), "Entering MASTER STATE") })
	ours := startHelper(t, n.a, "ours", helperConfig{ConfText: strings.Replace(keepalivedConf(100), "s3cret", "wrong", 1)})
	ours.await(t, 2*time.Second, isTo("BACKUP"))
	// Nothing valid is heard: MASTER after Master_Down_Interval.
	ours.await(t, 5*time.Second, isTo("MASTER"))
	first := ours.await(t, time.Second, func(l helperLine) bool { return l.Event == "status" })
	// Stable for 6 adverts.
	var last helperLine
	deadline := time.Now().Add(6 * time.Second)
	for time.Now().Before(deadline) {
		l := ours.await(t, time.Second, func(l helperLine) bool { return l.Event == "status" || l.Event == "transition" })
		if l.Event == "transition" {
			t.Fatalf("flapped: %+v", l)
		}
		last = l
	}
	if last.Stats["state"] != uint64(StateMaster) || last.Stats["become_master"] != 1 || last.Stats["advert_rcvd"] != 0 {
		t.Fatalf("our status %v", last.Stats)
	}
	rejected := last.Stats["drop_auth_failure"] - first.Stats["drop_auth_failure"]
	t.Logf("ours: %d of keepalived's adverts rejected (auth_failure) in 6s (%v -> %v); keepalived log:\n%s", rejected, first.Stats, last.Stats, grepLines(kout.String(), "passw", "MASTER"))
	// Every advert of keepalived that reached us was rejected and counted.
	// (keepalived 2.2.7 as MASTER restarts its advert timer on each
	// rejected packet: with our adverts arriving just before its timer
	// expires it may go silent. That is keepalived's side.)
	frames, _ := capA.snapshot()
	sent := 0
	for _, f := range frames {
		if f.src.String() == "192.0.2.2" && f.at.Before(last.At) {
			sent++
		}
	}
	if total := last.Stats["drop_auth_failure"]; sent < 3 || total+1 < uint64(sent) || total > uint64(sent) || last.Stats["advert_rcvd"] != 0 {
		t.Fatalf("%d adverts of keepalived reached us, %d rejected for the password: %v", sent, total, last.Stats)
	}
	k := kout.String()
	if c := strings.Count(k, "Entering MASTER STATE"); c != 1 || strings.Contains(k, "Entering BACKUP STATE") && strings.LastIndex(k, "Entering BACKUP STATE") > strings.Index(k, "Entering MASTER STATE") {
		t.Fatalf("keepalived flapped:\n%s", k)
	}
	if !strings.Contains(strings.ToLower(k), "passw") {
		t.Fatalf("keepalived did not report the bad password:\n%s", k)
	}
}

func grepLines(s string, words ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, w := range words {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	if len(out) > 8 {
		out = append(out[:8], "...")
	}
	return strings.Join(out, "\n")
}
