package vrrp

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/lvsd/lvsd/conf"
)

// defaultStaticDev is keepalived's default_interface, where a
// static_ipaddress without dev goes.
const defaultStaticDev = "eth0"

// statics are static_ipaddress, static_routes and static_rules, as keepalived's VRRP
// process keeps them: added when the engine starts, put back when someone
// deletes an address, removed when it stops (unless DontRelease). They
// belong to no instance. A reload does not change them (a notice).
type statics struct {
	mu       sync.Mutex
	addrs    []VIP
	routes   []Route
	rules    []Rule
	stopping bool // removed: a deletion is no longer put back
}

// staticsFrom converts the configuration's static addresses, routes and rules.
func staticsFrom(c *conf.Config) (*statics, []string) {
	st := &statics{}
	var warns []string
	for _, v := range c.StaticAddresses {
		a, err := convVIP(v)
		if err != nil {
			warns = append(warns, fmt.Sprintf("static_ipaddress: %v - ignored", err))
			continue
		}
		if a.Dev == "" {
			a.Dev = defaultStaticDev
		}
		st.addrs = append(st.addrs, a)
	}
	for _, r := range c.StaticRoutes {
		rt, err := convRoute(r)
		if err != nil {
			warns = append(warns, fmt.Sprintf("static_routes: %v - ignored", err))
			continue
		}
		st.routes = append(st.routes, rt)
	}
	for _, r := range c.StaticRules {
		st.rules = append(st.rules, *r.Rule)
	}
	return st, warns
}

// staticChange is one static's kernel change, with what the log says of it.
type staticChange struct {
	what  string // address, route, rule
	apply func() error
	attrs []any
}

// changes lists the kernel changes that add (or remove) the statics, in
// the order to make them: addresses, routes, rules when adding (a route may
// use an address), the reverse when removing. st.mu is held.
func (e *Engine) staticChanges(st *statics, add bool) []staticChange {
	var out []staticChange
	for _, a := range st.addrs {
		m := e.k.Addrs(a.Dev)
		f := m.DelAddr
		if add {
			f = m.AddAddr
		}
		out = append(out, staticChange{"address", func() error { return f(a) }, []any{"addr", a.Addr, "dev", a.Dev}})
	}
	r := e.k.Routes()
	for _, rt := range st.routes {
		f := r.DelRoute
		if add {
			f = r.AddRoute
		}
		out = append(out, staticChange{"route", func() error { return f(rt) }, []any{"route", rt.String()}})
	}
	for _, ru := range st.rules {
		f := r.DelRule
		if add {
			f = r.AddRule
		}
		out = append(out, staticChange{"rule", func() error { return f(ru) }, []any{"rule", ru.String()}})
	}
	if !add {
		slices.Reverse(out)
	}
	return out
}

// add installs them (addresses first: a route may use one).
func (e *Engine) addStatics() {
	st := e.statics
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, c := range e.staticChanges(st, true) {
		if err := c.apply(); err != nil {
			e.log.Error("vrrp: adding static "+c.what, append(c.attrs, "err", err)...)
		}
	}
}

// restoreStatic puts back a static address someone deleted.
func (e *Engine) restoreStatic(p netip.Prefix) {
	st := e.statics
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stopping {
		return
	}
	for _, a := range st.addrs {
		if a.Addr.Addr() != p.Addr() {
			continue
		}
		if err := e.k.Addrs(a.Dev).AddAddr(a); err != nil {
			e.log.Error("vrrp: restoring static address", "addr", a.Addr, "dev", a.Dev, "err", err)
			continue
		}
		e.log.Info("Restoring deleted static address", "addr", a.Addr, "dev", a.Dev)
	}
}

// listed reports whether the safety net lists routes and rules for the
// statics.
func (st *statics) listed() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return !st.stopping && len(st.rules) > 0
}

// verifyStatics puts back the static rules missing from the safety net's
// listing, as keepalived 2.2.7 restores a deleted static rule (not a static
// route: neither does it).
func (e *Engine) verifyStatics(ks *KernelState) {
	if ks.Routes == nil || ks.Rules == nil {
		return
	}
	st := e.statics
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stopping {
		return
	}
	for i := range st.rules {
		ru := &st.rules[i]
		if ru.NoTrack || ks.Rules[ruleKeyOf(ru)] {
			continue
		}
		if err := e.k.Routes().AddRule(*ru); err != nil {
			e.log.Error("vrrp: restoring static rule", "rule", ru.String(), "err", err)
			continue
		}
		e.repairs.Rules.Add(1)
		e.log.Info("Restoring deleted static rule", "rule", ru.String())
	}
}

// delStatics removes them (rules, routes, then addresses), unless keep (-V).
func (e *Engine) delStatics(keep bool) {
	st := e.statics
	st.mu.Lock()
	defer st.mu.Unlock()
	st.stopping = true
	if keep {
		return
	}
	for _, c := range e.staticChanges(st, false) {
		if err := c.apply(); err != nil {
			e.log.Warn("vrrp: removing static "+c.what, append(c.attrs, "err", err)...)
		}
	}
}
