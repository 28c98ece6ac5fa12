package vrrp

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvsd/lvsd/internal/proctest"
)

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
	dir                      string
	nameW, nameF, nameY      string
	shW, sleepF, sleepX, shY string
	fifo, fifoY1, fifoY2     string
}

// newTPStory copies dash and sleep (their paths) under the names the
// configuration tracks, and starts what runs before the daemons: one
// ptW (no quorum: no weight), one ptF and one ptY.
func newTPStory(t *testing.T, dash, sleep string) (*tpStory, *exec.Cmd) {
	dir := t.TempDir()
	suffix := fmt.Sprintf("%d", os.Getpid()%100000)
	st := &tpStory{dir: dir, nameW: "tpW" + suffix, nameF: "tpF" + suffix, nameY: "tpY" + suffix}
	st.shW, st.sleepF, st.shY = filepath.Join(dir, st.nameW), filepath.Join(dir, st.nameF), filepath.Join(dir, st.nameY)
	st.sleepX = filepath.Join(dir, "tpX"+suffix)
	proctest.CopyExe(t, dash, st.shW)
	proctest.CopyExe(t, dash, st.shY)
	proctest.CopyExe(t, sleep, st.sleepF)
	proctest.CopyExe(t, sleep, st.sleepX)
	for i, f := range []*string{&st.fifo, &st.fifoY1, &st.fifoY2} {
		*f = filepath.Join(dir, fmt.Sprintf("fifo%d", i))
		if err := unix.Mkfifo(*f, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	proctest.Start(t, st.shW, "-c", fmt.Sprintf("read x < %s; printf renamed > /proc/self/comm; %s 1000", st.fifo, sleep))
	// ptY forks a subshell (that never execs) when released.
	proctest.Start(t, st.shY, "-c", fmt.Sprintf("read x < %s; read y < %s & wait; %s 1000", st.fifoY1, st.fifoY2, sleep))
	return st, proctest.Start(t, st.sleepF, "1000")
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
vrrp_track_process proc_x {
  process %s 1000
  param_match partial
  weight -30 reverse
}
vrrp_track_process proc_y {
  process %s
  quorum_max 1
  weight 10
  fork_delay 1
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
    proc_x
    proc_y
  }
  virtual_ipaddress {
    %s/24
  }
}
`, st.nameW, st.nameF, st.sleepX, st.nameY, dev, vrid, script, vip)
	return text, out
}

// release lets a shell blocked opening fifo go on.
func release(t *testing.T, fifo string) {
	t.Helper()
	if err := os.WriteFile(fifo, []byte("\n"), 0); err != nil {
		t.Fatal(err)
	}
}

// run plays the story. The priority starts at 100 + 30 (no ptX: the
// negative weight, reversed, adds) + 10 (one ptY). A second ptW (+20:
// 160), the first renames itself (140), ptF killed (FAULT after
// terminate_delay), a new ptF (MASTER again at 140), ptX started (its
// quorum: 110), ptY forks (two, over quorum_max, after fork_delay: 100),
// the subshell exits (110), ptX killed (140). Every daemon must show
// each step, and the same ones.
func (st *tpStory) run(t *testing.T, pf *exec.Cmd, ds []tpDaemon) {
	t0 := time.Now()
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
				t.Logf("%s (%v): %s: states %v priorities %v", what, time.Since(t0).Round(100*time.Millisecond), dm.name, dm.states(), dm.prios())
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
	prio := func(want int) func([]string, int) bool { return func(_ []string, p int) bool { return p == want } }
	master := func(s []string) bool { return len(s) > 0 && s[len(s)-1] == "MASTER" }
	all("MASTER at 140", 15*time.Second, func(s []string, p int) bool { return master(s) && p == 140 })
	pw := proctest.Start(t, st.shW, "-c", "sleep 1000; :") // a shell that does not exec its sleep
	all("160 with two ptW", 5*time.Second, prio(160))
	release(t, st.fifo) // the first renames itself
	all("140 after a rename", 5*time.Second, prio(140))
	proctest.Kill(pf)
	all("FAULT without ptF", 5*time.Second, func(s []string, _ int) bool { return slices.Contains(s, "FAULT") })
	proctest.Start(t, st.sleepF, "1000")
	all("MASTER again", 10*time.Second, func(s []string, p int) bool { return master(s) && p == 140 })
	px := proctest.Start(t, st.sleepX, "1000", "1") // partial "1000": its quorum
	all("110 with ptX", 5*time.Second, prio(110))
	release(t, st.fifoY1) // ptY forks: 2 > quorum_max 1
	all("100 after ptY's fork_delay", 5*time.Second, prio(100))
	release(t, st.fifoY2) // the subshell exits: back to 1
	all("110 without the subshell", 5*time.Second, prio(110))
	proctest.Kill(px)
	proctest.Kill(pw)
	time.Sleep(2 * time.Second)
	all("140 in the end", time.Second, prio(140))
	for _, dm := range ds {
		if got, want := dm.states(), []string{"BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER"}; !slices.Equal(got, want) {
			t.Errorf("%s: notified states %v, want %v", dm.name, got, want)
		}
		if got, want := dm.prios(), []int{140, 160, 140, 0, 140, 110, 100, 110, 140}; !slices.Equal(got, want) {
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
