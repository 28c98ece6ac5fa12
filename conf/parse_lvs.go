package conf

import (
	"encoding/hex"
	"errors"
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
	if t.delayLoop == nil {
		t.delayLoop = parent.delayLoop
	}
	if t.connectTimeout == nil {
		t.connectTimeout = parent.connectTimeout
	}
	if t.delayBeforeRetry == nil {
		t.delayBeforeRetry = parent.delayBeforeRetry
	}
	if t.warmup == nil {
		t.warmup = parent.warmup
	}
	if t.retry == nil {
		t.retry = parent.retry
	}
	return t
}

// resolve applies keepalived's defaults for a checker type ("" for a server level).
func (t timerSet) resolve(typ string) CheckTimers {
	c := CheckTimers{DelayLoop: 60 * time.Second, ConnectTimeout: 5 * time.Second, Retry: -1, DelayBeforeRetry: -1, Warmup: -1}
	if t.delayLoop != nil {
		c.DelayLoop = *t.delayLoop
	}
	if t.connectTimeout != nil {
		c.ConnectTimeout = *t.connectTimeout
	}
	if t.retry != nil {
		c.Retry = *t.retry
	}
	if t.delayBeforeRetry != nil {
		c.DelayBeforeRetry = *t.delayBeforeRetry
	}
	if t.warmup != nil {
		c.Warmup = *t.warmup
	}
	if typ == "" {
		return c
	}
	if c.Retry < 0 {
		switch typ {
		case CheckDNS:
			c.Retry = 3
		case CheckMisc:
			c.Retry = 0
		default:
			c.Retry = 1
		}
	}
	if c.DelayBeforeRetry < 0 {
		switch typ {
		case CheckDNS:
			c.DelayBeforeRetry = c.DelayLoop
		case CheckHTTP, CheckSSL:
			c.DelayBeforeRetry = 3 * time.Second
		default:
			c.DelayBeforeRetry = time.Second
		}
	}
	if c.Warmup < 0 {
		c.Warmup = c.DelayLoop
	}
	return c
}

// timer parses a keyword shared by virtual server, real server and checker levels.
func (p *parser) timer(n *Node, t *timerSet) bool {
	switch n.Key {
	case "delay_loop":
		if v, ok := p.dur(n, 0.000001, 1<<31); ok {
			t.delayLoop = &v
		}
	case "connect_timeout":
		if v, ok := p.dur(n, 0.000001, 1<<31); ok {
			t.connectTimeout = &v
		}
	case "delay_before_retry":
		if v, ok := p.dur(n, 0, 1<<31); ok {
			t.delayBeforeRetry = &v
		}
	case "warmup":
		if v, ok := p.dur(n, 0, 1<<31); ok {
			t.warmup = &v
		}
	case "retry", "nb_get_retry", "nb_sock_retry":
		if v, ok := p.int1(n, 0, 1<<31-1); ok {
			t.retry = &v
		}
	default:
		return false
	}
	return true
}

// forwarding parses "NAT|DR|TUN [type {ipip|gue port NUM|gre} [nocsum|csum|remcsum]]".
func (p *parser) forwarding(n *Node, f *Forwarding) {
	if !p.noBlock(n) || !p.nargs(n, 1, -1) {
		return
	}
	w := n.Words()
	m := strings.ToUpper(w[0])
	switch m {
	case "NAT", "DR", "TUN":
	case "MASQ":
		m = "NAT"
	case "ROUTE", "GATE":
		m = "DR"
	case "IPIP":
		m = "TUN"
	default:
		p.errf(n, "unknown forwarding method '%s' (want NAT, DR or TUN)", w[0])
		return
	}
	nf := Forwarding{Method: m}
	for i := 1; i < len(w); i++ {
		if m != "TUN" {
			p.errf(n, "unexpected '%s' after %s", w[i], m)
			return
		}
		switch w[i] {
		case "type":
			if i+1 >= len(w) {
				p.errf(n, "'type' needs a value")
				return
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
						return
					}
					nf.TunnelPort = v
					i += 2
				} else {
					p.errf(n, "gue tunnel needs 'port NUM'")
					return
				}
			default:
				p.errf(n, "unknown tunnel type '%s' (want ipip, gue or gre)", w[i])
				return
			}
		case "nocsum", "csum", "remcsum":
			nf.TunnelCsum = w[i]
		default:
			p.errf(n, "unexpected '%s'", w[i])
			return
		}
	}
	if nf.Method == "TUN" && nf.TunnelType == "" {
		nf.TunnelType = "ipip"
	}
	*f = nf
}

func (p *parser) vsGroup(n *Node) *VirtualServerGroup {
	if !p.wantBlock(n) || !p.nargs(n, 1, 1) {
		return nil
	}
	g := &VirtualServerGroup{Name: n.Args[0].Text, Pos: n.Pos, Source: n.sourceHash()}
	for _, ch := range n.Children {
		if ch.Key == "fwmark" {
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
	var ts timerSet
	var protoNode *Node
	var rsNodes []*Node
	sorryMethod := Forwarding{}
	var sorryNode, sorryMethodNode *Node
	inhibitSet, fwdSet := false, false
	for _, ch := range n.Children {
		if p.timer(ch, &ts) {
			continue
		}
		switch ch.Key {
		case "lb_algo", "lvs_sched":
			if v, ok := p.str(ch); ok {
				if !Schedulers[v] {
					p.errf(ch, "unknown scheduler '%s'", v)
				} else {
					vs.Scheduler = v
				}
			}
		case "flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback", "mh-port", "mh-fallback":
			if p.noBlock(ch) && !contains(vs.SchedFlags, ch.Key) {
				vs.SchedFlags = append(vs.SchedFlags, ch.Key)
			}
		case "ops":
			vs.OPS = p.boolOpt(ch)
		case "lb_kind", "lvs_method":
			p.forwarding(ch, &vs.Forwarding)
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
		case "persistence_engine":
			if v, ok := p.str(ch); ok {
				vs.PersistenceEngine = v
			}
		case "protocol":
			if v, ok := p.str(ch); ok {
				switch strings.ToUpper(v) {
				case "TCP", "UDP", "SCTP":
					vs.Protocol = strings.ToUpper(v)
					protoNode = ch
				default:
					p.errf(ch, "unknown protocol '%s' (want TCP, UDP or SCTP)", v)
				}
			}
		case "ha_suspend":
			vs.HASuspend = p.boolOpt(ch)
		case "smtp_alert":
			vs.SMTPAlert = p.boolPtr(ch)
		case "virtualhost":
			if v, ok := p.str(ch); ok {
				vs.VirtualHost = v
			}
		case "alpha":
			vs.Alpha = p.boolOpt(ch)
		case "omega":
			vs.Omega = p.boolOpt(ch)
		case "quorum":
			if v, ok := p.int1(ch, 1, 1<<31-1); ok {
				vs.Quorum = v
			}
		case "hysteresis":
			if v, ok := p.int1(ch, 0, 1<<31-1); ok {
				vs.Hysteresis = v
			}
		case "quorum_up":
			vs.QuorumUp = p.script(ch)
		case "quorum_down":
			vs.QuorumDown = p.script(ch)
		case "ip_family":
			if v, ok := p.str(ch); ok {
				if v != "inet" && v != "inet6" {
					p.errf(ch, "invalid family '%s' (want inet or inet6)", v)
				} else {
					vs.IPFamily = v
				}
			}
		case "sorry_server":
			sorryNode = ch
		case "sorry_server_inhibit":
			vs.SorryServerInhibit = p.boolOpt(ch)
		case "sorry_server_lvs_method":
			p.forwarding(ch, &sorryMethod)
			sorryMethodNode = ch
		case "inhibit_on_failure":
			vs.InhibitOnFailure = p.boolOpt(ch)
			inhibitSet = true
		case "real_server":
			rsNodes = append(rsNodes, ch)
		case "snmp_name", "nat_mask":
			p.notYet(ch)
		default:
			p.unknown(ch)
		}
	}
	_ = inhibitSet
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
	vs.Timers = ts.resolve("")
	for _, rn := range rsNodes {
		if rs := p.realServer(rn, vs, ts); rs != nil {
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
				if sorryMethodNode != nil && sorryMethod.Method != "" {
					ss.Forwarding = sorryMethod
				}
				vs.SorryServer = ss
			}
		}
	}
	return vs
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
	var ts timerSet
	var checkerNodes []*Node
	for _, ch := range n.Children {
		if p.timer(ch, &ts) {
			continue
		}
		switch ch.Key {
		case "weight":
			if v, ok := p.int1(ch, 0, 65535); ok {
				rs.Weight = v
			}
		case "lvs_method", "lb_kind":
			p.forwarding(ch, &rs.Forwarding)
		case "inhibit_on_failure":
			rs.InhibitOnFailure = p.boolOpt(ch)
		case "notify_up":
			rs.NotifyUp = p.script(ch)
		case "notify_down":
			rs.NotifyDown = p.script(ch)
		case "uthreshold":
			if v, ok := p.int1(ch, 0, 1<<31-1); ok {
				rs.UThreshold = v
			}
		case "lthreshold":
			if v, ok := p.int1(ch, 0, 1<<31-1); ok {
				rs.LThreshold = v
			}
		case "alpha":
			rs.Alpha = p.boolOpt(ch)
		case "smtp_alert":
			rs.SMTPAlert = p.boolPtr(ch)
		case "virtualhost":
			if v, ok := p.str(ch); ok {
				rs.VirtualHost = v
			}
		case CheckTCP, CheckHTTP, CheckSSL, CheckMisc, CheckSMTP, CheckDNS, CheckUDP, CheckPing, CheckExpect:
			checkerNodes = append(checkerNodes, ch)
		case CheckFile, CheckBFD, "snmp_name":
			p.notYet(ch)
		default:
			p.unknown(ch)
		}
	}
	merged := ts.over(vsTimers)
	rs.Timers = merged.resolve("")
	for _, cn := range checkerNodes {
		rs.Checkers = append(rs.Checkers, p.checker(cn, rs, merged)...)
	}
	return rs
}

// checker parses a checker block. It returns several checkers for an
// SMTP_CHECK with host { } sub-blocks (one per host, as keepalived).
func (p *parser) checker(n *Node, rs *RealServer, rsTimers timerSet) []*Checker {
	if !p.wantBlock(n) {
		return nil
	}
	c := &Checker{Type: n.Key, Pos: n.Pos, VirtualHost: rs.VirtualHost}
	if n.Key == CheckUDP {
		c.MaxReplyLength = 255
	}
	var ts timerSet
	var hosts []*Node
	portSet := false
	for _, ch := range n.Children {
		if n.Key != CheckMisc || ch.Key == "delay_loop" || ch.Key == "warmup" || ch.Key == "retry" || ch.Key == "delay_before_retry" {
			if p.timer(ch, &ts) {
				continue
			}
		}
		if n.Key != CheckMisc && p.connOpt(ch, c, &portSet) {
			continue
		}
		switch ch.Key {
		case "alpha":
			c.Alpha = p.boolPtr(ch)
			continue
		case "log_all_failures":
			c.LogAllFailures = p.boolOpt(ch)
			continue
		}
		switch n.Key {
		case CheckHTTP, CheckSSL:
			switch ch.Key {
			case "url":
				if u, ok := p.url(ch); ok {
					c.URLs = append(c.URLs, u)
				}
				continue
			case "virtualhost":
				if v, ok := p.str(ch); ok {
					c.VirtualHost = v
				}
				continue
			case "http_protocol":
				if v, ok := p.str(ch); ok {
					switch v {
					case "1.0", "1.0C", "1.0c", "1.1":
						c.HTTPProtocol = strings.ToUpper(v)
					default:
						p.errf(ch, "invalid http_protocol '%s' (want 1.0, 1.0C or 1.1)", v)
					}
				}
				continue
			case "fast_recovery":
				c.FastRecovery = p.boolOpt(ch)
				continue
			case "enable_sni":
				if n.Key == CheckSSL {
					c.EnableSNI = p.boolOpt(ch)
					continue
				}
			}
		case CheckMisc:
			switch ch.Key {
			case "misc_path":
				c.MiscPath = p.miscPath(ch)
				continue
			case "misc_timeout":
				if v, ok := p.dur(ch, 0.001, 1<<31); ok {
					c.MiscTimeout = v
				}
				continue
			case "misc_dynamic":
				c.MiscDynamic = p.boolOpt(ch)
				continue
			case "user":
				if p.noBlock(ch) && p.nargs(ch, 1, 2) && c.MiscPath != nil {
					c.MiscPath.User = ch.Args[0].Text
					if len(ch.Args) > 1 {
						c.MiscPath.Group = ch.Args[1].Text
					}
				}
				continue
			}
		case CheckSMTP:
			switch ch.Key {
			case "helo_name":
				if v, ok := p.str(ch); ok {
					c.HeloName = v
				}
				continue
			case "host":
				if p.wantBlock(ch) {
					hosts = append(hosts, ch)
				}
				continue
			}
		case CheckDNS:
			switch ch.Key {
			case "type":
				if v, ok := p.str(ch); ok {
					switch strings.ToUpper(v) {
					case "A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY":
						c.DNSType = strings.ToUpper(v)
					default:
						p.errf(ch, "unknown DNS type '%s'", v)
					}
				}
				continue
			case "name":
				if v, ok := p.str(ch); ok {
					if err := checkDNSName(v); err != nil {
						p.errf(ch, "DNS_CHECK name '%s' %v - ignoring", v, err)
					} else {
						c.DNSName = v
					}
				}
				continue
			}
		case CheckUDP:
			switch ch.Key {
			case "payload":
				if b, ok := p.hexStr(ch); ok {
					c.Payload = b
				}
				continue
			case "require_reply":
				if p.noBlock(ch) {
					c.RequireReply = true
					c.ReplyPattern = strings.Join(ch.Words(), " ")
					if _, _, err := c.ReplyMatch(); err != nil {
						// As keepalived: a reply is still required, its content is not checked.
						p.errf(ch, "invalid hex string '%s' (%v) - the reply's content is not checked", c.ReplyPattern, err)
						c.ReplyPattern = ""
					}
				}
				continue
			case "min_reply_length":
				if v, ok := p.int1(ch, 0, 65535); ok {
					c.MinReplyLength = v
				}
				continue
			case "max_reply_length":
				if v, ok := p.int1(ch, 0, 65535); ok {
					c.MaxReplyLength = v
				}
				continue
			}
		case CheckExpect:
			switch ch.Key {
			case "send":
				if v, ok := p.str(ch); ok {
					c.Send = v
				}
				continue
			case "expect":
				if v, ok := p.str(ch); ok {
					c.Expect = v
				}
				continue
			case "expect_regex":
				if v, ok := p.str(ch); ok {
					c.ExpectRegex = v
				}
				continue
			}
		}
		p.unknown(ch)
	}
	if !portSet {
		c.ConnectPort = rs.Port
	}
	if c.ConnectPort == 0 {
		// No port from the checker or the real server (a fwmark service):
		// the protocol's own.
		switch n.Key {
		case CheckSMTP:
			c.ConnectPort = 25
		case CheckDNS:
			c.ConnectPort = 53
		}
	}
	if n.Key == CheckDNS {
		if c.DNSType == "" {
			c.DNSType = "SOA"
		}
		if c.DNSName == "" {
			c.DNSName = "."
		}
	}
	if n.Key == CheckHTTP || n.Key == CheckSSL {
		if c.HTTPProtocol == "" {
			c.HTTPProtocol = "1.0"
		}
	}
	merged := ts.over(rsTimers)
	c.Timers = merged.resolve(n.Key)
	if len(hosts) == 0 {
		return []*Checker{c}
	}
	var out []*Checker
	for _, h := range hosts {
		hc := *c
		hc.Pos = h.Pos
		hostPort := false
		for _, ch := range h.Children {
			if !p.connOpt(ch, &hc, &hostPort) {
				p.unknown(ch)
			}
		}
		if !hostPort {
			hc.ConnectPort = c.ConnectPort
		}
		out = append(out, &hc)
	}
	return out
}

// connOpt parses the generic connection options of a checker.
func (p *parser) connOpt(n *Node, c *Checker, portSet *bool) bool {
	switch n.Key {
	case "connect_ip":
		if a, ok := p.addr1(n); ok {
			c.ConnectIP = a
		}
	case "connect_port":
		if s, ok := p.str(n); ok {
			if v, ok := p.port(n, s); ok {
				c.ConnectPort = v
				*portSet = true
			}
		}
	case "bindto":
		if a, ok := p.addr1(n); ok {
			c.BindTo = a
		}
	case "bind_port":
		if s, ok := p.str(n); ok {
			if v, ok := p.port(n, s); ok {
				c.BindPort = v
			}
		}
	case "bind_if":
		if v, ok := p.str(n); ok {
			c.BindIf = v
		}
	case "fwmark":
		if v, ok := p.int1(n, 0, 1<<32-1); ok {
			c.Fwmark = uint32(v)
		}
	default:
		return false
	}
	return true
}

// miscPath parses misc_path: a quoted command line, or a program and its arguments.
func (p *parser) miscPath(n *Node) *Script {
	if !p.noBlock(n) || !p.nargs(n, 1, -1) {
		return nil
	}
	s := &Script{Pos: n.Pos}
	for _, a := range n.Args {
		if a.Quoted {
			s.Args = append(s.Args, splitCommand(a.Text)...)
		} else {
			s.Args = append(s.Args, a.Text)
		}
	}
	if len(s.Args) == 0 {
		p.errf(n, "empty command")
		return nil
	}
	return s
}

func (p *parser) url(n *Node) (URL, bool) {
	if !p.wantBlock(n) {
		return URL{}, false
	}
	u := URL{Pos: n.Pos}
	for _, ch := range n.Children {
		switch ch.Key {
		case "path":
			if v, ok := p.str(ch); ok {
				u.Path = v
			}
		case "digest":
			if v, ok := p.str(ch); ok {
				if b, err := hex.DecodeString(v); err != nil || len(b) != 16 {
					p.errf(ch, "invalid MD5 digest '%s' (want 32 hex digits)", v)
				} else {
					u.Digest = strings.ToLower(v)
				}
			}
		case "status_code":
			if p.noBlock(ch) && p.nargs(ch, 1, -1) {
				for _, w := range ch.Words() {
					lo, hi := w, w
					if i := strings.IndexByte(w, '-'); i > 0 {
						lo, hi = w[:i], w[i+1:]
					}
					l, err1 := strconv.Atoi(lo)
					h, err2 := strconv.Atoi(hi)
					if err1 != nil || err2 != nil || l < 100 || h > 599 || l > h {
						p.errf(ch, "invalid status code '%s' (100-599 or a range)", w)
						continue
					}
					u.StatusCodes = append(u.StatusCodes, CodeRange{l, h})
				}
			}
		case "virtualhost":
			if v, ok := p.str(ch); ok {
				u.VirtualHost = v
			}
		case "regex":
			if v, ok := p.str(ch); ok {
				u.Regex = v
			}
		case "regex_no_match":
			u.RegexNoMatch = p.boolOpt(ch)
		case "regex_options", "regex_stack", "regex_min_offset", "regex_max_offset":
			p.notYet(ch)
		default:
			p.unknown(ch)
		}
	}
	if u.Path == "" {
		p.d.add(n.Pos, Error, "url", "url without path - ignoring")
		return u, false
	}
	return u, true
}

// hexStr parses keepalived's free-format hex string ("Ab12f 3 456").
func (p *parser) hexStr(n *Node) ([]byte, bool) {
	if !p.noBlock(n) || !p.nargs(n, 1, -1) {
		return nil, false
	}
	str := strings.Join(n.Words(), " ")
	b, _, err := readHexStr(str, false)
	if err != nil {
		p.errf(n, "invalid hex string '%s' (%v)", str, err)
		return nil, false
	}
	return b, true
}

// checkDNSName rejects a DNS_CHECK name that cannot be sent as a query:
// an empty label (as keepalived), a label of more than 63 octets or a name
// of more than 253.
func checkDNSName(name string) error {
	if name == "." {
		return nil
	}
	if strings.HasPrefix(name, ".") || strings.Contains(name, "..") {
		return errors.New("has an empty label")
	}
	name = strings.TrimSuffix(name, ".")
	if len(name) > 253 {
		return errors.New("is longer than 253 octets")
	}
	for _, l := range strings.Split(name, ".") {
		if len(l) > 63 {
			return fmt.Errorf("has a label longer than 63 octets (%.20s...)", l)
		}
	}
	return nil
}
