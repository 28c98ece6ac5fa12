package vrrp

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// track_file on the wire: the master's adverts carry its priority plus
// value × weight; a value that takes it below the backup hands the VIP
// over; a weight-0 file with a non-zero value puts it in FAULT; values
// written in place or renamed in are both seen.
func TestLvsdTrackFile(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	capA := startCapture(t, n.br, "va")
	dir := t.TempDir()
	prioFile, faultFile := filepath.Join(dir, "prio"), filepath.Join(dir, "fault")
	confA := fmt.Sprintf(`track_file prio {
  file %s
  weight -1
  init_file 5
}
vrrp_track_file fault {
  file "%s"
  weight 0
}
`, prioFile, faultFile) + lvsdConf(150, "  track_file {\n    prio\n    fault\n  }\n")
	a := startLvsd(t, n.a, "A", confA)
	b := startLvsd(t, n.b, "B", lvsdConf(100, ""))
	a.waitState(t, "VI_1", "MASTER", 6*time.Second)
	b.waitState(t, "VI_1", "BACKUP", 2*time.Second)
	srcA := netip.MustParseAddr("192.0.2.1")
	prio := func() uint8 {
		frames, _ := capA.snapshot()
		fa := advertsFrom(frames, srcA)
		if len(fa) == 0 {
			return 0
		}
		return fa[len(fa)-1].adv.Priority
	}
	// init_file wrote 5: 150 - 5.
	if v, err := os.ReadFile(prioFile); err != nil || string(v) != "5\n" {
		t.Fatalf("init_file: %q %v", v, err)
	}
	waitFor(t, 3*time.Second, "priority 145 from init_file 5", func() bool { return prio() == 145 })
	if err := os.WriteFile(prioFile, []byte("20\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "priority 130", func() bool { return prio() == 130 })
	// Renamed into place, as careful writers do: 150 - 60 = 90 < 100.
	tmp := filepath.Join(dir, ".prio.new")
	if err := os.WriteFile(tmp, []byte("60"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, prioFile); err != nil {
		t.Fatal(err)
	}
	b.waitState(t, "VI_1", "MASTER", 6*time.Second)
	a.waitState(t, "VI_1", "BACKUP", 2*time.Second)
	if !hasAddr(t, n.b, "eth0", "192.0.2.100") || hasAddr(t, n.a, "eth0", "192.0.2.100") {
		t.Fatal("the VIP did not move to B")
	}
	// The file removed counts as 0: A preempts back.
	if err := os.Remove(prioFile); err != nil {
		t.Fatal(err)
	}
	a.waitState(t, "VI_1", "MASTER", 6*time.Second)
	// Weight 0: a non-zero value is a FAULT; B takes over again.
	if err := os.WriteFile(faultFile, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	a.waitState(t, "VI_1", "FAULT", 3*time.Second)
	b.waitState(t, "VI_1", "MASTER", 6*time.Second)
	if err := os.WriteFile(faultFile, []byte("0"), 0o644); err != nil {
		t.Fatal(err)
	}
	a.waitState(t, "VI_1", "MASTER", 8*time.Second)
	if !hasAddr(t, n.a, "eth0", "192.0.2.100") {
		t.Fatal("the VIP is not back on A")
	}
}
