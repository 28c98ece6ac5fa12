package notify

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/internal/execscript"
)

// FIFOs are the notify FIFOs of global_defs, as keepalived keeps them:
// notify_fifo receives every line, vrrp_notify_fifo the VRRP lines
// (INSTANCE and GROUP), lvs_notify_fifo the checkers' (VS and RS). A FIFO
// that does not exist is created (and removed at the end); each is opened
// read-write and non-blocking, so that a FIFO without a reader, or whose
// reader is slow, never blocks lvsd: a line that does not fit in the pipe
// is dropped and counted. Its _script starts before the FIFO is opened,
// with the FIFO's path as last argument, runs for as long as lvsd does and
// is ended at Close. One FIFOs serves the VRRP and the checkers' notifiers.
type FIFOs struct {
	log *slog.Logger

	mu     sync.Mutex
	global conf.Global
	open   map[string]*fifo // by keyword: notify_fifo, vrrp_notify_fifo, lvs_notify_fifo
	closed bool

	written, dropped atomic.Uint64
}

// FIFO roles: the keywords of global_defs.
const (
	fifoAll  = "notify_fifo"
	fifoVRRP = "vrrp_notify_fifo"
	fifoLVS  = "lvs_notify_fifo"
)

type fifo struct {
	spec    conf.NotifyFIFO
	fd      int
	created bool // lvsd made it: removed at close
	script  *execscript.Process
	done    chan struct{} // closed once the script has been waited for
	cancel  context.CancelFunc
	closing atomic.Bool // the FIFO is being closed: its script's end is expected
}

// NewFIFOs opens the FIFOs of the configuration (and starts their scripts).
func NewFIFOs(c *conf.Config, log *slog.Logger) *FIFOs {
	if log == nil {
		log = slog.Default()
	}
	f := &FIFOs{log: log, open: map[string]*fifo{}}
	f.Apply(c)
	return f
}

func specOf(g *conf.Global, role string) conf.NotifyFIFO {
	switch role {
	case fifoVRRP:
		return g.VRRPNotifyFIFO
	case fifoLVS:
		return g.LVSNotifyFIFO
	}
	return g.NotifyFIFO
}

func sameFIFO(a, b conf.NotifyFIFO) bool {
	if a.Path != b.Path || a.User != b.User || a.Group != b.Group || (a.Script == nil) != (b.Script == nil) {
		return false
	}
	return a.Script == nil || (slices.Equal(a.Script.Args, b.Script.Args) && a.Script.User == b.Script.User && a.Script.Group == b.Script.Group)
}

// Apply switches to a new configuration's FIFOs: a FIFO whose settings are
// unchanged stays open (its reader keeps running); the others are closed
// and the new ones opened.
func (f *FIFOs) Apply(c *conf.Config) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.global = c.Global
	for _, role := range []string{fifoAll, fifoVRRP, fifoLVS} {
		spec := specOf(&c.Global, role)
		old := f.open[role]
		if old != nil && sameFIFO(old.spec, spec) {
			continue
		}
		if old != nil {
			delete(f.open, role)
		}
		var ff *fifo
		if spec.Path != "" {
			var err error
			if ff, err = f.start(spec); err != nil {
				f.log.Error("notify fifo not opened", "keyword", role, "path", spec.Path, "pos", spec.Pos.String(), "err", err)
			} else {
				f.open[role] = ff
			}
		}
		if old != nil {
			if ff != nil && old.spec.Path == ff.spec.Path {
				// The same FIFO (another owner or script): the new one
				// keeps the file, and removes it at the end if lvsd made it.
				ff.created, old.created = ff.created || old.created, false
			}
			go f.shut(role, old) // its script may take a while to end
		}
	}
}

// start creates the FIFO if it is missing, starts its script and opens it.
func (f *FIFOs) start(spec conf.NotifyFIFO) (*fifo, error) {
	ff := &fifo{spec: spec, fd: -1}
	err := unix.Mkfifo(spec.Path, 0o644)
	switch {
	case err == nil:
		ff.created = true
		if spec.User != "" {
			cred, err := execscript.Credential(spec.User, spec.Group)
			if err != nil {
				f.log.Warn("notify fifo: owner not set", "path", spec.Path, "err", err)
			} else if err := os.Chown(spec.Path, int(cred.Uid), int(cred.Gid)); err != nil {
				f.log.Warn("notify fifo: owner not set", "path", spec.Path, "err", err)
			}
		}
	case errors.Is(err, unix.EEXIST):
		var st unix.Stat_t
		if err := unix.Lstat(spec.Path, &st); err != nil {
			return nil, err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFIFO {
			return nil, errors.New("exists and is not a FIFO")
		}
	default:
		return nil, err
	}
	if spec.Script != nil {
		f.startScript(ff)
	}
	fd, err := unix.Open(spec.Path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0)
	if err != nil {
		ff.stopScript()
		if ff.created {
			_ = os.Remove(spec.Path)
		}
		return nil, err
	}
	ff.fd = fd
	return ff, nil
}

// startScript runs the FIFO's reader; it is not restarted should it exit.
func (f *FIFOs) startScript(ff *fifo) {
	cmd, err := execscript.Resolve(ff.spec.Script, &f.global)
	if err == nil {
		ff.script, err = cmd.Start(ff.spec.Path)
	}
	if err != nil {
		f.log.Error("notify fifo script not started", "path", ff.spec.Path, "pos", ff.spec.Script.Pos.String(), "err", err)
		return
	}
	var ctx context.Context
	ctx, ff.cancel = context.WithCancel(context.Background())
	ff.done = make(chan struct{})
	go func() {
		defer close(ff.done)
		r := ff.script.Wait(ctx, 0)
		lvl := slog.LevelWarn
		if ff.closing.Load() {
			lvl = slog.LevelInfo
		}
		f.log.Log(context.Background(), lvl, "notify fifo script ended", "path", ff.spec.Path, "cmd", cmd.Args[0], "result", r.String())
	}()
}

// fifoScriptGrace is how long a FIFO's script has, once lvsd has closed
// the FIFO (it reads end of file), to exit by itself before it is killed.
const fifoScriptGrace = 2 * time.Second

func (ff *fifo) stopScript() {
	if ff.script == nil {
		return
	}
	select {
	case <-ff.done:
	case <-time.After(fifoScriptGrace):
	}
	ff.cancel()
	<-ff.done
}

// shut closes a FIFO, ends its script and removes it if lvsd made it.
func (f *FIFOs) shut(role string, ff *fifo) {
	ff.closing.Store(true)
	if ff.fd >= 0 {
		_ = unix.Close(ff.fd)
	}
	ff.stopScript()
	if ff.created {
		if err := os.Remove(ff.spec.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			f.log.Warn("notify fifo not removed", "keyword", role, "path", ff.spec.Path, "err", err)
		}
	}
}

// write writes line to the FIFOs of roles, at most once to each file.
func (f *FIFOs) write(line string, roles ...string) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var seen []string
	for _, role := range roles {
		ff := f.open[role]
		if ff == nil || slices.Contains(seen, ff.spec.Path) {
			continue
		}
		seen = append(seen, ff.spec.Path)
		// One write of a line shorter than PIPE_BUF is atomic: lines of
		// several writers never mix. A full pipe drops the line.
		if _, err := unix.Write(ff.fd, []byte(line)); err != nil {
			if f.dropped.Add(1) == 1 || !errors.Is(err, unix.EAGAIN) {
				f.log.Warn("notify fifo: line dropped (no reader, or a slow one?)", "keyword", role, "path", ff.spec.Path, "err", err)
			}
			continue
		}
		f.written.Add(1)
	}
}

// WriteVRRP writes a VRRP line to notify_fifo and vrrp_notify_fifo.
func (f *FIFOs) WriteVRRP(line string) { f.write(line, fifoAll, fifoVRRP) }

// WriteLVS writes a checker's line to notify_fifo and lvs_notify_fifo.
func (f *FIFOs) WriteLVS(line string) { f.write(line, fifoAll, fifoLVS) }

// FIFOStats are the lines written to the FIFOs and those dropped.
type FIFOStats struct{ Written, Dropped uint64 }

// Stats returns the counters; safe for concurrent use and on nil.
func (f *FIFOs) Stats() FIFOStats {
	if f == nil {
		return FIFOStats{}
	}
	return FIFOStats{Written: f.written.Load(), Dropped: f.dropped.Load()}
}

// Close closes the FIFOs (after the notifiers' last lines, the STOP ones),
// lets their scripts read to the end, ends them and removes the FIFOs lvsd
// created. It returns when that is done.
func (f *FIFOs) Close() {
	if f == nil {
		return
	}
	f.mu.Lock()
	open := f.open
	f.open, f.closed = map[string]*fifo{}, true
	f.mu.Unlock()
	var wg sync.WaitGroup
	for role, ff := range open {
		wg.Add(1)
		go func() { defer wg.Done(); f.shut(role, ff) }()
	}
	wg.Wait()
}

// VRRPLine is keepalived's FIFO line of a VRRP event:
// INSTANCE "VI_1" MASTER 100, GROUP "G" BACKUP 0,
// INSTANCE "VI_1" MASTER_PRIORITY 90.
func VRRPLine(ev Event) string {
	kind, prio := "INSTANCE", ev.Priority
	if ev.Group {
		kind, prio = "GROUP", 0
	}
	return kind + ` "` + ev.Name + `" ` + ev.State + " " + strconv.Itoa(prio) + "\n"
}

// VSLine is keepalived's FIFO line of a virtual server's quorum:
// VS [192.0.2.1]:tcp:80 UP.
func VSLine(vs *conf.VirtualServer, up bool) string {
	return "VS " + FormatVS(vs) + " " + upDown(up) + "\n"
}

// RSLine is keepalived's FIFO line of a real server's state:
// RS [10.0.0.1]:tcp:80 [192.0.2.1]:tcp:80 DOWN.
func RSLine(vs *conf.VirtualServer, rs *conf.RealServer, up bool) string {
	return "RS " + FormatRS(vs, rs) + " " + FormatVS(vs) + " " + upDown(up) + "\n"
}

func upDown(up bool) string {
	if up {
		return "UP"
	}
	return "DOWN"
}
