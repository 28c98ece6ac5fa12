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
	var advertNode *Node
	versionSet, prioritySet := false, false
	for _, ch := range n.Children {
		if p.notify(ch, &in.Notify) {
			continue
		}
		switch ch.Key {
		case "state":
			if v, ok := p.str(ch); ok {
				switch v {
				case "MASTER", "BACKUP":
					in.State = v
				default:
					p.errf(ch, "unknown state '%s' (want MASTER or BACKUP)", v)
				}
			}
		case "interface":
			if v, ok := p.str(ch); ok {
				in.Interface = v
			}
		case "virtual_router_id":
			if v, ok := p.int1(ch, 1, 255); ok {
				in.VRID = v
			}
		case "priority":
			if v, ok := p.int1(ch, 1, 255); ok {
				in.Priority = v
				prioritySet = true
			}
		case "advert_int":
			// Checked against the version in validate, once the version is known.
			if v, ok := p.dur(ch, 0.01, 255); ok {
				in.AdvertInt = v
				advertNode = ch
			}
		case "version":
			if v, ok := p.int1(ch, 2, 3); ok {
				in.Version = v
				versionSet = true
			}
		case "authentication":
			p.auth(ch, &in.Auth)
		case "virtual_ipaddress":
			if p.wantBlock(ch) {
				for _, a := range ch.Children {
					v, ok := p.vip(a)
					if !ok {
						continue
					}
					// As keepalived: the instance's family is set by its first
					// address; one of the other family is dropped (it may go
					// in virtual_ipaddress_excluded).
					if !in.sameFamily(v.Prefix.Addr()) {
						p.errf(a, "(%s) address family must match VRRP instance [%s] - ignoring", in.Name, a.Key)
						continue
					}
					in.VIPs = append(in.VIPs, v)
				}
			}
		case "virtual_ipaddress_excluded":
			if p.wantBlock(ch) {
				for _, a := range ch.Children {
					if v, ok := p.vip(a); ok {
						in.ExcludedVIPs = append(in.ExcludedVIPs, v)
					}
				}
			}
		case "virtual_routes":
			if p.wantBlock(ch) {
				for _, r := range ch.Children {
					// A line in error is dropped, as a bad VIP.
					if vr := p.vroute(r); vr != nil {
						in.Routes = append(in.Routes, Route{Words: append([]string{r.Key}, r.Words()...), Parsed: vr, Pos: r.Pos})
					}
				}
			}
		case "virtual_rules":
			if p.wantBlock(ch) {
				for _, r := range ch.Children {
					in.Rules = append(in.Rules, Route{Words: append([]string{r.Key}, r.Words()...), Pos: r.Pos})
				}
				p.notYet(ch)
			}
		case "track_interface":
			in.TrackInterface = p.trackInterfaces(ch)
		case "track_script":
			in.TrackScript = p.trackScripts(ch)
		case "track_file":
			in.TrackFile = p.trackFileRefs(ch)
		case "nopreempt":
			in.NoPreempt = p.boolOpt(ch)
			in.noPreemptPos = ch.Pos
		case "preempt":
			in.NoPreempt = !p.boolOpt(ch)
			in.noPreemptPos = ch.Pos
		case "preempt_delay":
			if v, ok := p.dur(ch, 0, 1000); ok {
				in.PreemptDelay = v
			}
		case "garp_master_delay":
			if v, ok := p.dur(ch, 0, 255); ok {
				in.GARP.MasterDelay = v
			}
		case "garp_master_repeat":
			if v, ok := p.int1(ch, 1, 255); ok {
				in.GARP.MasterRepeat = v
			}
		case "garp_lower_prio_delay":
			if v, ok := p.dur(ch, 0, 255); ok {
				in.GARP.LowerPrioDelay = v
			}
		case "garp_lower_prio_repeat":
			if v, ok := p.int1(ch, 0, 255); ok {
				in.GARP.LowerPrioRepeat = v
			}
		case "garp_master_refresh":
			if v, ok := p.dur(ch, 0, 1<<31); ok {
				in.GARP.MasterRefresh = v
			}
		case "garp_master_refresh_repeat":
			if v, ok := p.int1(ch, 1, 255); ok {
				in.GARP.MasterRefreshRepeat = v
			}
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
		case "unicast_ttl":
			if v, ok := p.int1(ch, 0, 255); ok {
				in.UnicastTTL = v
			}
		case "smtp_alert":
			in.SMTPAlert = p.boolPtr(ch)
		case "use_vmac":
			if p.noBlock(ch) {
				in.UseVMAC = true
				if len(ch.Args) > 0 {
					in.VMACName = ch.Args[0].Text
				}
				p.notYet(ch)
			}
		case "vmac_xmit_base":
			in.VMACXmitBase = p.boolOpt(ch)
			p.notYet(ch)
		case "accept":
			in.Accept = p.boolOpt(ch)
		case "no_accept":
			in.Accept = !p.boolOpt(ch)
		case "dont_track_primary":
			in.DontTrackPrimary = p.boolOpt(ch)
		case "strict_mode":
			in.Strict = p.boolOpt(ch)
		case "skip_check_adv_addr":
			in.SkipCheckAdvAddr = p.boolOpt(ch)
		case "lower_prio_no_advert":
			in.LowerPrioNoAdvert = p.boolOpt(ch)
		case "higher_prio_send_advert":
			in.HigherPrioSendAdvert = p.boolOpt(ch)
		case "promote_secondaries":
			in.PromoteSecondaries = p.boolOpt(ch)
		case "lvs_sync_daemon_interface":
			// Deprecated form of global lvs_sync_daemon, as keepalived still accepts it.
			if v, ok := p.str(ch); ok {
				p.warnf(ch, "specifying lvs_sync_daemon_interface against a vrrp is deprecated; use global lvs_sync_daemon")
				if p.cfg.Global.LVSSyncDaemon == nil {
					p.cfg.Global.LVSSyncDaemon = &LVSSyncDaemon{Interface: v, Instance: in.Name, SyncID: -1, Port: 8848, Pos: ch.Pos}
				}
			}
		default:
			if notYetInstance[ch.Key] {
				p.notYet(ch)
			} else {
				p.unknown(ch)
			}
		}
	}
	if advertNode != nil {
		in.advertPos = advertNode.Pos
	}
	// As keepalived: an IPv6 instance without its own version is VRRPv3
	// (global vrrp_version applies to IPv4 only; VRRPv2 has no IPv6).
	if !versionSet && in.IPv6() {
		in.Version = 3
	}
	// As keepalived: without a priority, state MASTER means the address owner.
	if !prioritySet && in.State == "MASTER" {
		in.Priority = 255
	}
	return in
}

// vrrp_instance keywords keepalived has that lvsd does not act on (yet).
var notYetInstance = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range strings.Fields(`track_process track_bfd track_src_ip check_unicast_src
		unicast_fault_no_peer old_unicast_checksum garp_extra_if down_timer_adverts debug
		notify_master_rx_lower_pri notify_priority_changes kernel_rx_buf_size native_ipv6
		linkbeat_use_polling use_ipvlan vmac_ipvlan_xmit_base`) {
		m[k] = true
	}
	return m
}()

func (p *parser) auth(n *Node, a *Auth) {
	if !p.wantBlock(n) {
		return
	}
	a.Pos = n.Pos
	for _, ch := range n.Children {
		switch ch.Key {
		case "auth_type":
			if v, ok := p.str(ch); ok {
				switch v {
				case "PASS", "AH":
					a.Type = v
				default:
					p.errf(ch, "unknown authentication type '%s' (want PASS or AH)", v)
				}
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
			p.unknown(ch)
		}
	}
}

func (p *parser) unicastPeers(n *Node, in *VRRPInstance) {
	if !p.wantBlock(n) {
		return
	}
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
	w := n.Words()
	for i := 0; i < len(w); i++ {
		kw := w[i]
		next := func() (string, bool) {
			if i+1 >= len(w) {
				p.errf(n, "'%s' needs a value", kw)
				return "", false
			}
			i++
			return w[i], true
		}
		switch kw {
		case "brd", "broadcast":
			if s, ok := next(); ok {
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
			if s, ok := next(); ok {
				v.Dev = s
			}
		case "scope":
			if s, ok := next(); ok {
				if !scopes[s] {
					if x, err := strconv.Atoi(s); err != nil || x < 0 || x > 255 {
						p.errf(n, "invalid scope '%s'", s)
						continue
					}
				}
				v.Scope = s
			}
		case "label":
			if s, ok := next(); ok {
				if len(s) > 15 {
					p.errf(n, "label '%s' longer than 15 characters", s)
					continue
				}
				v.Label = s
			}
		case "peer":
			if s, ok := next(); ok {
				if a, ok := p.addr(n, s); ok {
					v.Peer = a
				}
			}
		case "preferred_lft":
			if s, ok := next(); ok {
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
			v.NoTrack = true
		case "home", "mngtmpaddr", "noprefixroute", "autojoin", "use_vmac":
			p.d.add(n.Pos, Notice, kw, "parsed, not supported yet")
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
