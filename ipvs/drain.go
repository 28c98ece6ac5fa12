package ipvs

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/lvsd/lvsd/conf"
)

// drainReq asks Run's goroutine to drain or enable a real server.
type drainReq struct {
	vs, rs string
	on     bool
	reply  chan error
}

// SetDrain drains a real server of a virtual server (on: weight 0 in
// every service of the virtual server, whatever its health) or enables it
// again (its health and weight as if it had never been drained). The
// state is kept across health changes and reloads that keep the virtual
// and the real server, and shown in the Snapshot (RSStatus.Drained).
// A drained server counts for nothing in the quorum.
//
// vs names a virtual server by its key ("TCP/192.0.2.1:80", "FWM/1",
// "GROUP/name/TCP") or as keepalived does ("192.0.2.1:80", "FWM 1",
// "group name"), optionally after its protocol ("TCP 192.0.2.1:80"); rs
// is ADDR:PORT or, when unambiguous, ADDR. The kernel is updated before it
// returns; an unknown or ambiguous name is an error.
func (r *Reconciler) SetDrain(vs, rs string, on bool) error {
	q := drainReq{vs: vs, rs: rs, on: on, reply: make(chan error, 1)}
	r.mu.Lock()
	running, done := r.running, r.done
	r.mu.Unlock()
	if running {
		select {
		case r.drainReq <- q:
			return <-q.reply
		case <-done:
		}
	}
	// Not running: the state changes, the kernel is programmed by Run.
	r.state.Lock()
	defer r.state.Unlock()
	r.ensureDesired()
	return r.drain(q, false)
}

// drain carries out a drainReq; r.state is held. live: called by Run,
// which programs the kernel at once.
func (r *Reconciler) drain(q drainReq, live bool) error {
	if live {
		r.processPending() // a reload queued before the request comes first
	}
	key, vs, err := r.findVS(q.vs)
	if err != nil {
		return err
	}
	h := r.health[key]
	ap, err := findRS(vs, q.rs)
	if err != nil {
		return err
	}
	var st *RSHealth
	if h != nil {
		st = h.RS[ap]
	}
	if st == nil {
		return fmt.Errorf("real server %s of %s has no state", ap, vs)
	}
	if st.Drained == q.on {
		return nil
	}
	st.Drained = q.on
	verb := "enabled"
	if q.on {
		verb = "drained"
	}
	r.log.Info("ipvs: real server "+verb+" by the operator", "vs", vs.String(), "rs", ap.String())
	if ch := updateQuorum(vs, h, false); ch != nil {
		r.quorumNotify(*ch)
	}
	if r.desired.conflict {
		r.desired = ComputeDesired(r.cfg, r.health)
		if live {
			r.reconcile("drain", nil)
		}
	} else if keys := r.desired.update(vs, r.groups, h); len(keys) > 0 && live {
		r.reconcile("drain", keys)
	}
	return nil
}

// findVS resolves an operator's name for a virtual server.
func (r *Reconciler) findVS(name string) (string, *conf.VirtualServer, error) {
	name = strings.TrimSpace(name)
	var keys []string
	seen := map[string]bool{}
	for i, vs := range r.cfg.VirtualServers {
		key := r.vsKeys[i]
		if seen[key] {
			continue
		}
		s := vs.String()
		if strings.EqualFold(name, key) || name == s || strings.EqualFold(name, vs.Protocol+" "+s) {
			seen[key] = true
			keys = append(keys, key)
		}
	}
	switch len(keys) {
	case 0:
		return "", nil, fmt.Errorf("no virtual server %q", name)
	case 1:
		return keys[0], r.vsIndex[keys[0]], nil
	}
	return "", nil, fmt.Errorf("%q names %d virtual servers (%s): give the protocol", name, len(keys), strings.Join(keys, ", "))
}

// findRS resolves a real server of vs: ADDR:PORT, or ADDR when one real
// server has it.
func findRS(vs *conf.VirtualServer, name string) (netip.AddrPort, error) {
	name = strings.TrimSpace(name)
	if ap, err := netip.ParseAddrPort(name); err == nil {
		for _, rs := range vs.RealServers {
			if rs.AddrPort() == ap || (rs.Addr.Unmap() == ap.Addr().Unmap() && rs.Port == int(ap.Port())) {
				return rs.AddrPort(), nil
			}
		}
		return netip.AddrPort{}, fmt.Errorf("%s has no real server %s", vs, name)
	}
	a, err := netip.ParseAddr(name)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("real server %q: want ADDR:PORT or ADDR", name)
	}
	var found []netip.AddrPort
	for _, rs := range vs.RealServers {
		if rs.Addr.Unmap() == a.Unmap() {
			found = append(found, rs.AddrPort())
		}
	}
	switch len(found) {
	case 0:
		return netip.AddrPort{}, fmt.Errorf("%s has no real server %s", vs, name)
	case 1:
		return found[0], nil
	}
	return netip.AddrPort{}, fmt.Errorf("%s has %d real servers at %s: give the port", vs, len(found), name)
}
