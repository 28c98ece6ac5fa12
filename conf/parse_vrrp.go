package conf

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

func (p *parser) instance(n *Node) *VRRPInstance {
	if !p.wantBlock(n) || !p.nargs(n, 1, 1) {
		return nil
	}
	g := &p.cfg.Global
	in := &VRRPInstance{
		Name:      n.Args[0].Text,
		Priority:  100,
		AdvertInt: time.Second,
		Version:   g.VRRPVersion,
		Accept:    true, // keepalived accepts unless vrrp_strict / no_accept
		GARP: GARP{
			MasterDelay:         g.VRRPGarpMasterDelay,
			MasterRepeat:        g.VRRPGarpMasterRepeat,
			LowerPrioDelay:      g.VRRPGarpLowerPrioDelay,
			LowerPrioRepeat:     g.VRRPGarpLowerPrioRepeat,
			MasterRefresh:       g.VRRPGarpMasterRefresh,
			MasterRefreshRepeat: g.VRRPGarpMasterRefreshRepeat,
			Interval:            g.VRRPGarpInterval,
			GNAInterval:         g.VRRPGnaInterval,
		},
		Strict:               g.VRRPStrict,
		SkipCheckAdvAddr:     g.VRRPSkipCheckAdvAddr,
		LowerPrioNoAdvert:    g.VRRPLowerPrioNoAdvert,
		HigherPrioSendAdvert: g.VRRPHigherPrioSendAdvert,
		Pos:                  n.Pos,
	}
	if g.VRRPStrict {
		in.Accept = false
	}
	versionSet, prioritySet := false, false
	for _, ch := range n.Children {
		if strictKeywords[ch.Key] {
			if in.given == nil {
				in.given = map[string]*Node{}
			}
			in.given[ch.Key] = ch
		}
	}
	instanceBlock.each(p, n.Children, in, func(ch *Node) bool {
		switch ch.Key {
		case "priority":
			if v, ok := p.int1(ch, 1, 255); ok {
				in.Priority = v
				prioritySet = true
			}
		case "advert_int":
			// Checked against the version in validate, once the version is known.
			if v, ok := p.dur(ch, 0.01, 255); ok {
				in.AdvertInt = v
				in.advertPos = ch.Pos
			}
		case "version":
			if v, ok := p.int1(ch, 2, 3); ok {
				in.Version = v
				versionSet = true
			}
		case "virtual_ipaddress":
			// As keepalived: the instance's family is set by its first
			// address; one of the other family is dropped (it may go
			// in virtual_ipaddress_excluded).
			in.VIPs = append(in.VIPs, p.vips(ch, func(a *Node, v VIP) bool {
				if !in.sameFamily(v.Prefix.Addr()) {
					p.errf(a, "(%s) address family must match VRRP instance [%s] - ignoring", in.Name, a.Key)
					return false
				}
				return true
			})...)
		case "virtual_ipaddress_excluded":
			in.ExcludedVIPs = append(in.ExcludedVIPs, p.vips(ch, nil)...)
		case "virtual_routes":
			in.Routes = append(in.Routes, p.routes(ch)...)
		case "virtual_rules":
			in.Rules = append(in.Rules, p.rules(ch, ch.Key)...)
		case "nopreempt":
			in.NoPreempt = p.boolOpt(ch)
			in.noPreemptPos = ch.Pos
		case "preempt":
			in.NoPreempt = !p.boolOpt(ch)
			in.noPreemptPos = ch.Pos
		case "mcast_src_ip":
			if a, ok := p.addr1(ch); ok && p.srcFamily(ch, in, a) {
				in.McastSrcIP = a
			}
		case "mcast_dst_ip":
			if a, ok := p.addr1(ch); ok {
				switch {
				case !in.sameFamily(a):
					p.errf(ch, "(%s) mcast dest address %s must match the VRRP instance family - skipping", in.Name, a)
				case !a.IsMulticast():
					p.errf(ch, "'%s' is not a multicast address", a)
				default:
					in.McastDstIP = a
				}
			}
		case "unicast_src_ip":
			if a, ok := p.addr1(ch); ok && p.srcFamily(ch, in, a) {
				in.UnicastSrcIP = a
			}
		case "unicast_peer":
			p.unicastPeers(ch, in)
		case "use_vmac":
			if p.noBlock(ch) {
				in.UseVMAC = true
				if len(ch.Args) > 0 {
					in.VMACName = ch.Args[0].Text
				}
			}
		case "use_ipvlan":
			if p.noBlock(ch) {
				p.ipvlan(ch, in)
			}
		case "vmac_xmit_base":
			in.VMACXmitBase = p.boolOpt(ch)
		case "lvs_sync_daemon_interface":
			// Deprecated form of global lvs_sync_daemon, as keepalived still accepts it.
			if v, ok := p.str(ch); ok {
				p.warnf(ch, "specifying lvs_sync_daemon_interface against a vrrp is deprecated; use global lvs_sync_daemon")
				if p.cfg.Global.LVSSyncDaemon == nil {
					p.cfg.Global.LVSSyncDaemon = &LVSSyncDaemon{Interface: v, Instance: in.Name, SyncID: -1, Port: 8848, Pos: ch.Pos}
				}
			}
		default:
			return false
		}
		return true
	})
	// As keepalived: an IPv6 instance without its own version is VRRPv3
	// (global vrrp_version applies to IPv4 only; VRRPv2 has no IPv6).
	if !versionSet && in.IPv6() {
		in.Version = 3
	}
	// As keepalived: strict_mode, as vrrp_strict, is no_accept unless the
	// instance says accept.
	if in.Strict && in.given["accept"] == nil && in.given["no_accept"] == nil {
		in.Accept = false
	}
	// As keepalived: without a priority, state MASTER means the address owner.
	if !prioritySet && in.State == "MASTER" {
		in.Priority = 255
	}
	return in
}

// strictKeywords are the instance keywords whose setting strict mode
// checks (validate.go: strict).
var strictKeywords = map[string]bool{
	"state": true, "accept": true, "no_accept": true, "preempt_delay": true, "garp_lower_prio_repeat": true,
	"garp_lower_prio_delay": true, "lower_prio_no_advert": true, "higher_prio_send_advert": true,
	"down_timer_adverts": true, "vmac_xmit_base": true,
}

// instanceKeywords are the vrrp_instance keywords that set one field.
var instanceKeywords = keywords[VRRPInstance]{
	"state":             set(stateArg, func(in *VRRPInstance) *string { return &in.State }),
	"interface":         set(stringArg, func(in *VRRPInstance) *string { return &in.Interface }),
	"virtual_router_id": set(intArg(1, 255), func(in *VRRPInstance) *int { return &in.VRID }),
	"authentication":    func(p *parser, n *Node, in *VRRPInstance) { p.auth(n, &in.Auth) },
	"track_interface":   set(trackInterfacesArg, func(in *VRRPInstance) *[]TrackInterface { return &in.TrackInterface }),
	"track_script":      set(trackScriptsArg, func(in *VRRPInstance) *[]TrackScript { return &in.TrackScript }),
	"track_file":        set(trackFileRefsArg, func(in *VRRPInstance) *[]TrackFileRef { return &in.TrackFile }),
	"track_process":     set(trackProcessRefsArg, func(in *VRRPInstance) *[]TrackProcessRef { return &in.TrackProcess }),
	"preempt_delay":     set(secondsArg(0, 1000), func(in *VRRPInstance) *time.Duration { return &in.PreemptDelay }),

	"garp_master_delay":          set(secondsArg(0, 255), func(in *VRRPInstance) *time.Duration { return &in.GARP.MasterDelay }),
	"garp_master_repeat":         set(intArg(1, 255), func(in *VRRPInstance) *int { return &in.GARP.MasterRepeat }),
	"garp_lower_prio_delay":      set(secondsArg(0, 255), func(in *VRRPInstance) *time.Duration { return &in.GARP.LowerPrioDelay }),
	"garp_lower_prio_repeat":     set(intArg(0, 255), func(in *VRRPInstance) *int { return &in.GARP.LowerPrioRepeat }),
	"garp_master_refresh":        set(secondsArg(0, 1<<31), func(in *VRRPInstance) *time.Duration { return &in.GARP.MasterRefresh }),
	"garp_master_refresh_repeat": set(intArg(1, 255), func(in *VRRPInstance) *int { return &in.GARP.MasterRefreshRepeat }),

	"unicast_ttl":             set(intArg(0, 255), func(in *VRRPInstance) *int { return &in.UnicastTTL }),
	"smtp_alert":              set(boolPtrArg, func(in *VRRPInstance) **bool { return &in.SMTPAlert }),
	"accept":                  set(boolArg, func(in *VRRPInstance) *bool { return &in.Accept }),
	"no_accept":               set(negatedBoolArg, func(in *VRRPInstance) *bool { return &in.Accept }),
	"dont_track_primary":      set(boolArg, func(in *VRRPInstance) *bool { return &in.DontTrackPrimary }),
	"strict_mode":             set(boolArg, func(in *VRRPInstance) *bool { return &in.Strict }),
	"skip_check_adv_addr":     set(boolArg, func(in *VRRPInstance) *bool { return &in.SkipCheckAdvAddr }),
	"lower_prio_no_advert":    set(boolArg, func(in *VRRPInstance) *bool { return &in.LowerPrioNoAdvert }),
	"higher_prio_send_advert": set(boolArg, func(in *VRRPInstance) *bool { return &in.HigherPrioSendAdvert }),
	"promote_secondaries":     set(boolArg, func(in *VRRPInstance) *bool { return &in.PromoteSecondaries }),
	"check_unicast_src":       set(boolArg, func(in *VRRPInstance) *bool { return &in.CheckUnicastSrc }),
	"unicast_fault_no_peer":   set(boolArg, func(in *VRRPInstance) *bool { return &in.UnicastFaultNoPeer }),

	"notify_priority_changes":    set(boolArg, func(in *VRRPInstance) *bool { return &in.NotifyPriorityChanges }),
	"notify_master_rx_lower_pri": set(scriptArg, func(in *VRRPInstance) **Script { return &in.NotifyMasterRxLowerPri }),
}

var instanceBlock = block([]string{"vrrp_instance", "notify"}, instanceKeywords,
	embed(notifyKeywords, func(_ *parser, in *VRRPInstance) *Notify { return &in.Notify }))

func (p *parser) auth(n *Node, a *Auth) {
	if !p.wantBlock(n) {
		return
	}
	a.Pos = n.Pos
	authBlock.each(p, n.Children, a, func(ch *Node) bool {
		switch ch.Key {
		case "auth_type":
			if v, ok := authTypeArg(p, ch); ok {
				a.Type = v
			}
		case "auth_pass":
			if p.noBlock(ch) && p.nargs(ch, 1, 1) {
				v := ch.Args[0].Text
				if len(v) > 8 {
					p.warnf(ch, "password longer than 8 characters, truncated as keepalived does")
					v = v[:8]
				}
				a.Pass = v
			}
		default:
			return false
		}
		return true
	})
}

// authBlock is an authentication block: its switch acts on its keywords.
var authBlock = block[Auth]([]string{"authentication"})

var stateArg = choiceArg("unknown state '%s' (want MASTER or BACKUP)", false, "MASTER", "BACKUP")

var authTypeArg = choiceArg("unknown authentication type '%s' (want PASS or AH)", false, "PASS", "AH")

func (p *parser) unicastPeers(n *Node, in *VRRPInstance) {
	if !p.wantBlock(n) {
		return
	}
	in.UnicastBlock = true
	for _, ch := range n.Children {
		a, ok := p.addr(ch, ch.Key)
		if !ok {
			continue
		}
		if !in.sameFamily(a) {
			p.errf(ch, "(%s) unicast peer address %s and the VRRP instance must be of the same family - skipping", in.Name, a)
			continue
		}
		peer := UnicastPeer{Addr: a, Pos: ch.Pos}
		w := ch.Words()
		for i := 0; i < len(w); i++ {
			if (w[i] == "min_ttl" || w[i] == "max_ttl") && i+1 < len(w) {
				v, err := strconv.Atoi(w[i+1])
				if err != nil || v < 0 || v > 255 {
					p.errf(ch, "invalid %s '%s' (0-255)", w[i], w[i+1])
				} else if w[i] == "min_ttl" {
					peer.MinTTL = v
				} else {
					peer.MaxTTL = v
				}
				i++
				continue
			}
			p.errf(ch, "unknown option '%s'", w[i])
		}
		in.UnicastPeers = append(in.UnicastPeers, peer)
	}
}

// vips parses a block of addresses (virtual_ipaddress and the like); keep,
// when set, may drop an address (after its diagnostic).
func (p *parser) vips(n *Node, keep func(a *Node, v VIP) bool) []VIP {
	if !p.wantBlock(n) {
		return nil
	}
	var out []VIP
	for _, a := range n.Children {
		if v, ok := p.vip(a); ok && (keep == nil || keep(a, v)) {
			out = append(out, v)
		}
	}
	return out
}

var scopes = map[string]bool{"global": true, "site": true, "link": true, "host": true, "nowhere": true}

// vip parses "<IPADDR>[/<MASK>] [brd <IPADDR>] [dev <STRING>] [scope <SCOPE>] [label <LABEL>] ...".
func (p *parser) vip(n *Node) (VIP, bool) {
	if !p.noBlock(n) {
		return VIP{}, false
	}
	v := VIP{Pos: n.Pos}
	pfx, ok := p.prefix(n, n.Key)
	if !ok {
		return v, false
	}
	v.Prefix = pfx
	o := p.options(n, 0)
	for kw, ok := o.next(); ok; kw, ok = o.next() {
		switch kw {
		case "brd", "broadcast":
			if s, ok := o.value(); ok {
				if pfx.Addr().Is6() {
					// As keepalived: the whole address is skipped.
					p.errf(n, "broadcast %s given for the IPv6 address %s - skipping the address", s, pfx)
					return v, false
				}
				if s == "+" || s == "-" {
					continue
				}
				if a, ok := p.addr(n, s); ok {
					v.Brd = a
				}
			}
		case "dev":
			if s, ok := o.value(); ok {
				v.Dev = s
			}
		case "scope":
			if s, ok := o.value(); ok {
				if !scopes[s] {
					if x, err := strconv.Atoi(s); err != nil || x < 0 || x > 255 {
						p.errf(n, "invalid scope '%s'", s)
						continue
					}
				}
				v.Scope = s
			}
		case "label":
			if s, ok := o.value(); ok {
				if len(s) > 15 {
					p.errf(n, "label '%s' longer than 15 characters", s)
					continue
				}
				v.Label = s
			}
		case "peer":
			p.optionNotice(n, kw)
			if s, ok := o.value(); ok {
				if a, ok := p.addr(n, s); ok {
					v.Peer = a
				}
			}
		case "preferred_lft":
			if s, ok := o.value(); ok {
				if s == "forever" {
					f := uint32(0xffffffff)
					v.PreferredLft = &f
				} else if x, err := strconv.ParseUint(s, 10, 32); err != nil {
					p.errf(n, "invalid preferred_lft '%s'", s)
				} else {
					f := uint32(x)
					v.PreferredLft = &f
				}
			}
		case "-nodad":
			v.NoDAD = true
		case "no_track":
			p.optionNotice(n, kw)
			v.NoTrack = true
		case "home", "mngtmpaddr", "noprefixroute", "autojoin", "use_vmac":
			p.optionNotice(n, kw)
		default:
			p.errf(n, "unknown address option '%s'", kw)
		}
	}
	if v.Prefix.Addr().Is6() {
		// As keepalived: no scope or label for IPv6 (no broadcast either, above).
		if v.Scope != "" {
			p.warnf(n, "cannot specify scope for IPv6 addresses (%s) - ignoring scope", v.Prefix)
			v.Scope = ""
		}
		if v.Label != "" {
			p.warnf(n, "cannot specify label for IPv6 addresses (%s) - ignoring label", v.Prefix)
			v.Label = ""
		}
	}
	return v, true
}

// optionNotice reports the address option kw of the line n as parsed, not
// acted on, with its reason from keywordTable's "ipaddress" section.
func (p *parser) optionNotice(n *Node, kw string) {
	p.d.add(n.Pos, Notice, kw, "parsed, "+keywordTable["ipaddress"][kw].notice)
}

// srcFamily checks an instance's mcast_src_ip or unicast_src_ip against its
// family, as keepalived: the first address sets the family, and a source
// of the other family is dropped.
func (p *parser) srcFamily(n *Node, in *VRRPInstance, a netip.Addr) bool {
	if in.sameFamily(a) {
		return true
	}
	p.errf(n, "(%s) source address %s and the VRRP instance must be of the same family - skipping", in.Name, a)
	return false
}

// prefix parses an address with an optional /len; without it the host length.
func (p *parser) prefix(n *Node, s string) (netip.Prefix, bool) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		a, err := netip.ParseAddr(s[:i])
		if err != nil || a.Zone() != "" {
			p.errf(n, "invalid IP address '%s'", s[:i])
			return netip.Prefix{}, false
		}
		bits, err := strconv.Atoi(s[i+1:])
		if err != nil || bits < 0 || bits > a.BitLen() {
			p.errf(n, "invalid prefix length '%s' for %s", s[i+1:], a)
			return netip.Prefix{}, false
		}
		return netip.PrefixFrom(a, bits), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		p.errf(n, "invalid IP address '%s'", s)
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

// String is "addr/len".
func (v VIP) String() string { return fmt.Sprint(v.Prefix) }

// ipvlan parses use_ipvlan [NAME] [ADDRESS[/LEN]] [bridge|private|vepa],
// its words in any order as keepalived.
func (p *parser) ipvlan(n *Node, in *VRRPInstance) {
	in.UseIPVLAN = true
	for _, a := range n.Args {
		w := a.Text
		switch low := strings.ToLower(w); {
		case low == "bridge" || low == "private" || low == "vepa":
			in.IPVLANMode = low
		case strings.ContainsAny(w, ":/") || strings.Trim(w, "0123456789.") == "" && strings.Contains(w, "."):
			if pf, ok := p.prefix(n, w); ok {
				in.IPVLANAddr = pf
			}
		case in.VMACName == "":
			in.VMACName = w
		default:
			p.errf(n, "use_ipvlan: unknown option '%s'", w)
		}
	}
}

// VMACInterface is the name of the interface an instance's VIPs go on
// with use_vmac or use_ipvlan: the name given, or keepalived's default
// vrrp.VRID; "" without either.
func (in *VRRPInstance) VMACInterface() string {
	if !in.UseVMAC && !in.UseIPVLAN {
		return ""
	}
	if in.VMACName != "" {
		return in.VMACName
	}
	if in.vmacName != "" {
		return in.vmacName
	}
	return fmt.Sprintf("vrrp.%d", in.VRID)
}

// nameVMACs names the VMACs without a name as keepalived 2.2.7: vrrp.VRID,
// or when an earlier instance has that name (an IPv4 and an IPv6 instance
// of one VRID), vrrp6.VRID for an IPv6 instance, else vrrpN.VRID with the
// first free N from 1.
func nameVMACs(list []*VRRPInstance) {
	taken := map[string]bool{}
	for _, in := range list {
		if (in.UseVMAC || in.UseIPVLAN) && in.VMACName != "" {
			taken[in.VMACName] = true
		}
	}
	for _, in := range list {
		if !in.UseVMAC && !in.UseIPVLAN || in.VMACName != "" {
			continue
		}
		name := fmt.Sprintf("vrrp.%d", in.VRID)
		if taken[name] && in.IPv6() {
			name = fmt.Sprintf("vrrp6.%d", in.VRID)
		}
		for n := 1; taken[name]; n++ {
			name = fmt.Sprintf("vrrp%d.%d", n, in.VRID)
		}
		taken[name] = true
		in.vmacName = name
	}
}
