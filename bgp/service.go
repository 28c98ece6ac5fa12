package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/internal/clock"
)

// DefaultRetryInterval is how long after a failed speaker operation (a
// listener that cannot bind, a peer the speaker refused) it is retried.
const DefaultRetryInterval = 5 * time.Second

// ErrNotConfigured: the configuration has no bgp block.
var ErrNotConfigured = errors.New("no bgp block in the configuration")

// Options configure a Service.
type Options struct {
	Logger *slog.Logger
	// Clock drives the drain timing (nil: the system clock).
	Clock clock.Clock
	// NewSpeaker makes the BGP speaker (nil: GoBGP).
	NewSpeaker func(log *slog.Logger) Speaker
	// RetryInterval: see DefaultRetryInterval.
	RetryInterval time.Duration
}

// Counters count what the Service did since it was created.
type Counters struct {
	// Announcements counts routes announced or re-announced with other
	// attributes; Withdrawals routes withdrawn.
	Announcements uint64 `json:"announcements"`
	Withdrawals   uint64 `json:"withdrawals"`
	// Errors counts failed speaker operations; Starts speaker starts.
	Errors uint64 `json:"errors"`
	Starts uint64 `json:"starts"`
}

// AnnouncedRoute is a route in force, for the status.
type AnnouncedRoute struct {
	Prefix      netip.Prefix `json:"prefix"`
	Communities []string     `json:"communities,omitempty"`
	MED         *uint32      `json:"med,omitempty"`
	Prepend     int          `json:"as_path_prepend,omitempty"`
}

// Status is the Service's state for status pages and metrics.
type Status struct {
	Running   bool             `json:"running"`
	RouterID  netip.Addr       `json:"router_id,omitzero"`
	LocalAS   uint32           `json:"local_as,omitempty"`
	Draining  string           `json:"draining,omitempty"` // "", operator, shutdown
	DrainEnds time.Time        `json:"drain_ends,omitzero"`
	Peers     []PeerState      `json:"peers,omitempty"`
	Announced []AnnouncedRoute `json:"announced,omitempty"`
	Counters  Counters         `json:"counters"`
}

type drainOp struct {
	reason DrainReason
	on     bool
}

// Service runs the Announcer and keeps the Speaker's peers and routes
// reconciled with it, in its own goroutine (Run). Its inputs never block.
type Service struct {
	log   *slog.Logger
	opts  Options
	clk   clock.Clock
	wake  chan struct{}
	ready chan struct{}

	mu      sync.Mutex
	cfgIn   *conf.Config
	quorum  map[string]bool
	masters map[string]bool
	drains  []drainOp
	pub     Status  // without Peers
	pubSp   Speaker // the running speaker, for Peers
	hasBGP  bool    // the configuration taken last has a bgp block

	drainedOnce sync.Once
	drained     chan struct{} // closed once a shutdown drain has withdrawn everything

	// Owned by Run's goroutine.
	ann       *Announcer
	sp        Speaker
	running   Global
	started   bool
	peers     map[netip.Addr]conf.BGPNeighbor
	announced map[netip.Prefix]Route
	retry     bool
	timer     clock.Timer
	c         Counters
}

// New returns a Service for cfg; nothing runs before Run.
func New(cfg *conf.Config, opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.NewSpeaker == nil {
		opts.NewSpeaker = NewGoBGP
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = DefaultRetryInterval
	}
	s := &Service{log: opts.Logger, opts: opts, clk: opts.Clock, wake: make(chan struct{}, 1), ready: make(chan struct{}),
		drained: make(chan struct{}), ann: NewAnnouncer(nil), peers: map[netip.Addr]conf.BGPNeighbor{}, announced: map[netip.Prefix]Route{}}
	s.cfgIn, s.masters = cfg, map[string]bool{}
	s.hasBGP = cfg != nil && cfg.BGP != nil
	return s
}

func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Apply takes a reloaded configuration: changed neighbors are re-added,
// the others keep their sessions; a changed router_id, local_as or
// listen_port restarts the speaker. It returns at once.
func (s *Service) Apply(cfg *conf.Config) {
	s.mu.Lock()
	s.cfgIn = cfg
	s.hasBGP = cfg != nil && cfg.BGP != nil
	s.mu.Unlock()
	s.poke()
}

// SetQuorum replaces the virtual servers' quorum states (by key,
// conf.VirtualServer.Key). It never blocks.
func (s *Service) SetQuorum(states map[string]bool) {
	s.mu.Lock()
	s.quorum = states
	s.mu.Unlock()
	s.poke()
}

// SetMaster records a VRRP instance's state. It never blocks.
func (s *Service) SetMaster(instance string, master bool) {
	s.mu.Lock()
	s.masters[instance] = master
	s.mu.Unlock()
	s.poke()
}

// SetDrain is lvsd ctl drain (on) and enable (off) for the whole director:
// the routes get the GRACEFUL_SHUTDOWN community, and are withdrawn after
// drain_time; enable announces them again. IPVS is not touched.
func (s *Service) SetDrain(on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.hasBGP {
		return ErrNotConfigured
	}
	s.drains = append(s.drains, drainOp{DrainOperator, on})
	s.poke()
	return nil
}

// Shutdown is the graceful shutdown: GRACEFUL_SHUTDOWN on every route,
// drain_time, then withdrawal. It returns once every route is withdrawn
// (at once when none is announced), or when ctx ends. Run goes on (the
// sessions stay up) until its context ends.
func (s *Service) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.drains = append(s.drains, drainOp{DrainShutdown, true})
	s.mu.Unlock()
	s.poke()
	select {
	case <-s.drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ready is closed after Run's first pass.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Status returns the state in force, with the peers' sessions.
func (s *Service) Status() Status {
	s.mu.Lock()
	st, sp := s.pub, s.pubSp
	s.mu.Unlock()
	st.Announced = slices.Clone(st.Announced)
	if sp != nil {
		st.Peers = sp.Peers()
	}
	return st
}

// Run reconciles until ctx ends; then it withdraws the routes and stops
// the speaker (after Shutdown, nothing is left to withdraw).
func (s *Service) Run(ctx context.Context) error {
	s.pass()
	close(s.ready)
	for {
		select {
		case <-ctx.Done():
			s.stopSpeaker()
			s.publish()
			s.markDrained()
			return nil
		case <-s.wake:
			s.pass()
		}
	}
}

// pass takes the pending inputs and reconciles the speaker with them.
func (s *Service) pass() {
	now := s.clk.Now()
	s.mu.Lock()
	cfg, quorum, masters, drains := s.cfgIn, s.quorum, s.masters, s.drains
	s.cfgIn, s.quorum, s.masters, s.drains = nil, nil, map[string]bool{}, nil
	s.mu.Unlock()
	if cfg != nil {
		s.ann.Apply(cfg)
	}
	if quorum != nil {
		s.ann.SetQuorum(quorum)
	}
	for name, m := range masters {
		s.ann.SetMaster(name, m)
	}
	for _, d := range drains {
		switch {
		case d.on:
			if r, _ := s.ann.Draining(); r < d.reason {
				s.log.Info("bgp: draining: GRACEFUL_SHUTDOWN on every route, then withdrawal", "reason", d.reason.String(), "drain_time", s.ann.drainTime())
			}
			s.ann.Drain(d.reason, now)
		case s.ann.Undrain():
			s.log.Info("bgp: drain ended: routes announced again")
		}
	}
	if cfg != nil || s.retry {
		s.reconcileSpeaker(s.ann.cfg)
	}
	s.reconcileRoutes(now)
	s.schedule(now)
	s.publish()
	if r, _ := s.ann.Draining(); r == DrainShutdown && len(s.announced) == 0 {
		s.markDrained()
	}
}

func (s *Service) markDrained() { s.drainedOnce.Do(func() { close(s.drained) }) }

func (s *Service) fail(what string, err error, args ...any) {
	s.c.Errors++
	s.retry = true
	s.log.Error("bgp: "+what, append(args, "err", err)...)
}

// reconcileSpeaker starts, restarts or stops the speaker for b and makes
// its peers b's neighbors: a neighbor configured as before keeps its
// session.
func (s *Service) reconcileSpeaker(b *conf.BGP) {
	s.retry = false
	if b == nil {
		s.stopSpeaker()
		return
	}
	g := GlobalOf(b)
	if s.started && g != s.running {
		s.log.Info("bgp: router_id, local_as or listen_port changed: restarting the speaker (every session is reset)")
		s.stopSpeaker()
	}
	if !s.started {
		sp := s.opts.NewSpeaker(s.log)
		if err := sp.Start(g); err != nil {
			s.fail("cannot start the speaker", err, "router_id", g.RouterID, "local_as", g.LocalAS, "listen_port", g.ListenPort)
			return
		}
		s.c.Starts++
		s.sp, s.running, s.started = sp, g, true
		s.log.Info("bgp: speaker started", "router_id", g.RouterID, "local_as", g.LocalAS, "listen_port", g.ListenPort)
	}
	want := map[netip.Addr]conf.BGPNeighbor{}
	for _, nb := range b.Neighbors {
		n := *nb
		n.Pos = conf.Pos{}
		want[n.Addr] = n
	}
	for addr, old := range s.peers {
		if n, ok := want[addr]; ok && n == old {
			continue
		}
		if err := s.sp.DeletePeer(addr); err != nil {
			s.fail("cannot remove a neighbor", err, "neighbor", addr)
			continue
		}
		delete(s.peers, addr)
		s.log.Info("bgp: neighbor removed", "neighbor", addr)
	}
	for _, nb := range b.Neighbors {
		if _, ok := s.peers[nb.Addr]; ok {
			continue
		}
		n := want[nb.Addr]
		if err := s.sp.AddPeer(n); err != nil {
			s.fail("cannot add a neighbor", err, "neighbor", nb.Addr)
			continue
		}
		s.peers[nb.Addr] = n
		s.log.Info("bgp: neighbor added", "neighbor", nb.Addr, "remote_as", nb.RemoteAS, "passive", nb.Passive)
	}
}

func (s *Service) stopSpeaker() {
	if !s.started {
		return
	}
	for p := range s.announced {
		if err := s.sp.Withdraw(p); err == nil {
			s.c.Withdrawals++
		}
	}
	if err := s.sp.Stop(); err != nil {
		s.log.Warn("bgp: stopping the speaker", "err", err)
	}
	s.log.Info("bgp: speaker stopped", "withdrawn", len(s.announced))
	s.started, s.sp = false, nil
	s.peers = map[netip.Addr]conf.BGPNeighbor{}
	s.announced = map[netip.Prefix]Route{}
}

// reconcileRoutes announces and withdraws what differs from the routes
// wanted at now.
func (s *Service) reconcileRoutes(now time.Time) {
	if !s.started {
		return
	}
	want := map[netip.Prefix]Route{}
	routes := s.ann.Routes(now)
	for _, r := range routes {
		want[r.Prefix] = r
	}
	for p := range s.announced {
		if _, ok := want[p]; ok {
			continue
		}
		if err := s.sp.Withdraw(p); err != nil {
			s.fail("cannot withdraw a route", err, "prefix", p)
			continue
		}
		delete(s.announced, p)
		s.c.Withdrawals++
		s.log.Info("bgp: route withdrawn", "prefix", p, "healthy", s.ann.Healthy(p.Addr()))
	}
	for _, r := range routes {
		if old, ok := s.announced[r.Prefix]; ok && old.Equal(r) {
			continue
		}
		if err := s.sp.Announce(r); err != nil {
			s.fail("cannot announce a route", err, "prefix", r.Prefix)
			continue
		}
		s.announced[r.Prefix] = r
		s.c.Announcements++
		s.log.Info("bgp: route announced", "prefix", r.Prefix, "communities", communityStrings(r.Communities), "med", medArg(r), "as_path_prepend", r.Prepend)
	}
}

func medArg(r Route) any {
	if !r.HasMED {
		return "-"
	}
	return r.MED
}

// schedule arms the timer for the next deadline (the end of a drain) or
// retry.
func (s *Service) schedule(now time.Time) {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	next, ok := s.ann.Deadline(now)
	if s.retry {
		if r := now.Add(s.opts.RetryInterval); !ok || r.Before(next) {
			next, ok = r, true
		}
	}
	if ok {
		s.timer = s.clk.AfterFunc(next.Sub(now), s.poke)
	}
}

func (s *Service) publish() {
	st := Status{Running: s.started, Counters: s.c}
	if s.started {
		st.RouterID, st.LocalAS = s.running.RouterID, s.running.LocalAS
	}
	if r, end := s.ann.Draining(); r != DrainNone {
		st.Draining, st.DrainEnds = r.String(), end
	}
	for _, r := range s.announced {
		ar := AnnouncedRoute{Prefix: r.Prefix, Communities: communityStrings(r.Communities), Prepend: r.Prepend}
		if r.HasMED {
			med := r.MED
			ar.MED = &med
		}
		st.Announced = append(st.Announced, ar)
	}
	slices.SortFunc(st.Announced, func(a, b AnnouncedRoute) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
	s.mu.Lock()
	s.pub, s.pubSp = st, s.sp
	s.mu.Unlock()
}

// communityStrings writes communities as ASN:VALUE.
func communityStrings(cs []uint32) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = fmt.Sprintf("%d:%d", c>>16, c&0xFFFF)
	}
	return out
}
