package vrrp

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// procRun is a process of the test, killed (with its group) at the end.
func procRun(t *testing.T, path string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { procKill(cmd) })
	return cmd
}

func procKill(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
}

func copyExe(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
}

// tpDaemon is one daemon of the track_process story: its notify output
// and the capture of its adverts.
type tpDaemon struct {
	name string
	out  string // notify output: one state a line
	cap  *capture
	vrid uint8
}

func (d tpDaemon) states() []string {
	b, _ := os.ReadFile(d.out)
	return strings.Fields(string(b))
}

// prios is the advertised priorities, each once in a row.
func (d tpDaemon) prios() []int {
	frames, _ := d.cap.snapshot()
	var out []int
	for _, f := range frames {
		if f.adv.VRID != d.vrid {
			continue
		}
		if p := int(f.adv.Priority); len(out) == 0 || out[len(out)-1] != p {
			out = append(out, p)
		}
	}
	return out
}

// tpStory is the processes of the story and the daemons' notify scripts.
type tpStory struct {
	dir, nameW, nameF string
	shW, sleepF       string
	fifo              string
}

// newTPStory copies dash and sleep (their paths) under the names the
// configuration tracks, and starts what runs before the daemons: one
// ptW (no quorum: no weight) and one ptF.
func newTPStory(t *testing.T, dash, sleep string) (*tpStory, *exec.Cmd) {
	dir := t.TempDir()
	suffix := fmt.Sprintf("%d", os.Getpid()%100000)
	st := &tpStory{dir: dir, nameW: "tpW" + suffix, nameF: "tpF" + suffix, fifo: filepath.Join(dir, "fifo")}
	st.shW, st.sleepF = filepath.Join(dir, st.nameW), filepath.Join(dir, st.nameF)
	copyExe(t, dash, st.shW)
	copyExe(t, sleep, st.sleepF)
	if err := unix.Mkfifo(st.fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	procRun(t, st.shW, "-c", fmt.Sprintf("read x < %s; printf renamed > /proc/self/comm; %s 1000", st.fifo, sleep))
	return st, procRun(t, st.sleepF, "1000")
}

// conf is the configuration of one daemon.
func (st *tpStory) conf(t *testing.T, name string, vrid int, dev, vip string) (text, out string) {
	out = filepath.Join(st.dir, name+".out")
	script := filepath.Join(st.dir, name+".sh")
	if err := os.WriteFile(script, []byte(fmt.Sprintf("#!/bin/sh\necho \"$3\" >> %s\n", out)), 0o755); err != nil {
		t.Fatal(err)
	}
	text = fmt.Sprintf(`vrrp_track_process proc_w {
  process %s
  quorum 2
  weight 20
}
vrrp_track_process proc_f {
  process %s
  terminate_delay 0.5
}
vrrp_instance VI_1 {
  state BACKUP
  interface %s
  virtual_router_id %d
  priority 100
  advert_int 1
  notify %s
  track_process {
    proc_w
    proc_f
  }
  virtual_ipaddress {
    %s/24
  }
}
`, st.nameW, st.nameF, dev, vrid, script, vip)
	return text, out
}

// run plays the story: a second ptW (priority 120), the first renames
// itself (100), ptF killed (FAULT after terminate_delay), a new ptF
// (MASTER again), the second ptW killed (still 100). Every daemon must
// show each step.
func (st *tpStory) run(t *testing.T, pf *exec.Cmd, ds []tpDaemon) {
	last := func(s []int) int {
		if len(s) == 0 {
			return -1
		}
		return s[len(s)-1]
	}
	all := func(what string, d time.Duration, ok func(states []string, prio int) bool) {
		t.Helper()
		defer func() {
			for _, dm := range ds {
				t.Logf("%s: %s: states %v priorities %v", what, dm.name, dm.states(), dm.prios())
			}
		}()
		waitFor(t, d, what, func() bool {
			for _, dm := range ds {
				if !ok(dm.states(), last(dm.prios())) {
					return false
				}
			}
			return true
		})
	}
	master := func(s []string) bool { return len(s) > 0 && s[len(s)-1] == "MASTER" }
	all("MASTER at 100", 15*time.Second, func(s []string, p int) bool { return master(s) && p == 100 })
	pw := procRun(t, st.shW, "-c", "sleep 1000; :") // a shell that does not exec its sleep
	all("priority 120 with two ptW", 5*time.Second, func(_ []string, p int) bool { return p == 120 })
	if err := os.WriteFile(st.fifo, []byte("\n"), 0); err != nil { // the first renames itself
		t.Fatal(err)
	}
	all("priority 100 after a rename", 5*time.Second, func(_ []string, p int) bool { return p == 100 })
	procKill(pf)
	all("FAULT without ptF", 5*time.Second, func(s []string, _ int) bool { return slices.Contains(s, "FAULT") })
	procRun(t, st.sleepF, "1000")
	all("MASTER again", 10*time.Second, func(s []string, p int) bool { return master(s) && p == 100 })
	procKill(pw)
	time.Sleep(2 * time.Second)
	all("priority still 100 with one ptW", time.Second, func(_ []string, p int) bool { return p == 100 })
	for _, dm := range ds {
		if got, want := dm.states(), []string{"BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER"}; !slices.Equal(got, want) {
			t.Errorf("%s: notified states %v, want %v", dm.name, got, want)
		}
		if got, want := dm.prios(), []int{100, 120, 100, 0, 100}; !slices.Equal(got, want) {
			t.Errorf("%s: advertised priorities %v, want %v", dm.name, got, want)
		}
	}
}

// TestTrackProcessNetns: lvsd in a network namespace, where the kernel's
// process connector does not answer, polls the process table (with a
// notice) and goes through the story as keepalived does in
// TestTrackProcessInVMLikeKeepalived. (keepalived 2.2.7 cannot be its
// companion here: in a namespace other than the initial one its
// subscription fails, "Failed to set/clear process event listen - errno
// 111", and it follows no process at all; Debian's build has no
// net_namespace.)
func TestTrackProcessNetns(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	st, pf := newTPStory(t, "/bin/dash", "/bin/sleep")
	text, out := st.conf(t, "lvsd", 51, "eth0", "192.0.2.51")
	l := startLvsd(t, n.a, "A", text)
	st.run(t, pf, []tpDaemon{{name: "lvsd", out: out, cap: startCapture(t, n.br, "va"), vrid: 51}})
	if !strings.Contains(l.out.String(), "polling the process table instead") {
		t.Error("lvsd gave no notice that it polls")
	}
}

// TestTrackProcessInVMLikeKeepalived runs in the lab VM (TestIPVSLab,
// LVSD_TRACKPROC_INVM=1), in its initial network namespace, where the
// process connector answers: keepalived 2.2.7 and lvsd, each on a veth of
// its own (the other ends in a namespace where their adverts are
// captured), run the same configuration (their own VRID each) while the
// processes are started, renamed and killed; they must notify the same
// states and advertise the same priorities.
func TestTrackProcessInVMLikeKeepalived(t *testing.T) {
	if os.Getenv("LVSD_TRACKPROC_INVM") == "" {
		t.Skip("runs in the lab VM (TestIPVSLab)")
	}
	obs := fmt.Sprintf("tpobs%d", os.Getpid()%100000)
	ipCmd(t, "netns", "add", obs)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", obs).Run() })
	for _, l := range []struct{ dev, peer, addr string }{{"tpk0", "pk", "192.0.2.61/24"}, {"tpl0", "pl", "198.51.100.61/24"}} {
		ipCmd(t, "link", "add", l.dev, "type", "veth", "peer", "name", l.peer, "netns", obs)
		t.Cleanup(func() { _ = exec.Command("ip", "link", "del", l.dev).Run() })
		ipCmd(t, "addr", "add", l.addr, "dev", l.dev)
		ipCmd(t, "link", "set", l.dev, "up")
		ipCmd(t, "-n", obs, "link", "set", l.peer, "up")
	}
	st, pf := newTPStory(t, os.Getenv("LVSD_TP_DASH"), os.Getenv("LVSD_TP_SLEEP"))
	ktext, kout := st.conf(t, "keepalived", 52, "tpk0", "192.0.2.62")
	ltext, lout := st.conf(t, "lvsd", 51, "tpl0", "198.51.100.62")
	kbuf, _, _ := startKeepalivedConf(t, "", ktext)
	l := startLvsd(t, "", "L", ltext)
	st.run(t, pf, []tpDaemon{
		{name: "keepalived", out: kout, cap: startCapture(t, obs, "pk"), vrid: 52},
		{name: "lvsd", out: lout, cap: startCapture(t, obs, "pl"), vrid: 51},
	})
	if strings.Contains(l.out.String(), "polling the process table") || !strings.Contains(kbuf.String(), "proc_events has confirmed it is configured") {
		t.Errorf("both should follow the process connector here")
	}
}
