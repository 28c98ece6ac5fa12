package vrrp

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
)

// packetGARP sends gratuitous ARPs (IPv4) and unsolicited neighbour
// advertisements (IPv6) on one interface through AF_PACKET sockets; the
// interface needs no address of either family. The IPv6 socket is opened
// on the first advertisement. Rebind follows the interface of its name to
// a new index (and hardware address).
type packetGARP struct {
	name string

	mu   sync.Mutex
	ifi  *net.Interface
	conn *packet.Conn
	na   *packet.Conn // nil until the first neighbour advertisement
	naFn string       // the interface's IPv6 forwarding sysctl
}

// Interface is the name of the interface the sender follows.
func (g *packetGARP) Interface() string { return g.name }

// Index is the interface index the sender is bound to.
func (g *packetGARP) Index() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ifi.Index
}

// Rebind reopens the sockets on the interface ifindex (which has the
// sender's name) unless they are on it already; it reports whether it
// did.
func (g *packetGARP) Rebind(ifindex int) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ifi.Index == ifindex {
		return false, nil
	}
	ifi, err := net.InterfaceByIndex(ifindex)
	if err != nil {
		return false, err
	}
	if ifi.Name != g.name || len(ifi.HardwareAddr) != 6 {
		return false, fmt.Errorf("vrrp: interface %d (%s) is not an Ethernet %s", ifindex, ifi.Name, g.name)
	}
	c, err := packet.Listen(ifi, packet.Datagram, etherTypeARP, nil)
	if err != nil {
		return false, fmt.Errorf("vrrp: GARP socket on %s: %w", ifi.Name, err)
	}
	g.conn.Close()
	if g.na != nil {
		g.na.Close()
		g.na = nil
	}
	g.ifi, g.conn = ifi, c
	return true, nil
}

// newPacketGARP opens the socket on the named interface.
func newPacketGARP(ifname string) (*packetGARP, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("vrrp: %s has no Ethernet address", ifname)
	}
	c, err := packet.Listen(ifi, packet.Datagram, etherTypeARP, nil)
	if err != nil {
		return nil, fmt.Errorf("vrrp: GARP socket on %s: %w", ifname, err)
	}
	return &packetGARP{name: ifname, ifi: ifi, conn: c, naFn: "/proc/sys/net/ipv6/conf/" + ifname + "/forwarding"}, nil
}

// SendGARP sends one gratuitous ARP for an IPv4 ip, or one unsolicited
// neighbour advertisement for an IPv6 one.
func (g *packetGARP) SendGARP(ip netip.Addr) error {
	ip = ip.Unmap()
	if ip.Is6() {
		return g.sendNA(ip)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	b, err := garpPayload(g.ifi.HardwareAddr, ip)
	if err != nil {
		return err
	}
	_, err = g.conn.WriteTo(b, &packet.Addr{HardwareAddr: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}})
	return err
}

// dropAll is a socket filter accepting nothing: the IPv6 socket only sends.
var dropAll = func() []bpf.RawInstruction {
	r, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	if err != nil {
		panic(err)
	}
	return r
}()

func (g *packetGARP) sendNA(ip netip.Addr) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.na == nil {
		c, err := packet.Listen(g.ifi, packet.Raw, etherTypeIPv6, &packet.Config{Filter: dropAll})
		if err != nil {
			return fmt.Errorf("vrrp: neighbour advertisement socket on %s: %w", g.ifi.Name, err)
		}
		g.na = c
	}
	// As keepalived: the router flag says whether the interface forwards
	// IPv6, read at each advertisement.
	router := false
	if b, err := os.ReadFile(g.naFn); err == nil {
		router = strings.TrimSpace(string(b)) != "0"
	}
	f, err := unsolicitedNA(g.ifi.HardwareAddr, ip, router)
	if err != nil {
		return err
	}
	_, err = g.na.WriteTo(f, &packet.Addr{HardwareAddr: net.HardwareAddr(f[0:6])})
	return err
}

// Close closes the sockets.
func (g *packetGARP) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.na != nil {
		g.na.Close()
		g.na = nil
	}
	return g.conn.Close()
}
