package conf

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The bgp block (lvsd's own; see docs/lvsd.md, "BGP"):
//
//	bgp {
//	    router_id 192.0.2.11
//	    local_as 65001
//	    listen_port 179
//	    hold_time 9
//	    drain_time 5
//	    community 65001:100
//	    med 10
//	    as_path_prepend 1
//	    vrrp_master VI_1
//	    ipvs_sysctls off
//	    neighbor 192.0.2.1 {
//	        remote_as 65000
//	        hold_time 9
//	        passive
//	        password secret
//	        multihop 2
//	        local_address 192.0.2.11
//	    }
//	    announce {
//	        203.0.113.10
//	        2001:db8::10 med 20 community 65001:7 as_path_prepend 2 vrrp_master VI_6
//	        group VSG_1 med 5
//	        203.0.113.30 fwmark 7
//	    }
//	}

// Defaults of the bgp block.
const (
	DefaultBGPHoldTime = 90 * time.Second
	DefaultBGPPort     = 179
)

// bgpKeywords are the bgp keywords that set one field.
var bgpKeywords = keywords[BGP]{
	"router_id":       set(addrArg, func(b *BGP) *netip.Addr { return &b.RouterID }),
	"local_as":        set(asnArg, func(b *BGP) *uint32 { return &b.LocalAS }),
	"listen_port":     set(intArg(0, 65535), func(b *BGP) *int { return &b.ListenPort }),
	"hold_time":       set(holdTimeArg, func(b *BGP) *time.Duration { return &b.HoldTime }),
	"drain_time":      set(secondsArg(0, 3600), func(b *BGP) *time.Duration { return &b.DrainTime }),
	"vrrp_master":     set(stringArg, func(b *BGP) *string { return &b.VRRPInstance }),
	"ipvs_sysctls":    set(boolArg, func(b *BGP) *bool { return &b.IPVSSysctls }),
	"med":             setPtr(medArg, func(b *BGP) **uint32 { return &b.Attrs.MED }),
	"as_path_prepend": set(intArg(0, 32), func(b *BGP) *int { return &b.Attrs.Prepend }),
	"community": func(p *parser, n *Node, b *BGP) {
		if !p.noBlock(n) || !p.nargs(n, 1, -1) {
			return
		}
		for _, a := range n.Args {
			if c, ok := p.community(n, a.Text); ok {
				b.Attrs.Communities = append(b.Attrs.Communities, c)
			}
		}
	},
}

var bgpBlock = block([]string{"bgp"}, bgpKeywords)

// bgpNeighborKeywords are the keywords of a neighbor block.
var bgpNeighborKeywords = keywords[BGPNeighbor]{
	"remote_as":     set(asnArg, func(nb *BGPNeighbor) *uint32 { return &nb.RemoteAS }),
	"hold_time":     set(holdTimeArg, func(nb *BGPNeighbor) *time.Duration { return &nb.HoldTime }),
	"passive":       set(boolArg, func(nb *BGPNeighbor) *bool { return &nb.Passive }),
	"password":      set(stringArg, func(nb *BGPNeighbor) *string { return &nb.Password }),
	"multihop":      set(intArg(1, 255), func(nb *BGPNeighbor) *int { return &nb.Multihop }),
	"local_address": set(addrArg, func(nb *BGPNeighbor) *netip.Addr { return &nb.LocalAddress }),
	"port":          set(intArg(1, 65535), func(nb *BGPNeighbor) *int { return &nb.Port }),
}

var bgpNeighborBlock = block([]string{"bgp_neighbor"}, bgpNeighborKeywords)

// asnArg parses an AS number (1-4294967295, asplain).
func asnArg(p *parser, n *Node) (uint32, bool) {
	s, ok := p.str(n)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v == 0 {
		p.errf(n, "invalid AS number '%s' (want 1-4294967295)", s)
		return 0, false
	}
	return uint32(v), true
}

// holdTimeArg parses a BGP hold time: 3 to 65535 seconds (RFC 4271).
func holdTimeArg(p *parser, n *Node) (time.Duration, bool) {
	v, ok := p.int1(n, 3, 65535)
	return time.Duration(v) * time.Second, ok
}

func medArg(p *parser, n *Node) (uint32, bool) {
	s, ok := p.str(n)
	if !ok {
		return 0, false
	}
	return p.med(n, s)
}

func (p *parser) med(n *Node, s string) (uint32, bool) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		p.errf(n, "invalid med '%s' (want 0-4294967295)", s)
		return 0, false
	}
	return uint32(v), true
}

// wellKnownCommunities are the RFC 1997 names accepted for a community.
var wellKnownCommunities = map[string]uint32{
	"no_export":           0xFFFFFF01,
	"no_advertise":        0xFFFFFF02,
	"no_export_subconfed": 0xFFFFFF03,
}

// community parses ASN:VALUE (each 0-65535) or a well-known name.
func (p *parser) community(n *Node, s string) (uint32, bool) {
	if c, ok := wellKnownCommunities[strings.ToLower(s)]; ok {
		return c, true
	}
	hi, lo, found := strings.Cut(s, ":")
	a, err1 := strconv.ParseUint(hi, 10, 16)
	b, err2 := strconv.ParseUint(lo, 10, 16)
	if !found || err1 != nil || err2 != nil {
		p.errf(n, "invalid community '%s' (want ASN:VALUE, 0-65535 each, or no_export, no_advertise, no_export_subconfed)", s)
		return 0, false
	}
	return uint32(a)<<16 | uint32(b), true
}

// bgp parses the bgp block; a second one is an error and ignored.
func (p *parser) bgp(n *Node) {
	if !p.wantBlock(n) || !p.nargs(n, 0, 0) {
		return
	}
	if p.cfg.BGP != nil {
		p.errf(n, "bgp already defined at %s - ignoring", p.cfg.BGP.Pos)
		return
	}
	b := &BGP{ListenPort: DefaultBGPPort, HoldTime: DefaultBGPHoldTime, IPVSSysctls: true, Pos: n.Pos}
	var neighbors []*Node
	bgpBlock.each(p, n.Children, b, func(ch *Node) bool {
		switch ch.Key {
		case "neighbor":
			neighbors = append(neighbors, ch) // after the block's own hold_time
		case "announce":
			if ch.HasBlock && !p.nargs(ch, 0, 0) {
				break
			}
			p.blockLines(ch, func(line *Node) {
				if a := p.bgpAnnounce(line); a != nil {
					b.Announce = append(b.Announce, a)
				}
			})
		default:
			return false
		}
		return true
	})
	for _, ch := range neighbors {
		if nb := p.bgpNeighbor(ch, b.HoldTime); nb != nil {
			b.Neighbors = append(b.Neighbors, nb)
		}
	}
	p.cfg.BGP = b
}

func (p *parser) bgpNeighbor(n *Node, hold time.Duration) *BGPNeighbor {
	if !p.wantBlock(n) || !p.nargs(n, 1, 1) {
		return nil
	}
	a, ok := p.addr(n, n.Args[0].Text)
	if !ok {
		return nil
	}
	nb := &BGPNeighbor{Addr: a, HoldTime: hold, Port: DefaultBGPPort, Pos: n.Pos}
	bgpNeighborBlock.each(p, n.Children, nb, nil)
	if nb.RemoteAS == 0 {
		p.errf(n, "neighbor %s: no remote_as - ignoring the neighbor", a)
		return nil
	}
	return nb
}

// bgpAnnounce parses a line of the announce block:
// ADDR|group NAME [med N] [as_path_prepend N] [community C]...
// [vrrp_master NAME] [fwmark N]. Attributes not given are the block's (see
// resolveBGP).
func (p *parser) bgpAnnounce(n *Node) *BGPAnnounce {
	if !p.noBlock(n) {
		return nil
	}
	out := &BGPAnnounce{Pos: n.Pos}
	out.Attrs.Prepend = -1
	w := n.Words()
	what := ""
	if n.Key == "group" {
		if len(w) == 0 {
			p.errf(n, "announce group: no group name")
			return nil
		}
		out.Group, what, w = w[0], "group "+w[0], w[1:]
	} else {
		a, ok := p.addr(n, n.Key)
		if !ok {
			return nil
		}
		out.Prefix, what = netip.PrefixFrom(a, a.BitLen()), a.String()
	}
	errf := func(format string, args ...any) {
		p.d.add(n.Pos, Error, "announce", fmt.Sprintf("announce %s: ", what)+fmt.Sprintf(format, args...))
	}
	for i := 0; i < len(w); i += 2 {
		if i+1 >= len(w) {
			errf("'%s' needs a value", w[i])
			return nil
		}
		val := w[i+1]
		switch w[i] {
		case "med":
			v, ok := p.med(n, val)
			if !ok {
				return nil
			}
			out.Attrs.MED = &v
		case "as_path_prepend":
			v, err := strconv.Atoi(val)
			if err != nil || v < 0 || v > 32 {
				errf("invalid as_path_prepend '%s' (0-32)", val)
				return nil
			}
			out.Attrs.Prepend = v
		case "community":
			c, ok := p.community(n, val)
			if !ok {
				return nil
			}
			out.Attrs.Communities = append(out.Attrs.Communities, c)
		case "vrrp_master":
			out.VRRPInstance = val
		case "fwmark":
			v, err := strconv.ParseUint(val, 0, 32)
			if err != nil || v == 0 || out.Group != "" {
				errf("invalid fwmark '%s' (1-4294967295, on an address line)", val)
				return nil
			}
			out.Fwmark = uint32(v)
		default:
			errf("unknown option '%s' (want med, as_path_prepend, community, vrrp_master, fwmark)", w[i])
			return nil
		}
	}
	return out
}

// bgp checks the bgp block against the rest of the configuration: what
// cannot work removes the block (no BGP runs), with an error; an
// announcement that cannot work is removed.
func (v *validator) bgp() {
	b := v.c.BGP
	if b == nil {
		return
	}
	drop := func(format string, a ...any) {
		v.errf(b.Pos, "bgp", format+" - BGP is not started", a...)
		v.c.BGP = nil
	}
	switch {
	case !b.RouterID.Is4():
		drop("router_id must be an IPv4 address")
		return
	case b.LocalAS == 0:
		drop("no local_as")
		return
	}
	seen := map[netip.Addr]Pos{}
	nbs := b.Neighbors[:0]
	for _, nb := range b.Neighbors {
		if p, dup := seen[nb.Addr]; dup {
			v.errf(nb.Pos, "neighbor", "neighbor %s already defined at %s - ignoring", nb.Addr, p)
			continue
		}
		if nb.LocalAddress.IsValid() && nb.LocalAddress.Is4() != nb.Addr.Is4() {
			v.errf(nb.Pos, "local_address", "neighbor %s: local_address %s is of another family - ignoring the neighbor", nb.Addr, nb.LocalAddress)
			continue
		}
		seen[nb.Addr] = nb.Pos
		nbs = append(nbs, nb)
	}
	b.Neighbors = nbs
	if len(b.Neighbors) == 0 {
		v.warnf(b.Pos, "bgp", "no neighbor: nothing is announced")
	}
	if b.VRRPInstance != "" && v.c.Instance(b.VRRPInstance) == nil {
		v.errf(b.Pos, "vrrp_master", "bgp: vrrp_master %s is not defined", b.VRRPInstance)
		b.VRRPInstance = ""
	}
	annSeen := map[netip.Prefix]Pos{}
	var out []*BGPAnnounce
	for _, line := range b.Announce {
		if line.VRRPInstance != "" && v.c.Instance(line.VRRPInstance) == nil {
			v.errf(line.Pos, "announce", "announce %s: vrrp_master %s is not defined - ignoring", line.what(), line.VRRPInstance)
			continue
		}
		for _, a := range v.expandAnnounce(line) {
			switch p, dup := annSeen[a.Prefix]; {
			case dup:
				v.errf(a.Pos, "announce", "announce %s already given at %s - ignoring", a.Prefix.Addr(), p)
				continue
			case len(a.VirtualServers) == 0 && a.Fwmark != 0:
				v.errf(a.Pos, "announce", "announce %s: no virtual_server has fwmark %d - ignoring", a.Prefix.Addr(), a.Fwmark)
				continue
			case len(a.VirtualServers) == 0:
				v.errf(a.Pos, "announce", "announce %s: no virtual_server has this address (an announced address follows the quorum of its virtual servers: by address, by a virtual_server_group member, or by the line's fwmark) - ignoring", a.Prefix.Addr())
				continue
			}
			annSeen[a.Prefix] = a.Pos
			resolveBGP(b, a)
			out = append(out, a)
		}
	}
	b.Announce = out
}

// MaxBGPGroupAddrs bounds the addresses an announce group line expands to.
const MaxBGPGroupAddrs = 1024

func (a *BGPAnnounce) what() string {
	if a.Group != "" {
		return "group " + a.Group
	}
	return a.Prefix.Addr().String()
}

// expandAnnounce returns the addresses of an announce line, each with the
// virtual servers it follows: the line itself, or one per address of its
// group's members (nil, with an error, for a group that is not defined, not
// used by a virtual server, or too large).
func (v *validator) expandAnnounce(line *BGPAnnounce) []*BGPAnnounce {
	if line.Group == "" {
		line.VirtualServers = v.announcedVS(line.Prefix.Addr(), line.Fwmark)
		return []*BGPAnnounce{line}
	}
	var g *VirtualServerGroup
	for _, x := range v.c.VSGroups {
		if x.Name == line.Group {
			g = x
		}
	}
	used := false
	for _, vs := range v.c.VirtualServers {
		used = used || (vs.Kind == VSByGroup && vs.Group == line.Group)
	}
	switch {
	case g == nil || !used:
		v.errf(line.Pos, "announce", "announce group %s: no virtual_server uses a virtual_server_group of that name - ignoring", line.Group)
		return nil
	case len(g.Addrs) == 0:
		v.errf(line.Pos, "announce", "announce group %s: the group has no address (an fwmark has none: announce the address its clients reach with ADDR fwmark N) - ignoring", line.Group)
		return nil
	}
	var out []*BGPAnnounce
	seen := map[netip.Addr]bool{}
	for _, e := range g.Addrs {
		for a := e.First; a.IsValid() && !e.Last.Less(a); a = a.Next() {
			if seen[a] {
				continue
			}
			if len(out) == MaxBGPGroupAddrs {
				v.errf(line.Pos, "announce", "announce group %s: more than %d addresses - ignoring the line", line.Group, MaxBGPGroupAddrs)
				return nil
			}
			seen[a] = true
			c := *line
			c.Prefix = netip.PrefixFrom(a, a.BitLen())
			c.VirtualServers = v.announcedVS(a, 0)
			out = append(out, &c)
		}
	}
	return out
}

// announcedVS returns the keys of the virtual servers an announced address
// follows: at addr, in a group with addr among its members, and of fwmark
// (0: none).
func (v *validator) announcedVS(addr netip.Addr, fwmark uint32) []string {
	groups := map[string]bool{}
	for _, g := range v.c.VSGroups {
		for _, e := range g.Addrs {
			groups[g.Name] = groups[g.Name] || (!addr.Less(e.First) && !e.Last.Less(addr) && addr.Is4() == e.First.Is4())
		}
		for _, f := range g.Fwmarks {
			groups[g.Name] = groups[g.Name] || (fwmark != 0 && f.Mark == fwmark)
		}
	}
	var keys []string
	for _, vs := range v.c.VirtualServers {
		switch {
		case vs.Kind == VSByAddr && vs.Addr == addr,
			vs.Kind == VSByGroup && groups[vs.Group],
			vs.Kind == VSByFwmark && fwmark != 0 && vs.Fwmark == fwmark:
			if !slices.Contains(keys, vs.Key()) {
				keys = append(keys, vs.Key())
			}
		}
	}
	return keys
}

// resolveBGP gives an announcement the block's attributes it does not set.
func resolveBGP(b *BGP, a *BGPAnnounce) {
	if a.Attrs.MED == nil {
		a.Attrs.MED = b.Attrs.MED
	}
	if a.Attrs.Prepend < 0 {
		a.Attrs.Prepend = b.Attrs.Prepend
	}
	if a.Attrs.Communities == nil {
		a.Attrs.Communities = b.Attrs.Communities
	}
	if a.VRRPInstance == "" {
		a.VRRPInstance = b.VRRPInstance
	}
}
