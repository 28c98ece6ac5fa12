package vrrp

import (
	"net/netip"
	"strings"
	"sync/atomic"
	"time"
)

// The safety net: whatever notification was lost, the engine compares the
// kernel with what its instances need at least every CheckInterval (and at
// once after a netlink resync or a link coming up) and repairs the
// difference, counting each repair by what it repaired:
//
//   - a MASTER missing one of its VIPs (or excluded VIPs) gets it back;
//   - a MASTER missing one of its virtual_routes or (tracked)
//     virtual_rules gets it back, and so does the engine for its
//     static_rules (keepalived restores a deleted static rule at once, not
//     a static route; a deleted virtual rule makes its MASTER resign and
//     take over again, adding them all back);
//   - an instance whose interface, or a tracked interface, is up or down
//     other than the instance believes enters or leaves FAULT (or
//     changes its priority) as the kernel says;
//   - a socket (VRRP, gratuitous ARP) bound to an interface index the
//     name no longer has (the interface deleted and created again) is
//     bound to the new one;
//   - an instance whose advert source is the interface's primary address
//     (no unicast_src_ip / mcast_src_ip) follows a change of it.
//
// One pass lists the namespace's links and addresses (and its routes and
// rules when an instance or the statics have some) once, whatever the number of instances,
// then hands the listing to every runner, whose goroutine compares its
// instances with it; docs/RELIABILITY.md gives the cost.

// DefaultCheckInterval is the period of the safety net.
const DefaultCheckInterval = time.Second

// KernelState is one listing of the namespace, for the safety net.
type KernelState struct {
	// Links by name.
	Links map[string]LinkState
	// Addrs by interface name, in the kernel's order (the primary
	// address of each family first).
	Addrs map[string][]netip.Prefix
	// Routes present, by routeKey; nil when not listed.
	Routes map[routeKey]bool
	// Rules present, by ruleKey; nil when not listed (with Routes).
	Rules map[ruleKey]bool
	// At is when the listing began: a runner compares with it only what
	// it learnt before (a newer notification is more recent than the
	// listing).
	At time.Time
	// managed are the addresses the engine's instances add (VIPs and
	// excluded VIPs): never taken for a primary address.
	managed map[netip.Addr]bool
}

// LinkState is a link as listed.
type LinkState struct {
	Index int
	Up    bool
}

// routeKey is what the safety net compares of a route: a route of ours is
// there when the kernel has one of the same type, destination, table and
// metric (its next hop and source may have been changed by hand: that is
// left alone).
type routeKey struct {
	Type   uint8
	Dst    netip.Prefix
	Table  uint32
	Metric uint32
}

func (r Route) key() routeKey {
	t := r.Table
	if t == 0 {
		t = tableMain
	}
	typ := r.Type
	if typ == 0 {
		typ = routeUnicast
	}
	m := r.Metric
	if m == 0 && r.Dst.Addr().Is6() {
		m = ip6DefaultMetric // the kernel's for an IPv6 route given none
	}
	return routeKey{Type: typ, Dst: r.Dst.Masked(), Table: t, Metric: m}
}

// ip6DefaultMetric is the metric the kernel gives an IPv6 route without one.
const ip6DefaultMetric = 1024

// ruleKey is what the safety net compares of an ip rule: its family,
// priority, selectors and target (the kernel's listing does not give the
// action of a rule; no two of ours differ by it alone).
type ruleKey struct {
	IPv6        bool
	Not         bool
	Priority    uint32
	From, To    netip.Prefix
	Table, Goto uint32
	Mark        uint32
	IIf, OIf    string
}

func ruleKeyOf(r *Rule) ruleKey {
	k := ruleKey{IPv6: r.IPv6, Not: r.Not, Priority: r.Priority, From: r.From.Masked(), To: r.To.Masked(), IIf: r.IIf, OIf: r.OIf}
	switch r.Action {
	case "lookup":
		k.Table = r.Table
	case "goto":
		k.Goto = r.Goto
	}
	if r.HasFwMark {
		k.Mark = r.FwMark
	}
	return k
}

// has reports whether dev carries ip.
func (ks *KernelState) has(dev string, ip netip.Addr) bool {
	for _, p := range ks.Addrs[dev] {
		if p.Addr() == ip {
			return true
		}
	}
	return false
}

// primary is the address an instance without a configured source sends
// from: the interface's first IPv4 address (IPv6: its first link-local
// one) that is no VIP of the engine's instances.
func (ks *KernelState) primary(dev string, ipv6 bool) netip.Addr {
	for _, p := range ks.Addrs[dev] {
		a := p.Addr().Unmap()
		if ipv6 != a.Is6() || (ipv6 && !a.IsLinkLocalUnicast()) || ks.managed[a] {
			continue
		}
		return a
	}
	return netip.Addr{}
}

// Repairs counts what the safety net and the netlink resyncs found
// different from what the instances need, and repaired.
type Repairs struct {
	VIPs    atomic.Uint64 // VIPs put back on a MASTER
	Routes  atomic.Uint64 // virtual_routes put back on a MASTER
	Rules   atomic.Uint64 // virtual_rules put back on a MASTER, static_rules put back
	Links   atomic.Uint64 // interface states corrected (FAULT entered or left)
	Sockets atomic.Uint64 // sockets rebound to a re-created interface
	Sources atomic.Uint64 // advert sources that followed the primary address
	VMACs   atomic.Uint64 // VMAC interfaces made again after their deletion
}

// Map returns the counters by name (lvsd_vrrp_repairs_total{what}).
func (r *Repairs) Map() map[string]uint64 {
	return map[string]uint64{
		"vip": r.VIPs.Load(), "route": r.Routes.Load(), "rule": r.Rules.Load(), "link": r.Links.Load(),
		"socket": r.Sockets.Load(), "source": r.Sources.Load(), "vmac": r.VMACs.Load(),
	}
}

// rebinder is a socket that follows its interface by name (vrrpConn,
// packetGARP).
type rebinder interface {
	Interface() string
	Index() int
	Rebind(ifindex int) (bool, error)
}

// verify compares the instances with the kernel and repairs what differs
// (in the runner's goroutine).
func (r *runner) verify(ks *KernelState) {
	for i, mm := range r.members {
		r.verifyLinks(i, mm, ks)
		r.verifySource(i, mm, ks)
		if !mm.vipsSet || mm.m.State() != StateMaster || mm.vipsAt.After(ks.At) {
			continue
		}
		for _, v := range mm.all {
			dev := v.Dev
			if dev == "" {
				dev = mm.cfg.Interface
			}
			if _, ok := ks.Links[dev]; !ok || ks.has(dev, v.Addr.Addr()) {
				continue // no such interface (yet): nothing to add it to
			}
			if err := mm.dev.Addrs.AddAddr(v); err != nil {
				mm.stats.AddrErrors.Add(1)
				r.log.Warn("vrrp: safety net: restoring VIP", "instance", mm.cfg.Machine.Name, "vip", v.Addr, "err", err)
				continue
			}
			mm.stats.VIPRestored.Add(1)
			r.repairs.VIPs.Add(1)
			r.log.Warn("vrrp: safety net: VIP missing on a MASTER, restored", "instance", mm.cfg.Machine.Name, "vip", v.Addr, "dev", dev)
			if g := mm.garpFor(v); g != nil {
				if err := g.SendGARP(v.Addr.Addr()); err == nil {
					mm.stats.GARPSent.Add(1)
				}
			}
		}
		if ks.Routes == nil {
			continue
		}
		for _, rt := range mm.cfg.Routes {
			if !ks.Routes[rt.key()] {
				r.restore(mm, "route", rt.String(), func() error { return mm.dev.Routes.AddRoute(rt) }, &r.repairs.Routes)
			}
		}
		for _, ru := range mm.cfg.Rules {
			if ks.Rules != nil && !ru.NoTrack && !ks.Rules[ruleKeyOf(&ru)] {
				r.restore(mm, "rule", ru.String(), func() error { return mm.dev.Routes.AddRule(ru) }, &r.repairs.Rules)
			}
		}
	}
	r.publish()
}

// restore puts back a virtual route or rule (what) missing on a MASTER.
func (r *runner) restore(mm *member, what, desc string, add func() error, repairs *atomic.Uint64) {
	if err := add(); err != nil {
		mm.stats.RouteErrors.Add(1)
		r.log.Warn("vrrp: safety net: restoring "+what, "instance", mm.cfg.Machine.Name, what, desc, "err", err)
		return
	}
	repairs.Add(1)
	r.log.Warn("vrrp: safety net: virtual "+what+" missing on a MASTER, restored", "instance", mm.cfg.Machine.Name, what, desc)
}

// verifyLinks makes member i's interface state and tracked interfaces
// what the kernel says.
func (r *runner) verifyLinks(i int, mm *member, ks *KernelState) {
	if dev := mm.dev.OwnInterface; dev != "" && !mm.linkAt.After(ks.At) {
		up := ks.Links[dev].Up // absent: down
		if mm.m.ifDown == up {
			r.repairs.Links.Add(1)
			r.log.Warn("vrrp: safety net: interface state differs from the kernel's; corrected", "instance", mm.cfg.Machine.Name, "interface", dev, "up", up)
			r.dispatch(i, interfaceChanged{Up: up})
		}
	}
	for _, t := range mm.cfg.Tracks {
		name, ok := strings.CutPrefix(t.Name, trackInterfaceName(""))
		if !ok {
			continue
		}
		up := ks.Links[name].Up
		if was, ok := mm.tracker.Up(t.Name); !ok || was == up || mm.trackAt.After(ks.At) {
			continue
		}
		r.repairs.Links.Add(1)
		r.log.Warn("vrrp: safety net: tracked interface state differs from the kernel's; corrected", "instance", mm.cfg.Machine.Name, "interface", name, "up", up)
		if mm.tracker.Set(t.Name, up) {
			r.dispatch(i, mm.tracker.Event())
		}
	}
}

// verifySource makes member i send from the interface's primary address
// when no source is configured.
func (r *runner) verifySource(i int, mm *member, ks *KernelState) {
	if !mm.cfg.AutoSource || mm.reconfAt.After(ks.At) {
		return
	}
	ip := ks.primary(mm.cfg.srcInterface(), mm.cfg.IPv6)
	if !ip.IsValid() || ip == mm.cfg.Machine.PrimaryIP {
		return
	}
	c := mm.cfg.Machine
	old := c.PrimaryIP
	c.PrimaryIP = ip
	acts, err := mm.m.Reconfigure(c)
	if err != nil {
		r.log.Error("vrrp: advert source", "instance", c.Name, "err", err)
		return
	}
	mm.cfg.Machine = c
	r.repairs.Sources.Add(1)
	r.log.Warn("vrrp: the interface's primary address changed; adverts are sent from it", "instance", c.Name, "interface", mm.cfg.Interface, "from", old, "to", ip)
	for _, a := range acts {
		r.do(i, a)
	}
}

// Verify hands the runner a listing of the kernel to compare its
// instances with (see the safety net).
func (r *runner) Verify(ks *KernelState) {
	r.post(runnerEvent{member: -1, verify: ks})
}
