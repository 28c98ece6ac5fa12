// Package addrguard keeps lvsd's HTTP endpoint (/metrics, /status, the
// status page) off the addresses lvsd manages. On a director whose eth0
// faces the internet, a listener on every address (":9165") also answers on
// the VIPs and on the virtual servers' addresses, which the world reaches;
// a Listener closes such connections as they are accepted, before a byte
// is read or written (no TLS handshake, no HTTP), and counts them.
//
// The managed addresses are those of the configuration in force
// (FromConfig): every VRRP instance's virtual_ipaddress and
// virtual_ipaddress_excluded, every virtual server's address and every
// address (or range) of a virtual_server_group. The wiring replaces the set
// on each reload (Listener.SetManaged).
package addrguard

import (
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/lvsd/lvsd/conf"
)

// Set is a set of addresses and address ranges; the zero Set is empty. It
// is immutable once built.
type Set struct {
	addrs  map[netip.Addr]struct{}
	ranges [][2]netip.Addr // first, last (inclusive), same family
}

// Add adds one address (unmapped, without zone).
func (s *Set) Add(a netip.Addr) {
	if !a.IsValid() {
		return
	}
	if s.addrs == nil {
		s.addrs = map[netip.Addr]struct{}{}
	}
	s.addrs[norm(a)] = struct{}{}
}

// AddRange adds the addresses first..last (inclusive); a range whose ends
// are of different families, or reversed, adds only first.
func (s *Set) AddRange(first, last netip.Addr) {
	first, last = norm(first), norm(last)
	if !last.IsValid() || first == last || first.Is4() != last.Is4() || last.Less(first) {
		s.Add(first)
		return
	}
	s.ranges = append(s.ranges, [2]netip.Addr{first, last})
}

// Contains says whether a is in the set.
func (s *Set) Contains(a netip.Addr) bool {
	if s == nil || !a.IsValid() {
		return false
	}
	a = norm(a)
	if _, ok := s.addrs[a]; ok {
		return true
	}
	for _, r := range s.ranges {
		if a.Is4() == r[0].Is4() && !a.Less(r[0]) && !r[1].Less(a) {
			return true
		}
	}
	return false
}

// Len is the number of single addresses plus the number of ranges.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.addrs) + len(s.ranges)
}

func norm(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// FromConfig is the set of addresses cfg has lvsd manage: the VRRP
// instances' virtual_ipaddress and virtual_ipaddress_excluded, the virtual
// servers' addresses and the virtual_server_groups' addresses and ranges.
// static_ipaddress is not in it: those are the host's own addresses.
func FromConfig(cfg *conf.Config) *Set {
	s := &Set{}
	if cfg == nil {
		return s
	}
	for _, in := range cfg.Instances {
		for _, v := range in.VIPs {
			s.Add(v.Prefix.Addr())
		}
		for _, v := range in.ExcludedVIPs {
			s.Add(v.Prefix.Addr())
		}
	}
	for _, vs := range cfg.VirtualServers {
		s.Add(vs.Addr)
	}
	for _, g := range cfg.VSGroups {
		for _, a := range g.Addrs {
			s.AddRange(a.First, a.Last)
		}
	}
	return s
}

// Listener wraps a net.Listener: Accept closes and counts every
// connection whose local (destination) address is managed, and returns the
// others.
type Listener struct {
	net.Listener
	managed atomic.Pointer[Set]
	refused atomic.Uint64
}

// New wraps ln; managed is the first set (nil: none).
func New(ln net.Listener, managed *Set) *Listener {
	l := &Listener{Listener: ln}
	l.SetManaged(managed)
	return l
}

// SetManaged replaces the set of managed addresses (a reload); safe for
// concurrent use with Accept.
func (l *Listener) SetManaged(s *Set) {
	if s == nil {
		s = &Set{}
	}
	l.managed.Store(s)
}

// Managed is the set in force.
func (l *Listener) Managed() *Set { return l.managed.Load() }

// Refused is the number of connections closed at accept.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

// Accept returns the next connection to an address that is not managed.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.refuse(c) {
			return c, nil
		}
		// SO_LINGER 0: a reset rather than an orderly close, so that the
		// peer is told at once and no TIME_WAIT is left here.
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
		l.refused.Add(1)
	}
}

func (l *Listener) refuse(c net.Conn) bool {
	var a netip.Addr
	switch la := c.LocalAddr().(type) {
	case *net.TCPAddr:
		a = la.AddrPort().Addr()
	default:
		ap, err := netip.ParseAddrPort(la.String())
		if err != nil {
			return false
		}
		a = ap.Addr()
	}
	return l.managed.Load().Contains(a)
}
