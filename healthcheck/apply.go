package healthcheck

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/internal/execscript"
	"github.com/lvsd/lvsd/internal/scriptqueue"
)

// Apply switches to a new configuration (a reload). Checkers whose
// configuration is unchanged keep their state and timing; removed ones stop
// (a running attempt finishes and is ignored); new ones start after a random
// delay in [0, warmup]. A real server added by the reload gets its initial
// event; a kept one gets an event only when its state or weight changes; a
// removed one gets none.
func (s *Scheduler) Apply(cfg *conf.Config) {
	if cfg == nil {
		cfg = &conf.Config{}
	}
	g := cfg.Global
	// Fingerprints depend on the configuration alone: compute them before
	// stopping the scheduler.
	fps := map[*conf.Checker][2]digest{}
	for _, vs := range cfg.VirtualServers {
		for _, rc := range vs.RealServers {
			for _, cc := range rc.Checkers {
				if supported(cc.Type) {
					id, set := fingerprint(cc, rc, &g)
					fps[cc] = [2]digest{id, set}
				}
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.global = g
	old := s.servers
	servers := make(map[rsKey]*rsState, len(old))
	var order []*rsState
	groups := map[string]*conf.VirtualServerGroup{}
	for _, g := range cfg.VSGroups {
		groups[g.Name] = g
	}
	for _, vs := range cfg.VirtualServers {
		vsKey := vs.Key()
		ha := haRanges(vs, groups)
		for _, rc := range vs.RealServers {
			key := rsKey{vs: vsKey, rs: rc.AddrPort()}
			if _, dup := servers[key]; dup {
				continue // conf drops duplicates; never check one twice
			}
			r := old[key]
			isNew := r == nil
			if isNew {
				r = &rsState{key: key, weight: -1}
			}
			r.vs, r.cfg, r.haRanges = vs, rc, ha
			r.notifyUp = newNotifyScript("notify_up", rc.NotifyUp, &g)
			r.notifyDown = newNotifyScript("notify_down", rc.NotifyDown, &g)
			s.applyCheckers(r, rc, &g, fps, now)
			servers[key] = r
			order = append(order, r)

			up, w := r.allUp(), r.dynWeight()
			switch {
			case isNew:
				r.up, r.weight, r.reason = up, w, initialReason(r)
				if s.running {
					r.since = now
					s.emit(r, now, r.reason)
					if g.RSInitNotifies && up {
						s.notifyChange(r, true)
					}
				}
			case up != r.up || w != r.weight:
				reason := "configuration reloaded"
				if s.running && up != r.up {
					r.transitions++
					r.since = now
					r.reason = reason
					s.log.Warn("real server "+strings.ToUpper(upDown(up)), "vs", key.vs, "rs", key.rs.String(), "reason", reason)
					s.notifyChange(r, up)
				}
				r.up, r.weight = up, w
				if s.running {
					s.emit(r, now, reason)
				}
			}
			if !s.running {
				r.reason = initialReason(r)
			}
		}
	}
	for k, r := range old {
		if servers[k] == nil {
			for _, c := range r.checks {
				s.remove(c)
			}
		}
	}
	s.servers, s.order = servers, order
	s.updateSuspended()
	s.nudge()
}

// applyCheckers matches the configured checkers of a real server with those
// it had: same fingerprint, same checker. s.mu is held.
func (s *Scheduler) applyCheckers(r *rsState, rc *conf.RealServer, g *conf.Global, fps map[*conf.Checker][2]digest, now time.Time) {
	prev := r.checks
	used := make([]bool, len(prev))
	var checks []*checkState
	var ignored []string
	for _, cc := range rc.Checkers {
		if !supported(cc.Type) {
			ignored = append(ignored, cc.Type)
			continue
		}
		fp, set := fps[cc][0], fps[cc][1]
		var c *checkState
		for pass := 0; pass < 2 && c == nil; pass++ { // the same settings first
			for i, pc := range prev {
				if !used[i] && pc.fp == fp && (pass == 1 || pc.set == set) {
					used[i], c = true, pc
					break
				}
			}
		}
		switch {
		case c == nil:
			c = s.newCheck(r, cc, rc, g, fp, set)
			if s.running {
				s.schedule(c, now.Add(s.jitter(c.warmup)))
			}
		case c.set != set:
			s.resetSettings(c, cc, rc, g, set, now)
		}
		c.cfg = cc
		checks = append(checks, c)
	}
	for i, pc := range prev {
		if !used[i] {
			s.remove(pc)
		}
	}
	r.checks, r.ignored = checks, ignored
}

func (s *Scheduler) newCheck(r *rsState, cc *conf.Checker, rc *conf.RealServer, g *conf.Global, fp, set digest) *checkState {
	c := &checkState{
		rs: r, fp: fp, set: set, cfg: cc,
		dynamic: dynamic(cc),
		weight:  -1, idx: -1,
	}
	c.up = !alpha(cc, rc)
	if !s.setTimers(c, cc, rc, g) {
		c.up = false
	}
	if fp, ok := c.p.(*fileProbe); ok {
		// As keepalived: a FILE_CHECK's state is known at once (its file
		// is read now), never alpha.
		r := fp.probe(context.Background())
		c.up, c.hasRun = r.ok, true
		if c.dynamic && r.ok {
			c.weight = r.weight
		}
	}
	return c
}

// resetSettings gives a kept checker its new timers (its state stays): the
// next attempt comes no later than one new period from now. s.mu is held.
func (s *Scheduler) resetSettings(c *checkState, cc *conf.Checker, rc *conf.RealServer, g *conf.Global, set digest, now time.Time) {
	c.set = set
	if !s.setTimers(c, cc, rc, g) && c.up {
		c.up = false
		c.transitions++
	}
	if c.retryIt > c.retry {
		c.retryIt = c.retry
	}
	if c.idx >= 0 && c.due.After(now.Add(c.interval)) && !c.isRetry {
		s.heap.remove(c.idx)
		s.schedule(c, now.Add(c.interval))
	}
}

// setTimers takes a checker's timers and builds its prober (the timeouts are
// the prober's); it reports whether the prober can run.
func (s *Scheduler) setTimers(c *checkState, cc *conf.Checker, rc *conf.RealServer, g *conf.Global) bool {
	t := cc.Timers
	c.interval, c.delayBeforeRetry, c.warmup, c.retry = t.DelayLoop, t.DelayBeforeRetry, t.Warmup, t.Retry
	if c.interval < time.Millisecond {
		c.interval = time.Millisecond
	}
	if c.delayBeforeRetry < 0 {
		c.delayBeforeRetry = time.Second
	}
	if c.warmup < 0 {
		c.warmup = c.interval
	}
	if c.retry < 0 {
		c.retry = checkerKinds[cc.Type].defaultRetry
	}
	p, err := s.newProber(cc, rc, g)
	if err != nil {
		s.log.Error("checker cannot run: it stays down", "vs", c.rs.key.vs, "rs", c.rs.key.rs.String(), "checker", c.name(), "err", err)
		c.p = errProbe{err}
		return false
	}
	c.p = p
	return true
}

// remove stops a checker. s.mu is held.
func (s *Scheduler) remove(c *checkState) {
	c.removed = true
	if c.idx >= 0 {
		s.heap.remove(c.idx)
	}
}

func initialReason(r *rsState) string {
	switch {
	case len(r.checks) == 0 && len(r.ignored) == 0:
		return "initial state: no health checker"
	case len(r.checks) == 0:
		return "initial state: only checkers lvsd does not run yet (" + strings.Join(r.ignored, ", ") + "): always up"
	case !r.allUp():
		return "initial state: down until its checkers succeed (alpha)"
	}
	return "initial state"
}

// errProbe is a checker that cannot run (e.g. a regex RE2 rejects): always down.
type errProbe struct{ err error }

func (p errProbe) probe(context.Context) result { return fail("cannot run: %v", p.err) }

// notifyScript is a resolved notify_up or notify_down.
type notifyScript struct {
	which string
	cmd   *execscript.Command
	err   error
}

// newNotifyScript is nil without a script (most real servers).
func newNotifyScript(which string, s *conf.Script, g *conf.Global) *notifyScript {
	if s == nil {
		return nil
	}
	ns := &notifyScript{which: which}
	ns.cmd, ns.err = execscript.Resolve(s, g)
	if ns.err != nil {
		ns.cmd = nil
		ns.err = errors.New(which + ": " + ns.err.Error())
	}
	return ns
}

// notifyChange queues notify_up or notify_down, which run in the
// background one after the other in the real server's queue. s.mu is held.
func (s *Scheduler) notifyChange(r *rsState, up bool) {
	if s.opts.RealServer != nil && r.vs != nil {
		s.opts.RealServer(r.vs, r.cfg, up)
	}
	ns := r.notifyDown
	if up {
		ns = r.notifyUp
	}
	if ns == nil {
		return
	}
	if ns.err != nil {
		s.log.Error("cannot run "+ns.which, "vs", r.key.vs, "rs", r.key.rs.String(), "err", ns.err)
		return
	}
	if ns.cmd == nil || !s.running {
		return
	}
	if r.notify == nil {
		// Made at the first script: most real servers never run one.
		r.notify = s.newNotifyQueue(r.key)
	}
	r.notify.Push(ns.cmd)
}

// newNotifyQueue is the queue of a real server's notify scripts.
func (s *Scheduler) newNotifyQueue(key rsKey) *scriptqueue.Queue[*execscript.Command] {
	return scriptqueue.New(func(cmd *execscript.Command) {
		// s.ctx was set by start, before the first script was queued.
		if e := cmd.Run(s.ctx, s.opts.NotifyTimeout); !e.OK() {
			s.log.Warn("notify script failed", "vs", key.vs, "rs", key.rs.String(), "script", cmd.Args[0], "result", e.String())
		}
	}, &s.wg, 0)
}
