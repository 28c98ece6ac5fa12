// Package vrrp implements the VRRP engine of lvsd: the VRRPv2 (RFC 3768) and
// VRRPv3 over IPv4 and IPv6 (RFC 5798) packet codec and receive validation, a
// pure event-driven state machine with injected time, effective-priority
// tracking, sync groups, and the kernel-facing pieces (raw IP sockets, netlink
// VIPs, gratuitous ARP and neighbour advertisements) behind small interfaces.
//
// keepalived's behaviour is the reference; where it differs from the RFCs the
// difference is noted at the place it is implemented.
package vrrp

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Protocol constants.
const (
	// IPProtocol is the IP protocol number of VRRP.
	IPProtocol = 112
	// TTL is the IP TTL every multicast advertisement is sent and received with.
	TTL = 255
	// TOS is the IP type of service keepalived sends adverts with
	// (internetwork control).
	TOS = 0xc0
	// TypeAdvertisement is the only VRRP packet type.
	TypeAdvertisement = 1

	// PriorityStop is sent by a master that stops being master.
	PriorityStop = 0
	// PriorityOwner is the priority of the address owner.
	PriorityOwner = 255

	headerLen = 8
	// AuthDataLen is the length of the VRRPv2 authentication data field.
	AuthDataLen = 8
	// MaxAddrs is the largest number of addresses one advert can carry.
	MaxAddrs = 255
)

// MulticastGroup is the IANA VRRP IPv4 multicast group 224.0.0.18.
var MulticastGroup = netip.AddrFrom4([4]byte{224, 0, 0, 18})

// MulticastGroup6 is the IANA VRRP IPv6 multicast group ff02::12.
var MulticastGroup6 = netip.MustParseAddr("ff02::12")

// AuthType is the VRRPv2 authentication type.
type AuthType uint8

// VRRPv2 authentication types (RFC 2338 §5.3.6; RFC 3768 keeps the field).
const (
	AuthNone AuthType = 0
	AuthPass AuthType = 1 // simple text password
	AuthAH   AuthType = 2 // IPsec AH; not implemented, received as a mismatch
)

func (t AuthType) String() string {
	switch t {
	case AuthNone:
		return "none"
	case AuthPass:
		return "PASS"
	case AuthAH:
		return "AH"
	}
	return fmt.Sprintf("auth(%d)", uint8(t))
}

// Password turns a configured auth_pass into the 8-byte field: only the first
// eight bytes are used and shorter passwords are zero-padded, as keepalived.
func Password(s string) [AuthDataLen]byte {
	var p [AuthDataLen]byte
	copy(p[:], s)
	return p
}

// Advert is a decoded VRRP advertisement.
type Advert struct {
	Version  uint8 // 2 or 3
	Type     uint8 // TypeAdvertisement
	VRID     uint8
	Priority uint8
	// Interval is the advertisement interval: whole seconds in v2 (8 bits),
	// centiseconds in v3 (12 bits, "Max Adver Int").
	Interval time.Duration
	AuthType AuthType          // v2 only
	AuthData [AuthDataLen]byte // v2 only
	Checksum uint16            // as received, or as computed by Marshal
	Addrs    []netip.Addr      // IPv4 addresses, or IPv6 ones (v3 over IPv6)
}

// PacketInfo is what the IP layer tells about a received advert.
type PacketInfo struct {
	Src     netip.Addr // IP source address
	Dst     netip.Addr // IP destination address
	TTL     int        // IP TTL; -1 when unknown
	IfIndex int        // receiving interface; 0 when unknown
	// At is when the kernel received the packet (SO_TIMESTAMPNS); zero
	// when unknown. Timers started by the packet count from it.
	At time.Time
}

// Len is the length of the VRRP packet (without IP header).
func (a *Advert) Len() int {
	alen := 4
	if len(a.Addrs) > 0 && a.Addrs[0].Is6() {
		alen = 16
	}
	n := headerLen + alen*len(a.Addrs)
	if a.Version == 2 {
		n += AuthDataLen
	}
	return n
}

// Errors returned by Marshal.
var (
	ErrVersion  = errors.New("vrrp: version must be 2 or 3")
	ErrInterval = errors.New("vrrp: advertisement interval not representable")
	ErrAddrs    = errors.New("vrrp: addresses must be 0..255 addresses of one family (IPv6 with VRRPv3 only)")
	ErrPseudo   = errors.New("vrrp: VRRPv3 checksum needs source and destination of the addresses' family")
)

// EncodeInterval returns the on-wire interval field: seconds for v2,
// centiseconds (12 bits) for v3.
func EncodeInterval(version uint8, d time.Duration) (uint16, error) {
	switch version {
	case 2:
		if d%time.Second != 0 || d < time.Second || d > 255*time.Second {
			return 0, fmt.Errorf("%w: v2 needs whole seconds 1..255, got %v", ErrInterval, d)
		}
		return uint16(d / time.Second), nil
	case 3:
		cs := 10 * time.Millisecond
		if d%cs != 0 || d < cs || d > 4095*cs {
			return 0, fmt.Errorf("%w: v3 needs multiples of 10ms in 10ms..40.95s, got %v", ErrInterval, d)
		}
		return uint16(d / cs), nil
	}
	return 0, ErrVersion
}

// Marshal encodes the advert and fills a.Checksum. src and dst are the IP
// source and destination, used by the VRRPv3 pseudo-header checksum; they are
// ignored for v2, whose checksum covers the VRRP packet only.
func (a *Advert) Marshal(src, dst netip.Addr) ([]byte, error) {
	if a.Version != 2 && a.Version != 3 {
		return nil, ErrVersion
	}
	if len(a.Addrs) > MaxAddrs {
		return nil, ErrAddrs
	}
	v6 := len(a.Addrs) > 0 && a.Addrs[0].Is6() || len(a.Addrs) == 0 && src.Is6()
	for _, ip := range a.Addrs {
		if ip.Is6() != v6 || ip.Is4In6() || v6 && a.Version != 3 {
			return nil, ErrAddrs
		}
	}
	iv, err := EncodeInterval(a.Version, a.Interval)
	if err != nil {
		return nil, err
	}
	typ := a.Type
	if typ == 0 {
		typ = TypeAdvertisement
	}
	b := make([]byte, a.Len())
	b[0] = a.Version<<4 | typ&0x0f
	b[1] = a.VRID
	b[2] = a.Priority
	b[3] = uint8(len(a.Addrs))
	if a.Version == 2 {
		b[4] = uint8(a.AuthType)
		b[5] = uint8(iv)
	} else {
		binary.BigEndian.PutUint16(b[4:6], iv&0x0fff)
	}
	off := headerLen
	for _, ip := range a.Addrs {
		off += copy(b[off:], ip.AsSlice())
	}
	if a.Version == 2 && a.AuthType == AuthPass {
		copy(b[off:], a.AuthData[:])
	}
	var sum uint16
	if a.Version == 3 {
		switch {
		case v6 && src.Is6() && dst.Is6():
			sum = checksum(b, pseudoSum6(src, dst, len(b), IPProtocol))
		case !v6 && src.Is4() && dst.Is4():
			sum = checksum(b, pseudoSum(src, dst, len(b)))
		default:
			return nil, ErrPseudo
		}
	} else {
		sum = checksum(b, 0)
	}
	binary.BigEndian.PutUint16(b[6:8], sum)
	a.Checksum = sum
	return b, nil
}

// pseudoSum is the one's complement partial sum of the IPv4 pseudo-header.
func pseudoSum(src, dst netip.Addr, length int) uint32 {
	s, d := src.As4(), dst.As4()
	var acc uint32
	acc += uint32(s[0])<<8 | uint32(s[1])
	acc += uint32(s[2])<<8 | uint32(s[3])
	acc += uint32(d[0])<<8 | uint32(d[1])
	acc += uint32(d[2])<<8 | uint32(d[3])
	acc += IPProtocol
	acc += uint32(length)
	return acc
}

// checksum is the Internet checksum (RFC 1071) of b, starting from the
// partial sum acc. Verifying a packet that includes its checksum yields 0.
func checksum(b []byte, acc uint32) uint16 {
	for len(b) >= 2 {
		acc += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	return ^uint16(acc)
}

// Decode parses a VRRP packet (the IP payload) and checks what does not
// depend on the receiving instance: length, a known version, the type, and
// the checksum (v3 over the IPv4 pseudo-header built from info.Src/info.Dst,
// as keepalived does by default). It returns DropNone and the advert, or the
// reason to drop it.
func Decode(b []byte, info PacketInfo) (*Advert, DropReason) {
	if len(b) < headerLen {
		return nil, DropTooShort
	}
	a := &Advert{Version: b[0] >> 4, Type: b[0] & 0x0f, VRID: b[1], Priority: b[2]}
	if a.Version != 2 && a.Version != 3 {
		return nil, DropVersion
	}
	if a.Type != TypeAdvertisement {
		return nil, DropType
	}
	n := int(b[3])
	// Over IPv6 (VRRPv3 only) the addresses are IPv6 ones.
	v6 := info.Src.Is6() && !info.Src.Is4In6()
	alen := 4
	if v6 && a.Version == 3 {
		alen = 16
	}
	want := headerLen + alen*n
	if a.Version == 2 {
		want += AuthDataLen
	}
	if len(b) != want {
		return nil, DropLength
	}
	a.Checksum = binary.BigEndian.Uint16(b[6:8])
	if a.Version == 3 {
		var acc uint32
		switch {
		case v6 && info.Dst.Is6():
			acc = pseudoSum6(info.Src, info.Dst, len(b), IPProtocol)
		case info.Src.Is4() && info.Dst.Is4():
			acc = pseudoSum(info.Src, info.Dst, len(b))
		default:
			return nil, DropChecksum
		}
		if checksum(b, acc) != 0 {
			return nil, DropChecksum
		}
		a.Interval = time.Duration(binary.BigEndian.Uint16(b[4:6])&0x0fff) * 10 * time.Millisecond
	} else {
		if checksum(b, 0) != 0 {
			return nil, DropChecksum
		}
		a.AuthType = AuthType(b[4])
		a.Interval = time.Duration(b[5]) * time.Second
		copy(a.AuthData[:], b[headerLen+4*n:])
	}
	if n > 0 {
		a.Addrs = make([]netip.Addr, n)
		for i := range n {
			if alen == 16 {
				a.Addrs[i] = netip.AddrFrom16([16]byte(b[headerLen+16*i : headerLen+16*i+16]))
			} else {
				a.Addrs[i] = netip.AddrFrom4([4]byte(b[headerLen+4*i : headerLen+4*i+4]))
			}
		}
	}
	return a, DropNone
}

// DropReason says why a received packet was not handed to the state machine.
// Each reason is counted separately.
type DropReason uint8

// Drop reasons, in the order of the checks of RFC 3768/5798 §7.1 as
// keepalived applies them.
const (
	DropNone        DropReason = iota // accepted
	DropTooShort                      // shorter than the VRRP header
	DropLength                        // length does not match the address count
	DropTTL                           // IP TTL is not 255 (multicast mode)
	DropVersion                       // unknown version, or not the configured one
	DropType                          // not an advertisement
	DropChecksum                      // bad checksum
	DropUnknownVRID                   // no instance for this VRID: ignored, not an instance error
	DropAuthType                      // v2 auth type differs from ours
	DropAuthFailure                   // v2 simple password differs
	DropInterval                      // v2 advert interval differs: dropped, timer not reset
	DropNotPeer                       // unicast mode: source is not a configured peer

	// Checked by the socket, before the above (see Conn.Serve).
	DropIPHeader       // the IPv4 header is malformed or truncated, or the IPv6 sender unreadable
	DropWrongInterface // received on another interface than the socket's
	dropMax
)

var dropNames = [...]string{
	DropNone:        "none",
	DropTooShort:    "too_short",
	DropLength:      "length",
	DropTTL:         "ttl",
	DropVersion:     "version",
	DropType:        "type",
	DropChecksum:    "checksum",
	DropUnknownVRID: "unknown_vrid",
	DropAuthType:    "auth_type",
	DropAuthFailure: "auth_failure",
	DropInterval:    "interval",
	DropNotPeer:     "not_peer",

	DropIPHeader:       "ip_header",
	DropWrongInterface: "wrong_interface",
}

func (r DropReason) String() string {
	if int(r) < len(dropNames) {
		return dropNames[r]
	}
	return fmt.Sprintf("drop(%d)", uint8(r))
}

// DropReasons lists every reason other than DropNone, for metrics.
func DropReasons() []DropReason {
	rs := make([]DropReason, 0, dropMax-1)
	for r := DropNone + 1; r < dropMax; r++ {
		rs = append(rs, r)
	}
	return rs
}

// Expect is what an instance expects of the adverts it receives.
type Expect struct {
	Version  uint8
	VRID     uint8
	Interval time.Duration // configured advert_int (checked for v2 only)
	AuthType AuthType
	AuthData [AuthDataLen]byte
	Addrs    []netip.Addr // configured VIPs, in any order
	// Unicast disables the TTL check (as keepalived: unicast adverts may be
	// routed) and, with Peers set, restricts sources to the peers.
	Unicast bool
	Peers   []netip.Addr
}

// Check is the outcome of Validate. Drop is DropNone for an accepted advert;
// AddrListMismatch and PriorityZero are noted on accepted adverts and counted.
type Check struct {
	Drop             DropReason
	AddrListMismatch bool
	PriorityZero     bool
}

// Validate applies the per-instance checks of RFC 3768/5798 §7.1 to a decoded
// advert.
//
// Differences from the RFCs, following keepalived: an address owner does not
// drop adverts for its VRID; an address-list mismatch is noted and counted
// but the advert is accepted (the RFC says MAY verify).
func (e *Expect) Validate(a *Advert, info PacketInfo) Check {
	if !e.Unicast && info.TTL >= 0 && info.TTL != TTL {
		return Check{Drop: DropTTL}
	}
	if a.Version != e.Version {
		return Check{Drop: DropVersion}
	}
	if a.Type != TypeAdvertisement {
		return Check{Drop: DropType}
	}
	if a.VRID != e.VRID {
		return Check{Drop: DropUnknownVRID}
	}
	if a.Version == 2 {
		if a.AuthType != e.AuthType {
			return Check{Drop: DropAuthType}
		}
		if e.AuthType == AuthPass && subtle.ConstantTimeCompare(a.AuthData[:], e.AuthData[:]) != 1 {
			return Check{Drop: DropAuthFailure}
		}
		if a.Interval != e.Interval {
			return Check{Drop: DropInterval}
		}
	}
	if e.Unicast && len(e.Peers) > 0 {
		found := false
		for _, p := range e.Peers {
			if p == info.Src {
				found = true
				break
			}
		}
		if !found {
			return Check{Drop: DropNotPeer}
		}
	}
	return Check{AddrListMismatch: !sameAddrs(a.Addrs, e.Addrs), PriorityZero: a.Priority == 0}
}

// sameAddrs reports whether a and b hold the same addresses, in any order.
func sameAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range b {
		found := false
		for _, y := range a {
			if x == y {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// ErrIPv4 is returned by SplitIPv4 for anything but a well-formed IPv4 header.
var ErrIPv4 = errors.New("vrrp: not a well-formed IPv4 packet")

// SplitIPv4 splits a raw IPv4 packet (as captured on a packet socket, or read
// with IP_HDRINCL) into its header facts and payload. It checks the header
// length and total length, and that the protocol is VRRP.
func SplitIPv4(b []byte) ([]byte, PacketInfo, error) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return nil, PacketInfo{}, ErrIPv4
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < 20 || total < ihl || total > len(b) || b[9] != IPProtocol {
		return nil, PacketInfo{}, ErrIPv4
	}
	info := PacketInfo{
		Src: netip.AddrFrom4([4]byte(b[12:16])),
		Dst: netip.AddrFrom4([4]byte(b[16:20])),
		TTL: int(b[8]),
	}
	return b[ihl:total], info, nil
}
