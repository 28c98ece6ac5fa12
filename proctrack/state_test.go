package proctrack

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/internal/clock"
)

// manualClock moves only when told; due timers run in Advance, in order.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
}

type manualTimer struct {
	at   time.Time
	f    func()
	dead bool
}

func (t *manualTimer) Stop() bool { was := !t.dead; t.dead = true; return was }

func (c *manualClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *manualClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
		var due *manualTimer
		for i, t := range c.timers {
			if !t.dead && !t.at.After(end) {
				due = t
				c.timers = slices.Delete(c.timers, i, i+1)
				break
			}
		}
		if due == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		c.now = due.at
		due.dead = true
		c.mu.Unlock()
		due.f()
	}
}

// table is a fake process table.
type table struct {
	mu    sync.Mutex
	procs map[int]Info
}

func newTable() *table { return &table{procs: map[int]Info{}} }

func (tb *table) set(pid int, comm string, argv ...string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var cl []byte
	for _, a := range argv {
		cl = append(append(cl, a...), 0)
	}
	tb.procs[pid] = Info{PID: pid, Comm: comm, Cmdline: cl}
}

func (tb *table) del(pid int) { tb.mu.Lock(); delete(tb.procs, pid); tb.mu.Unlock() }

func (tb *table) List(bool) ([]Info, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []Info
	for _, in := range tb.procs {
		out = append(out, in)
	}
	return out, nil
}

func (tb *table) Read(pid int, _ bool) (Info, bool) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	in, ok := tb.procs[pid]
	return in, ok
}

// rig is a state driven by hand: reports are recorded as "name:up/down".
type rig struct {
	t     *testing.T
	clk   *manualClock
	tb    *table
	st    *state
	calls []string
}

func newRig(t *testing.T, specs ...Spec) *rig {
	r := &rig{t: t, clk: &manualClock{now: time.Unix(1e9, 0)}, tb: newTable()}
	r.st = newState(specs, r.tb, r.clk, func(name string, up bool) {
		r.calls = append(r.calls, fmt.Sprintf("%s:%s", name, map[bool]string{true: "up", false: "down"}[up]))
	}, func(fn func()) { fn() })
	return r
}

// expect checks the reports since the last expect.
func (r *rig) expect(step string, want ...string) {
	r.t.Helper()
	if strings.Join(r.calls, " ") != strings.Join(want, " ") {
		r.t.Errorf("%s: reports %q, want %q", step, r.calls, want)
	}
	r.calls = nil
}

func (r *rig) count(i int) uint64 { return r.st.t[i].count }

func spec(name, process string, quorum, quorumMax uint64) Spec {
	return Spec{Name: name, Process: process, Quorum: quorum, QuorumMax: quorumMax}
}

const noMax = 1<<32 - 1

// TestQuorumByForkAndExit follows keepalived's rules for forks and exits:
// the child of a counted process counts, a quorum gained by a fork waits
// fork_delay, one lost by an exit waits terminate_delay, and the other
// event within a delay cancels it.
func TestQuorumByForkAndExit(t *testing.T) {
	s := spec("web", "nginx", 2, 3)
	s.ForkDelay, s.TermDelay = 2*time.Second, 3*time.Second
	r := newRig(t, s)
	r.tb.set(10, "nginx")
	r.tb.set(11, "bash")
	if err := r.st.start(); err != nil {
		t.Fatal(err)
	}
	r.expect("start, 1 of 2", "web:down")

	r.st.fork(11, 12) // not counted: its parent is not
	r.st.fork(10, 13)
	r.expect("fork within fork_delay")
	r.clk.Advance(1999 * time.Millisecond)
	r.expect("fork_delay not over")
	r.clk.Advance(time.Millisecond)
	r.expect("fork_delay over", "web:up")

	r.st.fork(10, 14)
	r.st.fork(10, 15) // 4 > quorum_max 3: fork_delay again, then down
	r.expect("over quorum_max, delayed")
	r.clk.Advance(2 * time.Second)
	r.expect("over quorum_max", "web:down")
	r.st.exit(15) // back to 3 = quorum_max: terminate_delay
	r.clk.Advance(3 * time.Second)
	r.expect("back within quorum_max", "web:up")

	r.st.exit(14)
	r.st.exit(13) // 1 < 2: terminate_delay
	r.expect("exit within terminate_delay")
	r.st.fork(10, 16) // back to 2 within the delay: the timer is cancelled, no change
	r.clk.Advance(10 * time.Second)
	r.expect("fork cancels terminate_delay")

	r.st.exit(16)
	r.st.fork(10, 17) // terminate timer cancelled; quorum stays
	r.st.exit(17)
	r.st.fork(10, 18)
	r.expect("flapping within the delays")
	r.st.exit(18)
	r.clk.Advance(3 * time.Second)
	r.expect("lost after terminate_delay", "web:down")
	r.st.fork(10, 19)
	r.st.exit(19) // within fork_delay: fork timer cancelled, status stays down
	r.clk.Advance(10 * time.Second)
	r.expect("exit cancels fork_delay")
	if r.count(0) != 1 {
		t.Errorf("count %d, want 1", r.count(0))
	}
	r.st.exit(99) // unknown
	r.st.exit(10)
	r.expect("last exit while down")
	if len(r.st.pids) != 0 {
		t.Errorf("pids left: %v", r.st.pids)
	}
}

// TestQuorumByExecAndComm: an exec or a rename matches again; losing a
// process that way has no terminate_delay (keepalived's
// remove_process_from_track), gaining it no fork_delay.
func TestQuorumByExecAndComm(t *testing.T) {
	s := spec("sl", "sleep", 1, noMax)
	s.ForkDelay, s.TermDelay = time.Hour, time.Hour
	r := newRig(t, s, spec("other", "other", 1, noMax))
	r.tb.set(20, "bash")
	r.st.start()
	r.expect("start", "sl:down", "other:down")

	r.tb.set(20, "sleep")
	r.st.exec(20)
	r.expect("exec into sleep", "sl:up")
	r.st.exec(20) // the same again: counted once (keepalived twice)
	if r.count(0) != 1 {
		t.Errorf("count after a second exec %d, want 1", r.count(0))
	}
	r.st.comm(20, "sleep") // a rename to the same name changes nothing
	r.expect("same name")

	r.tb.set(20, "other")
	r.st.comm(20, "other")
	r.expect("renamed", "sl:down", "other:up")
	r.tb.set(20, "sleep")
	r.st.comm(20, "sleep")
	r.expect("renamed back", "other:down", "sl:up")

	r.tb.set(20, "true")
	r.st.exec(20)
	r.expect("exec away, no terminate_delay", "sl:down")
	r.st.exec(21) // gone before it is read
	r.expect("exec of a gone process")
}

// TestFullCommandAndParams: full_command matches argv[0]; param_match
// compares the rest as keepalived's check_params.
func TestFullCommandAndParams(t *testing.T) {
	mk := func(match string, params ...string) Spec {
		tp := &conf.TrackProcess{Name: "p", Process: "/bin/sleep", Params: params, ParamMatch: match, FullCommand: true, Quorum: 1, QuorumMax: noMax}
		c := &conf.Config{TrackProcesses: []*conf.TrackProcess{tp},
			Instances: []*conf.VRRPInstance{{Name: "VI", TrackProcess: []conf.TrackProcessRef{{Name: "p"}}}}}
		return Specs(c)[0]
	}
	argv := func(a ...string) Info {
		var cl []byte
		for _, w := range a {
			cl = append(append(cl, w...), 0)
		}
		return Info{Comm: "sleep", Cmdline: cl}
	}
	for _, c := range []struct {
		spec Spec
		in   Info
		want bool
	}{
		{mk(""), argv("/bin/sleep", "5"), true},
		{mk(""), argv("sleep", "5"), false},
		{mk("exact"), argv("/bin/sleep"), true},
		{mk("exact"), argv("/bin/sleep", "5"), false},
		{mk("exact", "5"), argv("/bin/sleep", "5"), true},
		{mk("exact", "5"), argv("/bin/sleep", "50"), false},
		{mk("exact", "5"), argv("/bin/sleep", "5", "6"), false},
		{mk("partial", "5"), argv("/bin/sleep", "5", "6"), true},
		{mk("partial", "5"), argv("/bin/sleep", "50"), false},
		{mk("partial"), argv("/bin/sleep", "x"), true},
		{mk("initial", "5"), argv("/bin/sleep", "50"), true},
		{mk("initial", "5", "6"), argv("/bin/sleep", "5", "60", "7"), true},
		{mk("initial", "5", "6"), argv("/bin/sleep", "5"), false},
		{mk("initial", "50"), argv("/bin/sleep", "5"), false},
	} {
		if got := c.spec.matches(c.in); got != c.want {
			t.Errorf("%s %q vs %q: %v, want %v", c.spec.ParamMatch, c.spec.Params, c.in.Cmdline, got, c.want)
		}
	}
	// Not full_command: the comm, whatever the command line.
	s := spec("p", "sleep", 1, noMax)
	if !s.matches(Info{Comm: "sleep", Cmdline: []byte("/usr/bin/other\x00")}) || s.matches(Info{Comm: "sleep2"}) {
		t.Error("comm matching")
	}
}

// TestRescan: after lost events (and each poll without the connector) the
// table is counted again; a gain shows at once, a loss after
// terminate_delay, as keepalived's reinitialise_track_processes.
func TestRescan(t *testing.T) {
	s := spec("sl", "sleep", 2, noMax)
	s.TermDelay = time.Second
	r := newRig(t, s, spec("none", "gone", 0, 0))
	r.tb.set(1, "sleep")
	r.st.start()
	r.expect("start", "sl:down", "none:up")
	r.tb.set(2, "sleep")
	r.tb.set(3, "gone")
	r.st.rescan()
	r.expect("gained", "sl:up", "none:down")
	r.tb.del(1)
	r.tb.del(3)
	r.st.rescan()
	r.expect("lost, delayed", "none:up")
	r.clk.Advance(time.Second)
	r.expect("lost", "sl:down")
}
