package ipvs

import (
	"net/netip"

	"github.com/lvsd/lvsd/conf"
)

// HealthEvent is a health checker's verdict on a real server of a virtual
// server.
type HealthEvent struct {
	VS     string         // conf VirtualServer.Key()
	RS     netip.AddrPort // conf RealServer.AddrPort()
	Up     bool
	Weight int // dynamic weight (misc_dynamic), -1 when none: the weight is left as it was
}

// RSHealth is the health of one real server.
type RSHealth struct {
	Up bool
	// Weight is the dynamic weight set by a misc_dynamic check, -1 when none.
	Weight int
	// Drained: the operator drained it (lvsd ctl drain): weight 0 whatever
	// its health, until enabled again. Carried across health changes and
	// reloads.
	Drained bool

	cfgWeight int // the configured weight the dynamic one overrides
}

// VSHealth is the health of one virtual server.
type VSHealth struct {
	// QuorumUp: the sum of the weights of the healthy real servers reached
	// quorum+hysteresis and has not fallen below quorum-hysteresis since.
	QuorumUp bool
	RS       map[netip.AddrPort]*RSHealth

	sorryIn bool // the sorry server is in use (for keepalived's start-up notify)
}

// rs returns the health of a real server; one never reported is healthy
// unless it has alpha checkers.
func (h *VSHealth) rs(rs *conf.RealServer) RSHealth {
	if st := h.RS[rs.AddrPort()]; st != nil {
		return *st
	}
	return RSHealth{Up: InitiallyUp(rs), Weight: -1, cfgWeight: rs.Weight}
}

// InitiallyUp reports how a real server starts: down when one of its
// checkers is in alpha mode (the checker's alpha, else the real server's,
// itself inherited from the virtual server), up otherwise — in particular
// when it has no checker at all.
func InitiallyUp(rs *conf.RealServer) bool {
	for _, c := range rs.Checkers {
		alpha := rs.Alpha
		if c.Alpha != nil {
			alpha = *c.Alpha
		}
		if alpha {
			return false
		}
	}
	return true
}

// EffectiveWeight is the weight a healthy real server gets: the dynamic one
// when a check set it, else the configured one, within 0..65535.
func EffectiveWeight(rs *conf.RealServer, st RSHealth) int {
	if st.Drained {
		return 0
	}
	if st.Weight >= 0 {
		return clampWeight(st.Weight)
	}
	return clampWeight(rs.Weight)
}

// WeightSum is the sum of the effective weights of the healthy real servers.
func WeightSum(vs *conf.VirtualServer, h *VSHealth) int {
	sum := 0
	for _, rs := range vs.RealServers {
		if st := h.rs(rs); st.Up {
			sum += EffectiveWeight(rs, st)
		}
	}
	return sum
}

// quorumChange is a quorum transition whose script must run.
type quorumChange struct {
	VS   *conf.VirtualServer
	Up   bool
	Init bool
	Sum  int
}

// updateQuorum moves the quorum state machine of a virtual server
// (keepalived's update_quorum_state): quorum is gained when the weight sum
// reaches quorum+hysteresis, lost when it falls below quorum-hysteresis (or
// to zero). At start-up or reload (init), a virtual server whose quorum is
// down and whose sorry server is not yet in use also reports the loss, so
// that quorum_down runs as the sorry server goes in.
func updateQuorum(vs *conf.VirtualServer, h *VSHealth, init bool) *quorumChange {
	sum := WeightSum(vs, h)
	var ch *quorumChange
	switch {
	case !h.QuorumUp && sum >= vs.Quorum+vs.Hysteresis:
		h.QuorumUp = true
		ch = &quorumChange{VS: vs, Up: true, Init: init, Sum: sum}
	case h.QuorumUp && (sum == 0 || sum < vs.Quorum-vs.Hysteresis):
		h.QuorumUp = false
		ch = &quorumChange{VS: vs, Up: false, Init: init, Sum: sum}
	case init && !h.QuorumUp && vs.SorryServer != nil && !h.sorryIn:
		ch = &quorumChange{VS: vs, Up: false, Init: init, Sum: sum}
	}
	h.sorryIn = vs.SorryServer != nil && !h.QuorumUp
	return ch
}

// buildHealth returns the health of cfg's virtual servers: the state of a
// virtual or real server present in prev is kept (a real server whose
// configured weight changed loses its dynamic weight), new ones start as
// keepalived starts them (alpha checkers: down; quorum computed from the
// initial weights). It returns the quorum transitions to notify.
func buildHealth(cfg *conf.Config, prev map[string]*VSHealth) (map[string]*VSHealth, []quorumChange) {
	if cfg == nil {
		return map[string]*VSHealth{}, nil
	}
	return carryHealth(cfg, vsKeys(cfg), prev, nil)
}

// vsKeys returns the keys of cfg's virtual servers, in their order.
func vsKeys(cfg *conf.Config) []string {
	keys := make([]string, len(cfg.VirtualServers))
	for i, vs := range cfg.VirtualServers {
		keys[i] = vs.Key()
	}
	return keys
}

// carryHealth is buildHealth for the virtual servers' keys (vsKeys) that
// takes the health of those in same (configured as before, see
// sameVirtualServers) over as it is: their quorum state is already
// consistent with it.
func carryHealth(cfg *conf.Config, keys []string, prev map[string]*VSHealth, same map[string]bool) (map[string]*VSHealth, []quorumChange) {
	out := make(map[string]*VSHealth, len(cfg.VirtualServers))
	var changes []quorumChange
	for i, vs := range cfg.VirtualServers {
		key := keys[i]
		if _, dup := out[key]; dup {
			continue
		}
		old := prev[key]
		if old != nil && same[key] {
			out[key] = old
			continue
		}
		h := &VSHealth{RS: make(map[netip.AddrPort]*RSHealth, len(vs.RealServers))}
		for _, rs := range vs.RealServers {
			ap := rs.AddrPort()
			st := &RSHealth{Up: InitiallyUp(rs), Weight: -1, cfgWeight: rs.Weight}
			if old != nil {
				if o := old.RS[ap]; o != nil {
					st.Up, st.Drained = o.Up, o.Drained
					if o.cfgWeight == rs.Weight {
						st.Weight = o.Weight
					}
				}
			}
			h.RS[ap] = st
		}
		if old != nil {
			h.QuorumUp = old.QuorumUp
			h.sorryIn = old.sorryIn
		}
		// A new virtual server starts with its quorum down, as
		// keepalived's: reaching it is the change notified at start-up
		// ("Starting with quorum up": quorum_up, its VS UP FIFO line).
		if ch := updateQuorum(vs, h, true); ch != nil {
			changes = append(changes, *ch)
		}
		out[key] = h
	}
	return out, changes
}

// sameVirtualServers returns the keys of the virtual servers of cfg that are
// configured exactly as in the running configuration (oldIndex, oldGroups):
// the same key and Source, and for a group the same group Source. What was
// derived from them (health, desired services) carries over a reload.
func sameVirtualServers(cfg *conf.Config, keys []string, oldIndex map[string]*conf.VirtualServer, oldGroups, newGroups map[string]*conf.VirtualServerGroup) map[string]bool {
	same := make(map[string]bool, len(cfg.VirtualServers))
	for i, vs := range cfg.VirtualServers {
		o := oldIndex[keys[i]]
		// Source 0: built by hand, not parsed; never taken as unchanged.
		if o == nil || vs.Source == 0 || o.Source != vs.Source {
			continue
		}
		if vs.Kind == conf.VSByGroup {
			og, ng := oldGroups[vs.Group], newGroups[vs.Group]
			if og == nil || ng == nil || og.Source == 0 || og.Source != ng.Source {
				continue
			}
		}
		same[keys[i]] = true
	}
	return same
}

// applyHealth records a health event. It reports whether anything changed
// and the quorum transition it caused, if any.
func applyHealth(vs *conf.VirtualServer, h *VSHealth, ev HealthEvent) (bool, *quorumChange) {
	if vs == nil || h == nil {
		return false, nil
	}
	st := h.RS[ev.RS]
	if st == nil {
		return false, nil
	}
	changed := st.Up != ev.Up
	st.Up = ev.Up
	if ev.Weight >= 0 && ev.Weight != st.Weight {
		st.Weight = ev.Weight
		changed = true
	}
	if !changed {
		return false, nil
	}
	return true, updateQuorum(vs, h, false)
}
