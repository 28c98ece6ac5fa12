// Package advert is the VRRP advertisement on the wire: its encoding
// (Advert.Marshal) and decoding (Decode), and the checks a received one
// passes before it reaches a state machine (Expect.Validate). It is the
// codec of package vrrp, apart so that it can be read, tested and fuzzed
// alone; it knows nothing of sockets, timers or instances.
//
// One type covers VRRPv2 (RFC 3768) and VRRPv3 over IPv4 and IPv6
// (RFC 5798); they differ in three fields:
//
//	          v2 (RFC 3768 §5.1)             v3 (RFC 5798 §5.1)
//	interval  8 bits, whole seconds           12 bits, centiseconds
//	auth      type + 8 bytes of data          none (reserved bits)
//	checksum  over the VRRP packet            over it and the IP pseudo-header
//
// A received packet goes through three steps, each returning a DropReason
// (DropNone: go on) or, for SplitIPv4, an error:
//
//	SplitIPv4  the IPv4 header of what a raw socket read: source, destination, TTL
//	Decode     what depends on the packet alone: length, version, type, checksum
//	Validate   what depends on the instance: TTL, VRID, authentication, interval, peers
//
// The order of the checks, and what keepalived does where the RFCs leave a
// choice (an address-list mismatch is counted and accepted; an address owner
// does not drop adverts for its VRID), are those of keepalived, so that a
// mixed pair counts and drops the same packets. Every drop reason has a
// name (DropReason.String) used as the "reason" label of lvsd's metrics;
// DropReasons lists them.
package advert

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/lvsd/lvsd/vrrp/internal/checksum"
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

// authTypeNames are the names of the AuthType values, by value.
var authTypeNames = [...]string{AuthNone: "none", AuthPass: "PASS", AuthAH: "AH"}

func (t AuthType) String() string {
	if int(t) < len(authTypeNames) {
		return authTypeNames[t]
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
			sum = checksum.Sum(b, checksum.Pseudo6(src, dst, len(b), IPProtocol))
		case !v6 && src.Is4() && dst.Is4():
			sum = checksum.Sum(b, checksum.Pseudo4(src, dst, len(b), IPProtocol))
		default:
			return nil, ErrPseudo
		}
	} else {
		sum = checksum.Sum(b, 0)
	}
	binary.BigEndian.PutUint16(b[6:8], sum)
	a.Checksum = sum
	return b, nil
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
			acc = checksum.Pseudo6(info.Src, info.Dst, len(b), IPProtocol)
		case info.Src.Is4() && info.Dst.Is4():
			acc = checksum.Pseudo4(info.Src, info.Dst, len(b), IPProtocol)
		default:
			return nil, DropChecksum
		}
		if checksum.Sum(b, acc) != 0 {
			return nil, DropChecksum
		}
		a.Interval = time.Duration(binary.BigEndian.Uint16(b[4:6])&0x0fff) * 10 * time.Millisecond
	} else {
		if checksum.Sum(b, 0) != 0 {
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
