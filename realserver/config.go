package realserver

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/lvsd/lvsd/conf"
)

// maxRange bounds the addresses taken from one virtual_server_group range.
const maxRange = 256

// FromConfig derives a real server's spec from the directors'
// keepalived.conf: the VIPs of every virtual server that has one of the
// local addresses as a DR or TUN real server (sorry servers included). It
// returns notices for what it cannot derive (firewall-mark virtual
// servers, whose addresses the configuration does not hold; tunnel types
// this side cannot receive). The VIPs of a real_server_vips block are
// taken as they are listed.
func FromConfig(cfg *conf.Config, local []netip.Addr) (Spec, []string) {
	s := Spec{TUN: map[string][]netip.Addr{}}
	var notes []string
	for _, v := range cfg.RealServerVIPs {
		if v.Kind == "dr" {
			s.DR = append(s.DR, v.Addr)
		} else { // the tunnel types: ipip, gre
			s.TUN[v.Kind] = append(s.TUN[v.Kind], v.Addr)
		}
	}
	groups := map[string]*conf.VirtualServerGroup{}
	for _, g := range cfg.VSGroups {
		groups[g.Name] = g
	}
	for _, vs := range cfg.VirtualServers {
		servers := slices.Clone(vs.RealServers)
		if vs.SorryServer != nil {
			servers = append(servers, vs.SorryServer)
		}
		for _, rs := range servers {
			if !slices.Contains(local, rs.Addr) {
				continue
			}
			method := rs.Forwarding.Method
			if method != "DR" && method != "TUN" {
				continue
			}
			vips, n := vsAddrs(vs, groups)
			notes = append(notes, n...)
			if method == "DR" {
				s.DR = append(s.DR, vips...)
				continue
			}
			typ := rs.Forwarding.TunnelType
			if typ == "" {
				typ = TunnelIPIP
			}
			if typ != TunnelIPIP && typ != TunnelGRE {
				notes = append(notes, fmt.Sprintf("%s: virtual server %s: tunnel_type %s is not set up by lvsd realserver (ipip and gre are)", rs.Pos, vs, typ))
				continue
			}
			s.TUN[typ] = append(s.TUN[typ], vips...)
		}
	}
	s.DR = uniq(s.DR)
	for t := range s.TUN {
		s.TUN[t] = uniq(s.TUN[t])
	}
	return s, notes
}

func vsAddrs(vs *conf.VirtualServer, groups map[string]*conf.VirtualServerGroup) ([]netip.Addr, []string) {
	switch vs.Kind {
	case conf.VSByAddr:
		return []netip.Addr{vs.Addr}, nil
	case conf.VSByGroup:
		g := groups[vs.Group]
		if g == nil {
			return nil, nil
		}
		var out []netip.Addr
		var notes []string
		for _, a := range g.Addrs {
			n := 0
			for ip := a.First; ip.IsValid() && ip.Compare(a.Last) <= 0; ip = ip.Next() {
				if n == maxRange {
					notes = append(notes, fmt.Sprintf("%s: virtual_server_group %s: only the first %d addresses of the range are taken", a.Pos, g.Name, maxRange))
					break
				}
				out = append(out, ip)
				n++
			}
		}
		if len(g.Fwmarks) > 0 {
			notes = append(notes, fmt.Sprintf("%s: virtual_server_group %s: firewall marks carry no address; give their VIPs with --vip", g.Pos, g.Name))
		}
		return out, notes
	}
	return nil, []string{fmt.Sprintf("%s: virtual server %s: a firewall mark carries no address; give its VIPs with --vip", vs.Pos, vs)}
}

func uniq(a []netip.Addr) []netip.Addr {
	slices.SortFunc(a, netip.Addr.Compare)
	return slices.Compact(a)
}
