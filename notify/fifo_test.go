package notify

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fifoReader opens a FIFO for reading without blocking; read returns what
// has been written since.
func fifoReader(t *testing.T, path string) (read func() string) {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return func() string {
		var sb strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := unix.Read(fd, buf)
			if n > 0 {
				sb.Write(buf[:n])
				continue
			}
			if err == nil || errors.Is(err, unix.EAGAIN) {
				return sb.String()
			}
			t.Fatal(err)
		}
	}
}

// TestNotifyFIFOLVSLines: keepalived's lines and routing: notify_fifo (made
// by lvsd, removed at Close) gets every line, vrrp_notify_fifo the VRRP
// ones, lvs_notify_fifo (made beforehand: kept) the checkers' VS and RS
// lines, for a virtual server by address, by fwmark and by group. With no
// reader, a full pipe drops lines (counted) and never blocks.
func TestNotifyFIFOLVSLines(t *testing.T) {
	dir := t.TempDir()
	all, vr, lvs := filepath.Join(dir, "all"), filepath.Join(dir, "vrrp"), filepath.Join(dir, "lvs")
	if err := unix.Mkfifo(lvs, 0o600); err != nil {
		t.Fatal(err)
	}
	c := parseConf(t, `
global_defs {
  notify_fifo `+all+`
  vrrp_notify_fifo `+vr+`
  lvs_notify_fifo `+lvs+`
}
vrrp_instance VI_1 {
  interface lo
  virtual_router_id 1
  priority 100
  notify_priority_changes
}
virtual_server 192.0.2.1 80 {
  protocol TCP
  real_server 10.0.0.1 8080 {
  }
}
virtual_server fwmark 7 {
  real_server 10.0.0.3 80 {
  }
}
virtual_server_group G {
  192.0.2.10 443
}
virtual_server group G {
  protocol UDP
  real_server 10.0.0.5 443 {
  }
}
`)
	fifos := NewFIFOs(c, nil)
	st, err := os.Lstat(all)
	if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("notify_fifo not made: %v %v", st, err)
	}
	rAll, rVRRP, rLVS := fifoReader(t, all), fifoReader(t, vr), fifoReader(t, lvs)
	n := New(c, Options{FIFO: fifos})
	vs1, vs2, vs3 := c.VirtualServers[0], c.VirtualServers[1], c.VirtualServers[2]
	n.RealServerFIFO(vs1, vs1.RealServers[0], false)
	n.QuorumFIFO(vs1, false)
	n.RealServerFIFO(vs2, vs2.RealServers[0], true)
	n.QuorumFIFO(vs3, true)
	n.RealServerFIFO(vs3, vs3.RealServers[0], true)
	n.Post(Event{Name: "VI_1", State: "MASTER", Priority: 100})
	n.Post(Event{Name: "VI_1", State: MasterPriority, Priority: 90})
	n.Post(Event{Name: "nope", State: "MASTER", Priority: 100})
	wantLVS := "RS [10.0.0.1]:tcp:8080 [192.0.2.1]:tcp:80 DOWN\n" +
		"VS [192.0.2.1]:tcp:80 DOWN\n" +
		"RS [10.0.0.3]:tcp:80 FWM 7 UP\n" +
		"VS [G]:0 UP\n" +
		"RS [10.0.0.5]:udp:443 [G]:0 UP\n"
	wantVRRP := "INSTANCE \"VI_1\" MASTER 100\nINSTANCE \"VI_1\" MASTER_PRIORITY 90\n"
	if got := rLVS(); got != wantLVS {
		t.Errorf("lvs_notify_fifo:\n%s\nwant:\n%s", got, wantLVS)
	}
	if got := rVRRP(); got != wantVRRP {
		t.Errorf("vrrp_notify_fifo:\n%s\nwant:\n%s", got, wantVRRP)
	}
	if got := rAll(); got != wantLVS+wantVRRP {
		t.Errorf("notify_fifo:\n%s\nwant:\n%s", got, wantLVS+wantVRRP)
	}
	if s := fifos.Stats(); s.Written != 14 || s.Dropped != 0 {
		t.Errorf("stats %+v, want 14 written, none dropped", s)
	}

	// Nobody reads: the pipe fills, lines are dropped, nothing blocks.
	start := time.Now()
	for range 5000 {
		n.QuorumFIFO(vs1, true)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("5000 lines into full pipes took %v", d)
	}
	if s := fifos.Stats(); s.Dropped == 0 {
		t.Errorf("stats %+v: a full pipe dropped nothing", s)
	}
	n.Close()
	fifos.Close()
	if _, err := os.Lstat(all); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("notify_fifo, made by lvsd, still there after Close: %v", err)
	}
	if _, err := os.Lstat(lvs); err != nil {
		t.Errorf("lvs_notify_fifo, made before, removed: %v", err)
	}
}

// A reload that changes a FIFO's script, same path: the FIFO stays (the
// new reader reads it), and is removed at the end since lvsd made it.
func TestNotifyFIFOReloadSamePath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	conf1 := parseConf(t, "global_defs {\n  notify_fifo "+path+"\n}\n")
	conf2 := parseConf(t, "global_defs {\n  notify_fifo "+path+" nobody\n}\n")
	fifos := NewFIFOs(conf1, nil)
	fifos.Apply(conf2)
	time.Sleep(300 * time.Millisecond) // the old one's shut
	if st, err := os.Lstat(path); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("after the reload the FIFO is gone: %v", err)
	}
	read := fifoReader(t, path)
	fifos.WriteVRRP("INSTANCE \"VI_1\" MASTER 100\n")
	if got := read(); got != "INSTANCE \"VI_1\" MASTER 100\n" {
		t.Errorf("read %q after the reload", got)
	}
	fifos.Close()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the FIFO lvsd made is still there after Close: %v", err)
	}
}

// TestNotifyFIFOStartOrder: the start-up lines, held from HoldStart, come
// out at ReleaseStart in keepalived's order (virtual server by virtual
// server, each one's real servers then its quorum) whatever the order
// they came in; the later ones as they come.
func TestNotifyFIFOStartOrder(t *testing.T) {
	dir := t.TempDir()
	lvs := filepath.Join(dir, "lvs")
	c := parseConf(t, `
global_defs {
  lvs_notify_fifo `+lvs+`
}
virtual_server 192.0.2.1 80 {
  protocol TCP
  real_server 10.0.0.1 80 {
  }
  real_server 10.0.0.2 80 {
  }
}
virtual_server 192.0.2.1 81 {
  protocol TCP
  real_server 10.0.0.1 81 {
  }
}
`)
	fifos := NewFIFOs(c, nil)
	defer fifos.Close()
	read := fifoReader(t, lvs)
	n := New(c, Options{FIFO: fifos})
	defer n.Close()
	vs1, vs2 := c.VirtualServers[0], c.VirtualServers[1]
	n.HoldStart(c)
	n.QuorumFIFO(vs1, true) // the reconciler's, first
	n.QuorumFIFO(vs2, true)
	n.RealServerFIFO(vs1, vs1.RealServers[0], true) // then the checkers'
	n.RealServerFIFO(vs1, vs1.RealServers[1], true)
	n.RealServerFIFO(vs2, vs2.RealServers[0], true)
	if got := read(); got != "" {
		t.Fatalf("lines before ReleaseStart: %q", got)
	}
	n.ReleaseStart()
	n.RealServerFIFO(vs2, vs2.RealServers[0], false)
	n.ReleaseStart() // again: nothing more
	want := "RS [10.0.0.1]:tcp:80 [192.0.2.1]:tcp:80 UP\n" +
		"RS [10.0.0.2]:tcp:80 [192.0.2.1]:tcp:80 UP\n" +
		"VS [192.0.2.1]:tcp:80 UP\n" +
		"RS [10.0.0.1]:tcp:81 [192.0.2.1]:tcp:81 UP\n" +
		"VS [192.0.2.1]:tcp:81 UP\n" +
		"RS [10.0.0.1]:tcp:81 [192.0.2.1]:tcp:81 DOWN\n"
	if got := read(); got != want {
		t.Errorf("lvs_notify_fifo:\n%s\nwant:\n%s", got, want)
	}
}
