package healthcheck

import (
	"net/netip"

	"github.com/lvsd/lvsd/conf"
)

// ha_suspend: the checks of a virtual server with ha_suspend run only
// while one of its addresses is configured on this host (on the VRRP
// master, in a pair). A suspended checker skips its attempts and keeps its
// state, retry count and schedule, as keepalived's disabled checkers do.

// addrRange is an inclusive range of addresses.
type addrRange struct{ first, last netip.Addr }

// haRanges returns the addresses whose presence enables vs's checks, or
// nil when they are never suspended (no ha_suspend, or a fwmark service).
func haRanges(vs *conf.VirtualServer, groups map[string]*conf.VirtualServerGroup) []addrRange {
	if !vs.HASuspend {
		return nil
	}
	switch vs.Kind {
	case conf.VSByFwmark:
		return nil
	case conf.VSByGroup:
		g := groups[vs.Group]
		if g == nil {
			return nil
		}
		var rs []addrRange
		for _, a := range g.Addrs {
			rs = append(rs, addrRange{a.First.Unmap(), a.Last.Unmap()})
		}
		return rs
	}
	a := vs.Addr.Unmap()
	return []addrRange{{a, a}}
}

// suspendedBy reports whether none of ranges holds a local address. With
// no ranges, or before the local addresses are known (local nil), nothing
// is suspended.
func suspendedBy(ranges []addrRange, local map[netip.Addr]bool) bool {
	if len(ranges) == 0 || local == nil {
		return false
	}
	for a := range local {
		for _, r := range ranges {
			if a.BitLen() == r.first.BitLen() && a.Compare(r.first) >= 0 && a.Compare(r.last) <= 0 {
				return false
			}
		}
	}
	return true
}

// SetLocalAddrs tells the scheduler the addresses configured on this host
// (all interfaces); the checks of ha_suspend virtual servers follow. The
// scheduler keeps the map: the caller must not change it afterwards.
func (s *Scheduler) SetLocalAddrs(local map[netip.Addr]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if local == nil {
		local = map[netip.Addr]bool{}
	}
	s.local = local
	s.updateSuspended()
	s.nudge()
}

// updateSuspended recomputes which real servers' checks are suspended and
// logs each virtual server's change once. s.mu is held.
func (s *Scheduler) updateSuspended() {
	logged := map[string]bool{}
	for _, r := range s.order {
		sus := suspendedBy(r.haRanges, s.local)
		if sus == r.suspended {
			continue
		}
		r.suspended = sus
		if logged[r.key.vs] {
			continue
		}
		logged[r.key.vs] = true
		if sus {
			s.log.Info("health checks suspended: no address of the virtual server is configured here (ha_suspend)", "vs", r.key.vs)
		} else {
			s.log.Info("health checks resumed: an address of the virtual server is configured here (ha_suspend)", "vs", r.key.vs)
		}
	}
}
