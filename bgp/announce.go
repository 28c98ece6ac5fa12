// Package bgp announces virtual-server addresses to routers over BGP, so
// that several directors serve the same VIPs at once behind ECMP
// (active-active). What is announced follows health: an address is
// announced while every virtual server of that address (at that
// address:port, in a virtual_server_group with that address among its
// members, or of the fwmark its announce line names) has quorum (the
// quorum_up/quorum_down rule of the IPVS reconciler, which reports it), and,
// for an announcement bound to a VRRP instance (vrrp_master), while that
// instance is MASTER. A graceful shutdown (SIGTERM, lvsd ctl drain) first
// marks every route with the GRACEFUL_SHUTDOWN community (RFC 8326), so
// that routers prefer the other directors, waits drain_time, then
// withdraws.
//
// The Announcer is the pure state machine (inputs → routes wanted at a
// given time); the Service runs it in its own goroutine and reconciles a
// Speaker (GoBGP, gobgp.go) with it.
package bgp

import (
	"net/netip"
	"slices"
	"time"

	"github.com/lvsd/lvsd/conf"
)

// GracefulShutdown is the GRACEFUL_SHUTDOWN well-known community, 65535:0
// (RFC 8326): a receiver lowers the route's preference.
const GracefulShutdown uint32 = 0xFFFF0000

// Route is one announcement: a host prefix and its path attributes.
type Route struct {
	Prefix      netip.Prefix
	Communities []uint32 // sorted
	HasMED      bool
	MED         uint32
	Prepend     int
}

// Equal reports whether r and o announce the same thing.
func (r Route) Equal(o Route) bool {
	return r.Prefix == o.Prefix && r.HasMED == o.HasMED && r.MED == o.MED && r.Prepend == o.Prepend &&
		slices.Equal(r.Communities, o.Communities)
}

// DrainReason says why routes are being drained.
type DrainReason int

const (
	// DrainNone: not draining.
	DrainNone DrainReason = iota
	// DrainOperator: lvsd ctl drain; undone by lvsd ctl enable.
	DrainOperator
	// DrainShutdown: the daemon is stopping; never undone.
	DrainShutdown
)

func (d DrainReason) String() string {
	return [...]string{"", "operator", "shutdown"}[d]
}

// Announcer computes the routes to announce from the configuration, the
// virtual servers' quorum, the VRRP instances' states and the drain state.
// It has no clock and no goroutine: every method takes the time it acts at.
type Announcer struct {
	cfg    *conf.BGP
	vsOf   map[netip.Addr][]string // virtual-server keys by announced address (conf.BGPAnnounce.VirtualServers)
	quorum map[string]bool         // by virtual-server key; absent: not known, not up
	master map[string]bool         // VRRP instance → MASTER

	reason     DrainReason
	drainStart time.Time
}

// NewAnnouncer returns an Announcer for cfg (nothing is announced until
// quorum states are known).
func NewAnnouncer(cfg *conf.Config) *Announcer {
	a := &Announcer{quorum: map[string]bool{}, master: map[string]bool{}}
	a.Apply(cfg)
	return a
}

// Apply takes a new configuration; quorum and VRRP states, and a drain in
// progress, carry over.
func (a *Announcer) Apply(cfg *conf.Config) {
	a.cfg = nil
	a.vsOf = map[netip.Addr][]string{}
	if cfg == nil {
		return
	}
	a.cfg = cfg.BGP
	if cfg.BGP == nil {
		return
	}
	for _, ann := range cfg.BGP.Announce {
		a.vsOf[ann.Prefix.Addr()] = ann.VirtualServers
	}
}

// SetQuorum replaces the quorum states (by virtual-server key).
func (a *Announcer) SetQuorum(states map[string]bool) {
	a.quorum = states
}

// SetMaster records whether a VRRP instance is MASTER.
func (a *Announcer) SetMaster(instance string, master bool) {
	a.master[instance] = master
}

// Drain starts draining at now for reason (a shutdown overrides an
// operator's drain and keeps its start). A repeated request keeps the
// first start.
func (a *Announcer) Drain(reason DrainReason, now time.Time) {
	if a.reason == DrainNone {
		a.drainStart = now
	}
	if reason > a.reason {
		a.reason = reason
	}
}

// Undrain ends an operator's drain; a shutdown is not undone. It reports
// whether the drain ended.
func (a *Announcer) Undrain() bool {
	if a.reason != DrainOperator {
		return false
	}
	a.reason = DrainNone
	return true
}

// Draining returns the drain reason and when the routes are withdrawn.
func (a *Announcer) Draining() (DrainReason, time.Time) {
	if a.reason == DrainNone {
		return DrainNone, time.Time{}
	}
	return a.reason, a.drainStart.Add(a.drainTime())
}

func (a *Announcer) drainTime() time.Duration {
	if a.cfg == nil {
		return 0
	}
	return a.cfg.DrainTime
}

// Deadline is the next time Routes changes by itself (the end of a
// drain); ok false when none.
func (a *Announcer) Deadline(now time.Time) (t time.Time, ok bool) {
	if r, end := a.Draining(); r != DrainNone && now.Before(end) {
		return end, true
	}
	return time.Time{}, false
}

// Healthy reports whether the virtual servers an announced address follows
// (by address, group member or fwmark) all have quorum.
func (a *Announcer) Healthy(addr netip.Addr) bool {
	keys := a.vsOf[addr]
	if len(keys) == 0 {
		return false
	}
	for _, k := range keys {
		if !a.quorum[k] {
			return false
		}
	}
	return true
}

// Routes returns the routes to announce at now, in the configuration's
// order.
func (a *Announcer) Routes(now time.Time) []Route {
	if a.cfg == nil {
		return nil
	}
	reason, end := a.Draining()
	if reason != DrainNone && !now.Before(end) {
		return nil
	}
	var out []Route
	for _, ann := range a.cfg.Announce {
		if !a.Healthy(ann.Prefix.Addr()) {
			continue
		}
		if ann.VRRPInstance != "" && !a.master[ann.VRRPInstance] {
			continue
		}
		r := Route{Prefix: ann.Prefix, Prepend: ann.Attrs.Prepend, Communities: slices.Clone(ann.Attrs.Communities)}
		if ann.Attrs.MED != nil {
			r.HasMED, r.MED = true, *ann.Attrs.MED
		}
		if reason != DrainNone && !slices.Contains(r.Communities, GracefulShutdown) {
			r.Communities = append(r.Communities, GracefulShutdown)
		}
		slices.Sort(r.Communities)
		r.Communities = slices.Compact(r.Communities)
		out = append(out, r)
	}
	return out
}
