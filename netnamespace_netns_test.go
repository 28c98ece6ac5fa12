package main

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// net_namespace: lvsd started in the host's namespace joins
// /run/netns/NAME before anything else, every thread of it; its VIP and
// adverts are there, the host's namespace untouched; with instance (and
// no -p) its pid file is keepalived's, and with data_use_instance its
// SIGUSR1 dump is named as keepalived's. The interface exists only in the
// test's namespace, so lvsd left in the host could not add the VIP.
func TestNetnsNetNamespace(t *testing.T) {
	integration(t, "ip")
	bin := buildLvsd(t)
	ns := fmt.Sprintf("lvsdns%d", os.Getpid()%100000)
	_ = exec.Command("ip", "netns", "del", ns).Run()
	runCmd(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	runCmd(t, "ip", "-n", ns, "link", "add", "lvnsa0", "type", "veth", "peer", "name", "lvnsb0")
	runCmd(t, "ip", "-n", ns, "addr", "add", "192.0.2.1/24", "dev", "lvnsa0")
	for _, l := range []string{"lo", "lvnsa0", "lvnsb0"} {
		runCmd(t, "ip", "-n", ns, "link", "set", l, "up")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(`net_namespace `+ns+`
global_defs {
  router_id nsr
  instance lvsdt
  data_use_instance
}
vrrp_instance VI_1 {
  state MASTER
  interface lvnsa0
  virtual_router_id 61
  priority 150
  advert_int 1
  virtual_ipaddress {
    192.0.2.161/24
  }
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	adverts := countAdvertsVRID(t, ns, "lvnsb0", netip.MustParseAddr("192.0.2.1"), 61)
	out := &lockedBuffer{}
	cmd := exec.Command(bin, "--dont-fork", "--log-console", "--vrrp", "-f", conf,
		"--ctl-socket", filepath.Join(dir, "ctl"), "--metrics-listen", "")
	cmd.Env = append(os.Environ(), "TMPDIR="+dir)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("lvsd output:\n%s", out.String())
		}
	})
	vipIn := func(args ...string) bool {
		return strings.Contains(runCmd(t, "ip", append(args, "-4", "-o", "addr", "show")...), "192.0.2.161/")
	}
	waitUntil(t, 15*time.Second, "the VIP in "+ns, func() bool { return vipIn("-n", ns) })
	if vipIn() {
		t.Error("the VIP is in the host's namespace")
	}
	waitUntil(t, 10*time.Second, "adverts on the namespace's veth", func() bool {
		return adverts.between(time.Now().Add(-time.Minute), time.Now()) >= 2
	})

	// Every thread of the process (same pid: executed again in place).
	var want unix.Stat_t
	if err := unix.Stat("/run/netns/"+ns, &want); err != nil {
		t.Fatal(err)
	}
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/ns/net", cmd.Process.Pid))
	if err != nil || len(tasks) < 2 {
		t.Fatalf("threads of lvsd: %v %v", tasks, err)
	}
	for _, p := range tasks {
		var have unix.Stat_t
		if err := unix.Stat(p, &have); err != nil {
			continue // a thread that just ended
		}
		if have.Ino != want.Ino || have.Dev != want.Dev {
			t.Errorf("%s: not in %s", p, ns)
		}
	}

	// keepalived's pid file for instance lvsdt in namespace ns.
	pidFile := filepath.Join("/run/keepalived", ns, "keepalived_lvsdt.pid")
	b, err := os.ReadFile(pidFile)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(cmd.Process.Pid) {
		t.Errorf("pid file %s: %q %v, want %d", pidFile, b, err, cmd.Process.Pid)
	}
	// data_use_instance: keepalived_NS_INSTANCE.data.
	_ = cmd.Process.Signal(syscall.SIGUSR1)
	data := filepath.Join(dir, "keepalived_"+ns+"_lvsdt.data")
	waitUntil(t, 5*time.Second, data, func() bool {
		b, err := os.ReadFile(data)
		return err == nil && strings.Contains(string(b), "VI_1")
	})
	stop()
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
	if vipIn("-n", ns) {
		t.Error("the VIP left behind in " + ns)
	}
}
