package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/lvsd/lvsd/internal/netwatch"
)

// netlinkAddrs adds and removes VIPs with rtnetlink in the current network
// namespace, honouring dev, brd, scope and label.
//
// It remembers the interface index each VIP was added on: a VIP whose
// interface was renamed (so that its name no longer finds it) is still
// removed from it.
type netlinkAddrs struct {
	// DefaultDev is used for VIPs without Dev (the instance interface).
	DefaultDev string

	mu    sync.Mutex
	added map[netip.Prefix]int // ifindex
}

func (n *netlinkAddrs) nl(v VIP) (netlink.Link, *netlink.Addr, error) {
	dev := v.Dev
	if dev == "" {
		dev = n.DefaultDev
	}
	link, err := netlink.LinkByName(dev)
	if err != nil {
		return nil, nil, fmt.Errorf("vrrp: VIP %v: interface %q: %w", v.Addr, dev, err)
	}
	return link, n.addr(v), nil
}

func (n *netlinkAddrs) addr(v VIP) *netlink.Addr {
	ip := v.Addr.Addr().Unmap()
	a := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(v.Addr.Bits(), ip.BitLen())}}
	if ip.Is4() {
		a.Scope, a.Label = int(v.Scope), v.Label
		a.Broadcast = net.IPv4zero // none unless given, as keepalived (netlink would make one)
		if v.Brd.IsValid() {
			a.Broadcast = v.Brd.AsSlice()
		} else {
			// No broadcast address unless brd asks for one, as keepalived
			// (the netlink library would compute one; zero opts out).
			a.Broadcast = net.IPv4zero
		}
		return a
	}
	// IPv6: the kernel derives the scope from the address; no label.
	if !v.DAD {
		a.Flags |= unix.IFA_F_NODAD
	}
	a.ValidLft = infiniteLifetime
	switch {
	case v.PreferredSet:
		a.PreferedLft = int(v.PreferredLft)
	case v.Addr.Bits() == 128:
		a.PreferedLft = 0 // deprecated, as keepalived
	default:
		a.PreferedLft = infiniteLifetime
	}
	return a
}

// infiniteLifetime is the "forever" address lifetime.
const infiniteLifetime = 0xffffffff

// AddAddr adds v; an address already present is not an error.
func (n *netlinkAddrs) AddAddr(v VIP) error {
	link, a, err := n.nl(v)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(link, a); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("vrrp: adding %v to %s: %w", v.Addr, link.Attrs().Name, err)
	}
	n.mu.Lock()
	if n.added == nil {
		n.added = map[netip.Prefix]int{}
	}
	n.added[v.Addr] = link.Attrs().Index
	n.mu.Unlock()
	return nil
}

// DelAddr removes v; an absent address is not an error. A VIP whose
// interface no longer has its name is removed from the interface it was
// added on.
func (n *netlinkAddrs) DelAddr(v VIP) error {
	link, a, err := n.nl(v)
	if err != nil {
		n.mu.Lock()
		index, ok := n.added[v.Addr]
		n.mu.Unlock()
		var nf netlink.LinkNotFoundError
		if !ok || !errors.As(err, &nf) {
			return err
		}
		if link, err = netlink.LinkByIndex(index); err != nil {
			return nil // gone, and the VIP with it
		}
		a = n.addr(v)
	}
	n.mu.Lock()
	delete(n.added, v.Addr)
	n.mu.Unlock()
	if err := netlink.AddrDel(link, a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("vrrp: removing %v from %s: %w", v.Addr, link.Attrs().Name, err)
	}
	return nil
}

// watchAddrDeleted calls fn for every address (IPv4 or IPv6) deleted in
// the current network namespace until ctx is done, and resynced (if not
// nil) after the addresses were listed again because notifications were
// lost: the deletions missed were reported first.
func watchAddrDeleted(ctx context.Context, k *linuxKernel, fn func(netip.Prefix), resynced func()) error {
	return watch(ctx, "address", k, func(e netwatch.Event) {
		switch {
		case e.Kind == netwatch.AddrDeleted:
			fn(e.Prefix)
		case e.Kind == netwatch.Resynced && resynced != nil:
			resynced()
		}
	})
}

// watchLink calls fn with the operational state (up or not) of the named
// interface now and on every change, until ctx is done, and resynced (if
// not nil) after the links were listed again because notifications were
// lost. The interface is followed by name: one renamed away is down, one
// that takes the name (created, or renamed to it) is reported as it is.
func watchLink(ctx context.Context, k *linuxKernel, ifname string, fn func(up bool), resynced func()) error {
	index := 0 // of the link that has the name, 0 if none known
	last, known := false, false
	report := func(up bool) {
		if !known || up != last {
			known, last = true, up
			fn(up)
		}
	}
	return watch(ctx, "link", k, func(e netwatch.Event) {
		switch {
		case e.Kind == netwatch.Resynced:
			if resynced != nil {
				resynced()
			}
		case !e.Kind.IsLink():
		case e.Name == ifname:
			index = e.Index
			if e.Kind == netwatch.LinkGone {
				index = 0
			}
			report(e.Kind == netwatch.LinkUp) // a link gone is not up
		case e.Index == index: // renamed away
			index = 0
			report(false)
		}
	})
}

// watch calls fn from a goroutine of its own with the links and addresses
// of the current network namespace (see netwatch.Watcher.Run), then with
// every change, until ctx is done. The socket has k's monitor buffer and
// follows its changes (k nil: the kernel's default).
func watch(ctx context.Context, what string, k *linuxKernel, fn func(netwatch.Event)) error {
	w, err := k.newWatcher()
	if err != nil {
		return fmt.Errorf("vrrp: %s subscription: %w", what, err)
	}
	go func() {
		defer k.forget(w)
		_ = w.Run(ctx, func(evs []netwatch.Event) {
			for _, e := range evs {
				fn(e)
			}
		})
	}()
	return nil
}

// primaryIPv4 returns the first IPv4 address of the named interface, the
// default advert source as in keepalived.
func primaryIPv4(ifname string) (netip.Addr, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return netip.Addr{}, err
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap().Is4() {
			return ip.Unmap(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("vrrp: %s has no IPv4 address", ifname)
}

func linkUp(l netlink.Link) bool {
	a := l.Attrs()
	return netwatch.Up(a.RawFlags, uint8(a.OperState))
}

// interfaceUp reports whether the named interface is up (administratively and
// operationally).
func interfaceUp(ifname string) (bool, error) {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return false, err
	}
	return linkUp(l), nil
}
