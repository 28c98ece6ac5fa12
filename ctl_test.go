package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvsd/lvsd/status"
)

// TestCtlUsage: bad command lines are refused before any connection
// (exit 2), a missing daemon is exit 3.
func TestCtlUsage(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none")
	for _, args := range [][]string{{}, {"frob"}, {"status", "--yaml"}, {"ipvs", "-X"}, {"drain", "vs"}, {"failover"},
		{"failover", "a", "b"}, {"failover", "a", "--for", "x"}, {"reload", "now"}, {"--bogus", "status"}} {
		var out, errb bytes.Buffer
		if code := runCtl(append([]string{"--socket", sock}, args...), &out, &errb); code != ctlUsageErr || !strings.Contains(errb.String(), "Usage: lvsd ctl") {
			t.Errorf("lvsd ctl %q: exit %d, stderr %q", args, code, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := runCtl([]string{"--socket", sock, "status"}, &out, &errb); code != ctlNoDaemon || !strings.Contains(errb.String(), sock) {
		t.Errorf("no daemon: exit %d, %q", code, errb.String())
	}
	if code := run("lvsd", []string{"ctl", "help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "failover --clear") {
		t.Errorf("lvsd ctl help: %d %q", code, out.String())
	}
	o := &options{pidFile: "/run/x/lvsd.pid"}
	if p := ctlSocketPath(o); p != "/run/x/lvsd.ctl" {
		t.Errorf("beside the pid file: %s", p)
	}
	if p := ctlSocketPath(&options{}); p != defaultCtlSocket {
		t.Errorf("default: %s", p)
	}
	o, err := parseArgs([]string{"--ctl-socket=", "-p", "/run/x.pid"})
	if err != nil || ctlSocketPath(o) != "" {
		t.Errorf("--ctl-socket= disables: %q %v", ctlSocketPath(o), err)
	}
}

// TestStatusTable: instances and real servers, with failover and drain
// notes, in aligned columns.
func TestStatusTable(t *testing.T) {
	up := true
	st := &status.Status{Version: "1.0", Host: "lb1", Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Instances: []status.Instance{
			{Name: "VI_1", State: "BACKUP", Priority: 150, MasterAddr: "192.0.2.2", Interface: "eth0", VRID: 51, FailedOver: true},
			{Name: "VI_2", State: "MASTER", Priority: 100, MasterAddr: "192.0.2.1", Interface: "eth1", VRID: 52, SyncGroup: "G"},
		},
		VirtualServers: []status.VirtualServer{{Key: "TCP/192.0.2.100:80", QuorumUp: &up, RealServers: []status.RealServer{
			{Addr: "198.51.100.71:80", Up: true, Weight: 1, EffectiveWeight: 0, Drained: true, HealthKnown: true},
			{Addr: "198.51.100.72:80", Up: false, Weight: 3, EffectiveWeight: 3, HealthKnown: true},
		}}}}
	var b bytes.Buffer
	writeStatusTable(&b, st)
	want := `lvsd 1.0 on lb1, up since 2026-01-02T03:04:05Z; reloads ok 0, failed 0

INSTANCE  STATE   PRIORITY  MASTER     INTERFACE  VRID  NOTE
VI_1      BACKUP  150       192.0.2.2  eth0       51    failed over
VI_2      MASTER  100       192.0.2.1  eth1       52    group G

VIRTUAL SERVER      QUORUM  REAL SERVER       HEALTH  WEIGHT  NOTE
TCP/192.0.2.100:80  up      198.51.100.71:80  up      0       drained
                            198.51.100.72:80  down    3       
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}
