// Package ipvs programs the kernel's IPVS table from the virtual servers of
// the configuration and the health of their real servers, as keepalived's
// checker process does, with three differences: the table is computed as a
// plain value and reconciled (a pure diff, table-tested), only what lvsd
// created or adopted is ever touched, and drift (a hand-made change to an
// owned entry) is repaired periodically.
//
// The pieces:
//
//   - types.go: the kernel-independent values (Service, Destination, Table).
//   - desired.go: config + health → the desired Table (pure).
//   - health.go: health, dynamic weights and the quorum state machine.
//   - diff.go: desired vs kernel → the minimal list of operations (pure).
//   - kernel.go / netlink.go / batch_linux.go: the Kernel interface and its
//     implementation: reads through github.com/cloudflare/ipvs, mutations
//     batched on a raw generic netlink socket (one sendmsg per phase,
//     acknowledgements only for errors and the last message), and a small
//     generic-netlink piece for timeouts, the sync daemon and flush.
//   - reconciler.go: the goroutine that owns the state.
package ipvs

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Family is an address family as IPVS numbers it.
type Family uint16

// Address families.
const (
	INET  Family = 2
	INET6 Family = 10
)

var familyNames = map[Family]string{INET: "inet", INET6: "inet6"}

func (f Family) String() string { return enumString(familyNames, f, "af") }

// FamilyOf returns the family of an address.
func FamilyOf(a netip.Addr) Family {
	if a.Is4() || a.Is4In6() {
		return INET
	}
	return INET6
}

// Protocol is an IP protocol number.
type Protocol uint16

// Protocols IPVS balances.
const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

// protocolNames are the protocols' names, in upper case (0: none, a
// fwmark service's).
var protocolNames = map[Protocol]string{0: "", TCP: "TCP", UDP: "UDP", SCTP: "SCTP"}

func (p Protocol) String() string { return enumString(protocolNames, p, "proto") }

// ParseProtocol maps a configuration protocol name to its number.
func ParseProtocol(s string) (Protocol, bool) {
	s = strings.ToUpper(s)
	for p, name := range protocolNames {
		if p != 0 && name == s {
			return p, true
		}
	}
	return 0, false
}

// Flags are the service flags (IP_VS_SVC_F_*).
type Flags uint32

// Service flags. FlagHashed is kernel-internal and never compared.
const (
	FlagPersistent Flags = 0x0001
	FlagHashed     Flags = 0x0002
	FlagOnePacket  Flags = 0x0004
	FlagSched1     Flags = 0x0008 // flag-1, sh-fallback, mh-fallback
	FlagSched2     Flags = 0x0010 // flag-2, sh-port, mh-port
	FlagSched3     Flags = 0x0020 // flag-3

	// flagsCompared are the flags a configuration sets.
	flagsCompared = FlagPersistent | FlagOnePacket | FlagSched1 | FlagSched2 | FlagSched3
)

func (f Flags) String() string {
	var s []string
	for _, x := range []struct {
		f    Flags
		name string
	}{{FlagPersistent, "persistent"}, {FlagHashed, "hashed"}, {FlagOnePacket, "ops"},
		{FlagSched1, "flag-1"}, {FlagSched2, "flag-2"}, {FlagSched3, "flag-3"}} {
		if f&x.f != 0 {
			s = append(s, x.name)
			f &^= x.f
		}
	}
	if f != 0 {
		s = append(s, fmt.Sprintf("%#x", uint32(f)))
	}
	return strings.Join(s, "|")
}

// Forward is a destination's forwarding method (IP_VS_CONN_F_*).
type Forward uint32

// Forwarding methods.
const (
	Masq   Forward = 0 // NAT
	Local  Forward = 1 // set by the kernel for a local destination
	Tunnel Forward = 2 // TUN
	Route  Forward = 3 // DR
	Bypass Forward = 4
)

var forwardNames = map[Forward]string{Masq: "masq", Local: "local", Tunnel: "tunnel", Route: "route", Bypass: "bypass"}

func (f Forward) String() string { return enumString(forwardNames, f, "fwd") }

// TunnelType is the encapsulation of a tunnelled destination.
type TunnelType uint8

// Tunnel types.
const (
	TunIPIP TunnelType = 0
	TunGUE  TunnelType = 1
	TunGRE  TunnelType = 2
)

var tunnelTypeNames = map[TunnelType]string{TunIPIP: "ipip", TunGUE: "gue", TunGRE: "gre"}

func (t TunnelType) String() string { return enumString(tunnelTypeNames, t, "tun") }

// enumString names v by names, or an unnamed value by prefix and number.
func enumString[T ~uint8 | ~uint16 | ~uint32](names map[T]string, v T, prefix string) string {
	if name, ok := names[v]; ok {
		return name
	}
	return prefix + strconv.FormatUint(uint64(v), 10)
}

// TunnelFlags are the tunnel checksum flags.
type TunnelFlags uint16

// Tunnel flags.
const (
	TunNoCsum  TunnelFlags = 0
	TunCsum    TunnelFlags = 1
	TunRemCsum TunnelFlags = 2
)

// ServiceKey identifies a virtual service in the kernel: an address, port and
// protocol, or a firewall mark (Proto, Addr and Port zero) with its family.
type ServiceKey struct {
	Family Family
	Proto  Protocol
	Addr   netip.Addr
	Port   uint16
	Fwmark uint32
}

func (k ServiceKey) String() string {
	if k.Fwmark != 0 {
		if k.Family == INET6 {
			return fmt.Sprintf("FWM %d IPv6", k.Fwmark)
		}
		return fmt.Sprintf("FWM %d", k.Fwmark)
	}
	return k.Proto.String() + " " + netip.AddrPortFrom(k.Addr, k.Port).String()
}

// cmp orders keys: address services (mark 0) before fwmark ones, then by
// mark, family, protocol, address and port.
func (k ServiceKey) cmp(o ServiceKey) int {
	return cmp.Or(cmp.Compare(k.Fwmark, o.Fwmark), cmp.Compare(k.Family, o.Family), cmp.Compare(k.Proto, o.Proto),
		k.Addr.Compare(o.Addr), cmp.Compare(k.Port, o.Port))
}

// Service is a virtual service: its key and its editable attributes.
type Service struct {
	ServiceKey
	Scheduler string
	Flags     Flags
	Timeout   uint32 // persistence timeout, seconds (0 when not persistent)
	// Netmask is the persistence granularity: an IPv4 mask as a number
	// (0xffffffff = /32) or an IPv6 prefix length.
	Netmask uint32
	// PEName is the persistence engine (persistence_engine: "sip"); "" none.
	PEName string
}

// sameAttrs reports whether the editable attributes of two services match.
func (s Service) sameAttrs(o Service) bool {
	return s.Scheduler == o.Scheduler && s.Flags&flagsCompared == o.Flags&flagsCompared &&
		s.Timeout == o.Timeout && s.Netmask == o.Netmask && s.PEName == o.PEName
}

func (s Service) String() string {
	var b strings.Builder
	b.WriteString(s.ServiceKey.String())
	b.WriteString(" ")
	b.WriteString(s.Scheduler)
	if f := s.Flags & flagsCompared; f != 0 {
		b.WriteString(" " + f.String())
	}
	if s.Flags&FlagPersistent != 0 {
		fmt.Fprintf(&b, " timeout %d", s.Timeout)
		if s.Family == INET6 {
			if s.Netmask != 128 {
				fmt.Fprintf(&b, " mask /%d", s.Netmask)
			}
		} else if s.Netmask != 0xffffffff {
			fmt.Fprintf(&b, " mask %s", maskString(s.Netmask))
		}
	}
	if s.PEName != "" {
		b.WriteString(" pe " + s.PEName)
	}
	return b.String()
}

func maskString(m uint32) string {
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()
}

// DestKey identifies a destination within a service.
type DestKey struct {
	Addr netip.Addr
	Port uint16
}

func (k DestKey) String() string { return netip.AddrPortFrom(k.Addr, k.Port).String() }

// Destination is a real server of a service as the kernel holds it.
type Destination struct {
	DestKey
	Fwd        Forward
	Weight     int
	UThreshold uint32
	LThreshold uint32
	TunType    TunnelType
	TunPort    uint16
	TunFlags   TunnelFlags
}

// sameAttrs reports whether the editable attributes of two destinations match.
// The kernel reports a local destination's method as Local: it matches Masq.
func (d Destination) sameAttrs(o Destination) bool {
	fa, fb := d.Fwd, o.Fwd
	if fa == Local {
		fa = Masq
	}
	if fb == Local {
		fb = Masq
	}
	if fa != fb || d.Weight != o.Weight || d.UThreshold != o.UThreshold || d.LThreshold != o.LThreshold {
		return false
	}
	if fa == Tunnel {
		return d.TunType == o.TunType && d.TunPort == o.TunPort && d.TunFlags == o.TunFlags
	}
	return true
}

func (d Destination) String() string {
	s := fmt.Sprintf("%s %s w%d", d.DestKey, d.Fwd, d.Weight)
	if d.Fwd == Tunnel && (d.TunType != TunIPIP || d.TunFlags != 0) {
		s += " " + d.TunType.String()
		if d.TunType == TunGUE {
			s += fmt.Sprintf(" port %d", d.TunPort)
		}
		switch d.TunFlags {
		case TunCsum:
			s += " csum"
		case TunRemCsum:
			s += " remcsum"
		}
	}
	if d.UThreshold != 0 || d.LThreshold != 0 {
		s += fmt.Sprintf(" thresholds %d-%d", d.LThreshold, d.UThreshold)
	}
	return s
}

// TableService is one service of a Table with its destinations.
type TableService struct {
	Service Service
	Dests   map[DestKey]Destination
}

// Table is an IPVS table: the desired one or the kernel's.
type Table map[ServiceKey]*TableService

// Clone returns a deep copy.
func (t Table) Clone() Table {
	out := make(Table, len(t))
	for k, s := range t {
		c := &TableService{Service: s.Service, Dests: make(map[DestKey]Destination, len(s.Dests))}
		for dk, d := range s.Dests {
			c.Dests[dk] = d
		}
		out[k] = c
	}
	return out
}

// Keys returns the service keys in a stable order.
func (t Table) Keys() []ServiceKey {
	keys := make([]ServiceKey, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, ServiceKey.cmp)
	return keys
}

// cmp orders destination keys by address, then port.
func (k DestKey) cmp(o DestKey) int {
	return cmp.Or(k.Addr.Compare(o.Addr), cmp.Compare(k.Port, o.Port))
}

// DestKeys returns the destination keys of a service in a stable order.
func (s *TableService) DestKeys() []DestKey {
	keys := make([]DestKey, 0, len(s.Dests))
	for k := range s.Dests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, DestKey.cmp)
	return keys
}

// String renders the table one line per service and destination, sorted,
// for tests and logs.
func (t Table) String() string {
	var b strings.Builder
	for _, k := range t.Keys() {
		s := t[k]
		b.WriteString(s.Service.String())
		b.WriteByte('\n')
		for _, dk := range s.DestKeys() {
			b.WriteString("  -> ")
			b.WriteString(s.Dests[dk].String())
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// Stats are the traffic counters of a service or destination.
type Stats struct {
	Connections uint64 `json:"connections"`
	PacketsIn   uint64 `json:"packets_in"`
	PacketsOut  uint64 `json:"packets_out"`
	BytesIn     uint64 `json:"bytes_in"`
	BytesOut    uint64 `json:"bytes_out"`
	CPS         uint64 `json:"cps"`
	PPSIn       uint64 `json:"pps_in"`
	PPSOut      uint64 `json:"pps_out"`
	BPSIn       uint64 `json:"bps_in"`
	BPSOut      uint64 `json:"bps_out"`
}
