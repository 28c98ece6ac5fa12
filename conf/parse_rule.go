package conf

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// VRule is a parsed line of static_rules or virtual_rules, in ip-rule words:
//
//	[inet|inet6 WORD] [not] [from PREFIX] [to PREFIX] [priority|preference|order N]
//	    [fwmark N[/MASK]] [iif|dev IFNAME] [oif IFNAME] [suppress_prefixlength N]
//	    table|lookup N | goto N | nop | [type] blackhole|unreachable|prohibit
//	    [protocol N] [no_track]
//
// keepalived's other words (tos, realms, uidrange, l3mdev, tunnel-id, ipproto,
// sport, dport, suppress_ifgroup, track_group) are errors naming the line.
type VRule struct {
	IPv6 bool         `json:"ipv6,omitempty"`
	Not  bool         `json:"not,omitempty"`
	From netip.Prefix `json:"from,omitempty"` // invalid: all
	To   netip.Prefix `json:"to,omitempty"`   // invalid: all
	// Action is "lookup" (table), "goto", "nop", "blackhole",
	// "unreachable" or "prohibit".
	Action string `json:"action"`
	Table  uint32 `json:"table,omitempty"`
	Goto   uint32 `json:"goto,omitempty"`
	// Priority is always set: a rule without one gets keepalived's
	// 16384 counting down, by family, in the order of the file (a warning).
	Priority  uint32 `json:"priority"`
	FwMark    uint32 `json:"fwmark,omitempty"`
	FwMask    uint32 `json:"fwmask,omitempty"`
	HasFwMark bool   `json:"has_fwmark,omitempty"`
	HasFwMask bool   `json:"has_fwmask,omitempty"`
	// SuppressPrefixLen is suppress_prefixlength; -1 when not given.
	SuppressPrefixLen int32  `json:"suppress_prefixlength"`
	IIf               string `json:"iif,omitempty"`
	OIf               string `json:"oif,omitempty"`
	// Proto is the rule's protocol: keepalived's (18) unless no_track,
	// where it is the one given (0: none).
	Proto   uint8 `json:"protocol,omitempty"`
	NoTrack bool  `json:"no_track,omitempty"`
}

// String is the rule in ip-rule words.
func (r *VRule) String() string {
	var b strings.Builder
	if r.IPv6 {
		b.WriteString("inet6 ")
	}
	if r.Not {
		b.WriteString("not ")
	}
	b.WriteString("from ")
	if r.From.IsValid() {
		b.WriteString(r.From.String())
	} else {
		b.WriteString("all")
	}
	if r.To.IsValid() {
		fmt.Fprintf(&b, " to %v", r.To)
	}
	fmt.Fprintf(&b, " priority %d", r.Priority)
	b.WriteString(r.MatchWords(false))
	switch r.Action {
	case "lookup":
		fmt.Fprintf(&b, " lookup %d", r.Table)
	case "goto":
		fmt.Fprintf(&b, " goto %d", r.Goto)
	default:
		b.WriteString(" " + r.Action)
	}
	if r.Proto != 0 {
		fmt.Fprintf(&b, " protocol %d", r.Proto)
	}
	return b.String()
}

// MatchWords are the rule's fwmark, iif, oif and suppress_prefixlength,
// each with a leading space; keepalived: as keepalived's format_iprule
// writes them (no mask 0xffffffff, "suppress_prefixlen").
func (r *VRule) MatchWords(keepalived bool) string {
	var b strings.Builder
	if r.HasFwMark || (keepalived && r.HasFwMask) {
		fmt.Fprintf(&b, " fwmark %#x", r.FwMark)
		if r.HasFwMask && (!keepalived || r.FwMask != 0xffffffff) {
			fmt.Fprintf(&b, "/%#x", r.FwMask)
		}
	}
	if r.IIf != "" {
		b.WriteString(" iif " + r.IIf)
	}
	if r.OIf != "" {
		b.WriteString(" oif " + r.OIf)
	}
	if r.SuppressPrefixLen >= 0 {
		word := "suppress_prefixlength"
		if keepalived {
			word = "suppress_prefixlen"
		}
		fmt.Fprintf(&b, " %s %d", word, r.SuppressPrefixLen)
	}
	return b.String()
}

// ruleStartPriority is where keepalived starts the priorities of the rules
// given none, counting down.
const ruleStartPriority = 16384

// unsupportedRuleWords are keepalived's rule words lvsd does not apply.
var unsupportedRuleWords = map[string]bool{
	"tos": true, "dsfield": true, "realms": true, "uidrange": true, "l3mdev": true, "tunnel-id": true,
	"ipproto": true, "sport": true, "dport": true, "suppress_ifgroup": true, "sup_group": true, "track_group": true,
}

// ruleValueWords are the rule words followed by a value.
var ruleValueWords = map[string]bool{
	"from": true, "to": true, "table": true, "lookup": true, "preference": true, "order": true, "priority": true,
	"fwmark": true, "suppress_prefixlength": true, "sup_pl": true, "dev": true, "iif": true, "oif": true,
	"protocol": true, "goto": true, "type": true,
}

// rules parses a block of static_rules or virtual_rules (kw).
func (p *parser) rules(n *Node, kw string) []Route {
	return p.routeLines(n, func(l *Node, r *Route) bool {
		r.Rule = p.vrule(l, kw)
		return r.Rule != nil
	})
}

// routes parses a block of static_routes or virtual_routes.
func (p *parser) routes(n *Node) []Route {
	return p.routeLines(n, func(l *Node, r *Route) bool {
		r.Parsed = p.vroute(l)
		return r.Parsed != nil
	})
}

// routeLines parses each line of a block of routes or rules with line,
// which fills in the parsed form; a line in error is dropped, as
// keepalived drops it.
func (p *parser) routeLines(n *Node, line func(l *Node, r *Route) bool) []Route {
	var out []Route
	p.blockLines(n, func(l *Node) {
		r := Route{Words: append([]string{l.Key}, l.Words()...), Pos: l.Pos}
		if line(l, &r) {
			out = append(out, r)
		}
	})
	return out
}

// vrule parses one rule line; nil when it cannot be used.
func (p *parser) vrule(n *Node, kw string) *VRule {
	bad := func(format string, a ...any) *VRule {
		p.d.add(n.Pos, Error, kw, fmt.Sprintf(format, a...))
		return nil
	}
	if n.HasBlock {
		return bad("a rule does not take a block")
	}
	w := append([]string{n.Key}, n.Words()...)
	r := &VRule{SuppressPrefixLen: -1}
	family := 0 // 4, 6 or 0 (not known yet)
	setFamily := func(f int) bool {
		if family != 0 && family != f {
			return false
		}
		family = f
		return true
	}
	var haveProto, havePrio, tableOption bool
	setAction := func(a string) bool {
		if r.Action != "" {
			return false
		}
		r.Action = a
		return true
	}
	for i := 0; i < len(w); i++ {
		word := w[i]
		if unsupportedRuleWords[word] {
			return bad("rule option '%s' is not supported", word)
		}
		if ruleValueWords[word] {
			if i+1 >= len(w) {
				return bad("'%s' needs a value", word)
			}
			i++
		}
		v := w[i]
		switch word {
		case "inet", "inet6":
			if !setFamily(map[string]int{"inet": 4, "inet6": 6}[word]) {
				return bad("%s specified for a rule of the other family", word)
			}
			// keepalived 2.2.7 skips the word after inet or inet6 (its
			// parser steps twice): "inet6 table 5" reads "5" as an action.
			i++
		case "from", "to":
			pf, err := ruleAddr(v)
			if err != nil {
				return bad("invalid rule %s address %s", word, v)
			}
			if pf.IsValid() && !setFamily(map[bool]int{true: 4, false: 6}[pf.Addr().Is4()]) {
				return bad("rule specification has mixed IPv4 and IPv6")
			}
			if word == "from" {
				r.From = pf
			} else {
				r.To = pf
			}
		case "table", "lookup":
			t, ok := routeTables[v]
			if !ok {
				x, err := strconv.ParseUint(v, 10, 32)
				if err != nil || x == 0 {
					return bad("routing table %s not valid for a rule (1-4294967295, main, local or default)", v)
				}
				t = uint32(x)
			}
			r.Table = t
			if !setAction("lookup") {
				return bad("cannot specify more than one of table/nop/goto/blackhole/prohibit/unreachable for a rule")
			}
		case "not":
			r.Not = true
		case "preference", "order", "priority":
			x, err := strconv.ParseUint(v, 0, 32)
			if err != nil {
				return bad("invalid rule preference %s", v)
			}
			r.Priority, havePrio = uint32(x), true
		case "fwmark":
			mark, mask, slash := strings.Cut(v, "/")
			x, err := strconv.ParseUint(mark, 0, 32)
			var y uint64
			if err == nil && slash {
				y, err = strconv.ParseUint(mask, 0, 32)
			}
			if err != nil {
				return bad("invalid rule fwmark %s", v)
			}
			r.FwMark, r.FwMask, r.HasFwMark, r.HasFwMask = uint32(x), uint32(y), true, slash
		case "suppress_prefixlength", "sup_pl":
			x, err := strconv.ParseUint(v, 10, 31)
			if err != nil {
				return bad("invalid suppress_prefixlength %s", v)
			}
			r.SuppressPrefixLen, tableOption = int32(x), true
		case "dev", "iif":
			r.IIf = v
		case "oif":
			r.OIf = v
		case "protocol":
			x, err := strconv.ParseUint(v, 10, 8)
			if err != nil {
				p.d.add(n.Pos, Error, kw, fmt.Sprintf("invalid protocol %s", v))
				continue
			}
			r.Proto, haveProto = uint8(x), true
		case "no_track":
			r.NoTrack = true
		case "goto":
			x, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return bad("invalid goto target %s", v)
			}
			r.Goto = uint32(x)
			if !setAction("goto") {
				return bad("cannot specify more than one of table/nop/goto/blackhole/prohibit/unreachable for a rule")
			}
		case "type":
			if v != "blackhole" && v != "unreachable" && v != "prohibit" && v != "nop" {
				return bad("invalid rule action %s", v)
			}
			fallthrough
		case "nop", "blackhole", "unreachable", "prohibit":
			if !setAction(v) {
				return bad("cannot specify more than one of table/nop/goto/blackhole/prohibit/unreachable for a rule")
			}
		default:
			return bad("unknown rule option %s", word)
		}
	}
	switch {
	case r.Action == "goto" && !havePrio:
		return bad("invalid rule - goto target %d specified without preference", r.Goto)
	case r.Action == "goto" && r.Priority >= r.Goto:
		return bad("invalid rule - preference %d >= goto target %d", r.Priority, r.Goto)
	case r.Action == "":
		return bad("no action specified for rule - ignoring")
	case r.Action != "lookup" && tableOption:
		return bad("suppressor specified for non table action - skipping")
	}
	if !r.NoTrack {
		if haveProto && r.Proto != protoKeepalived {
			p.d.add(n.Pos, Error, kw, fmt.Sprintf("rule cannot be tracked if protocol is not RTPROT_KEEPALIVED(%d), resetting protocol", protoKeepalived))
		}
		r.Proto = protoKeepalived
	}
	r.IPv6 = family == 6
	if !havePrio {
		next := &p.nextRulePrio4
		if r.IPv6 {
			next = &p.nextRulePrio6
		}
		r.Priority = ruleStartPriority - *next
		*next++
		p.d.add(n.Pos, Warning, kw, fmt.Sprintf("rule has no preference specified - setting to %d. This is probably not what you want.", r.Priority))
	}
	return r
}

// protoKeepalived is RTPROT_KEEPALIVED.
const protoKeepalived = 18

// ruleAddr parses a rule's from/to: PREFIX, ADDR (a host) or all/any/default
// (the invalid prefix: any address).
func ruleAddr(s string) (netip.Prefix, error) {
	switch s {
	case "all", "any", "default":
		return netip.Prefix{}, nil
	}
	return routeDst(s)
}
