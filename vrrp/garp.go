package vrrp

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
)

// EtherTypeARP is the ARP ethertype.
const EtherTypeARP = 0x0806

// GARPPayload builds the ARP part (28 bytes) of a gratuitous ARP for ip,
// as keepalived sends it: an ARP request whose sender and target protocol
// addresses are both ip, sender hardware address mac and target hardware
// address ff:ff:ff:ff:ff:ff. It goes to the Ethernet broadcast address.
func GARPPayload(mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
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
