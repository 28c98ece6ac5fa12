package vrrp

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// cmdSocket is the engine's netlink command socket for the safety net's
// listings, opened on first use with the vrrp_netlink_cmd_rcv_bufs
// buffer. It belongs to the namespace it was opened in, the engine's.
type cmdSocket struct {
	mu sync.Mutex
	h  *netlink.Handle
}

func (c *cmdSocket) handle(bufs NetlinkBuffers) (*netlink.Handle, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h != nil {
		return c.h, nil
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("vrrp: netlink command socket: %w", err)
	}
	if bufs.Cmd > 0 {
		// As keepalived, a buffer that cannot be set is not fatal.
		_ = h.SetSocketReceiveBufferSize(bufs.Cmd, bufs.CmdForce)
	}
	c.h = h
	return h, nil
}

// resize sets the command buffer of the open socket (a later one is
// opened with the bufs it is given).
func (c *cmdSocket) resize(bufs NetlinkBuffers) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h == nil || bufs.Cmd <= 0 {
		return nil
	}
	return c.h.SetSocketReceiveBufferSize(bufs.Cmd, bufs.CmdForce)
}

// drop forgets a socket that failed: the next listing opens another.
func (c *cmdSocket) drop(h *netlink.Handle) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h == h {
		h.Close()
		c.h = nil
	}
}

// state lists the links, the addresses and, if asked, the routes of all
// tables.
func (c *cmdSocket) state(bufs NetlinkBuffers, routes bool) (*KernelState, error) {
	h, err := c.handle(bufs)
	if err != nil {
		return nil, err
	}
	ks, err := listState(h, routes)
	if err != nil {
		c.drop(h)
		return nil, err
	}
	return ks, nil
}

func listState(h *netlink.Handle, routes bool) (*KernelState, error) {
	ks := &KernelState{At: time.Now(), Links: map[string]LinkState{}, Addrs: map[string][]netip.Prefix{}}
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("vrrp: listing links: %w", err)
	}
	names := make(map[int]string, len(links))
	for _, l := range links {
		a := l.Attrs()
		names[a.Index] = a.Name
		ks.Links[a.Name] = LinkState{Index: a.Index, Up: linkUp(l)}
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("vrrp: listing addresses: %w", err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || a.IPNet == nil {
			continue
		}
		bits, _ := a.Mask.Size()
		name := names[a.LinkIndex]
		ks.Addrs[name] = append(ks.Addrs[name], netip.PrefixFrom(ip.Unmap(), bits))
	}
	if !routes {
		return ks, nil
	}
	rs, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("vrrp: listing routes: %w", err)
	}
	ks.Routes = make(map[routeKey]bool, len(rs))
	for _, r := range rs {
		var dst netip.Prefix
		if r.Dst != nil {
			ip, ok := netip.AddrFromSlice(r.Dst.IP)
			if !ok {
				continue
			}
			bits, _ := r.Dst.Mask.Size()
			dst = netip.PrefixFrom(ip.Unmap(), bits)
		} else if r.Family == netlink.FAMILY_V6 {
			dst = netip.MustParsePrefix("::/0")
		} else {
			dst = netip.MustParsePrefix("0.0.0.0/0")
		}
		ks.Routes[routeKey{Type: uint8(r.Type), Dst: dst.Masked(), Table: uint32(r.Table), Metric: uint32(r.Priority)}] = true
	}
	rules, err := h.RuleList(netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("vrrp: listing rules: %w", err)
	}
	ks.Rules = make(map[ruleKey]bool, len(rules))
	for _, r := range rules {
		k := ruleKey{IPv6: r.Family == netlink.FAMILY_V6, Not: r.Invert, Priority: uint32(r.Priority), Table: uint32(r.Table),
			Goto: uint32(max(r.Goto, 0)), Mark: r.Mark, IIf: r.IifName, OIf: r.OifName}
		k.From, k.To = ipNetPrefix(r.Src), ipNetPrefix(r.Dst)
		ks.Rules[k] = true
	}
	return ks, nil
}

// ipNetPrefix is n as a masked prefix; invalid for nil (any address).
func ipNetPrefix(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), bits).Masked()
}
