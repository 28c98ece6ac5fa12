package main

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The notify FIFOs compared with keepalived 2.2.7: the same configuration
// (only the paths differ) runs in keepalived and in lvsd side by side, each
// in a namespace of its own with a peer on its link; the same events are
// driven into both at the same moments (one tracked file both watch, one
// lower priority advert from each peer, SIGTERM); the lines each wrote to
// its vrrp_notify_fifo (read by the test) must be equal, and so must the
// lines the notify_fifo_script of each read from its notify_fifo. Equal:
// the same lines in the same order for each instance and group, and a
// group's line after those of its instances that made it (and the umask
// of global_defs gives both the same file modes); the order
// between an instance and another that does not depend on it (at start-up,
// at shutdown) is not keepalived's contract, nor lvsd's.
const fifoCompareConf = `global_defs {
  router_id fifo
  umask IWGRP|IROTH|IWOTH|IXOTH
  notify_fifo {{DIR}}/all.fifo
  notify_fifo_script "{{SHARED}}/reader.sh {{DIR}}/reader.out"
  vrrp_notify_fifo {{DIR}}/vrrp.fifo
}
track_file tf {
  file {{SHARED}}/tf
  weight 1
}
track_file gf {
  file {{SHARED}}/gf
  weight 0
}
vrrp_sync_group G {
  group {
    VI_3
    VI_4
  }
}
` + kaVI1 + `  notify_priority_changes
  notify_master_rx_lower_pri "{{SHARED}}/mark.sh {{DIR}}/rxlower"
  virtual_ipaddress {
    192.0.2.100/24
  }
  track_file {
    tf
  }
}
vrrp_instance VI_3 {
  state BACKUP
  interface eth0
  virtual_router_id 53
  priority 250
  advert_int 1
  virtual_ipaddress {
    192.0.2.103/24
  }
  track_file {
    gf
  }
}
vrrp_instance VI_4 {
  state BACKUP
  interface eth0
  virtual_router_id 54
  priority 250
  advert_int 1
  virtual_ipaddress {
    192.0.2.104/24
  }
}
`

// kaVI1 opens the VI_1 the comparisons with keepalived share: BACKUP on
// eth0, VRID 51, priority 100, adverts every second.
const kaVI1 = `vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 100
  advert_int 1
`

// kaSide is one daemon of a side-by-side comparison with keepalived: its
// namespace (with a peer namespace on the other end of its eth0), files
// and process.
type kaSide struct {
	name, ns, peer, dir string
	cmd                 *exec.Cmd
	out                 *lockedBuffer
	exited              chan struct{}
	lines               chan []string // what the test read from vrrp.fifo
}

// newKASide makes the namespaces of side name and its configuration:
// confText with {{DIR}} (the side's directory) and {{SHARED}} replaced.
func newKASide(t *testing.T, name, shared, confText string) *kaSide {
	t.Helper()
	p := fmt.Sprintf("lvsdf%d%s", os.Getpid()%100000, name[:1])
	s := &kaSide{name: name, ns: p, peer: p + "p", dir: filepath.Join(shared, name), out: &lockedBuffer{}, exited: make(chan struct{})}
	for _, ns := range []string{s.ns, s.peer} {
		_ = exec.Command("ip", "netns", "del", ns).Run()
		runCmd(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	runCmd(t, "ip", "-n", s.ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", s.peer)
	for _, x := range []struct{ ns, addr string }{{s.ns, "192.0.2.1/24"}, {s.peer, "192.0.2.9/24"}} {
		runCmd(t, "ip", "-n", x.ns, "addr", "add", x.addr, "dev", "eth0")
		runCmd(t, "ip", "-n", x.ns, "link", "set", "eth0", "up")
		runCmd(t, "ip", "-n", x.ns, "link", "set", "lo", "up")
	}
	if err := os.Mkdir(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer("{{DIR}}", s.dir, "{{SHARED}}", shared).Replace(confText)
	if err := os.WriteFile(filepath.Join(s.dir, "keepalived.conf"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// start runs argv in the side's namespace, with TMPDIR its directory
// (where both write their dumps).
func (s *kaSide) start(t *testing.T, argv ...string) {
	t.Helper()
	s.run(t, exec.Command("ip", append([]string{"netns", "exec", s.ns}, argv...)...))
}

// run starts cmd as the side's process, stopped (stop) at the end.
func (s *kaSide) run(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	s.cmd = cmd
	s.cmd.Env = append(os.Environ(), "TMPDIR="+s.dir)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", s.name, s.out.String())
		}
	})
}

// stop sends SIGTERM and waits for the process to end (killed after 10 s).
func (s *kaSide) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// startPair makes both sides of a comparison with confText (kaCompare's
// files in the shared directory) and starts them (startBoth).
func startPair(t *testing.T, files map[string]string, confText string) (ka, lv *kaSide, shared string) {
	t.Helper()
	bin, shared := kaCompare(t, files)
	ka = newKASide(t, "keepalived", shared, confText)
	lv = newKASide(t, "lvsd", shared, confText)
	startBoth(t, ka, lv, bin)
	return ka, lv, shared
}

// startBoth starts keepalived and lvsd (bin), each on its side, with the
// VRRP process only.
func startBoth(t *testing.T, ka, lv *kaSide, bin string) {
	t.Helper()
	ka.start(t, "keepalived", "--dont-fork", "--log-console", "--log-detail", "--vrrp", "-f", filepath.Join(ka.dir, "keepalived.conf"),
		"-p", filepath.Join(ka.dir, "k.pid"), "-r", filepath.Join(ka.dir, "v.pid"))
	lv.start(t, bin, "--dont-fork", "--log-console", "--vrrp", "-f", filepath.Join(lv.dir, "keepalived.conf"),
		"-p", filepath.Join(lv.dir, "k.pid"), "-r", filepath.Join(lv.dir, "v.pid"), "--metrics-listen", "127.0.0.1:9165")
}

// readFIFO reads the side's vrrp.fifo once the daemon has made it, until
// the daemon closes it; the lines go to s.lines.
func (s *kaSide) readFIFO() {
	s.lines = make(chan []string, 1)
	go func() {
		path := filepath.Join(s.dir, "vrrp.fifo")
		for i := 0; i < 200; i++ {
			if st, err := os.Stat(path); err == nil && st.Mode()&os.ModeNamedPipe != 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		// The daemon holds the FIFO open read-write: this open does not
		// block, and lines written before it are in the pipe.
		f, err := os.OpenFile(path, os.O_RDONLY, 0)
		if err != nil {
			s.lines <- []string{"open: " + err.Error()}
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f) // until the daemon closes it
		s.lines <- strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}()
}

func (s *kaSide) readerLines(t *testing.T) []string {
	b, err := os.ReadFile(filepath.Join(s.dir, "reader.out"))
	if err != nil {
		t.Errorf("%s: the notify_fifo_script's output: %v", s.name, err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// kaCompare is the start of a comparison with keepalived: the built lvsd
// and a directory for both sides (removed at the end) with files (mode
// 0755) in it.
func kaCompare(t *testing.T, files map[string]string) (bin, shared string) {
	t.Helper()
	integration(t, "ip", "keepalived")
	bin = buildLvsd(t)
	shared, err := os.MkdirTemp("", "lvsd-ka-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shared) })
	if err := os.Chmod(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(shared, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return bin, shared
}

func TestNetnsNotifyFIFOMatchesKeepalived(t *testing.T) {
	bin, shared := kaCompare(t, map[string]string{
		// The FIFO's reader: its arguments, then what it reads.
		"reader.sh": "#!/bin/sh\nout=$1\nshift\necho \"args: $*\" > \"$out\"\nexec cat \"$1\" >> \"$out\"\n",
		"mark.sh":   "#!/bin/sh\necho \"$#\" >> \"$1\"\n",
	})
	setFile := func(name, v string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(shared, name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	setFile("tf", "0")
	setFile("gf", "0")
	ka := newKASide(t, "keepalived", shared, fifoCompareConf)
	lv := newKASide(t, "lvsd", shared, fifoCompareConf)
	startBoth(t, ka, lv, bin)
	ka.readFIFO()
	lv.readFIFO()
	both := []*kaSide{ka, lv}
	for _, s := range both {
		waitUntil(t, 20*time.Second, s.name+": VI_1 MASTER with its VIP", func() bool {
			return strings.Contains(runCmd(t, "ip", "-n", s.ns, "-4", "-o", "addr", "show", "dev", "eth0"), " 192.0.2.100/24 ")
		})
	}
	// umask IWGRP|IROTH|IWOTH|IXOTH (027): the FIFOs each made are 0640, and so is
	// what their scripts create.
	for _, s := range both {
		for _, f := range []string{"all.fifo", "vrrp.fifo", "reader.out"} {
			st, err := os.Stat(filepath.Join(s.dir, f))
			if err != nil {
				t.Errorf("%s: %s: %v", s.name, f, err)
			} else if st.Mode().Perm() != 0o640 {
				t.Errorf("%s: %s mode %v, want 0640 (umask 027)", s.name, f, st.Mode().Perm())
			}
		}
	}
	time.Sleep(1500 * time.Millisecond)
	step := func(what string, do func()) {
		t.Logf("event: %s", what)
		do()
		time.Sleep(1500 * time.Millisecond)
	}
	step("tf -5: VI_1's priority 95", func() { setFile("tf", "-5") })
	step("tf 10: VI_1's priority 110", func() { setFile("tf", "10") })
	step("a lower priority advert heard by VI_1", func() {
		for _, s := range both {
			sendVRRP(t, s.peer, netip.MustParseAddr("192.0.2.9"), 255, 1)
		}
	})
	step("gf 1: VI_3 FAULT, its group with it", func() { setFile("gf", "1") })
	step("tf -300: VI_1 FAULT", func() { setFile("tf", "-300") })
	for _, s := range both {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
	}
	got := map[string][]string{}
	for _, s := range both {
		select {
		case got[s.name] = <-s.lines:
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: vrrp.fifo not closed 15s after SIGTERM", s.name)
		}
		<-s.exited
	}
	t.Logf("keepalived's vrrp_notify_fifo:\n%s", strings.Join(got["keepalived"], "\n"))
	if a, b := fifoOrder(got["keepalived"]), fifoOrder(got["lvsd"]); a != b {
		t.Errorf("vrrp_notify_fifo lines differ\nkeepalived:\n%s\nlvsd:\n%s", a, b)
	}
	for _, want := range []string{`INSTANCE "VI_1" MASTER_PRIORITY 95`, `INSTANCE "VI_1" MASTER_RX_LOWER_PRI 110`, `GROUP "G" FAULT 0`, `INSTANCE "VI_1" STOP 110`} {
		if !strings.Contains(strings.Join(got["lvsd"], "\n"), want) {
			t.Errorf("lvsd's vrrp_notify_fifo lacks %q", want)
		}
	}

	// The notify_fifo's reader: started with the FIFO's path, reading the
	// same lines (keepalived may end it before its STOP lines are read:
	// compared up to the first STOP).
	upToStop := func(l []string) string {
		for i, x := range l {
			if strings.Contains(x, " STOP ") {
				return fifoOrder(l[:i])
			}
		}
		return fifoOrder(l)
	}
	kr, lr := ka.readerLines(t), lv.readerLines(t)
	if len(lr) == 0 || lr[0] != "args: "+filepath.Join(lv.dir, "all.fifo") {
		t.Errorf("lvsd's notify_fifo_script ran with %q, want the FIFO's path", lr[:min(1, len(lr))])
	}
	if a, b := upToStop(kr[1:]), upToStop(lr[1:]); a != b {
		t.Errorf("notify_fifo lines differ\nkeepalived:\n%s\nlvsd:\n%s", a, b)
	}
	if want := strings.Join(got["lvsd"], "\n"); strings.Join(lr[1:], "\n") != want {
		t.Errorf("lvsd's notify_fifo_script read\n%s\nwant every line of vrrp_notify_fifo\n%s", strings.Join(lr[1:], "\n"), want)
	}
	// notify_master_rx_lower_pri ran once, with no arguments beyond its own.
	for _, s := range both {
		if b, err := os.ReadFile(filepath.Join(s.dir, "rxlower")); err != nil || string(b) != "1\n" {
			t.Errorf("%s: notify_master_rx_lower_pri ran %q (%v), want once with its one argument", s.name, b, err)
		}
	}
	// lvsd removed the FIFOs it made.
	for _, f := range []string{"all.fifo", "vrrp.fifo"} {
		if _, err := os.Lstat(filepath.Join(lv.dir, f)); err == nil {
			t.Errorf("lvsd left %s behind", f)
		}
	}
}

// fifoOrder is what is compared of a FIFO's lines: each instance's and
// group's lines in order, and, for each group line, the group's instances'
// states when it was written.
func fifoOrder(lines []string) string {
	members := map[string][]string{`"G"`: {`"VI_3"`, `"VI_4"`}}
	by := map[string][]string{}
	state := map[string]string{}
	var names []string
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 4 {
			by["?"] = append(by["?"], l)
			continue
		}
		key := f[0] + " " + f[1]
		if _, ok := by[key]; !ok {
			names = append(names, key)
		}
		entry := f[2] + " " + f[3]
		if f[0] == "GROUP" {
			entry += " (instances"
			for _, m := range members[f[1]] {
				entry += " " + state[m]
			}
			entry += ")"
		} else if !strings.Contains(f[2], "_") {
			state[f[1]] = f[2]
		}
		by[key] = append(by[key], entry)
	}
	sort.Strings(names)
	var sb strings.Builder
	for _, k := range append(names, "?") {
		if len(by[k]) > 0 {
			sb.WriteString(k + ": " + strings.Join(by[k], ", ") + "\n")
		}
	}
	return sb.String()
}

// fifo_write_vrrp_states_on_reload side by side with keepalived 2.2.7: after
// a SIGHUP both write to vrrp_notify_fifo a GROUP line per sync group (G1
// of two MASTERs, G2 of one FAULT instance, G3 of one BACKUP) and an
// INSTANCE line per instance not MASTER (VI_5 FAULT, VI_6 BACKUP; none for
// the masters VI_1, VI_3, VI_2: keepalived 2.2.7 writes none). A long
// advert_int keeps the BACKUPs (no peer) BACKUP.
var fifoStatesConf = `global_defs {
  router_id fifostates
  vrrp_notify_fifo {{DIR}}/vrrp.fifo
  fifo_write_vrrp_states_on_reload
}
track_file down {
  file {{SHARED}}/down
  weight 0
}
vrrp_sync_group G1 {
  group {
    VI_1
    VI_3
  }
}
vrrp_sync_group G2 {
  group {
    VI_4
  }
}
vrrp_sync_group G3 {
  group {
    VI_7
  }
}
` + kaVI1 + `  virtual_ipaddress {
    192.0.2.100/24
  }
}
` + fifoStatesInstance("VI_3", 53, 1, "", "") + fifoStatesInstance("VI_4", 54, 1, "track_file {\n    down\n  }\n", "") +
	fifoStatesInstance("VI_5", 55, 1, "track_file {\n    down\n  }\n", "") + fifoStatesInstance("VI_6", 56, 100, "", "") +
	fifoStatesInstance("VI_7", 57, 100, "", "") + fifoStatesInstance("VI_2", 52, 1, "", "  priority 90\n")

func fifoStatesInstance(name string, vrid, advert int, track, prio string) string {
	if prio == "" {
		prio = "  priority 100\n"
	}
	return "vrrp_instance " + name + " {\n  state BACKUP\n  interface eth0\n  virtual_router_id " + strconv.Itoa(vrid) + "\n" + prio +
		"  advert_int " + strconv.Itoa(advert) + "\n  virtual_ipaddress {\n    192.0.2." + strconv.Itoa(vrid+50) + "/24\n  }\n  " + track + "}\n"
}

// fifoLog reads the side's vrrp.fifo again each time the daemon closes it
// (keepalived does at a reload), until the daemon has exited.
type fifoLog struct {
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func (s *kaSide) readFIFOAcrossReloads() *fifoLog {
	l := &fifoLog{done: make(chan struct{})}
	path := filepath.Join(s.dir, "vrrp.fifo")
	go func() {
		defer close(l.done)
		for {
			select {
			case <-s.exited:
				return
			default:
			}
			st, err := os.Stat(path)
			if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			// Blocking reads from here, line by line: EOF when the daemon
			// closes it.
			_ = syscall.SetNonblock(int(f.Fd()), false)
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				l.mu.Lock()
				l.lines = append(l.lines, sc.Text())
				l.mu.Unlock()
			}
			f.Close()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return l
}

func (l *fifoLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func TestNetnsFIFOStatesOnReloadMatchKeepalived(t *testing.T) {
	ka, lv, _ := startPair(t, map[string]string{"down": "1\n"}, fifoStatesConf)
	both := []*kaSide{ka, lv}
	logs := map[string]*fifoLog{}
	for _, s := range both {
		logs[s.name] = s.readFIFOAcrossReloads()
	}
	for _, s := range both {
		waitUntil(t, 20*time.Second, s.name+": VI_1, VI_3 and VI_2 MASTER", func() bool {
			a := runCmd(t, "ip", "-n", s.ns, "-4", "-o", "addr", "show", "dev", "eth0")
			return strings.Contains(a, " 192.0.2.100/24 ") && strings.Contains(a, " 192.0.2.103/24 ") && strings.Contains(a, " 192.0.2.102/24 ")
		})
	}
	time.Sleep(1500 * time.Millisecond)
	before := map[string]int{}
	for _, s := range both {
		before[s.name] = len(logs[s.name].snapshot())
		_ = s.cmd.Process.Signal(syscall.SIGHUP)
	}
	time.Sleep(3 * time.Second)
	for _, s := range both {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
	}
	after := map[string]string{}
	for _, s := range both {
		select {
		case <-logs[s.name].done:
		case <-time.After(15 * time.Second):
			t.Fatalf("%s did not stop", s.name)
		}
		var seg []string
		for _, l := range logs[s.name].snapshot()[before[s.name]:] {
			if strings.Contains(l, " STOP ") {
				break
			}
			seg = append(seg, l)
		}
		after[s.name] = strings.Join(seg, "\n")
	}
	t.Logf("keepalived's lines after the reload:\n%s", after["keepalived"])
	want := strings.Join([]string{`GROUP "G1" MASTER 0`, `GROUP "G2" FAULT 0`, `GROUP "G3" BACKUP 0`,
		`INSTANCE "VI_4" FAULT 100`, `INSTANCE "VI_5" FAULT 100`, `INSTANCE "VI_6" BACKUP 100`, `INSTANCE "VI_7" BACKUP 100`}, "\n")
	if after["keepalived"] != want {
		t.Errorf("keepalived's lines after the reload:\n%s\nwant:\n%s", after["keepalived"], want)
	}
	if after["lvsd"] != after["keepalived"] {
		t.Errorf("after the reload, lvsd wrote:\n%s\nkeepalived:\n%s", after["lvsd"], after["keepalived"])
	}
}

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
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	ka, lv, _ := startPair(t, nil, umaskCompareConf)
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
