package vrrp

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/lvsd/lvsd/internal/clock"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/internal/execscript"
)

// ScriptConfig is one vrrp_script as a ScriptTracker runs it.
type ScriptConfig struct {
	Name     string
	Args     []string
	User     string // "" : global script_user, else keepalived_script, else ours
	Group    string
	Interval time.Duration
	Timeout  time.Duration
	Rise     int
	Fall     int
	InitFail bool
}

// ScriptExec runs a vrrp_script once and reports whether it succeeded:
// exit status 0 within timeout (keepalived: non-zero, a signal or a
// timeout are failures).
type ScriptExec func(ctx context.Context, timeout time.Duration) (ok bool, detail string)

// ScriptState is keepalived's rise/fall counter: result runs from 0 to
// rise+fall-1 and the script is up while result >= rise. It starts at
// rise-1 (one success is enough, and the first failure counts at once), or
// at 0 with init_fail.
type ScriptState struct {
	rise, fall int
	result     int
	init       bool // no result yet (and not init_fail)
}

func NewScriptState(rise, fall int, initFail bool) *ScriptState {
	rise, fall = max(rise, 1), max(fall, 1)
	s := &ScriptState{rise: rise, fall: fall, result: rise - 1, init: !initFail}
	if initFail {
		s.result = 0
	}
	return s
}

// Up reports the status the tracking instances see.
func (s *ScriptState) Up() bool { return s.result >= s.rise }

// Record accounts one run; it reports whether the status must be (re)told
// to the instances, and the status.
func (s *ScriptState) Record(ok bool) (report, up bool) {
	first := s.init
	s.init = false
	if ok {
		switch {
		case s.result < s.rise-1:
			s.result++
		case s.result != s.rise+s.fall-1:
			report = s.result < s.rise
			s.result = s.rise + s.fall - 1
		}
	} else {
		if s.result > s.rise {
			s.result--
		} else {
			report = s.result == s.rise || first
			s.result = 0
		}
	}
	return report, s.Up()
}

// ScriptTracker runs one vrrp_script every interval in its own goroutine,
// which owns its rise/fall state, and reports status changes.
type ScriptTracker struct {
	cfg   ScriptConfig
	exec  ScriptExec
	clock clock.Clock
	log   *slog.Logger
}

// NewScriptTracker returns a tracker; exec nil runs the configured command
// (see CommandExec).
func NewScriptTracker(cfg ScriptConfig, exec ScriptExec, clk clock.Clock, log *slog.Logger) *ScriptTracker {
	if clk == nil {
		clk = clock.System{}
	}
	if log == nil {
		log = slog.Default()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = cfg.Interval
	}
	return &ScriptTracker{cfg: cfg, exec: exec, clock: clk, log: log}
}

// CommandExec runs a vrrp_script's command line through execscript: without
// a shell, as its user (the script's, else global_defs script_user, else
// keepalived_script), killing its process group on timeout or when ctx
// ends. An unknown user makes every run fail.
func CommandExec(cfg ScriptConfig, g *conf.Global) ScriptExec {
	cmd, err := execscript.Resolve(&conf.Script{Args: cfg.Args, User: cfg.User, Group: cfg.Group}, g)
	if err != nil {
		return func(context.Context, time.Duration) (bool, string) { return false, err.Error() }
	}
	return func(ctx context.Context, timeout time.Duration) (bool, string) {
		r := cmd.Run(ctx, timeout)
		return r.OK(), r.String()
	}
}

// Run runs the script now and then every interval (counted from the start
// of a run; runs that would overlap are skipped, as keepalived does) until
// ctx is done. report is called from this goroutine with the first result
// and on every change.
func (t *ScriptTracker) Run(ctx context.Context, report func(up bool)) {
	st := NewScriptState(t.cfg.Rise, t.cfg.Fall, t.cfg.InitFail)
	wake := make(chan struct{}, 1)
	next := t.clock.Now()
	for {
		start := t.clock.Now()
		ok, detail := t.exec(ctx, t.cfg.Timeout)
		if ctx.Err() != nil {
			return
		}
		if tell, up := st.Record(ok); tell {
			word := "failed"
			if up {
				word = "succeeded"
			}
			t.log.Info("vrrp: VRRP_Script "+word, "script", t.cfg.Name, "result", detail)
			report(up)
		} else {
			t.log.Debug("vrrp: VRRP_Script ran", "script", t.cfg.Name, "ok", ok, "result", detail)
		}
		next = next.Add(t.cfg.Interval)
		if now := t.clock.Now(); !next.After(now) {
			skipped := now.Sub(next)/t.cfg.Interval + 1
			next = next.Add(skipped * t.cfg.Interval)
			t.log.Warn("vrrp: VRRP_Script ran longer than its interval; runs skipped", "script", t.cfg.Name, "skipped", int(skipped), "took", now.Sub(start))
		}
		timer := t.clock.AfterFunc(next.Sub(t.clock.Now()), func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-wake:
		}
	}
}

// scriptConfigs returns the vrrp_scripts that some instance tracks
// (keepalived runs only those).
func scriptConfigs(c *conf.Config, specs []runnerSpec) map[string]ScriptConfig {
	used := map[string]bool{}
	for _, s := range specs {
		for _, ic := range s.Instances {
			for _, t := range ic.Tracks {
				used[t.Name] = true
			}
		}
	}
	out := map[string]ScriptConfig{}
	for _, s := range c.Scripts {
		if !used[trackScriptName(s.Name)] {
			continue
		}
		out[s.Name] = ScriptConfig{
			Name: s.Name, Args: s.Script.Args, User: s.Script.User, Group: s.Script.Group,
			Interval: s.Interval, Timeout: s.Timeout, Rise: s.Rise, Fall: s.Fall, InitFail: s.InitFail,
		}
	}
	return out
}

func (c ScriptConfig) String() string {
	return fmt.Sprintf("%s %q user=%s/%s every %v timeout %v rise %d fall %d init_fail %v",
		c.Name, c.Args, c.User, c.Group, c.Interval, c.Timeout, c.Rise, c.Fall, c.InitFail)
}
