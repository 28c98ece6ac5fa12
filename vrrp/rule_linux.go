package vrrp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// fibActions are the FR_ACT_* of the rule actions.
var fibActions = map[string]uint8{"lookup": 1, "goto": 2, "nop": 3, "blackhole": 6, "unreachable": 7, "prohibit": 8}

// nlRule builds the netlink rule, with every field keepalived sends, so a
// deletion matches only the rule we added.
func nlRule(r Rule) *netlink.Rule {
	nr := netlink.NewRule()
	nr.Family = netlink.FAMILY_V4
	if r.IPv6 {
		nr.Family = netlink.FAMILY_V6
	}
	ipnet := func(p netip.Prefix) *net.IPNet {
		if !p.IsValid() {
			return nil
		}
		return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
	}
	nr.Src, nr.Dst = ipnet(r.From), ipnet(r.To)
	nr.Invert = r.Not
	nr.Priority = int(r.Priority)
	nr.Type = fibActions[r.Action]
	switch r.Action {
	case "lookup":
		nr.Table = int(r.Table)
	case "goto":
		nr.Goto = int(r.Goto)
	}
	if r.HasFwMark {
		nr.Mark = r.FwMark
		if r.HasFwMask {
			m := r.FwMask
			nr.Mask = &m
		}
	}
	nr.SuppressPrefixlen = int(r.SuppressPrefixLen)
	nr.IifName, nr.OifName = r.IIf, r.OIf
	nr.Protocol = r.Proto
	return nr
}

// AddRule adds r; a rule already present is not an error.
func (netlinkRoutes) AddRule(r Rule) error {
	if err := netlink.RuleAdd(nlRule(r)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("vrrp: adding rule %v: %w", r.String(), err)
	}
	return nil
}

// DelRule removes r; an absent rule is not an error.
func (netlinkRoutes) DelRule(r Rule) error {
	if err := netlink.RuleDel(nlRule(r)); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("vrrp: removing rule %v: %w", r.String(), err)
	}
	return nil
}
