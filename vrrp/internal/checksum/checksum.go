// Package checksum is the Internet checksum (RFC 1071) and the partial sums
// of the IPv4 and IPv6 pseudo-headers that VRRPv3 (RFC 5798 section 5.2.8)
// and ICMPv6 (RFC 8200 section 8.1) cover.
package checksum

import "net/netip"

// Sum is the Internet checksum of b, starting from the partial sum acc
// (0, or a pseudo-header's). Summing a packet that includes its checksum
// yields 0.
func Sum(b []byte, acc uint32) uint16 {
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

// Pseudo4 is the partial sum of the IPv4 pseudo-header of a packet of
// length bytes of protocol proto from src to dst.
func Pseudo4(src, dst netip.Addr, length int, proto uint8) uint32 {
	s, d := src.As4(), dst.As4()
	var acc uint32
	acc += uint32(s[0])<<8 | uint32(s[1])
	acc += uint32(s[2])<<8 | uint32(s[3])
	acc += uint32(d[0])<<8 | uint32(d[1])
	acc += uint32(d[2])<<8 | uint32(d[3])
	acc += uint32(proto)
	acc += uint32(length)
	return acc
}

// Pseudo6 is the partial sum of the IPv6 pseudo-header of a packet of
// length bytes with next header next from src to dst.
func Pseudo6(src, dst netip.Addr, length int, next uint8) uint32 {
	var acc uint32
	for _, a := range []netip.Addr{src, dst} {
		b := a.As16()
		for i := 0; i < 16; i += 2 {
			acc += uint32(b[i])<<8 | uint32(b[i+1])
		}
	}
	acc += uint32(length>>16) + uint32(length&0xffff)
	acc += uint32(next)
	return acc
}
