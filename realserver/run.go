package realserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// DefaultPeriod is how often Run re-checks everything, beside the
// reconciles the netlink events trigger: a changed sysctl makes no event.
const DefaultPeriod = 5 * time.Second

// Daemon keeps a real server at its spec until its context ends, then
// removes what it set up. One goroutine (Run) owns the spec and the saved
// state; others talk to it through SetSpec and Kick.
type Daemon struct {
	Kernel Kernel
	// StatePath is the state file (what to undo); "" keeps it in memory.
	StatePath string
	// Period of the full re-check (default DefaultPeriod).
	Period time.Duration
	Log    *slog.Logger
	// Keep leaves the set-up in place when Run returns (a restart of the
	// daemon then finds and adopts it through the state file).
	Keep bool

	specs chan Spec
	kicks chan struct{}
}

// NewDaemon returns a daemon for the kernel; set the other fields before Run.
func NewDaemon(k Kernel, log *slog.Logger) *Daemon {
	if log == nil {
		log = slog.Default()
	}
	return &Daemon{Kernel: k, Log: log, Period: DefaultPeriod,
		specs: make(chan Spec, 1), kicks: make(chan struct{}, 1)}
}

// SetSpec replaces the desired state (a reload).
func (d *Daemon) SetSpec(s Spec) {
	select {
	case <-d.specs: // an unread older spec is superseded
	default:
	}
	d.specs <- s
}

// Kick asks for a reconcile soon (an address or link changed).
func (d *Daemon) Kick() {
	select {
	case d.kicks <- struct{}{}:
	default:
	}
}

// Run reconciles at once, on every SetSpec and Kick and every Period, until
// ctx ends; then, unless Keep, it removes the set-up. It returns the error
// of the final removal, or of reading the state file.
func (d *Daemon) Run(ctx context.Context, spec Spec) error {
	saved, err := LoadState(d.StatePath)
	if err != nil {
		return err
	}
	if len(saved.Addrs)+len(saved.Sysctls) > 0 {
		d.Log.Info("realserver: adopting the set-up of an earlier run", "state", d.StatePath,
			"addresses", len(saved.Addrs), "sysctls", len(saved.Sysctls))
	}
	period := d.Period
	if period <= 0 {
		period = DefaultPeriod
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	d.reconcile(spec, &saved, "start")
	for {
		select {
		case <-ctx.Done():
			if d.Keep {
				return nil
			}
			changes, err := Remove(d.Kernel, &saved)
			d.logChanges("stop", changes)
			if serr := SaveState(d.StatePath, saved); serr != nil {
				err = errors.Join(err, serr)
			}
			return err
		case spec = <-d.specs:
			d.reconcile(spec, &saved, "reload")
		case <-d.kicks:
			d.reconcile(spec, &saved, "change")
		case <-tick.C:
			d.reconcile(spec, &saved, "check")
		}
	}
}

func (d *Daemon) reconcile(spec Spec, saved *Saved, why string) {
	changes, err := ReconcileIntent(d.Kernel, spec, saved, func(s Saved) error { return SaveState(d.StatePath, s) })
	if err != nil {
		d.Log.Error("realserver: reconcile", "why", why, "err", err)
	}
	d.logChanges(why, changes)
	if len(changes) > 0 || err != nil { // err: an intent recorded for a change that failed
		if err := SaveState(d.StatePath, *saved); err != nil {
			d.Log.Error("realserver: saving the state file", "err", err)
		}
	}
}

func (d *Daemon) logChanges(why string, changes []Change) {
	for _, c := range changes {
		if why == "check" || why == "change" {
			d.Log.Warn("realserver: repaired drift: "+c.What, "why", why)
		} else {
			d.Log.Info("realserver: "+c.What, "why", why)
		}
	}
}

// LoadState reads the state file; a missing file is an empty state.
func LoadState(path string) (Saved, error) {
	var s Saved
	if path == "" {
		return s, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return Saved{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// SaveState writes the state file atomically, or removes it when there is
// nothing left to undo.
func SaveState(path string, s Saved) error {
	if path == "" {
		return nil
	}
	if len(s.Addrs)+len(s.Sysctls)+len(s.Tunnels) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
