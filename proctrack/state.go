package proctrack

import (
	"slices"
	"time"

	"github.com/lvsd/lvsd/internal/clock"
)

// Procs is the process table as the tracker reads it: /proc on Linux,
// a fake in tests.
type Procs interface {
	// List returns every live process (no zombies); cmdline says whether
	// the command lines are wanted.
	List(cmdline bool) ([]Info, error)
	// Read returns one process, and false when it is gone.
	Read(pid int, cmdline bool) (Info, bool)
}

// tracked is the state of one Spec.
type tracked struct {
	Spec
	count uint64
	up    bool // the quorum as last reported
	// the pending fork_delay and terminate_delay
	fork, term delay
}

// delay is a pending fork_delay or terminate_delay: when it expires, the
// quorum is what the count says. gen tells a stopped timer's late message
// from the current one's.
type delay struct {
	timer clock.Timer // nil: none pending
	gen   uint64
}

func (d *delay) pending() bool { return d.timer != nil }

func (d *delay) stop() {
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
		d.gen++
	}
}

// state is the tracker's state. It is not safe for concurrent use: it
// belongs to Tracker.Run's goroutine (post runs a function there).
type state struct {
	clock  clock.Clock
	procs  Procs
	report func(name string, up bool)
	post   func(func())

	t       []*tracked
	pids    map[int][]*tracked // the processes counted, and for what
	cmdline bool               // some Spec needs command lines
	started bool               // Run follows events (changes are logged)
}

// handle applies one event.
func (st *state) handle(ev Event) {
	switch ev.Kind {
	case Fork:
		st.fork(ev.Parent, ev.PID)
	case Exec:
		st.exec(ev.PID)
	case Comm:
		st.comm(ev.PID, ev.Comm)
	case Exit:
		st.exit(ev.PID)
	}
}

func newState(specs []Spec, procs Procs, clk clock.Clock, report func(string, bool), post func(func())) *state {
	st := &state{clock: clk, procs: procs, report: report, post: post, pids: map[int][]*tracked{}}
	for _, s := range specs {
		st.t = append(st.t, &tracked{Spec: s})
		st.cmdline = st.cmdline || s.FullCommand
	}
	return st
}

// start scans the process table and reports every status.
func (st *state) start() error {
	err := st.scan()
	for _, t := range st.t {
		t.up = t.inQuorum(t.count)
		st.report(t.Name, t.up)
	}
	return err
}

// scan counts every process of the table afresh.
func (st *state) scan() error {
	clear(st.pids)
	for _, t := range st.t {
		t.count = 0
	}
	list, err := st.procs.List(st.cmdline)
	for _, in := range list {
		for _, t := range st.t {
			if t.matches(in) {
				st.pids[in.PID] = append(st.pids[in.PID], t)
				t.count++
			}
		}
	}
	return err
}

// rescan counts again (after lost messages, or each poll without the
// connector) and reports what changed: a quorum gained at once, a quorum
// lost after terminate_delay.
func (st *state) rescan() error {
	st.stop()
	err := st.scan()
	for _, t := range st.t {
		switch now := t.inQuorum(t.count); {
		case now:
			st.update(t, true)
		case t.up && t.TermDelay > 0:
			st.arm(t, &t.term, t.TermDelay)
		default:
			st.update(t, false)
		}
	}
	return err
}

// update records a quorum and reports it when it changed.
func (st *state) update(t *tracked, up bool) {
	if up == t.up {
		return
	}
	t.up = up
	st.report(t.Name, up)
}

// fork: a counted process's child counts for the same (keepalived does
// not read the child: it has its parent's name and command line).
func (st *state) fork(parent, child int) {
	ts := st.pids[parent]
	if ts == nil || st.pids[child] != nil {
		return
	}
	st.pids[child] = slices.Clone(ts)
	for _, t := range ts {
		t.count++
		if t.count == t.Quorum || t.count == t.QuorumMax+1 {
			st.crossed(t, &t.term, &t.fork, t.ForkDelay, t.count == t.Quorum)
		}
	}
}

// crossed is a count that crossed a quorum bound by a fork or an exit: a
// pending delay the other way is cancelled and the quorum is updated at once;
// else with a delay this way, it is updated when the delay expires.
func (st *state) crossed(t *tracked, other, this *delay, dur time.Duration, up bool) {
	switch {
	case other.pending():
		other.stop()
	case dur > 0:
		st.arm(t, this, dur)
		return
	}
	st.update(t, up)
}

// exit: a counted process is gone.
func (st *state) exit(pid int) {
	ts := st.pids[pid]
	if ts == nil {
		return
	}
	delete(st.pids, pid)
	for _, t := range ts {
		if st.uncount(t) {
			st.crossed(t, &t.fork, &t.term, t.TermDelay, t.count == t.QuorumMax)
		}
	}
}

// uncount takes one process off t's count and reports whether that
// crossed a quorum bound (down from quorum, or down to quorum_max).
func (st *state) uncount(t *tracked) bool {
	old := t.count
	t.count--
	return old == t.Quorum || t.count == t.QuorumMax
}

// remove takes pid off t (a process that no longer matches): the quorum
// changes at once, with no terminate_delay.
func (st *state) remove(pid int, t *tracked) {
	ts := st.pids[pid]
	i := slices.Index(ts, t)
	if i < 0 {
		return
	}
	st.pids[pid] = slices.Delete(ts, i, i+1)
	if st.uncount(t) {
		t.fork.stop()
		st.update(t, t.count == t.QuorumMax)
	}
}

// exec: the process runs another program; it is matched again.
func (st *state) exec(pid int) {
	in, ok := st.procs.Read(pid, st.cmdline)
	if !ok {
		return
	}
	st.check(in, false)
}

// comm: the process renamed itself (prctl PR_SET_NAME, /proc/PID/comm).
// As keepalived: the trackers by name that counted it let it go, unless
// one of them has the new name (then nothing changes at all); then it is
// matched again by its new name.
func (st *state) comm(pid int, comm string) {
	for _, t := range slices.Clone(st.pids[pid]) {
		if t.FullCommand {
			continue
		}
		if comm == t.Process {
			return
		}
		st.remove(pid, t)
	}
	st.check(Info{PID: pid, Comm: comm}, true)
}

// check matches a process against every tracked process: it is counted
// where it matches, and uncounted where it no longer does (after an exec;
// a comm change concerns only the trackers by name).
func (st *state) check(in Info, commOnly bool) {
	for _, t := range st.t {
		if t.FullCommand && commOnly {
			continue
		}
		counted := slices.Contains(st.pids[in.PID], t)
		if !t.matches(in) {
			if counted && !commOnly {
				st.remove(in.PID, t)
			}
			continue
		}
		if counted {
			continue // keepalived counts it twice; lvsd once
		}
		st.pids[in.PID] = append(st.pids[in.PID], t)
		t.count++
		if t.count == t.Quorum || t.count == t.QuorumMax+1 {
			t.term.stop()
			st.update(t, t.count == t.Quorum)
		}
	}
	if len(st.pids[in.PID]) == 0 {
		delete(st.pids, in.PID)
	}
}

// arm starts d for dur: then t's quorum is what its count says.
func (st *state) arm(t *tracked, d *delay, dur time.Duration) {
	d.stop()
	gen := d.gen
	d.timer = st.after(dur, func() {
		if d.gen == gen && d.timer != nil {
			d.timer = nil
			st.update(t, t.inQuorum(t.count))
		}
	})
}

// after runs fn on the owner goroutine after d.
func (st *state) after(d time.Duration, fn func()) clock.Timer {
	return st.clock.AfterFunc(d, func() { st.post(fn) })
}

// stop cancels every timer.
func (st *state) stop() {
	for _, t := range st.t {
		t.fork.stop()
		t.term.stop()
	}
}

// Status is one tracked process as Snapshot shows it.
type Status struct {
	Name  string `json:"name"`
	Count uint64 `json:"count"`
	Up    bool   `json:"quorum"`
}

func (st *state) snapshot() []Status {
	out := make([]Status, 0, len(st.t))
	for _, t := range st.t {
		out = append(out, Status{Name: t.Name, Count: t.count, Up: t.up})
	}
	return out
}
