package status

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/vrrp"
)

// Script is a vrrp_script.
type Script struct {
	Name    string `json:"name"`
	Command string `json:"command"`
	// Good is the status the tracking instances see (keepalived's GOOD or
	// BAD): the initial one (BAD with init_fail, else GOOD) until a run
	// decides, then keepalived's rise/fall verdict.
	Good     bool      `json:"good"`
	Runs     uint64    `json:"runs"`
	Failures uint64    `json:"failures"`
	LastRun  time.Time `json:"last_run,omitzero"`
	LastOK   bool      `json:"last_ok"`
	// LastResult is the latest run's outcome as the runner tells it.
	LastResult string `json:"last_result,omitempty"`
}

// ScriptRecorder watches the vrrp_script runs of a vrrp.Engine (through
// EngineOptions.ScriptExec) and keeps each script's status for status pages
// and metrics. The engine does not publish its script status; the recorder
// feeds the same results to the tracker's own rise/fall counter
// (vrrp.ScriptState), so the two cannot disagree.
type ScriptRecorder struct {
	mu sync.Mutex
	m  map[string]*scriptRec
}

type scriptRec struct {
	st       *vrrp.ScriptState
	good     bool
	runs     uint64
	failures uint64
	last     time.Time
	lastOK   bool
	detail   string
}

// NewScriptRecorder returns an empty recorder.
func NewScriptRecorder() *ScriptRecorder { return &ScriptRecorder{m: map[string]*scriptRec{}} }

// ScriptExec wraps next (nil: vrrp.CommandExec) for
// vrrp.EngineOptions.ScriptExec. The engine makes a runner each time it
// (re)starts a script: the status starts afresh then, as the engine's.
func (r *ScriptRecorder) ScriptExec(next func(vrrp.ScriptConfig, *conf.Global) vrrp.ScriptExec) func(vrrp.ScriptConfig, *conf.Global) vrrp.ScriptExec {
	if next == nil {
		next = vrrp.CommandExec
	}
	return func(cfg vrrp.ScriptConfig, g *conf.Global) vrrp.ScriptExec {
		inner := next(cfg, g)
		rec := &scriptRec{st: vrrp.NewScriptState(cfg.Rise, cfg.Fall, cfg.InitFail), good: !cfg.InitFail}
		r.mu.Lock()
		r.m[cfg.Name] = rec
		r.mu.Unlock()
		return func(ctx context.Context, timeout time.Duration) (bool, string) {
			ok, detail := inner(ctx, timeout)
			if ctx.Err() != nil {
				return ok, detail // the tracker ignores a run cut short by its stop
			}
			r.mu.Lock()
			if report, up := rec.st.Record(ok); report {
				rec.good = up
			}
			rec.runs++
			if !ok {
				rec.failures++
			}
			rec.last, rec.lastOK, rec.detail = time.Now(), ok, detail
			r.mu.Unlock()
			return ok, detail
		}
	}
}

// Scripts lists the vrrp_scripts of cfg with what the recorder saw; a
// script that did not run has its initial status. A nil recorder reports
// initial statuses only.
func (r *ScriptRecorder) Scripts(cfg *conf.Config) []Script {
	if cfg == nil {
		return nil
	}
	out := make([]Script, 0, len(cfg.Scripts))
	for _, s := range cfg.Scripts {
		sc := Script{Name: s.Name, Command: strings.Join(s.Script.Args, " "), Good: !s.InitFail}
		if r != nil {
			r.mu.Lock()
			if rec := r.m[s.Name]; rec != nil {
				sc.Good, sc.Runs, sc.Failures, sc.LastRun, sc.LastOK, sc.LastResult = rec.good, rec.runs, rec.failures, rec.last, rec.lastOK, rec.detail
			}
			r.mu.Unlock()
		}
		out = append(out, sc)
	}
	return out
}

// ConfigScripts lists the vrrp_scripts of cfg with their initial status.
func ConfigScripts(cfg *conf.Config) []Script { return (*ScriptRecorder)(nil).Scripts(cfg) }
