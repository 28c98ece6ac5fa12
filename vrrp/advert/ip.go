package advert

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

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
