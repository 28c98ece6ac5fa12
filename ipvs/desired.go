package ipvs

import (
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"time"

	"github.com/lvsd/lvsd/conf"
)

// maxGroupServices bounds the services one virtual_server_group range line
// can expand to (a /16 of IPv4 addresses), so that a typo cannot ask the
// kernel for millions of services.
const maxGroupServices = 65536

// maxWeight is the largest weight keepalived gives IPVS.
const maxWeight = 65535

// Desired is the desired IPVS table and where each entry comes from.
type Desired struct {
	Table Table
	// Origin tells, for each service, the virtual server that asked for it.
	Origin map[ServiceKey]string
	// DestOrigin tells, for each destination, the real (or sorry) server.
	DestOrigin map[ServiceKey]map[DestKey]DestOrigin
	// VS lists the virtual servers by conf key with their services.
	VS map[string][]ServiceKey
	// Problems are configuration entries that could not be honoured
	// (conflicting services, oversized ranges, persistence engines).
	Problems []string

	conflict   bool                // a service was wanted by two virtual servers
	vsProblems map[string][]string // Problems by virtual server (conf key)
}

func newDesired() *Desired {
	return &Desired{
		Table:      Table{},
		Origin:     map[ServiceKey]string{},
		DestOrigin: map[ServiceKey]map[DestKey]DestOrigin{},
		VS:         map[string][]ServiceKey{},
		vsProblems: map[string][]string{},
	}
}

// DestOrigin is the configuration and health behind a desired destination.
type DestOrigin struct {
	RS    netip.AddrPort // the real_server (or sorry_server) line
	Sorry bool           // it is the sorry server
	Up    bool           // the real server is healthy (the sorry server: in use)
}

// ComputeDesired returns the IPVS table the configuration asks for given the
// health of the real servers. It is a pure function: health is read, never
// changed; a virtual server missing from health is taken as healthy with
// quorum up.
//
// For each virtual server (keepalived's semantics):
//   - a healthy real server is a destination with its effective weight (the
//     dynamic weight of a misc_dynamic check, else the configured one);
//   - an unhealthy one is absent, or present with weight 0 when
//     inhibit_on_failure is set;
//   - when quorum is down and a sorry_server is configured, the sorry server
//     replaces the real servers (inhibited ones stay with weight 0);
//   - with sorry_server_inhibit the sorry server is always present, with
//     weight 0 while unused.
func ComputeDesired(cfg *conf.Config, health map[string]*VSHealth) *Desired {
	d := newDesired()
	if cfg == nil {
		return d
	}
	groups := groupIndex(cfg)
	for _, vs := range cfg.VirtualServers {
		d.add(vs, groups, health[vs.Key()])
	}
	return d
}

func groupIndex(cfg *conf.Config) map[string]*conf.VirtualServerGroup {
	groups := map[string]*conf.VirtualServerGroup{}
	for _, g := range cfg.VSGroups {
		groups[g.Name] = g
	}
	return groups
}

// add adds the services of a virtual server for its health (nil: healthy).
func (d *Desired) add(vs *conf.VirtualServer, groups map[string]*conf.VirtualServerGroup, h *VSHealth) {
	key := vs.Key()
	keys, problems := serviceKeys(vs, groups)
	d.Problems = append(d.Problems, problems...)
	if len(problems) > 0 {
		d.vsProblems[key] = problems
	}
	if h == nil {
		h = &VSHealth{QuorumUp: true}
	}
	dests, origins := destsFor(vs, h)
	for _, sk := range keys {
		if other, dup := d.Origin[sk]; dup {
			d.conflict = true
			d.Problems = append(d.Problems, fmt.Sprintf("virtual server %s: service %s is already programmed for %s - ignoring it here", vs, sk, other))
			continue
		}
		svc := serviceFor(vs, sk)
		ts := &TableService{Service: svc, Dests: make(map[DestKey]Destination, len(dests))}
		om := make(map[DestKey]DestOrigin, len(dests))
		for i, rd := range dests {
			dst := placeDest(sk, rd)
			if _, dup := ts.Dests[dst.DestKey]; dup && !origins[i].Sorry {
				continue
			}
			ts.Dests[dst.DestKey] = dst
			om[dst.DestKey] = origins[i]
		}
		d.Table[sk] = ts
		d.Origin[sk] = key
		d.DestOrigin[sk] = om
		d.VS[key] = append(d.VS[key], sk)
	}
}

// carry turns d, computed for the running configuration, into the desired
// table of cfg (whose virtual servers have the keys keys) for health, in
// place: the services of the virtual servers in same (configured as before:
// same key, same Source, groups included, their health carried over) stay
// as they are, the others are dropped or recomputed. It returns the keys of
// the services whose desired state may have changed (sorted). It reports
// false when only a full ComputeDesired is right (conflicting services in
// the old or the new table); d is then unusable.
func (d *Desired) carry(cfg *conf.Config, keys []string, health map[string]*VSHealth, same map[string]bool) ([]ServiceKey, bool) {
	if d.conflict {
		return nil, false
	}
	changed := map[ServiceKey]bool{}
	for key, sks := range d.VS {
		if same[key] {
			continue
		}
		for _, sk := range sks {
			delete(d.Table, sk)
			delete(d.Origin, sk)
			delete(d.DestOrigin, sk)
			changed[sk] = true
		}
		delete(d.VS, key)
		delete(d.vsProblems, key)
	}
	groups := groupIndex(cfg)
	for i, vs := range cfg.VirtualServers {
		key := keys[i]
		if same[key] {
			continue
		}
		d.add(vs, groups, health[key])
		if d.conflict {
			return nil, false
		}
		for _, sk := range d.VS[key] {
			changed[sk] = true
		}
	}
	// Problems in the configuration's order, as ComputeDesired lists them.
	d.Problems = nil
	if len(d.vsProblems) > 0 {
		seen := map[string]bool{}
		for _, key := range keys {
			if !seen[key] {
				seen[key] = true
				d.Problems = append(d.Problems, d.vsProblems[key]...)
			}
		}
	}
	out := make([]ServiceKey, 0, len(changed))
	for sk := range changed {
		out = append(out, sk)
	}
	slices.SortFunc(out, ServiceKey.cmp)
	return out, true
}

// update recomputes the services of one virtual server after a health
// change and returns their keys. The keys of a virtual server do not depend
// on health, so this equals a full ComputeDesired when the configuration
// has no conflicting services (the caller recomputes everything otherwise).
// Problems are not touched (they do not depend on health either).
func (d *Desired) update(vs *conf.VirtualServer, groups map[string]*conf.VirtualServerGroup, h *VSHealth) []ServiceKey {
	key := vs.Key()
	old := d.VS[key]
	for _, sk := range old {
		delete(d.Table, sk)
		delete(d.Origin, sk)
		delete(d.DestOrigin, sk)
	}
	delete(d.VS, key)
	problems, vsProblems := d.Problems, d.vsProblems[key]
	d.add(vs, groups, h)
	d.Problems = problems
	if len(vsProblems) > 0 {
		d.vsProblems[key] = vsProblems
	}
	return d.VS[key]
}

// serviceKeys expands a virtual server into kernel service keys.
func serviceKeys(vs *conf.VirtualServer, groups map[string]*conf.VirtualServerGroup) ([]ServiceKey, []string) {
	proto, ok := ParseProtocol(vs.Protocol)
	if !ok {
		proto = TCP
	}
	switch vs.Kind {
	case conf.VSByFwmark:
		return []ServiceKey{{Family: fwmarkFamily(vs, ""), Fwmark: vs.Fwmark}}, nil
	case conf.VSByGroup:
		g := groups[vs.Group]
		if g == nil {
			return nil, []string{fmt.Sprintf("virtual server %s: virtual_server_group %s does not exist", vs, vs.Group)}
		}
		var keys []ServiceKey
		var problems []string
		for _, e := range g.Addrs {
			n := 0
			for a := e.First; a.IsValid() && !e.Last.Less(a); a = a.Next() {
				if n == maxGroupServices {
					problems = append(problems, fmt.Sprintf("virtual_server_group %s (%s): range %s-%s has more than %d addresses - truncated",
						g.Name, e.Pos, e.First, e.Last, maxGroupServices))
					break
				}
				keys = append(keys, ServiceKey{Family: FamilyOf(a), Proto: proto, Addr: a, Port: uint16(e.Port)})
				n++
			}
		}
		for _, f := range g.Fwmarks {
			keys = append(keys, ServiceKey{Family: fwmarkFamily(vs, f.Family), Fwmark: f.Mark})
		}
		return keys, problems
	}
	return []ServiceKey{{Family: FamilyOf(vs.Addr), Proto: proto, Addr: vs.Addr.Unmap(), Port: uint16(vs.Port)}}, nil
}

// fwmarkFamily is the address family of a firewall-mark service: the one
// configured (group entry, then ip_family), else an IPv6 granularity's, else
// the family of the non-tunnelled real servers, else that of all the real
// servers when they agree, else IPv4.
func fwmarkFamily(vs *conf.VirtualServer, entry string) Family {
	switch entry {
	case "inet":
		return INET
	case "inet6":
		return INET6
	}
	switch vs.IPFamily {
	case "inet":
		return INET
	case "inet6":
		return INET6
	}
	if g := vs.PersistenceGranularity; g.IsValid() && g.Is6() {
		return INET6
	}
	servers := append([]*conf.RealServer(nil), vs.RealServers...)
	if vs.SorryServer != nil {
		servers = append(servers, vs.SorryServer)
	}
	for _, rs := range servers {
		if rs.Forwarding.Method != "TUN" {
			return FamilyOf(rs.Addr)
		}
	}
	if len(servers) > 0 {
		f := FamilyOf(servers[0].Addr)
		for _, rs := range servers[1:] {
			if FamilyOf(rs.Addr) != f {
				return INET
			}
		}
		return f
	}
	return INET
}

// schedFlagBits are the configured scheduler flags: the service flag each
// sets and the scheduler it is for ("": any).
var schedFlagBits = map[string]struct {
	flag  Flags
	sched string
}{
	"flag-1": {FlagSched1, ""}, "flag-2": {FlagSched2, ""}, "flag-3": {FlagSched3, ""},
	"sh-fallback": {FlagSched1, "sh"}, "sh-port": {FlagSched2, "sh"},
	"mh-fallback": {FlagSched1, "mh"}, "mh-port": {FlagSched2, "mh"},
}

// schedFlags maps the configured scheduler flags to service flags. sh-* and
// mh-* only apply to their scheduler (the configuration warns otherwise).
func schedFlags(vs *conf.VirtualServer) Flags {
	var f Flags
	for _, s := range vs.SchedFlags {
		if b, ok := schedFlagBits[s]; ok && (b.sched == "" || b.sched == vs.Scheduler) {
			f |= b.flag
		}
	}
	return f
}

// serviceFor returns the service attributes of a virtual server for one key.
func serviceFor(vs *conf.VirtualServer, k ServiceKey) Service {
	s := Service{ServiceKey: k, Scheduler: vs.Scheduler, Flags: schedFlags(vs), PEName: vs.PersistenceEngine}
	if s.Scheduler == "" {
		s.Scheduler = "wlc"
	}
	if vs.OPS {
		s.Flags |= FlagOnePacket
	}
	if k.Family == INET6 {
		s.Netmask = 128
	} else {
		s.Netmask = 0xffffffff
	}
	if vs.Persistent {
		s.Flags |= FlagPersistent
		s.Timeout = uint32(vs.PersistenceTimeout / time.Second)
		if s.Timeout == 0 {
			s.Timeout = 360
		}
		if g := vs.PersistenceGranularity; g.IsValid() {
			ones := maskOnes(g)
			if k.Family == INET6 {
				s.Netmask = uint32(ones)
			} else if g.Is4() {
				b := g.As4()
				s.Netmask = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			} else if ones <= 32 {
				s.Netmask = ^uint32(0) << (32 - ones)
			}
		}
	}
	return s
}

// maskOnes counts the leading one bits of a netmask.
func maskOnes(m netip.Addr) int {
	n := 0
	for _, b := range m.AsSlice() {
		if b == 0xff {
			n += 8
			continue
		}
		n += bits.LeadingZeros8(^b)
		break
	}
	return n
}

// forwarding maps a configured method to the kernel's.
func forwarding(f conf.Forwarding) (Forward, TunnelType, uint16, TunnelFlags) {
	switch f.Method {
	case "DR":
		return Route, 0, 0, 0
	case "TUN":
		var tt TunnelType
		switch f.TunnelType {
		case "gue":
			tt = TunGUE
		case "gre":
			tt = TunGRE
		}
		var tf TunnelFlags
		switch f.TunnelCsum {
		case "csum":
			tf = TunCsum
		case "remcsum":
			tf = TunRemCsum
		}
		port := uint16(0)
		if tt == TunGUE {
			port = uint16(f.TunnelPort)
		}
		return Tunnel, tt, port, tf
	}
	return Masq, 0, 0, 0
}

// destFromRS is a destination before it is placed in a service (its port
// may depend on the service's).
func destFromRS(rs *conf.RealServer, weight int) Destination {
	fwd, tt, tp, tf := forwarding(rs.Forwarding)
	return Destination{
		DestKey:    DestKey{Addr: rs.Addr.Unmap(), Port: uint16(rs.Port)},
		Fwd:        fwd,
		Weight:     clampWeight(weight),
		UThreshold: uint32(max(rs.UThreshold, 0)),
		LThreshold: uint32(max(rs.LThreshold, 0)),
		TunType:    tt,
		TunPort:    tp,
		TunFlags:   tf,
	}
}

// placeDest fits a destination to a service: direct routing and tunnelling
// cannot change the port, so, as ipvsadm does, the destination gets the
// service's port (fwmark and port-0 services keep the configured one).
func placeDest(k ServiceKey, d Destination) Destination {
	if k.Fwmark == 0 && k.Port != 0 && (d.Fwd == Route || d.Fwd == Tunnel) {
		d.Port = k.Port
	}
	return d
}

func clampWeight(w int) int {
	if w < 0 {
		return 0
	}
	if w > maxWeight {
		return maxWeight
	}
	return w
}

// destsFor returns the destinations of a virtual server for its health.
func destsFor(vs *conf.VirtualServer, h *VSHealth) ([]Destination, []DestOrigin) {
	dests := make([]Destination, 0, len(vs.RealServers)+1)
	origins := make([]DestOrigin, 0, len(vs.RealServers)+1)
	sorryActive := vs.SorryServer != nil && !h.QuorumUp
	for _, rs := range vs.RealServers {
		st := h.rs(rs)
		switch {
		case sorryActive:
			if rs.InhibitOnFailure {
				dests = append(dests, destFromRS(rs, 0))
				origins = append(origins, DestOrigin{RS: rs.AddrPort(), Up: st.Up})
			}
		case st.Up:
			dests = append(dests, destFromRS(rs, EffectiveWeight(rs, st)))
			origins = append(origins, DestOrigin{RS: rs.AddrPort(), Up: true})
		case rs.InhibitOnFailure:
			dests = append(dests, destFromRS(rs, 0))
			origins = append(origins, DestOrigin{RS: rs.AddrPort()})
		}
	}
	if ss := vs.SorryServer; ss != nil {
		switch {
		case sorryActive:
			dests = append(dests, destFromRS(ss, ss.Weight))
			origins = append(origins, DestOrigin{RS: ss.AddrPort(), Sorry: true, Up: true})
		case ss.InhibitOnFailure || vs.SorryServerInhibit:
			// Present with weight 0, unless a real server has the same address.
			dup := false
			for _, d := range dests {
				if d.DestKey == (DestKey{Addr: ss.Addr.Unmap(), Port: uint16(ss.Port)}) {
					dup = true
				}
			}
			if !dup {
				dests = append(dests, destFromRS(ss, 0))
				origins = append(origins, DestOrigin{RS: ss.AddrPort(), Sorry: true})
			}
		}
	}
	return dests, origins
}
