package conf

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// VRoute is a parsed line of virtual_routes:
//
//	[src IP] [blackhole|unreachable|prohibit] [to] PREFIX [via|gw GATEWAY] [dev IFNAME]
//	    [scope SCOPE] [table N] [metric|preference|priority N] [proto N] [onlink] [no_track]
type VRoute struct {
	// Type is "" (unicast), "blackhole", "unreachable" or "prohibit".
	Type  string       `json:"type,omitempty"`
	Dst   netip.Prefix `json:"to"`
	Src   netip.Addr   `json:"src,omitempty"`
	Via   netip.Addr   `json:"via,omitempty"`
	Dev   string       `json:"dev,omitempty"`
	Scope string       `json:"scope,omitempty"` // as scopes; "" the kernel's default
	// Table is the routing table; 0 is the main table (254).
	Table  uint32 `json:"table,omitempty"`
	Metric uint32 `json:"metric,omitempty"`
	// Proto is the route protocol; 0 is keepalived's (RTPROT_KEEPALIVED, 18).
	Proto   uint8 `json:"proto,omitempty"`
	OnLink  bool  `json:"onlink,omitempty"`
	NoTrack bool  `json:"no_track,omitempty"`
}

// String is the route in ip-route words.
func (r *VRoute) String() string {
	var b strings.Builder
	if r.Type != "" {
		b.WriteString(r.Type + " ")
	}
	b.WriteString(r.Dst.String())
	if r.Src.IsValid() {
		fmt.Fprintf(&b, " src %v", r.Src)
	}
	if r.Via.IsValid() {
		fmt.Fprintf(&b, " via %v", r.Via)
	}
	if r.Dev != "" {
		b.WriteString(" dev " + r.Dev)
	}
	if r.Scope != "" {
		b.WriteString(" scope " + r.Scope)
	}
	if r.Table != 0 {
		fmt.Fprintf(&b, " table %d", r.Table)
	}
	if r.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.Metric)
	}
	if r.Proto != 0 {
		fmt.Fprintf(&b, " proto %d", r.Proto)
	}
	if r.OnLink {
		b.WriteString(" onlink")
	}
	return b.String()
}

var routeTables = map[string]uint32{"default": 253, "main": 254, "local": 255}

var routeProtos = map[string]uint8{"redirect": 1, "kernel": 2, "boot": 3, "static": 4, "keepalived": 18, "dhcp": 16}

// vroute parses a line of virtual_routes; nil when it cannot be used.
// Diagnostics name the keyword virtual_routes and the line.
func (p *parser) vroute(n *Node) *VRoute {
	const kw = "virtual_routes"
	bad := func(format string, a ...any) *VRoute {
		p.d.add(n.Pos, Error, kw, fmt.Sprintf(format, a...))
		return nil
	}
	if n.HasBlock {
		return bad("a route does not take a block")
	}
	w := append([]string{n.Key}, n.Words()...)
	r := &VRoute{}
	var haveDst bool
	var err error
	for i := 0; i < len(w); i++ {
		word := w[i]
		next := func() (string, bool) {
			if i+1 >= len(w) {
				return "", false
			}
			i++
			return w[i], true
		}
		var v string
		switch word {
		case "src", "via", "gw", "dev", "oif", "scope", "table", "metric", "preference", "priority", "proto", "protocol", "or":
			var ok bool
			if v, ok = next(); !ok {
				return bad("'%s' needs a value", word)
			}
		}
		switch word {
		case "src":
			if r.Src, err = routeAddr(v); err != nil {
				return bad("src: %v", err)
			}
		case "via", "gw":
			if v == "inet" || v == "inet6" { // "via inet 192.0.2.1"
				if v, _ = next(); v == "" {
					return bad("'%s' needs a value", word)
				}
			}
			if r.Via, err = routeAddr(v); err != nil {
				return bad("%s: %v", word, err)
			}
		case "or":
			return bad("multipath routes ('or %s') are not supported", v)
		case "nexthop":
			return bad("multipath routes ('nexthop') are not supported")
		case "dev", "oif":
			r.Dev = v
		case "scope":
			if !scopes[v] {
				if x, err := strconv.Atoi(v); err != nil || x < 0 || x > 255 {
					return bad("invalid scope '%s'", v)
				}
			}
			r.Scope = v
		case "table":
			t, ok := routeTables[v]
			if !ok {
				x, err := strconv.ParseUint(v, 10, 32)
				if err != nil || x == 0 {
					return bad("invalid table '%s' (1-4294967295, main, local or default)", v)
				}
				t = uint32(x)
			}
			r.Table = t
		case "metric", "preference", "priority":
			x, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return bad("invalid %s '%s' (0-4294967295)", word, v)
			}
			r.Metric = uint32(x)
		case "proto", "protocol":
			pr, ok := routeProtos[v]
			if !ok {
				x, err := strconv.ParseUint(v, 10, 8)
				if err != nil || x == 0 {
					return bad("invalid %s '%s' (1-255 or a name: boot, static, keepalived...)", word, v)
				}
				pr = uint8(x)
			}
			r.Proto = pr
		case "onlink":
			r.OnLink = true
		case "no_track":
			r.NoTrack = true
		case "blackhole", "unreachable", "prohibit":
			if haveDst || r.Type != "" {
				return bad("'%s' must come before the destination", word)
			}
			r.Type = word
		case "unicast":
			if haveDst || r.Type != "" {
				return bad("'%s' must come before the destination", word)
			}
		case "to":
			v, ok := next()
			if !ok {
				return bad("'to' needs a value")
			}
			if haveDst {
				return bad("destination given twice ('%s')", v)
			}
			if r.Dst, err = routeDst(v); err != nil {
				return bad("to: %v", err)
			}
			haveDst = true
		default:
			if haveDst {
				return bad("unknown route option '%s'", word)
			}
			if r.Dst, err = routeDst(word); err != nil {
				return bad("%v", err)
			}
			haveDst = true
		}
	}
	if !haveDst {
		return bad("route without a destination")
	}
	fam := r.Dst.Addr().Is4()
	for i, a := range []netip.Addr{r.Src, r.Via} {
		if a.IsValid() && a.Is4() != fam {
			return bad("%s %v is not of the family of %v", []string{"src", "via"}[i], a, r.Dst)
		}
	}
	if r.Type != "" && (r.Via.IsValid() || r.Dev != "" || r.OnLink) {
		return bad("a %s route takes no via, dev or onlink", r.Type)
	}
	if r.OnLink && !r.Via.IsValid() {
		return bad("onlink needs a gateway (via)")
	}
	return r
}

func routeAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("invalid IP address '%s'", s)
	}
	return a, nil
}

// routeDst parses PREFIX, ADDR (a host route) or "default".
func routeDst(s string) (netip.Prefix, error) {
	if s == "default" {
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0), nil
	}
	addr, bits, slash := strings.Cut(s, "/")
	a, err := routeAddr(addr)
	if err != nil {
		return netip.Prefix{}, err
	}
	n := a.BitLen()
	if slash {
		if n, err = strconv.Atoi(bits); err != nil || n < 0 || n > a.BitLen() {
			return netip.Prefix{}, fmt.Errorf("invalid prefix length '%s' for %s", bits, a)
		}
	}
	pf := netip.PrefixFrom(a, n)
	if pf.Masked() != pf {
		return netip.Prefix{}, fmt.Errorf("invalid prefix '%s': host bits set (%v?)", s, pf.Masked())
	}
	return pf, nil
}
