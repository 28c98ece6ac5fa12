package vrrp

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"

	"github.com/lvsd/lvsd/vrrp/internal/checksum"
)

// etherTypeARP is the ARP ethertype.
const etherTypeARP = 0x0806

// garpPayload builds the ARP part (28 bytes) of a gratuitous ARP for ip,
// as keepalived sends it: an ARP request whose sender and target protocol
// addresses are both ip, sender hardware address mac and target hardware
// address ff:ff:ff:ff:ff:ff. It goes to the Ethernet broadcast address.
func garpPayload(mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	if len(mac) != 6 || !ip.Is4() {
		return nil, errors.New("vrrp: GARP needs an Ethernet address and an IPv4 address")
	}
	b := make([]byte, 28)
	binary.BigEndian.PutUint16(b[0:2], 1)      // hardware type Ethernet
	binary.BigEndian.PutUint16(b[2:4], 0x0800) // protocol IPv4
	b[4], b[5] = 6, 4                          // address lengths
	binary.BigEndian.PutUint16(b[6:8], 1)      // request
	ip4 := ip.As4()
	copy(b[8:14], mac)
	copy(b[14:18], ip4[:])
	copy(b[18:24], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(b[24:28], ip4[:])
	return b, nil
}

// etherTypeIPv6 is the IPv6 ethertype.
const etherTypeIPv6 = 0x86dd

// naFrameLen is the length of an unsolicited neighbour advertisement frame:
// Ethernet (14), IPv6 (40), ICMPv6 neighbour advertisement (24) and the
// target link-layer address option (8).
const naFrameLen = 14 + 40 + 24 + 8

// allNodes is ff02::1, the destination of unsolicited neighbour
// advertisements.
var allNodes = netip.MustParseAddr("ff02::1")

// unsolicitedNA builds the Ethernet frame of an unsolicited neighbour
// advertisement for ip (RFC 4861 section 4.4 and 7.2.6), as keepalived
// sends it on taking over an IPv6 address: from mac to 33:33:00:00:00:01,
// IPv6 source ip, destination ff02::1 (all nodes), hop limit 255; ICMPv6
// type 136 code 0 with the override flag, the router flag when router is
// true (keepalived sets it when the interface forwards IPv6), target ip,
// and a target link-layer address option carrying mac.
func unsolicitedNA(mac net.HardwareAddr, ip netip.Addr, router bool) ([]byte, error) {
	if len(mac) != 6 || !ip.Is6() || ip.Is4In6() {
		return nil, errors.New("vrrp: a neighbour advertisement needs an Ethernet address and an IPv6 address")
	}
	b := make([]byte, naFrameLen)
	// Ethernet: 33:33 followed by the low 32 bits of ff02::1 (RFC 2464).
	copy(b[0:6], []byte{0x33, 0x33, 0, 0, 0, 1})
	copy(b[6:12], mac)
	binary.BigEndian.PutUint16(b[12:14], etherTypeIPv6)
	ip6 := b[14:54]
	ip6[0] = 6 << 4                            // version 6, traffic class 0, flow label 0
	binary.BigEndian.PutUint16(ip6[4:6], 24+8) // payload length
	ip6[6] = 58                                // next header ICMPv6
	ip6[7] = 255                               // hop limit
	src, dst := ip.As16(), allNodes.As16()
	copy(ip6[8:24], src[:])
	copy(ip6[24:40], dst[:])
	na := b[54:]
	na[0] = 136 // neighbour advertisement, code 0
	if router {
		na[4] |= 0x80
	}
	na[4] |= 0x20 // override
	copy(na[8:24], src[:])
	na[24], na[25] = 2, 1 // target link-layer address, 1 unit of 8 bytes
	copy(na[26:32], mac)
	binary.BigEndian.PutUint16(na[2:4], icmp6Checksum(ip, allNodes, na))
	return b, nil
}

// icmp6Checksum is the ICMPv6 checksum of msg (its checksum field zero)
// over the IPv6 pseudo-header (RFC 8200 section 8.1).
func icmp6Checksum(src, dst netip.Addr, msg []byte) uint16 {
	return checksum.Sum(msg, checksum.Pseudo6(src, dst, len(msg), 58))
}
