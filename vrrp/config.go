package vrrp

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/vrrp/advert"
)

// runnerSpec is one unit the Engine runs: a sync group, or a standalone
// instance (Group false, one instance).
type runnerSpec struct {
	Name      string
	Group     bool
	Instances []instanceConfig
	// Interfaces lists, per instance, the interfaces whose link state is
	// reported with runner.SetInterface (the instance's own interface,
	// unless dont_track_primary).
	OwnInterface []string
}

// Track names used for tracked objects: trackInterfaceName(ifname) and
// trackScriptName(script); the Engine reports their status with SetTrack.
func trackInterfaceName(ifname string) string { return "interface:" + ifname }

// trackScriptName is the track name of a vrrp_script.
func trackScriptName(script string) string { return "script:" + script }

// trackFileName is the track name of a track_file.
func trackFileName(file string) string { return "file:" + file }

// trackProcessName is the track name of a vrrp_track_process.
func trackProcessName(proc string) string { return "process:" + proc }

var scopes = map[string]uint8{"": 0, "global": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}

func convVIP(v conf.VIP) (VIP, error) {
	if v.Prefix.Addr().Is6() {
		// conf already refused a broadcast and dropped scope and label.
		out := VIP{Addr: v.Prefix, Dev: v.Dev, DAD: v.NoDAD}
		if v.PreferredLft != nil {
			out.PreferredSet, out.PreferredLft = true, *v.PreferredLft
		}
		return out, nil
	}
	sc, ok := scopes[strings.ToLower(v.Scope)]
	if !ok {
		return VIP{}, fmt.Errorf("%s: VIP %v: unknown scope %q", v.Pos, v.Prefix, v.Scope)
	}
	return VIP{Addr: v.Prefix, Dev: v.Dev, Brd: v.Brd, Scope: sc, Label: v.Label}, nil
}

var routeTypes = map[string]uint8{"": routeUnicast, "unicast": routeUnicast, "blackhole": routeBlackhole, "unreachable": routeUnreachable, "prohibit": routeProhibit}

func convRoute(r conf.Route) (Route, error) {
	v := r.Parsed
	if v == nil {
		return Route{}, fmt.Errorf("%s: route %q: not parsed", r.Pos, strings.Join(r.Words, " "))
	}
	out := Route{Dst: v.Dst, Src: v.Src, Via: v.Via, Dev: v.Dev, Table: v.Table, Metric: v.Metric, Proto: v.Proto, OnLink: v.OnLink}
	t, ok := routeTypes[v.Type]
	if !ok {
		return Route{}, fmt.Errorf("%s: route %v: unknown type %q", r.Pos, v, v.Type)
	}
	out.Type = t
	if out.Table == 0 {
		out.Table = tableMain
	}
	if out.Proto == 0 {
		out.Proto = protoKeepalived
	}
	switch sc, known := scopes[strings.ToLower(v.Scope)]; {
	case v.Scope == "" && t == routeUnicast && !v.Via.IsValid() && v.Dst.Addr().Is4():
		out.Scope = scopes["link"] // as ip route: a route without gateway is on the link
	case known:
		out.Scope = sc
	default:
		n, err := strconv.ParseUint(v.Scope, 10, 8)
		if err != nil {
			return Route{}, fmt.Errorf("%s: route %v: unknown scope %q", r.Pos, v, v.Scope)
		}
		out.Scope = uint8(n)
	}
	return out, nil
}

// fromConfig turns a parsed configuration into runner specs. Warnings
// name the configured features that are accepted but not implemented.
func fromConfig(c *conf.Config) ([]runnerSpec, []string, error) {
	var warns []string
	warn := func(format string, a ...any) { warns = append(warns, fmt.Sprintf(format, a...)) }
	scripts := map[string]*conf.VRRPScript{}
	for _, s := range c.Scripts {
		scripts[s.Name] = s
	}
	files := map[string]*conf.TrackFile{}
	for _, f := range c.TrackFiles {
		files[f.Name] = f
	}
	procs := map[string]*conf.TrackProcess{}
	for _, tp := range c.TrackProcesses {
		procs[tp.Name] = tp
	}
	g := c.Global
	inGroup := map[string]*conf.SyncGroup{}
	for _, sg := range c.SyncGroups {
		for _, name := range sg.Group {
			inGroup[name] = sg
		}
	}
	tracks := func(owner string, tis []conf.TrackInterface, tss []conf.TrackScript, tfs []conf.TrackFileRef, tps []conf.TrackProcessRef, zeroWeights bool) ([]track, error) {
		var out []track
		for _, ti := range tis {
			w := ti.Weight
			if zeroWeights {
				w = 0
			}
			out = append(out, track{Name: trackInterfaceName(ti.Name), Weight: w, Reverse: ti.Reverse, InitUp: true})
		}
		for _, ts := range tss {
			s, ok := scripts[ts.Name]
			if !ok {
				return nil, fmt.Errorf("%s: %s: track_script %q: no such vrrp_script", ts.Pos, owner, ts.Name)
			}
			w := s.Weight
			if ts.Weight != nil {
				w = *ts.Weight
			}
			if zeroWeights {
				w = 0
			}
			rev := ts.Reverse || s.Reverse
			// Until its first result a script counts neither way, as in
			// keepalived: no weight added, none subtracted, no FAULT. With
			// init_fail it starts failed.
			initUp := (w <= 0) != rev
			if s.InitFail {
				initUp = false
			}
			out = append(out, track{Name: trackScriptName(ts.Name), Weight: w, Reverse: rev, InitUp: initUp})
		}
		for _, tf := range tfs {
			f, ok := files[tf.Name]
			if !ok {
				return nil, fmt.Errorf("%s: %s: track_file %q: no such track_file", tf.Pos, owner, tf.Name)
			}
			w, rev := f.Weight, f.Reverse || tf.Reverse
			if tf.Weight != nil {
				w = *tf.Weight
			}
			if zeroWeights {
				w = 0
			}
			// The engine reads the file's value before the instance starts.
			out = append(out, track{Name: trackFileName(tf.Name), Weight: w, Reverse: rev, File: true})
		}
		for _, ref := range tps {
			tp, ok := procs[ref.Name]
			if !ok {
				return nil, fmt.Errorf("%s: %s: track_process %q: no such vrrp_track_process", ref.Pos, owner, ref.Name)
			}
			// As keepalived: the reference's weight replaces the
			// process's; its reverse or noreverse, the process's reverse.
			w, rev := tp.Weight, (tp.Reverse || ref.Reverse) && !ref.NoReverse
			if ref.Weight != nil {
				w = *ref.Weight
			}
			// A sync group member keeps its weight: keepalived 2.2.7
			// ignores the weighted track_scripts and track_files of a
			// member, not its track_processes.
			// The status before the first report is SetProcess's.
			out = append(out, track{Name: trackProcessName(ref.Name), Weight: w, Reverse: rev, NegateReverse: true})
		}
		return out, nil
	}

	byName := map[string]instanceConfig{}
	own := map[string]string{}
	for _, in := range c.Instances {
		if in.VRID < 1 || in.VRID > 255 {
			return nil, nil, fmt.Errorf("%s: %s: virtual_router_id %d out of 1..255", in.Pos, in.Name, in.VRID)
		}
		if in.Priority < 1 || in.Priority > 255 {
			return nil, nil, fmt.Errorf("%s: %s: priority %d out of 1..255", in.Pos, in.Name, in.Priority)
		}
		mc := machineConfig{
			Name: in.Name, VRID: uint8(in.VRID), Version: uint8(in.Version), Priority: uint8(in.Priority),
			AdvertInterval: in.AdvertInt, Nopreempt: in.NoPreempt, PreemptDelay: in.PreemptDelay,
			GARPMasterDelay: in.GARP.MasterDelay, GARPMasterRepeat: in.GARP.MasterRepeat,
			GARPMasterRefresh: in.GARP.MasterRefresh, GARPMasterRefreshRepeat: in.GARP.MasterRefreshRepeat,
			GARPLowerPrioRepeat: in.GARP.LowerPrioRepeat, GARPLowerPrioDelay: in.GARP.LowerPrioDelay,
			LowerPrioNoAdvert:    in.LowerPrioNoAdvert || g.VRRPLowerPrioNoAdvert,
			HigherPrioSendAdvert: in.HigherPrioSendAdvert || g.VRRPHigherPrioSendAdvert,
		}
		switch strings.ToUpper(in.State) {
		case "":
		case "MASTER":
			mc.InitialState = StateMaster
		case "BACKUP":
			mc.InitialState = StateBackup
		default:
			return nil, nil, fmt.Errorf("%s: %s: state %q", in.Pos, in.Name, in.State)
		}
		switch {
		case in.UnicastSrcIP.IsValid():
			mc.PrimaryIP = in.UnicastSrcIP
		case in.McastSrcIP.IsValid():
			mc.PrimaryIP = in.McastSrcIP
		}
		ic := instanceConfig{Machine: mc, Interface: in.Interface, Group: in.McastDstIP, IPv6: in.IPv6(), GARPInterval: in.GARP.Interval, GNAInterval: in.GARP.GNAInterval}
		if !ic.Group.IsValid() && !ic.IPv6 {
			ic.Group = g.VRRPMcastGroup4
		}
		switch strings.ToUpper(in.Auth.Type) {
		case "":
		case "PASS":
			ic.AuthType, ic.AuthPass = advert.AuthPass, in.Auth.Pass
		default:
			return nil, nil, fmt.Errorf("%s: %s: auth_type %s is not supported", in.Auth.Pos, in.Name, in.Auth.Type)
		}
		if ic.Machine.Version == 3 && ic.AuthType != advert.AuthNone {
			warn("%s: %s: VRRPv3 has no authentication; ignored (as keepalived)", in.Pos, in.Name)
			ic.AuthType, ic.AuthPass = advert.AuthNone, ""
		}
		if in.IPv6() && in.Version != 3 {
			return nil, nil, fmt.Errorf("%s: %s: VRRPv2 over IPv6 is not supported (an IPv6 instance runs VRRPv3)", in.Pos, in.Name)
		}
		for _, v := range slices.Concat(in.VIPs, in.ExcludedVIPs) {
			if v.PreferredLft != nil && v.Prefix.Addr().Is4() {
				warn("%s: %s: preferred_lft of the IPv4 address %v is not implemented; ignored", v.Pos, in.Name, v.Prefix)
			}
		}
		var err error
		if ic.VIPs, err = convAll(in.VIPs, convVIP); err == nil {
			if ic.ExcludedVIPs, err = convAll(in.ExcludedVIPs, convVIP); err == nil {
				ic.Routes, err = convAll(in.Routes, convRoute)
			}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", in.Name, err)
		}
		for _, r := range in.Rules {
			ic.Rules = append(ic.Rules, *r.Rule)
		}
		if len(ic.VIPs) > advert.MaxAddrs {
			// keepalived moves the excess to the excluded list.
			warn("%s: %s: more than %d VIPs; the excess is not advertised", in.Pos, in.Name, advert.MaxAddrs)
			ic.ExcludedVIPs = append(ic.ExcludedVIPs, ic.VIPs[advert.MaxAddrs:]...)
			ic.VIPs = ic.VIPs[:advert.MaxAddrs]
		}
		for _, p := range in.UnicastPeers {
			if p.Addr.Is6() != ic.IPv6 {
				return nil, nil, fmt.Errorf("%s: %s: unicast_peer %v is not of the instance's family", p.Pos, in.Name, p.Addr)
			}
			ic.UnicastPeers = append(ic.UnicastPeers, p.Addr)
			ttl := advert.TTLRange{Min: uint8(p.MinTTL), Max: uint8(p.MaxTTL)}
			if p.MaxTTL == 0 {
				ttl.Max = 255
			}
			ic.PeerTTL = append(ic.PeerTTL, ttl)
			if p.MinTTL != 0 || p.MaxTTL != 0 {
				ic.CheckUnicastSrc = true // the TTL is checked with the source
			}
		}
		ic.CheckUnicastSrc = ic.CheckUnicastSrc || g.VRRPCheckUnicastSrc || in.CheckUnicastSrc
		if len(ic.UnicastPeers) > 0 {
			ic.UnicastTTL = in.UnicastTTL
		}
		ic.PromoteSecondaries = in.PromoteSecondaries
		// As keepalived, the address owner (priority 255) accepts.
		ic.NoAccept = !in.Accept && in.Priority < 255
		_, grouped := inGroup[in.Name]
		tr, err := tracks(in.Name, in.TrackInterface, in.TrackScript, in.TrackFile, in.TrackProcess, grouped)
		if err != nil {
			return nil, nil, err
		}
		ic.Tracks = tr
		if in.UnicastFaultNoPeer && in.UnicastBlock && len(in.UnicastPeers) == 0 {
			// A track that is never up holds the instance in FAULT.
			warn("%s: (%s) Cannot use unicast without any peers - going to fault state", in.Pos, in.Name)
			ic.Tracks = append(ic.Tracks, track{Name: "unicast:no_peer"})
		}
		if v := vmacSpec(in); v != nil {
			ic.VMAC, ic.Interface, ic.XmitBase = v, v.Name, in.VMACXmitBase
			if v.IPvlan {
				// keepalived 2.2.7 adds the VIPs of an ipvlan instance
				// on the base interface (seen in the lab VM).
				for _, l := range [][]VIP{ic.VIPs, ic.ExcludedVIPs} {
					for i := range l {
						if l[i].Dev == "" {
							l[i].Dev = v.Base
						}
					}
				}
			}
			if v.IPvlan && !v.IPv6 {
				// An IPv4 ipvlan sends from its own address, as keepalived.
				if !ic.Machine.PrimaryIP.IsValid() && v.Addr.IsValid() {
					ic.Machine.PrimaryIP = v.Addr.Addr()
				}
				if !ic.Machine.PrimaryIP.IsValid() {
					warn("%s: (%s) IPv4 ipvlan requires a source ip address to be configured. setting instance to fault state", in.Pos, in.Name)
					ic.Tracks = append(ic.Tracks, track{Name: "ipvlan:no_source"})
				}
			}
		}
		if !in.DontTrackPrimary {
			own[in.Name] = in.Interface
		}
		if _, dup := byName[in.Name]; dup {
			return nil, nil, fmt.Errorf("%s: vrrp_instance %s defined twice", in.Pos, in.Name)
		}
		byName[in.Name] = ic
	}

	var specs []runnerSpec
	done := map[string]bool{}
	for _, sg := range c.SyncGroups {
		if len(sg.Group) < 2 {
			warn("%s: sync group %s has fewer than two instances; ignored", sg.Pos, sg.Name)
			continue
		}
		gt, err := tracks(sg.Name, sg.TrackInterface, sg.TrackScript, sg.TrackFile, sg.TrackProcess, false)
		if err != nil {
			return nil, nil, err
		}
		spec := runnerSpec{Name: sg.Name, Group: true}
		for _, name := range sg.Group {
			ic, ok := byName[name]
			if !ok {
				return nil, nil, fmt.Errorf("%s: sync group %s: no vrrp_instance %s", sg.Pos, sg.Name, name)
			}
			if done[name] {
				return nil, nil, fmt.Errorf("%s: vrrp_instance %s is in two sync groups", sg.Pos, name)
			}
			done[name] = true
			ic.Tracks = append(ic.Tracks, gt...)
			spec.Instances = append(spec.Instances, ic)
			spec.OwnInterface = append(spec.OwnInterface, own[name])
		}
		specs = append(specs, spec)
	}
	for _, in := range c.Instances {
		if done[in.Name] {
			continue
		}
		specs = append(specs, runnerSpec{Name: in.Name, Instances: []instanceConfig{byName[in.Name]}, OwnInterface: []string{own[in.Name]}})
	}
	// Validate what the runner would reject, early and with names.
	seen := map[string]string{}
	for _, s := range specs {
		for _, ic := range s.Instances {
			c := ic.Machine
			if err := c.Normalize(); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", c.Name, err)
			}
			key := fmt.Sprintf("%s/%d/%v", ic.sockInterface(), c.VRID, len(ic.UnicastPeers) > 0)
			if other, dup := seen[key]; dup {
				return nil, nil, fmt.Errorf("%s and %s: VRID %d used twice on %s", other, c.Name, c.VRID, ic.sockInterface())
			}
			seen[key] = c.Name
		}
	}
	return specs, warns, nil
}

// defaultGroup returns the multicast group of an instance.
func (ic *instanceConfig) defaultGroup() netip.Addr {
	if ic.Group.IsValid() {
		return ic.Group
	}
	if ic.IPv6 {
		return advert.MulticastGroup6
	}
	return advert.MulticastGroup
}

// convAll converts each element of in with conv, stopping at the first
// error.
func convAll[T, U any](in []T, conv func(T) (U, error)) ([]U, error) {
	var out []U
	for _, x := range in {
		y, err := conv(x)
		if err != nil {
			return nil, err
		}
		out = append(out, y)
	}
	return out, nil
}
