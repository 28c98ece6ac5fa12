package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// keepalived's default umask (no umask keyword) side by side with
// keepalived 2.2.7, both started under umask 022: the processes run with
// 0177, so the FIFO each makes and the file its notify script creates are
// 0600, the pid file stays 0644, the JSON and data dumps are 0600.
const umaskCompareConf = `global_defs {
  router_id umask
  vrrp_notify_fifo {{DIR}}/vrrp.fifo
}
` + kaVI1 + `  notify_master "/bin/touch {{DIR}}/notified"
  virtual_ipaddress {
    192.0.2.100/24
  }
}
`

func TestNetnsDefaultUmaskMatchesKeepalived(t *testing.T) {
	bin, shared := kaCompare(t, nil)
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	ka := newKASide(t, "keepalived", shared, umaskCompareConf)
	lv := newKASide(t, "lvsd", shared, umaskCompareConf)
	startBoth(t, ka, lv, bin)
	both := []*kaSide{ka, lv}
	for _, s := range both {
		waitUntil(t, 20*time.Second, s.name+": MASTER, its notify script run", func() bool {
			_, err := os.Stat(filepath.Join(s.dir, "notified"))
			return err == nil
		})
	}
	umaskRe := regexp.MustCompile(`(?m)^Umask:\s*(\d+)$`)
	modes := map[string]map[string]string{}
	for _, s := range both {
		_ = s.cmd.Process.Signal(syscall.Signal(36)) // SIGJSON
		_ = s.cmd.Process.Signal(syscall.SIGUSR1)
		waitUntil(t, 10*time.Second, s.name+": its dumps", func() bool {
			for _, f := range []string{"keepalived.json", "keepalived.data"} {
				if fi, err := os.Stat(filepath.Join(s.dir, f)); err != nil || fi.Size() == 0 {
					return false
				}
			}
			return true
		})
		m := map[string]string{}
		for _, f := range []string{"k.pid", "vrrp.fifo", "notified", "keepalived.json", "keepalived.data"} {
			fi, err := os.Stat(filepath.Join(s.dir, f))
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			m[f] = fi.Mode().Perm().String()
		}
		pid, err := os.ReadFile(filepath.Join(s.dir, "k.pid"))
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/status")
		if err != nil {
			t.Fatal(err)
		}
		if u := umaskRe.FindSubmatch(st); u != nil {
			m["process umask"] = string(u[1])
		}
		modes[s.name] = m
	}
	t.Logf("keepalived's: %v", modes["keepalived"])
	want := map[string]string{"k.pid": "-rw-r--r--", "vrrp.fifo": "-rw-------", "notified": "-rw-------",
		"keepalived.json": "-rw-------", "keepalived.data": "-rw-------", "process umask": "0177"}
	for f, w := range want {
		if k, l := modes["keepalived"][f], modes["lvsd"][f]; k != w || l != k {
			t.Errorf("%s: keepalived %s, lvsd %s (want %s)", f, k, l, w)
		}
	}
}
