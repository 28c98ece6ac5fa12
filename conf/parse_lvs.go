package conf

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Schedulers IPVS knows.
var Schedulers = map[string]bool{
	"rr": true, "wrr": true, "lc": true, "wlc": true, "lblc": true, "lblcr": true, "dh": true,
	"sh": true, "sed": true, "nq": true, "mh": true, "fo": true, "ovf": true, "twos": true,
}

var schedFlags = map[string]bool{
	"flag-1": true, "flag-2": true, "flag-3": true,
	"sh-port": true, "sh-fallback": true, "mh-port": true, "mh-fallback": true,
}

// timerSet holds the timers given at one level (nil: inherit).
type timerSet struct {
	delayLoop, connectTimeout, delayBeforeRetry, warmup *time.Duration
	retry                                               *int
}

func (t timerSet) over(parent timerSet) timerSet {
	return timerSet{
		delayLoop:        firstSet(t.delayLoop, parent.delayLoop),
		connectTimeout:   firstSet(t.connectTimeout, parent.connectTimeout),
		delayBeforeRetry: firstSet(t.delayBeforeRetry, parent.delayBeforeRetry),
		warmup:           firstSet(t.warmup, parent.warmup),
		retry:            firstSet(t.retry, parent.retry),
	}
}

// firstSet is v, or else parent when v is nil.
func firstSet[V any](v, parent *V) *V {
	if v != nil {
		return v
	}
	return parent
}

// resolve applies keepalived's defaults for a checker type (nil for a
// server level, where -1 stands for the type's default).
func (t timerSet) resolve(kind *checkerKind) CheckTimers {
	c := CheckTimers{
		DelayLoop:        valueOr(t.delayLoop, 60*time.Second),
		ConnectTimeout:   valueOr(t.connectTimeout, 5*time.Second),
		Retry:            valueOr(t.retry, -1),
		DelayBeforeRetry: valueOr(t.delayBeforeRetry, -1),
		Warmup:           valueOr(t.warmup, -1),
	}
	if kind != nil {
		delayBeforeRetry := kind.delayBeforeRetry
		if delayBeforeRetry < 0 {
			delayBeforeRetry = c.DelayLoop
		}
		c.Retry = valueOr(t.retry, kind.retry)
		c.DelayBeforeRetry = valueOr(t.delayBeforeRetry, delayBeforeRetry)
		c.Warmup = valueOr(t.warmup, c.DelayLoop)
	}
	return c
}

// valueOr is *v, or def when v is nil.
func valueOr[V any](v *V, def V) V {
	if v != nil {
		return *v
	}
	return def
}

// timerKeywords are the timers of a virtual server, a real server or a
// checker, each level inheriting the one above.
var timerKeywords = keywords[timerSet]{
	"delay_loop":         setPtr(secondsArg(0.000001, 1<<31), func(t *timerSet) **time.Duration { return &t.delayLoop }),
	"connect_timeout":    setPtr(secondsArg(0.000001, 1<<31), func(t *timerSet) **time.Duration { return &t.connectTimeout }),
	"delay_before_retry": setPtr(secondsArg(0, 1<<31), func(t *timerSet) **time.Duration { return &t.delayBeforeRetry }),
	"warmup":             setPtr(secondsArg(0, 1<<31), func(t *timerSet) **time.Duration { return &t.warmup }),
	"retry":              retryTimer,
	"nb_get_retry":       retryTimer,
	"nb_sock_retry":      retryTimer,
}

var retryTimer = setPtr(intArg(0, 1<<31-1), func(t *timerSet) **int { return &t.retry })

// scriptTimerKeywords are the timers of a checker that runs a program.
var scriptTimerKeywords = timerKeywords.only("delay_loop", "warmup", "retry", "delay_before_retry")

// forwarding parses "NAT|DR|TUN [type {ipip|gue port NUM|gre} [nocsum|csum|remcsum]]".
func (p *parser) forwarding(n *Node) (Forwarding, bool) {
	if !p.noBlock(n) || !p.nargs(n, 1, -1) {
		return Forwarding{}, false
	}
	w := n.Words()
	m := strings.ToUpper(w[0])
	switch m { // the names as constants: the model keeps no string of the file's text
	case "NAT", "MASQ":
		m = "NAT"
	case "DR", "ROUTE", "GATE":
		m = "DR"
	case "TUN", "IPIP":
		m = "TUN"
	default:
		p.errf(n, "unknown forwarding method '%s' (want NAT, DR or TUN)", w[0])
		return Forwarding{}, false
	}
	nf := Forwarding{Method: m}
	for i := 1; i < len(w); i++ {
		if m != "TUN" {
			p.errf(n, "unexpected '%s' after %s", w[i], m)
			return Forwarding{}, false
		}
		switch w[i] {
		case "type":
			if i+1 >= len(w) {
				p.errf(n, "'type' needs a value")
				return Forwarding{}, false
			}
			i++
			switch w[i] {
			case "ipip", "gre":
				nf.TunnelType = w[i]
			case "gue":
				nf.TunnelType = "gue"
				if i+2 < len(w) && w[i+1] == "port" {
					v, ok := p.port(n, w[i+2])
					if !ok || v == 0 {
						return Forwarding{}, false
					}
					nf.TunnelPort = v
					i += 2
				} else {
					p.errf(n, "gue tunnel needs 'port NUM'")
					return Forwarding{}, false
				}
			default:
				p.errf(n, "unknown tunnel type '%s' (want ipip, gue or gre)", w[i])
				return Forwarding{}, false
			}
		case "nocsum", "csum", "remcsum":
			nf.TunnelCsum = w[i]
		default:
			p.errf(n, "unexpected '%s'", w[i])
			return Forwarding{}, false
		}
	}
	if nf.Method == "TUN" && nf.TunnelType == "" {
		nf.TunnelType = "ipip"
	}
	return nf, true
}

func (p *parser) vsGroup(n *Node) *VirtualServerGroup {
	if !p.wantBlock(n) || !p.nargs(n, 1, 1) {
		return nil
	}
	g := &VirtualServerGroup{Name: n.Args[0].Text, Pos: n.Pos, Source: n.sourceHash()}
	for _, ch := range n.Children {
		if ch.Key == "fwmark" {
			if len(ch.Args) == 0 && keywordTable["virtual_server_group"]["fwmark"].arg {
				p.missingParameter(ch)
				continue
			}
			if !p.noBlock(ch) || !p.nargs(ch, 1, 2) {
				continue
			}
			v, ok := p.intIn(ch, 0, 1, 1<<32-1)
			if !ok {
				continue
			}
			f := VSGroupFwmark{Mark: uint32(v), Pos: ch.Pos}
			if len(ch.Args) == 2 {
				switch ch.Args[1].Text {
				case "inet", "inet6":
					f.Family = ch.Args[1].Text
				default:
					p.errf(ch, "invalid family '%s' (want inet or inet6)", ch.Args[1].Text)
				}
			}
			g.Fwmarks = append(g.Fwmarks, f)
			continue
		}
		if !p.noBlock(ch) {
			continue
		}
		first, last, ok := p.addrRange(ch, ch.Key)
		if !ok {
			continue
		}
		a := VSGroupAddr{First: first, Last: last, Pos: ch.Pos}
		if len(ch.Args) > 0 {
			v, ok := p.port(ch, ch.Args[0].Text)
			if !ok {
				continue
			}
			a.Port = v
			p.nargs(ch, 0, 1)
		}
		g.Addrs = append(g.Addrs, a)
	}
	return g
}

// addrRange parses A, A-last_octet, A-B and A/len.
func (p *parser) addrRange(n *Node, s string) (netip.Addr, netip.Addr, bool) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		pfx, ok := p.prefix(n, s)
		if !ok {
			return netip.Addr{}, netip.Addr{}, false
		}
		pfx = pfx.Masked()
		first := pfx.Addr()
		last := first
		b := last.AsSlice()
		for bit := pfx.Bits(); bit < len(b)*8; bit++ {
			b[bit/8] |= 0x80 >> (bit % 8)
		}
		last, _ = netip.AddrFromSlice(b)
		return first, last, true
	}
	dash := strings.IndexByte(s, '-')
	if dash < 0 {
		a, ok := p.addr(n, s)
		return a, a, ok
	}
	first, ok := p.addr(n, s[:dash])
	if !ok {
		return netip.Addr{}, netip.Addr{}, false
	}
	rest := s[dash+1:]
	var last netip.Addr
	if strings.ContainsAny(rest, ".:") {
		if last, ok = p.addr(n, rest); !ok {
			return netip.Addr{}, netip.Addr{}, false
		}
	} else {
		b := first.AsSlice()
		base := 10
		if first.Is6() {
			base = 16
		}
		v, err := strconv.ParseUint(rest, base, 16)
		if err != nil || (first.Is4() && v > 255) {
			p.errf(n, "invalid range end '%s'", rest)
			return netip.Addr{}, netip.Addr{}, false
		}
		if first.Is4() {
			b[3] = byte(v)
		} else {
			b[14], b[15] = byte(v>>8), byte(v)
		}
		last, _ = netip.AddrFromSlice(b)
	}
	if last.Is4() != first.Is4() || last.Less(first) {
		p.errf(n, "invalid range '%s': the end is before the start", s)
		return netip.Addr{}, netip.Addr{}, false
	}
	return first, last, true
}

func (p *parser) virtualServer(n *Node) *VirtualServer {
	if !p.wantBlock(n) || !p.nargs(n, 1, 2) {
		return nil
	}
	vs := &VirtualServer{Forwarding: Forwarding{Method: "NAT"}, Quorum: 1, Pos: n.Pos, Source: n.sourceHash()}
	switch n.Args[0].Text {
	case "fwmark":
		vs.Kind = VSByFwmark
		v, ok := p.intIn(n, 1, 1, 1<<32-1)
		if !ok {
			return nil
		}
		vs.Fwmark = uint32(v)
	case "group":
		vs.Kind = VSByGroup
		if len(n.Args) < 2 {
			p.errf(n, "missing group name")
			return nil
		}
		vs.Group = n.Args[1].Text
	default:
		vs.Kind = VSByAddr
		a, ok := p.addr(n, n.Args[0].Text)
		if !ok {
			return nil
		}
		vs.Addr = a
		if len(n.Args) > 1 {
			v, ok := p.port(n, n.Args[1].Text)
			if !ok {
				return nil
			}
			vs.Port = v
		}
	}
	ts := &p.vsTimers
	*ts = timerSet{}
	var protoNode, sorryNode *Node
	rsNodes := make([]*Node, 0, len(n.Children)) // one allocation: appended in a closure, it cannot stay on the stack
	var sorryMethod Forwarding
	fwdSet := false
	virtualServerBlock.each(p, n.Children, vs, func(ch *Node) bool {
		switch ch.Key {
		case "real_server":
			rsNodes = append(rsNodes, ch)
		case "lb_kind", "lvs_method":
			if f, ok := p.forwarding(ch); ok {
				vs.Forwarding = f
			}
			fwdSet = true
		case "persistence_timeout":
			if p.noBlock(ch) && p.nargs(ch, 0, 1) {
				vs.Persistent = true
				vs.PersistenceTimeout = 360 * time.Second
				if len(ch.Args) == 1 {
					if v, ok := p.intIn(ch, 0, 1, 1<<31-1); ok {
						vs.PersistenceTimeout = time.Duration(v) * time.Second
					}
				}
			}
		case "persistence_granularity":
			if s, ok := p.str(ch); ok {
				if a, ok := p.mask(ch, s); ok {
					vs.PersistenceGranularity = a
					vs.granularityPos = ch.Pos
				}
			}
		case "protocol":
			if v, ok := protocolArg(p, ch); ok {
				vs.Protocol = v
				protoNode = ch
			}
		case "sorry_server":
			sorryNode = ch
		case "sorry_server_lvs_method":
			if f, ok := p.forwarding(ch); ok {
				sorryMethod = f
			}
		default:
			if !schedFlags[ch.Key] {
				return false
			}
			if p.noBlock(ch) && !contains(vs.SchedFlags, ch.Key) {
				vs.SchedFlags = append(vs.SchedFlags, ch.Key)
			}
		}
		return true
	})
	// keepalived 2.2.7's defaults, with its warnings (so -t answers 5 as it does).
	if vs.Protocol == "" {
		vs.Protocol = "TCP" // not used by an fwmark service
		if vs.Kind != VSByFwmark {
			p.d.add(n.Pos, Warning, "protocol", fmt.Sprintf("virtual server %s: no protocol set - defaulting to UDP", vs))
			vs.Protocol = "UDP"
		}
	}
	if vs.Scheduler == "" {
		p.d.add(n.Pos, Warning, "lvs_sched", fmt.Sprintf("virtual server %s: no scheduler set, setting default 'wlc'", vs))
		vs.Scheduler = "wlc"
	}
	if !fwdSet && !rsForwarding(rsNodes) {
		p.d.add(n.Pos, Warning, "lvs_method", fmt.Sprintf("virtual server %s: no forwarding method set, setting default NAT", vs))
	}
	if vs.Kind == VSByFwmark && protoNode != nil {
		p.warnf(protoNode, "virtual server %s: protocol specified for fwmark - protocol will be ignored", vs)
	}
	vs.Timers = ts.resolve(nil)
	for _, rn := range rsNodes {
		if rs := p.realServer(rn, vs, *ts); rs != nil {
			vs.RealServers = append(vs.RealServers, rs)
		}
	}
	if sorryNode != nil {
		if p.noBlock(sorryNode) && p.nargs(sorryNode, 1, 2) {
			if a, ok := p.addr(sorryNode, sorryNode.Args[0].Text); ok {
				ss := &RealServer{Addr: a, Weight: 1, Forwarding: vs.Forwarding, Pos: sorryNode.Pos, InhibitOnFailure: vs.SorryServerInhibit}
				if len(sorryNode.Args) > 1 {
					if v, ok := p.port(sorryNode, sorryNode.Args[1].Text); ok {
						ss.Port = v
					}
				} else {
					ss.Port = vs.Port
				}
				if sorryMethod.Method != "" {
					ss.Forwarding = sorryMethod
				}
				vs.SorryServer = ss
			}
		}
	}
	return vs
}

var virtualServerBlock = block([]string{"virtual_server", "timers"}, virtualServerKeywords,
	embed(timerKeywords, func(p *parser, _ *VirtualServer) *timerSet { return &p.vsTimers }))

// virtualServerKeywords are the virtual_server keywords that set one field.
var virtualServerKeywords = keywords[VirtualServer]{
	"lb_algo":              set(schedulerArg, func(vs *VirtualServer) *string { return &vs.Scheduler }),
	"lvs_sched":            set(schedulerArg, func(vs *VirtualServer) *string { return &vs.Scheduler }),
	"ops":                  set(boolArg, func(vs *VirtualServer) *bool { return &vs.OPS }),
	"persistence_engine":   set(stringArg, func(vs *VirtualServer) *string { return &vs.PersistenceEngine }),
	"ha_suspend":           set(boolArg, func(vs *VirtualServer) *bool { return &vs.HASuspend }),
	"smtp_alert":           set(boolPtrArg, func(vs *VirtualServer) **bool { return &vs.SMTPAlert }),
	"virtualhost":          set(stringArg, func(vs *VirtualServer) *string { return &vs.VirtualHost }),
	"alpha":                set(boolArg, func(vs *VirtualServer) *bool { return &vs.Alpha }),
	"omega":                set(boolArg, func(vs *VirtualServer) *bool { return &vs.Omega }),
	"quorum":               set(intArg(1, 1<<31-1), func(vs *VirtualServer) *int { return &vs.Quorum }),
	"hysteresis":           set(intArg(0, 1<<31-1), func(vs *VirtualServer) *int { return &vs.Hysteresis }),
	"quorum_up":            set(scriptArg, func(vs *VirtualServer) **Script { return &vs.QuorumUp }),
	"quorum_down":          set(scriptArg, func(vs *VirtualServer) **Script { return &vs.QuorumDown }),
	"ip_family":            set(familyArg, func(vs *VirtualServer) *string { return &vs.IPFamily }),
	"sorry_server_inhibit": set(boolArg, func(vs *VirtualServer) *bool { return &vs.SorryServerInhibit }),
	"inhibit_on_failure":   set(boolArg, func(vs *VirtualServer) *bool { return &vs.InhibitOnFailure }),
}

var protocolArg = choiceArg("unknown protocol '%s' (want TCP, UDP or SCTP)", true, "TCP", "UDP", "SCTP")

// schedulerArg parses a scheduler name.
func schedulerArg(p *parser, n *Node) (string, bool) {
	v, ok := p.str(n)
	if ok && !Schedulers[v] {
		p.errf(n, "unknown scheduler '%s'", v)
		return "", false
	}
	// A copy: a string of the file's text would keep the whole text alive.
	return strings.Clone(v), ok
}

// rsForwarding reports whether any real_server block sets its own forwarding method.
func rsForwarding(rsNodes []*Node) bool {
	for _, rn := range rsNodes {
		for _, ch := range rn.Children {
			if ch.Key == "lvs_method" || ch.Key == "lb_kind" {
				return true
			}
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// mask parses a persistence granularity netmask (dotted IPv4 mask or a prefix length).
func (p *parser) mask(n *Node, s string) (netip.Addr, bool) {
	if v, err := strconv.Atoi(s); err == nil {
		if v < 1 || v > 128 {
			p.errf(n, "invalid netmask '%s'", s)
			return netip.Addr{}, false
		}
		if v <= 32 {
			m := uint32(0xffffffff) << (32 - v)
			return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}), true
		}
		var b [16]byte
		for i := 0; i < v; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
		return netip.AddrFrom16(b), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		p.errf(n, "invalid netmask '%s'", s)
		return netip.Addr{}, false
	}
	// A mask must be contiguous ones.
	b := a.AsSlice()
	seenZero := false
	for _, x := range b {
		for bit := 7; bit >= 0; bit-- {
			one := x&(1<<bit) != 0
			if one && seenZero {
				p.errf(n, "invalid netmask '%s': not contiguous", s)
				return netip.Addr{}, false
			}
			if !one {
				seenZero = true
			}
		}
	}
	return a, true
}

func (p *parser) realServer(n *Node, vs *VirtualServer, vsTimers timerSet) *RealServer {
	if !p.nargs(n, 1, 2) {
		return nil
	}
	a, ok := p.addr(n, n.Args[0].Text)
	if !ok {
		return nil
	}
	rs := &RealServer{Addr: a, Weight: 1, Forwarding: vs.Forwarding, InhibitOnFailure: vs.InhibitOnFailure,
		Alpha: vs.Alpha, VirtualHost: vs.VirtualHost, Pos: n.Pos}
	if len(n.Args) > 1 {
		v, ok := p.port(n, n.Args[1].Text)
		if !ok {
			return nil
		}
		rs.Port = v
	} else {
		rs.Port = vs.Port
	}
	ts := &p.rsTimers
	*ts = timerSet{}
	var checkers []*Node
	// A loop of its own, not each: the checkers' slice stays on the stack.
	for _, ch := range n.Children {
		info := realServerBlock.parse(p, ch, rs)
		if info == nil {
			continue
		}
		if kind := checkerKindOf(ch.Key); kind != nil && !kind.notYet {
			checkers = append(checkers, ch)
		} else {
			p.unhandled(ch, info)
		}
	}
	merged := ts.over(vsTimers)
	rs.Timers = merged.resolve(nil)
	for _, cn := range checkers {
		rs.Checkers = append(rs.Checkers, p.checker(cn, checkerKindOf(cn.Key), rs, merged)...)
	}
	return rs
}

var realServerBlock = block([]string{"real_server", "timers"}, realServerKeywords,
	embed(timerKeywords, func(p *parser, _ *RealServer) *timerSet { return &p.rsTimers }))

// realServerKeywords are the real_server keywords that set one field.
var realServerKeywords = keywords[RealServer]{
	"weight":             set(intArg(0, 65535), func(rs *RealServer) *int { return &rs.Weight }),
	"lvs_method":         set(forwardingArg, func(rs *RealServer) *Forwarding { return &rs.Forwarding }),
	"lb_kind":            set(forwardingArg, func(rs *RealServer) *Forwarding { return &rs.Forwarding }),
	"inhibit_on_failure": set(boolArg, func(rs *RealServer) *bool { return &rs.InhibitOnFailure }),
	"notify_up":          set(scriptArg, func(rs *RealServer) **Script { return &rs.NotifyUp }),
	"notify_down":        set(scriptArg, func(rs *RealServer) **Script { return &rs.NotifyDown }),
	"uthreshold":         set(intArg(0, 1<<31-1), func(rs *RealServer) *int { return &rs.UThreshold }),
	"lthreshold":         set(intArg(0, 1<<31-1), func(rs *RealServer) *int { return &rs.LThreshold }),
	"alpha":              set(boolArg, func(rs *RealServer) *bool { return &rs.Alpha }),
	"smtp_alert":         set(boolPtrArg, func(rs *RealServer) **bool { return &rs.SMTPAlert }),
	"virtualhost":        set(stringArg, func(rs *RealServer) *string { return &rs.VirtualHost }),
}

var forwardingArg valueParser[Forwarding] = (*parser).forwarding
