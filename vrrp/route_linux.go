package vrrp

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netlinkRoutes adds and removes routes with rtnetlink in the current
// network namespace.
type netlinkRoutes struct{}

// nl builds the netlink route.
func (netlinkRoutes) nl(r Route) (*netlink.Route, error) {
	bits := r.Dst.Addr().BitLen()
	nr := &netlink.Route{
		Dst:      &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), bits)},
		Type:     int(r.Type),
		Scope:    netlink.Scope(r.Scope),
		Table:    int(r.Table),
		Priority: int(r.Metric),
		Protocol: netlink.RouteProtocol(r.Proto),
	}
	if bits == 32 {
		nr.Family = netlink.FAMILY_V4
	} else {
		nr.Family = netlink.FAMILY_V6
	}
	if r.Dev != "" {
		link, err := netlink.LinkByName(r.Dev)
		if err != nil {
			return nil, fmt.Errorf("interface %q: %w", r.Dev, err)
		}
		nr.LinkIndex = link.Attrs().Index
	}
	if r.Via.IsValid() {
		nr.Gw = r.Via.AsSlice()
	}
	if r.Src.IsValid() {
		nr.Src = r.Src.AsSlice()
	}
	if r.OnLink {
		nr.Flags = int(netlink.FLAG_ONLINK)
	}
	return nr, nil
}

// AddRoute adds r; a route already present is not an error.
func (n netlinkRoutes) AddRoute(r Route) error {
	nr, err := n.nl(r)
	if err != nil {
		return fmt.Errorf("vrrp: route %v: %w", r, err)
	}
	if err := netlink.RouteAdd(nr); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("vrrp: adding route %v: %w", r, err)
	}
	return nil
}

// DelRoute removes r; an absent route (or interface) is not an error.
func (n netlinkRoutes) DelRoute(r Route) error {
	nr, err := n.nl(r)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil // the interface is gone, and its routes with it
		}
		return fmt.Errorf("vrrp: route %v: %w", r, err)
	}
	if err := netlink.RouteDel(nr); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("vrrp: removing route %v: %w", r, err)
	}
	return nil
}
