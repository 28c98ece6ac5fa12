package conf

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"
)

// validate checks what single keywords cannot: ranges that depend on other
// keywords, references between blocks, duplicates, and interfaces. Elements that
// cannot work are removed (with an Error), as keepalived removes them.
func validate(c *Config, d *diagList, opt Options) {
	v := &validator{c: c, d: d, opt: opt}
	v.scripts()
	v.instances()
	nameVMACs(c.Instances)
	v.syncGroups()
	v.virtualServers()
	v.global()
	v.interfaces()
	v.bgp()
}

type validator struct {
	c   *Config
	d   *diagList
	opt Options
}

func (v *validator) errf(pos Pos, kw, format string, a ...any) {
	v.d.add(pos, Error, kw, fmt.Sprintf(format, a...))
}

func (v *validator) warnf(pos Pos, kw, format string, a ...any) {
	v.d.add(pos, Warning, kw, fmt.Sprintf(format, a...))
}

func (v *validator) scripts() {
	v.c.Scripts = firstOnly(v, v.c.Scripts, "vrrp_script", func(s *VRRPScript) (string, Pos) { return s.Name, s.Pos })
	v.c.TrackFiles = firstOnly(v, v.c.TrackFiles, "track_file", func(f *TrackFile) (string, Pos) { return f.Name, f.Pos })
	v.c.TrackProcesses = firstOnly(v, v.c.TrackProcesses, "vrrp_track_process", func(t *TrackProcess) (string, Pos) { return t.Name, t.Pos })
}

// firstOnly removes from list, with an error, the blocks kw of a name
// already defined.
func firstOnly[T any](v *validator, list []*T, kw string, id func(*T) (string, Pos)) []*T {
	seen := map[string]Pos{}
	out := list[:0]
	for _, x := range list {
		name, pos := id(x)
		if p, dup := seen[name]; dup {
			v.errf(pos, kw, "%s %s already defined at %s - ignoring", kw, name, p)
			continue
		}
		seen[name] = pos
		out = append(out, x)
	}
	return out
}

func (c *Config) script(name string) *VRRPScript {
	return named(c.Scripts, name, func(s *VRRPScript) string { return s.Name })
}

// Instance returns the vrrp_instance named name, or nil.
func (c *Config) Instance(name string) *VRRPInstance {
	return named(c.Instances, name, func(in *VRRPInstance) string { return in.Name })
}

// named returns the element of list whose name is name, or nil.
func named[T any](list []*T, name string, nameOf func(*T) string) *T {
	for _, x := range list {
		if nameOf(x) == name {
			return x
		}
	}
	return nil
}

func (v *validator) trackScripts(owner string, list []TrackScript) []TrackScript {
	return knownOnly(v, list, "track_script", "(%s) track script %s not found, ignoring", owner,
		func(t TrackScript) (string, Pos) { return t.Name, t.Pos },
		func(name string) bool { return v.c.script(name) != nil })
}

func (v *validator) trackFiles(owner string, list []TrackFileRef) []TrackFileRef {
	return knownOnly(v, list, "track_file", "(%s) track file %s not found, ignoring", owner,
		func(t TrackFileRef) (string, Pos) { return t.Name, t.Pos },
		func(name string) bool { return v.c.TrackFileByName(name) != nil })
}

func (v *validator) trackProcesses(owner string, list []TrackProcessRef) []TrackProcessRef {
	return knownOnly(v, list, "track_process", "(%s) track process %s not found, ignoring...", owner,
		func(t TrackProcessRef) (string, Pos) { return t.Name, t.Pos },
		func(name string) bool { return v.c.TrackProcessByName(name) != nil })
}

// TrackProcessByName returns the vrrp_track_process named name, or nil.
func (c *Config) TrackProcessByName(name string) *TrackProcess {
	return named(c.TrackProcesses, name, func(t *TrackProcess) string { return t.Name })
}

// knownOnly keeps the references of list to what exists, with a warning
// (format: owner, name) for each of the others.
func knownOnly[T any](v *validator, list []T, kw, format, owner string, ref func(T) (string, Pos), exists func(string) bool) []T {
	out := list[:0]
	for _, t := range list {
		if name, pos := ref(t); !exists(name) {
			v.warnf(pos, kw, format, owner, name)
			continue
		}
		out = append(out, t)
	}
	return out
}

// TrackFileByName returns the track_file named name, or nil.
func (c *Config) TrackFileByName(name string) *TrackFile {
	return named(c.TrackFiles, name, func(f *TrackFile) string { return f.Name })
}

func (v *validator) instances() {
	names := map[string]Pos{}
	type vridKey struct {
		ifname string
		vrid   int
		v6     bool
	}
	vrids := map[vridKey]*VRRPInstance{}
	out := v.c.Instances[:0]
	for _, in := range v.c.Instances {
		if p, dup := names[in.Name]; dup {
			v.errf(in.Pos, "vrrp_instance", "vrrp_instance %s already defined at %s - ignoring", in.Name, p)
			continue
		}
		if in.VRID == 0 {
			v.errf(in.Pos, "virtual_router_id", "(%s) virtual_router_id missing - removing instance", in.Name)
			continue
		}
		if in.Interface == "" {
			v.errf(in.Pos, "interface", "(%s) no interface specified - removing instance", in.Name)
			continue
		}
		v.strictFirst(in)
		// advert_int: v2 whole seconds 1-255; v3 centiseconds 0.01-40.95.
		switch in.Version {
		case 2:
			if in.AdvertInt < time.Second {
				v.errf(in.advertPosOr(), "advert_int", "(%s) advert_int %s is below 1s for VRRPv2 - using 1s", in.Name, in.AdvertInt)
				in.AdvertInt = time.Second
			} else if in.AdvertInt%time.Second != 0 {
				r := in.AdvertInt.Round(time.Second)
				v.warnf(in.advertPosOr(), "advert_int", "(%s) VRRPv2 advert_int must be whole seconds - rounding %s to %s", in.Name, in.AdvertInt, r)
				in.AdvertInt = r
			}
		case 3:
			if in.AdvertInt > 4095*10*time.Millisecond {
				v.errf(in.advertPosOr(), "advert_int", "(%s) advert_int %s above 40.95s for VRRPv3 - using 40.95s", in.Name, in.AdvertInt)
				in.AdvertInt = 4095 * 10 * time.Millisecond
			} else if in.AdvertInt%(10*time.Millisecond) != 0 {
				r := in.AdvertInt.Round(10 * time.Millisecond)
				if r == 0 {
					r = 10 * time.Millisecond
				}
				v.warnf(in.advertPosOr(), "advert_int", "(%s) VRRPv3 advert_int is in centiseconds - rounding %s to %s", in.Name, in.AdvertInt, r)
				in.AdvertInt = r
			}
			if in.Auth.Type != "" {
				v.warnf(in.Auth.Pos, "authentication", "(%s) cannot use authentication with VRRPv3 - ignoring", in.Name)
				in.Auth = Auth{}
			}
		}
		if in.Auth.Type == "PASS" && in.Auth.Pass == "" {
			v.errf(in.Auth.Pos, "auth_pass", "(%s) auth_type PASS without auth_pass - authentication disabled", in.Name)
			in.Auth = Auth{}
		}
		if in.Auth.Type == "AH" {
			if in.State == "MASTER" && in.Priority != 255 {
				v.warnf(in.Auth.Pos, "authentication", "(%s) initial state master is incompatible with AH authentication - clearing", in.Name)
				in.State = "BACKUP"
			}
			v.d.add(in.Auth.Pos, Notice, "auth_type", "AH authentication parsed, not supported yet")
		}
		// As keepalived, nopreempt gives way (to the owner priority, then to state MASTER).
		if in.NoPreempt && in.Priority == 255 {
			v.warnf(in.noPreemptPos, "nopreempt", "(%s) nopreempt is incompatible with priority 255 - resetting nopreempt", in.Name)
			in.NoPreempt = false
		}
		if in.NoPreempt && in.State == "MASTER" {
			v.warnf(in.noPreemptPos, "nopreempt", "(%s) nopreempt will not work with initial state MASTER - clearing nopreempt", in.Name)
			in.NoPreempt = false
		}
		if in.Priority == 255 && in.State == "BACKUP" {
			v.warnf(in.Pos, "priority", "(%s) priority 255 is the address owner; initial state BACKUP ignored", in.Name)
		}
		v.strict(in)
		seenVIP := map[netip.Addr]bool{}
		vips := in.VIPs[:0]
		for _, a := range in.VIPs {
			if seenVIP[a.Prefix.Addr()] {
				v.warnf(a.Pos, "virtual_ipaddress", "(%s) address %s listed twice - ignoring the second", in.Name, a.Prefix.Addr())
				continue
			}
			seenVIP[a.Prefix.Addr()] = true
			vips = append(vips, a)
		}
		in.VIPs = vips
		in.TrackScript = v.trackScripts(in.Name, in.TrackScript)
		in.TrackFile = v.trackFiles(in.Name, in.TrackFile)
		in.TrackProcess = v.trackProcesses(in.Name, in.TrackProcess)
		v6 := len(in.VIPs) > 0 && in.VIPs[0].Prefix.Addr().Is6()
		k := vridKey{in.Interface, in.VRID, v6}
		if other, dup := vrids[k]; dup {
			v.errf(in.Pos, "virtual_router_id", "(%s) VRID %d is already used on %s by %s (%s) - removing instance", in.Name, in.VRID, in.Interface, other.Name, other.Pos)
			continue
		}
		vrids[k] = in
		names[in.Name] = in.Pos
		out = append(out, in)
	}
	v.c.Instances = out
}

// strictFirst is what keepalived checks of a strict instance (vrrp_strict,
// strict_mode) before the rest: the initial state and authentication.
// The messages are keepalived 2.2.7's.
func (v *validator) strictFirst(in *VRRPInstance) {
	if !in.Strict {
		return
	}
	if in.State == "MASTER" && in.Priority != 255 {
		v.warnf(in.givenPos("state"), "state", "(%s) State MASTER must match being address owner", in.Name)
		in.State = "BACKUP"
	}
	if in.Auth.Type != "" {
		v.errf(in.Auth.Pos, "authentication", "(%s) Strict mode does not support authentication. Ignoring.", in.Name)
		in.Auth = Auth{}
	}
}

// strict is the rest of keepalived's strict checks, in its order; each
// setting is reset as keepalived resets it. keepalived 2.2.7 accepts
// unicast peers in strict mode (its check is not reached), and so does lvsd.
func (v *validator) strict(in *VRRPInstance) {
	if !in.Strict {
		return
	}
	if len(in.VIPs) > 0 && in.VIPs[0].Prefix.Addr().Is6() && !in.VIPs[0].Prefix.Addr().IsLinkLocalUnicast() {
		v.errf(in.VIPs[0].Pos, "virtual_ipaddress", "(%s) the first IPv6 VIP address must be link local", in.Name)
	}
	if in.PreemptDelay > 0 && in.given["preempt_delay"] != nil {
		v.warnf(in.givenPos("preempt_delay"), "preempt_delay", "(%s) preempt_delay is incompatible with strict mode - resetting", in.Name)
		in.PreemptDelay = 0
	}
	if n := in.given["down_timer_adverts"]; n != nil && len(n.Args) > 0 && n.Args[0].Text != "3" {
		v.warnf(n.Pos, "down_timer_adverts", "(%s) down_timer_adverts is incompatible with strict mode - resetting", in.Name)
	}
	if in.Accept && in.Version == 2 && in.Priority != 255 {
		v.warnf(in.givenPos("accept"), "accept", "(%s) warning - accept mode for VRRP version 2 does not comply with RFC3768 - resetting", in.Name)
		in.Accept = false
	}
	if in.GARP.LowerPrioRepeat > 0 && in.given["garp_lower_prio_repeat"] != nil {
		v.warnf(in.givenPos("garp_lower_prio_repeat"), "garp_lower_prio_repeat", "(%s) Strict mode requires no repeat garps. resetting", in.Name)
		in.GARP.LowerPrioRepeat = 0
	}
	if in.GARP.LowerPrioDelay > 0 && in.given["garp_lower_prio_delay"] != nil {
		v.warnf(in.givenPos("garp_lower_prio_delay"), "garp_lower_prio_delay", "(%s) Strict mode requires no repeat garp delay. resetting", in.Name)
		in.GARP.LowerPrioDelay = 0
	}
	if !in.LowerPrioNoAdvert && in.given["lower_prio_no_advert"] != nil {
		v.warnf(in.givenPos("lower_prio_no_advert"), "lower_prio_no_advert", "(%s) Strict mode requires no lower priority advert. resetting", in.Name)
	}
	in.LowerPrioNoAdvert = true
	if in.HigherPrioSendAdvert && in.given["higher_prio_send_advert"] != nil {
		v.warnf(in.givenPos("higher_prio_send_advert"), "higher_prio_send_advert", "(%s) strict mode requires higher_prio_send_advert to be clear. resetting", in.Name)
		in.HigherPrioSendAdvert = false
	}
	if in.VMACXmitBase {
		v.warnf(in.givenPos("vmac_xmit_base"), "vmac_xmit_base", "(%s) xmit_base is incompatible with strict mode - resetting", in.Name)
		in.VMACXmitBase = false
	}
}

// givenPos is where the instance gave kw, or the instance's position.
func (in *VRRPInstance) givenPos(kw string) Pos {
	if n := in.given[kw]; n != nil {
		return n.Pos
	}
	return in.Pos
}

func (in *VRRPInstance) advertPosOr() Pos {
	if in.advertPos.Line != 0 {
		return in.advertPos
	}
	return in.Pos
}

func (v *validator) syncGroups() {
	member := map[string]string{}
	out := v.c.SyncGroups[:0]
	for _, g := range v.c.SyncGroups {
		members := g.Group[:0]
		for _, name := range g.Group {
			in := v.c.Instance(name)
			if in == nil {
				v.errf(g.Pos, "group", "vrrp_sync_group %s: vrrp_instance %s does not exist - removing it from the group", g.Name, name)
				continue
			}
			if other, ok := member[name]; ok {
				v.errf(g.Pos, "group", "vrrp_instance %s is already in sync group %s - removing it from %s", name, other, g.Name)
				continue
			}
			member[name] = g.Name
			in.SyncGroup = g.Name
			members = append(members, name)
		}
		g.Group = members
		g.TrackScript = v.trackScripts(g.Name, g.TrackScript)
		g.TrackFile = v.trackFiles(g.Name, g.TrackFile)
		g.TrackProcess = v.trackProcesses(g.Name, g.TrackProcess)
		if len(g.Group) == 0 {
			v.errf(g.Pos, "vrrp_sync_group", "vrrp_sync_group %s has no (valid) members - removing", g.Name)
			continue
		}
		if len(g.Group) == 1 {
			v.warnf(g.Pos, "vrrp_sync_group", "sync group %s has only 1 virtual router - this probably isn't what you want", g.Name)
		}
		out = append(out, g)
	}
	v.c.SyncGroups = out
}

func (v *validator) global() {
	g := &v.c.Global
	if s := g.LVSSyncDaemon; s != nil {
		if s.Instance != "" && v.c.Instance(s.Instance) == nil {
			v.errf(s.Pos, "lvs_sync_daemon", "vrrp_instance %s does not exist - lvs_sync_daemon disabled", s.Instance)
			g.LVSSyncDaemon = nil
		}
	}
}

func (v *validator) virtualServers() {
	groups := map[string]*VirtualServerGroup{}
	gout := v.c.VSGroups[:0]
	for _, g := range v.c.VSGroups {
		if _, dup := groups[g.Name]; dup {
			v.errf(g.Pos, "virtual_server_group", "virtual_server_group %s already defined - ignoring", g.Name)
			continue
		}
		if len(g.Addrs) == 0 && len(g.Fwmarks) == 0 {
			v.warnf(g.Pos, "virtual_server_group", "virtual_server_group %s is empty", g.Name)
		}
		groups[g.Name] = g
		gout = append(gout, g)
	}
	v.c.VSGroups = gout

	type vsKey struct {
		kind  VSKind
		addr  netip.Addr
		port  int
		mark  uint32
		group string
		proto string
	}
	seen := map[vsKey]*VirtualServer{}
	rsSeen := map[netip.AddrPort]bool{}
	out := v.c.VirtualServers[:0]
	for _, vs := range v.c.VirtualServers {
		proto := vs.Protocol
		if vs.Kind == VSByFwmark {
			proto = ""
		}
		k := vsKey{vs.Kind, vs.Addr, vs.Port, vs.Fwmark, vs.Group, proto}
		if other, dup := seen[k]; dup {
			v.errf(vs.Pos, "virtual_server", "virtual server %s %s already defined at %s - ignoring", vs, vs.Protocol, other.Pos)
			continue
		}
		if vs.Kind == VSByGroup {
			if _, ok := groups[vs.Group]; !ok {
				v.errf(vs.Pos, "virtual_server", "virtual_server_group %s does not exist - removing virtual server", vs.Group)
				continue
			}
		}
		if vs.Kind == VSByAddr && vs.Port == 0 && !vs.Persistent {
			// As keepalived: a zero port makes the service persistent.
			v.warnf(vs.Pos, "virtual_server", "virtual server %s: zero port only valid for persistent services - setting persistence_timeout 360", vs)
			vs.Persistent, vs.PersistenceTimeout = true, 360*time.Second
		}
		if vs.PersistenceGranularity.IsValid() && !vs.Persistent {
			v.warnf(vs.granularityPos, "persistence_granularity", "virtual server %s: persistence_granularity without persistence_timeout has no effect", vs)
		}
		if vs.PersistenceGranularity.IsValid() && vs.Kind == VSByAddr && vs.PersistenceGranularity.Is4() != vs.Addr.Is4() {
			v.errf(vs.granularityPos, "persistence_granularity", "virtual server %s: granularity mask family differs from the address - ignoring", vs)
			vs.PersistenceGranularity = netip.Addr{}
		}
		for _, f := range vs.SchedFlags {
			if (strings.HasPrefix(f, "sh-") && vs.Scheduler != "sh") || (strings.HasPrefix(f, "mh-") && vs.Scheduler != "mh") {
				v.warnf(vs.Pos, f, "virtual server %s: %s has no effect with scheduler %s", vs, f, vs.Scheduler)
			}
		}
		if vs.OPS && vs.Protocol != "UDP" && vs.Kind != VSByFwmark {
			v.warnf(vs.Pos, "ops", "virtual server %s: one-packet scheduling only applies to UDP - ignoring", vs)
			vs.OPS = false
		}
		clear(rsSeen)
		rsOut := vs.RealServers[:0]
		for _, rs := range vs.RealServers {
			ap := netip.AddrPortFrom(rs.Addr, uint16(rs.Port))
			if rsSeen[ap] {
				v.errf(rs.Pos, "real_server", "virtual server %s: real server %s already defined - ignoring", vs, ap)
				continue
			}
			rsSeen[ap] = true
			if vs.Kind == VSByAddr && rs.Forwarding.Method != "TUN" && rs.Addr.Is4() != vs.Addr.Is4() {
				v.errf(rs.Pos, "real_server", "virtual server %s: real server %s is of another address family - ignoring", vs, rs.Addr)
				continue
			}
			if rs.Forwarding.Method == "DR" && rs.Port != 0 && vs.Port != 0 && rs.Port != vs.Port {
				v.warnf(rs.Pos, "real_server", "virtual server %s: DR cannot map port %d to %d; the virtual port is used", vs, vs.Port, rs.Port)
			}
			chk := rs.Checkers[:0]
			for _, c := range rs.Checkers {
				kind := checkerKindOf(c.Type)
				if kind.resolve != nil {
					kind.resolve(v, c)
				}
				if why := kind.whyNot(c); why != "" {
					v.errf(c.Pos, c.Type, "real server %s of %s: %s - removing checker", rs.Addr, vs, why)
					continue
				}
				if kind.check != nil {
					kind.check(v, c)
				}
				chk = append(chk, c)
			}
			rs.Checkers = chk
			rsOut = append(rsOut, rs)
		}
		vs.RealServers = rsOut
		// As keepalived: no real server, no virtual server; a quorum above the
		// total weight could never be met.
		if len(vs.RealServers) == 0 {
			v.errf(vs.Pos, "virtual_server", "virtual server %s has no real servers - ignoring", vs)
			continue
		}
		weight := 0
		for _, rs := range vs.RealServers {
			weight += rs.Weight
		}
		if vs.Quorum > weight {
			v.warnf(vs.Pos, "quorum", "virtual server %s: quorum %d exceeds the total weight of its real servers %d - reducing quorum to %d", vs, vs.Quorum, weight, weight)
			vs.Quorum = weight
		}
		if vs.Hysteresis >= vs.Quorum && vs.Hysteresis > 0 {
			v.warnf(vs.Pos, "hysteresis", "virtual server %s: hysteresis %d >= quorum %d - setting to %d", vs, vs.Hysteresis, vs.Quorum, max(vs.Quorum-1, 0))
			vs.Hysteresis = max(vs.Quorum-1, 0)
		}
		seen[k] = vs
		out = append(out, vs)
	}
	v.c.VirtualServers = out
}

// Interfaces returns every interface name the configuration uses, with where.
func (c *Config) Interfaces() map[string]Pos {
	m := map[string]Pos{}
	add := func(name string, pos Pos) {
		if name == "" {
			return
		}
		if _, ok := m[name]; !ok {
			m[name] = pos
		}
	}
	for _, in := range c.Instances {
		add(in.Interface, in.Pos)
		for _, t := range in.TrackInterface {
			add(t.Name, t.Pos)
		}
		for _, a := range append(append([]VIP(nil), in.VIPs...), in.ExcludedVIPs...) {
			add(a.Dev, a.Pos)
		}
		for _, r := range append(append([]Route(nil), in.Routes...), in.Rules...) {
			add(r.dev(), r.Pos)
		}
	}
	for _, g := range c.SyncGroups {
		for _, t := range g.TrackInterface {
			add(t.Name, t.Pos)
		}
	}
	for _, a := range c.StaticAddresses {
		add(a.Dev, a.Pos)
	}
	for _, r := range append(append([]Route(nil), c.StaticRoutes...), c.StaticRules...) {
		add(r.dev(), r.Pos)
	}
	if s := c.Global.LVSSyncDaemon; s != nil {
		add(s.Interface, s.Pos)
	}
	return m
}

func (r Route) dev() string {
	for i := 0; i+1 < len(r.Words); i++ {
		if r.Words[i] == "dev" || r.Words[i] == "oif" || r.Words[i] == "iif" {
			return r.Words[i+1]
		}
	}
	return ""
}

func (v *validator) interfaces() {
	if v.opt.InterfaceExists == nil || v.c.Global.DynamicInterfaces {
		return
	}
	ifs := v.c.Interfaces()
	names := make([]string, 0, len(ifs))
	for name := range ifs {
		names = append(names, name)
	}
	// In file order, so that the report is the same from run to run.
	sort.Slice(names, func(i, j int) bool {
		a, b := ifs[names[i]], ifs[names[j]]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return names[i] < names[j]
	})
	for _, name := range names {
		if !v.opt.InterfaceExists(name) {
			v.d.add(ifs[name], Fatal, "interface", fmt.Sprintf("interface %s does not exist (set dynamic_interfaces to allow it)", name))
		}
	}
}

// Scripts returns every script the configuration would execute.
func (c *Config) AllScripts() []*Script {
	var out []*Script
	for _, s := range c.Scripts {
		out = append(out, &s.Script)
	}
	for _, g := range c.SyncGroups {
		out = append(out, g.Notify.Scripts()...)
	}
	for _, in := range c.Instances {
		out = append(out, in.Notify.Scripts()...)
	}
	for _, vs := range c.VirtualServers {
		for _, s := range []*Script{vs.QuorumUp, vs.QuorumDown} {
			if s != nil {
				out = append(out, s)
			}
		}
		for _, rs := range vs.RealServers {
			for _, s := range []*Script{rs.NotifyUp, rs.NotifyDown} {
				if s != nil {
					out = append(out, s)
				}
			}
			for _, ch := range rs.Checkers {
				if ch.CheckerOptions != nil && ch.MiscPath != nil {
					out = append(out, ch.MiscPath)
				}
			}
		}
	}
	return out
}
