package main

import (
	"bytes"
	"fmt"
	"log/slog"
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

	"github.com/lvsd/lvsd/conf"
)

// instance, net_namespace and data_use_instance (in global_defs or at the
// top level, as keepalived allows) name the pid file (without -p) and the
// SIGUSR1 dump as keepalived 2.2 does: keepalived_INSTANCE.pid in
// /run/keepalived[/NS], keepalived_NS_INSTANCE.data.
func TestInstanceFileNames(t *testing.T) {
	for _, c := range []struct {
		conf, pidFlag, pid, data string
	}{
		{conf: "", pid: "", data: "keepalived.data"},
		{conf: "global_defs {\n  instance a\n}\n", pid: "/run/keepalived/keepalived_a.pid", data: "keepalived.data"},
		{conf: "instance a\n", pidFlag: "/x/k.pid", pid: "/x/k.pid", data: "keepalived.data"},
		{conf: "net_namespace n\n", pid: "/run/keepalived/n/keepalived.pid", data: "keepalived.data"},
		{conf: "global_defs {\n  net_namespace n\n  instance a\n  data_use_instance\n}\n", pid: "/run/keepalived/n/keepalived_a.pid", data: "keepalived_n_a.data"},
		{conf: "instance a\nglobal_defs {\n  data_use_instance\n}\n", pid: "/run/keepalived/keepalived_a.pid", data: "keepalived_a.data"},
		{conf: "global_defs {\n  data_use_instance\n}\n", pid: "", data: "keepalived.data"},
	} {
		cfg, diags := conf.Parse("k.conf", c.conf, conf.Options{ConfigID: "x"})
		if conf.MaxLevel(diags) >= conf.Warning {
			t.Errorf("%q: %v", c.conf, diags)
		}
		pid, _ := pidFilePath(&options{pidFile: c.pidFlag}, &cfg.Global)
		if pid != c.pid {
			t.Errorf("%q -p %q: pid file %q, want %q", c.conf, c.pidFlag, pid, c.pid)
		}
		if got := dataDumpName(&cfg.Global); got != c.data {
			t.Errorf("%q: SIGUSR1 dump %q, want %q", c.conf, got, c.data)
		}
	}
	_, diags := conf.Parse("k.conf", "global_defs {\n  net_namespace ../x\n}\n", conf.Options{ConfigID: "x"})
	if len(diags) == 0 || !strings.Contains(diags[0].String(), "k.conf:2") || !strings.Contains(diags[0].Msg, "invalid name") {
		t.Errorf("net_namespace ../x: %v", diags)
	}
}

// A reload does not change net_namespace or instance: the running ones
// stay, with a warning naming the keyword.
func TestReloadKeepsNamespaceAndInstance(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	running := conf.Global{NetNamespace: "n", Instance: "a"}
	next := conf.Global{NetNamespace: "m"}
	keepStartNames(log, &options{}, &running, &next)
	if next.NetNamespace != "n" || next.Instance != "a" {
		t.Errorf("reloaded: net_namespace %q instance %q, want n a", next.NetNamespace, next.Instance)
	}
	if out := buf.String(); !strings.Contains(out, "net_namespace is not changed by a reload") || !strings.Contains(out, "instance is not changed") {
		t.Errorf("log:\n%s", out)
	}
	// -s: the reloaded configuration has it too, without a warning.
	buf.Reset()
	running, next = conf.Global{NetNamespace: "s"}, conf.Global{NetNamespace: "n"}
	keepStartNames(log, &options{netNamespace: "s"}, &running, &next)
	if next.NetNamespace != "s" || buf.Len() != 0 {
		t.Errorf("with -s s: reloaded net_namespace %q, log %q", next.NetNamespace, buf.String())
	}
}

// -s NAME overrides net_namespace (keepalived's --namespace): lvsd tries
// NAME, not the configuration's.
func TestNamespaceFlagOverridesConfig(t *testing.T) {
	cfg, _ := conf.Parse("k.conf", "net_namespace lvsd-from-conf\n", conf.Options{ConfigID: "x"})
	err := enterNetNamespace(&options{netNamespace: "lvsd-no-such-ns"}, cfg)
	if err == nil || !strings.Contains(err.Error(), "net_namespace lvsd-no-such-ns") {
		t.Errorf("enter with -s lvsd-no-such-ns: %v", err)
	}
	if cfg.Global.NetNamespace != "lvsd-no-such-ns" {
		t.Errorf("net_namespace %q, want the -s one", cfg.Global.NetNamespace)
	}
}

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
	netnsWithInterfaces(t, ns, []string{"lvnsa0"}) // and its peer lvsdpeer0
	runCmd(t, "ip", "-n", ns, "addr", "add", "192.0.2.1/24", "dev", "lvnsa0")
	runCmd(t, "ip", "-n", ns, "link", "set", "lvsdpeer0", "up")
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
	adverts := countAdvertsVRID(t, ns, "lvsdpeer0", netip.MustParseAddr("192.0.2.1"), 61)
	lv := &kaSide{name: "lvsd", dir: dir, out: &lockedBuffer{}, exited: make(chan struct{})}
	lv.run(t, exec.Command(bin, "--dont-fork", "--log-console", "--vrrp", "-f", conf,
		"--ctl-socket", filepath.Join(dir, "ctl"), "--metrics-listen", ""))
	cmd := lv.cmd
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
	lv.stop()
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
	if vipIn("-n", ns) {
		t.Error("the VIP left behind in " + ns)
	}
}
