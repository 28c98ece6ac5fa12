package proctrack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/internal/proctest"
)

// Real processes, started, forked, renamed and killed, followed through
// the kernel's process connector, and by polling in a network namespace
// where the connector does not answer. Root, LVSD_INTEGRATION=1.

func rename(t *testing.T, pid int, comm string) {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/comm", pid), []byte(comm), 0); err != nil {
		t.Fatal(err)
	}
}

func realConf(names ...*conf.TrackProcess) *conf.Config {
	c := &conf.Config{TrackProcesses: names}
	in := &conf.VRRPInstance{Name: "VI"}
	for _, n := range names {
		in.TrackProcess = append(in.TrackProcess, conf.TrackProcessRef{Name: n.Name})
	}
	c.Instances = []*conf.VRRPInstance{in}
	return c
}

// follow runs the processes' story with a tracker made by mk (which picks
// the network namespace its source is opened in) and checks its mode.
func follow(t *testing.T, wantMode string, mk func(cfg *conf.Config, report func(string, bool)) *Tracker) {
	dir := t.TempDir()
	suffix := fmt.Sprintf("%d", os.Getpid()%100000)
	nameA, nameS, nameF := "ptA"+suffix, "ptS"+suffix, "ptF"+suffix
	shA, sleepS, shF := filepath.Join(dir, nameA), filepath.Join(dir, nameS), filepath.Join(dir, nameF)
	proctest.CopyExe(t, "/bin/dash", shA)
	proctest.CopyExe(t, "/bin/sleep", sleepS)
	proctest.CopyExe(t, "/bin/dash", shF)
	// One fifo per step: a shell blocks opening it until release.
	var fifos []string
	for i := range 4 {
		fifos = append(fifos, filepath.Join(dir, fmt.Sprintf("fifo%d", i)))
		if err := unix.Mkfifo(fifos[i], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	release := func(i int) {
		t.Helper()
		if err := os.WriteFile(fifos[i], []byte("\n"), 0); err != nil {
			t.Fatal(err)
		}
	}
	a := &conf.TrackProcess{Name: "a", Process: nameA, Quorum: 1, QuorumMax: noMax}
	// By command line: argv[0] and a first parameter.
	full := &conf.TrackProcess{Name: "full", Process: sleepS, Params: []string{"1000"}, ParamMatch: conf.ParamMatchPartial, FullCommand: true, Quorum: 1, QuorumMax: noMax}
	// Three processes exactly: the shell and its two forked subshells.
	f := &conf.TrackProcess{Name: "forks", Process: nameF, Quorum: 3, QuorumMax: 3}
	rep := make(reports, 64)
	tr := mk(realConf(a, full, f), rep.fn)
	rep.want(t, "initial a", "a:false")
	rep.want(t, "initial full", "full:false")
	rep.want(t, "initial forks", "forks:false")
	if mode, _ := tr.Snapshot(); mode != wantMode {
		t.Fatalf("mode %q, want %q", mode, wantMode)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = tr.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// The shell renames itself (a process may rename only itself:
	// /proc/self/comm, as prctl PR_SET_NAME), step by step.
	pa := proctest.Start(t, shA, "-c", fmt.Sprintf("read x < %s; printf other > /proc/self/comm; read x < %s; printf %s > /proc/self/comm; read x < %s", fifos[0], fifos[1], nameA, fifos[2]))
	rep.want(t, "started", "a:true")
	release(0)
	rep.want(t, "renamed", "a:false")
	release(1)
	rep.want(t, "renamed back", "a:true")
	proctest.Kill(pa)
	rep.want(t, "killed", "a:false")

	ps := proctest.Start(t, sleepS, "1000", "1")
	rep.want(t, "started, by command line", "full:true")
	proctest.Kill(ps)
	rep.want(t, "killed, by command line", "full:false")
	ps = proctest.Start(t, sleepS, "999") // partial "1000": not counted
	time.Sleep(300 * time.Millisecond)
	if _, st := tr.Snapshot(); st[1].Count != 0 {
		t.Errorf("other parameters counted: %+v", st[1])
	}
	proctest.Kill(ps)

	// The subshells block opening the fifo: forks that never exec.
	sh := proctest.Start(t, shF, "-c", fmt.Sprintf("read x < %[1]s & read y < %[1]s & wait", fifos[3]))
	rep.want(t, "forked to three", "forks:true")
	// The snapshot is published after the event that made the report.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, st := tr.Snapshot()
		if st[2].Count == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("forks count %d, want 3", st[2].Count)
		}
	}
	release(3) // the subshells end (both opens complete; one reads, one sees EOF)
	rep.want(t, "a subshell exits", "forks:false")
	proctest.Kill(sh)
	select {
	case r := <-rep:
		t.Errorf("unexpected report %s", r)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestConnectorRealProcesses: in this namespace (the initial one) through
// the process connector.
func TestConnectorRealProcesses(t *testing.T) {
	proctest.RequireRoot(t)
	follow(t, "connector", func(cfg *conf.Config, report func(string, bool)) *Tracker {
		return New(cfg, report, Options{})
	})
}

// TestPollInOtherNetns: opened in a network namespace of its own, the
// connector does not answer: the tracker polls, and sees the same.
func TestPollInOtherNetns(t *testing.T) {
	proctest.RequireRoot(t)
	ns := fmt.Sprintf("lvsd-pt-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	follow(t, "poll", func(cfg *conf.Config, report func(string, bool)) *Tracker {
		var tr *Tracker
		inNetns(t, ns, func() { tr = New(cfg, report, Options{PollInterval: 100 * time.Millisecond}) })
		return tr
	})
}

// inNetns runs fn on a thread in the named network namespace.
func inNetns(t *testing.T, ns string, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + strings.TrimSpace(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			panic(err)
		}
	}()
	fn()
}

// TestConnectorReadBuffer: process_monitor_rcv_bufs sizes the connector's
// socket (with _force beyond net.core.rmem_max); the kernel reports twice
// the size asked for.
func TestConnectorReadBuffer(t *testing.T) {
	proctest.RequireRoot(t)
	c, diags := conf.Parse("k.conf", "global_defs {\n process_monitor_rcv_bufs 4194304\n process_monitor_rcv_bufs_force\n}\n", conf.Options{ConfigID: "x"})
	if c == nil || c.Global.ProcessMonitorRcvBufs != 4<<20 || !c.Global.ProcessMonitorRcvBufsForce {
		t.Fatalf("parsed %+v %v", c, diags)
	}
	src, err := openConnector(c.Global.ProcessMonitorRcvBufs, c.Global.ProcessMonitorRcvBufsForce)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rc, err := src.(*connector).f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	_ = rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) })
	if gerr != nil || got != 8<<20 {
		t.Errorf("SO_RCVBUF %d (%v), want %d", got, gerr, 8<<20)
	}
}
