package vrrp

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/packet"
)

// PacketGARP sends gratuitous ARPs on one interface through an AF_PACKET
// datagram socket; the interface needs no IPv4 address.
type PacketGARP struct {
	conn *packet.Conn
	mac  net.HardwareAddr
}

// NewPacketGARP opens the socket on the named interface.
func NewPacketGARP(ifname string) (*PacketGARP, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("vrrp: %s has no Ethernet address", ifname)
	}
	c, err := packet.Listen(ifi, packet.Datagram, EtherTypeARP, nil)
	if err != nil {
		return nil, fmt.Errorf("vrrp: GARP socket on %s: %w", ifname, err)
	}
	return &PacketGARP{conn: c, mac: ifi.HardwareAddr}, nil
}

// SendGARP sends one gratuitous ARP for ip.
func (g *PacketGARP) SendGARP(ip netip.Addr) error {
	b, err := GARPPayload(g.mac, ip)
	if err != nil {
		return err
	}
	_, err = g.conn.WriteTo(b, &packet.Addr{HardwareAddr: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}})
	return err
}

// Close closes the socket.
func (g *PacketGARP) Close() error { return g.conn.Close() }
