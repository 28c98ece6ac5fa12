package proctrack

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvsd/lvsd/conf"
)

// Real processes, started, forked, renamed and killed, followed through
// the kernel's process connector, and by polling in a network namespace
// where the connector does not answer. Root, LVSD_INTEGRATION=1.

func needRoot(t *testing.T) {
	t.Helper()
	if os.Getenv("LVSD_INTEGRATION") == "" {
		t.Skip("set LVSD_INTEGRATION=1 (as root) to follow real processes")
	}
	if os.Geteuid() != 0 {
		t.Fatal("LVSD_INTEGRATION is set but not running as root")
	}
}

// copyBin copies an executable to dir/name: a process of its own name.
func copyBin(t *testing.T, src, dir, name string) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	p := filepath.Join(dir, name)
	out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	out.Close()
	return p
}

// start runs a command and kills it (and its process group) at the end.
func start(t *testing.T, path string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	return cmd
}

// kill kills a process and reaps it (an exit event follows at once; a
// zombie would still count until reaped, as in keepalived).
func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
}

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
	shA := copyBin(t, "/bin/dash", dir, nameA)
	sleepS := copyBin(t, "/bin/sleep", dir, nameS)
	shF := copyBin(t, "/bin/dash", dir, nameF)
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
	pa := start(t, shA, "-c", fmt.Sprintf("read x < %s; printf other > /proc/self/comm; read x < %s; printf %s > /proc/self/comm; read x < %s", fifos[0], fifos[1], nameA, fifos[2]))
	rep.want(t, "started", "a:true")
	release(0)
	rep.want(t, "renamed", "a:false")
	release(1)
	rep.want(t, "renamed back", "a:true")
	kill(t, pa)
	rep.want(t, "killed", "a:false")

	ps := start(t, sleepS, "1000", "1")
	rep.want(t, "started, by command line", "full:true")
	kill(t, ps)
	rep.want(t, "killed, by command line", "full:false")
	ps = start(t, sleepS, "999") // partial "1000": not counted
	time.Sleep(300 * time.Millisecond)
	if _, st := tr.Snapshot(); st[1].Count != 0 {
		t.Errorf("other parameters counted: %+v", st[1])
	}
	kill(t, ps)

	// The subshells block opening the fifo: forks that never exec.
	sh := start(t, shF, "-c", fmt.Sprintf("read x < %[1]s & read y < %[1]s & wait", fifos[3]))
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
	kill(t, sh)
	select {
	case r := <-rep:
		t.Errorf("unexpected report %s", r)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestConnectorRealProcesses: in this namespace (the initial one) through
// the process connector.
func TestConnectorRealProcesses(t *testing.T) {
	needRoot(t)
	follow(t, "connector", func(cfg *conf.Config, report func(string, bool)) *Tracker {
		return New(cfg, report, Options{})
	})
}

// TestPollInOtherNetns: opened in a network namespace of its own, the
// connector does not answer: the tracker polls, and sees the same.
func TestPollInOtherNetns(t *testing.T) {
	needRoot(t)
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
	needRoot(t)
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
