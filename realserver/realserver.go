// Package realserver is the real-server side of LVS direct routing (DR) and
// tunnelling (TUN): what every real server behind a DR or TUN director needs
// and what operators otherwise set by hand, as the LVS how-to and the DR
// guides describe it.
//
//   - DR: each VIP on lo as a host address (/32, /128), so the real server
//     accepts the packets the director forwards unchanged, and
//     arp_ignore=1 / arp_announce=2 on all, lo and the named interfaces, so
//     it never answers ARP for a VIP nor announces one (the director alone
//     owns the VIP on the LAN). IPv6 needs no sysctl: Linux answers
//     neighbour solicitations only for addresses of the receiving interface.
//   - TUN: the kernel's fallback tunnel device (tunl0 for ipip, gre0 for
//     gre; ip6tnl0 and ip6gre0 for IPv6) up, each VIP on it as a host
//     address, the same ARP sysctls, and reverse-path filtering loosened on
//     the tunnel (the decapsulated packet comes from a client that is routed
//     through another interface).
//
// The desired state is a plain value (Spec); Reconcile compares it with the
// kernel and applies the difference, so it is cheap when nothing changed and
// repairs drift (a VIP deleted by hand, a sysctl changed). Remove undoes what
// Reconcile did: the VIPs are deleted and each sysctl gets back the value it
// had before lvsd first changed it, recorded in a state file so that a
// `--remove` after a kill -9 restores them too.
package realserver

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
)

// Tunnel types of TUN real servers (conf's tunnel_type).
const (
	TunnelIPIP = "ipip"
	TunnelGRE  = "gre"
)

// Spec is the desired state of one real server.
type Spec struct {
	// DR are the VIPs of direct-routing virtual servers: put on lo.
	DR []netip.Addr
	// TUN are the VIPs of tunnelling virtual servers by tunnel type
	// (TunnelIPIP, TunnelGRE): put on the type's fallback device.
	TUN map[string][]netip.Addr
	// ARPInterfaces get arp_ignore/arp_announce besides all and lo (the
	// interfaces facing the director's LAN).
	ARPInterfaces []string
}

// Empty reports whether the spec asks for nothing.
func (s Spec) Empty() bool {
	if len(s.DR) > 0 {
		return false
	}
	for _, v := range s.TUN {
		if len(v) > 0 {
			return false
		}
	}
	return true
}

// Kernel is what Reconcile needs of the kernel (netlink and /proc/sys).
type Kernel interface {
	// Addrs lists the addresses of the link (nil, nil if it does not exist).
	Addrs(link string) ([]netip.Prefix, error)
	AddAddr(link string, p netip.Prefix) error
	DelAddr(link string, p netip.Prefix) error
	// TunnelUp makes the fallback tunnel device exist (loading its
	// module) and brings it up; true if it was not up.
	TunnelUp(link string) (bool, error)
	// TunnelDown brings a tunnel device down.
	TunnelDown(link string) error
	// Sysctl reads and SetSysctl writes a value under /proc/sys/net
	// ("ipv4/conf/lo/arp_ignore").
	Sysctl(key string) (string, error)
	SetSysctl(key, value string) error
}

// Saved is what lvsd changed, so that Remove can undo it: every sysctl
// with the value it had before lvsd first wrote it, and every address lvsd
// added. It is kept in the state file between runs.
type Saved struct {
	Sysctls map[string]string `json:"sysctls"`
	Addrs   []LinkAddr        `json:"addrs"`
	// Tunnels lvsd brought up.
	Tunnels []string `json:"tunnels,omitempty"`
}

// LinkAddr is an address on a link.
type LinkAddr struct {
	Link   string       `json:"link"`
	Prefix netip.Prefix `json:"prefix"`
}

// Change is one thing Reconcile did, for the log.
type Change struct {
	What string
}

func (c Change) String() string { return c.What }

// tunnelDevice is the fallback device of a tunnel type and family.
func tunnelDevice(typ string, v6 bool) (string, error) {
	switch {
	case typ == TunnelIPIP && !v6:
		return "tunl0", nil
	case typ == TunnelIPIP && v6:
		return "ip6tnl0", nil
	case typ == TunnelGRE && !v6:
		return "gre0", nil
	case typ == TunnelGRE && v6:
		return "ip6gre0", nil
	}
	return "", fmt.Errorf("tunnel type %q is not supported (ipip and gre are)", typ)
}

// host is the host prefix of an address: /32 or /128.
func host(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

// desired computes the addresses per link and the sysctls of a spec.
func desired(s Spec) (addrs map[string][]netip.Prefix, tunnels []string, sysctls map[string]string, err error) {
	addrs = map[string][]netip.Prefix{}
	sysctls = map[string]string{}
	v4 := false
	for _, a := range s.DR {
		addrs["lo"] = append(addrs["lo"], host(a))
		v4 = v4 || a.Is4()
	}
	types := make([]string, 0, len(s.TUN))
	for t := range s.TUN {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		for _, a := range s.TUN[t] {
			dev, e := tunnelDevice(t, a.Is6())
			if e != nil {
				return nil, nil, nil, e
			}
			if _, ok := addrs[dev]; !ok {
				tunnels = append(tunnels, dev)
			}
			addrs[dev] = append(addrs[dev], host(a))
			if a.Is4() {
				v4 = true
				// The kernel checks max(all, dev): off on the
				// device; all is lowered from strict in Reconcile.
				sysctls["ipv4/conf/"+dev+"/rp_filter"] = "0"
				sysctls["ipv4/conf/"+dev+"/arp_ignore"] = "1"
				sysctls["ipv4/conf/"+dev+"/arp_announce"] = "2"
			}
		}
	}
	if v4 {
		for _, ifc := range append([]string{"all", "lo"}, s.ARPInterfaces...) {
			sysctls["ipv4/conf/"+ifc+"/arp_ignore"] = "1"
			sysctls["ipv4/conf/"+ifc+"/arp_announce"] = "2"
		}
	}
	for l := range addrs {
		slices.SortFunc(addrs[l], func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		addrs[l] = slices.Compact(addrs[l])
	}
	return addrs, tunnels, sysctls, nil
}

// Reconcile brings the kernel to the spec: tunnel devices up, VIPs added
// (and, of those lvsd added before, the ones no longer wanted deleted),
// sysctls set. saved records what it changed for the first time; it is
// updated in place. It returns what it changed (nothing when the kernel
// already matched) and every error met, after trying everything.
func Reconcile(k Kernel, s Spec, saved *Saved) ([]Change, error) {
	return ReconcileIntent(k, s, saved, nil)
}

// ReconcileIntent is Reconcile with intent first: before it adds an
// address or changes a sysctl for the first time, it hands intent the
// state that records it (the daemon saves it), so that a kill between the
// change and the next save never leaves something the next run does not
// know as its own. intent's error is reported with the others; the change
// is made all the same.
func ReconcileIntent(k Kernel, s Spec, saved *Saved, intent func(Saved) error) ([]Change, error) {
	var errs []error
	note := func() {
		if intent != nil {
			if err := intent(*saved); err != nil {
				errs = append(errs, fmt.Errorf("recording the intent: %w", err))
			}
		}
	}
	if saved.Sysctls == nil {
		saved.Sysctls = map[string]string{}
	}
	want, tunnels, sysctls, err := desired(s)
	if err != nil {
		return nil, err
	}
	var changes []Change
	for _, dev := range tunnels {
		up, err := k.TunnelUp(dev)
		if err != nil {
			errs = append(errs, fmt.Errorf("tunnel %s: %w", dev, err))
			continue
		}
		if up {
			changes = append(changes, Change{"brought " + dev + " up"})
			if !slices.Contains(saved.Tunnels, dev) {
				saved.Tunnels = append(saved.Tunnels, dev)
			}
		}
	}
	if len(tunnels) > 0 {
		// Strict reverse-path filtering on all overrides the device's
		// setting; loose (2) lets decapsulated packets in.
		if v, err := k.Sysctl("ipv4/conf/all/rp_filter"); err == nil && strings.TrimSpace(v) == "1" {
			sysctls["ipv4/conf/all/rp_filter"] = "2"
		} else if _, kept := saved.Sysctls["ipv4/conf/all/rp_filter"]; kept {
			sysctls["ipv4/conf/all/rp_filter"] = "2"
		}
	}
	// Addresses: add what is missing.
	links := make([]string, 0, len(want))
	for l := range want {
		links = append(links, l)
	}
	sort.Strings(links)
	for _, l := range links {
		have, err := k.Addrs(l)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing addresses of %s: %w", l, err))
			continue
		}
		for _, p := range want[l] {
			if slices.Contains(have, p) {
				continue
			}
			la := LinkAddr{l, p}
			known := slices.Contains(saved.Addrs, la)
			if !known {
				saved.Addrs = append(saved.Addrs, la)
				note()
			}
			if err := k.AddAddr(l, p); err != nil {
				errs = append(errs, fmt.Errorf("adding %v to %s: %w", p, l, err))
				if !known {
					saved.Addrs = slices.DeleteFunc(saved.Addrs, func(x LinkAddr) bool { return x == la })
				}
				continue
			}
			changes = append(changes, Change{fmt.Sprintf("added %v to %s", p, l)})
		}
	}
	// Addresses lvsd added that are no longer wanted.
	kept := saved.Addrs[:0]
	listed := map[string][]netip.Prefix{} // each link's addresses, listed once
	for _, la := range saved.Addrs {
		if slices.Contains(want[la.Link], la.Prefix) {
			kept = append(kept, la)
			continue
		}
		removed, err := delIfPresent(k, la, listed)
		if err != nil {
			errs = append(errs, err)
			kept = append(kept, la)
			continue
		}
		if removed {
			changes = append(changes, Change{fmt.Sprintf("removed %v from %s", la.Prefix, la.Link)})
		}
	}
	saved.Addrs = kept
	// Sysctls.
	keys := make([]string, 0, len(sysctls))
	for key := range sysctls {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		v := sysctls[key]
		cur, err := k.Sysctl(key)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading %s: %w", key, err))
			continue
		}
		cur = strings.TrimSpace(cur)
		if cur == v {
			continue
		}
		if _, ok := saved.Sysctls[key]; !ok {
			saved.Sysctls[key] = cur
			note()
		}
		if err := k.SetSysctl(key, v); err != nil {
			errs = append(errs, fmt.Errorf("setting %s=%s: %w", key, v, err))
			continue
		}
		changes = append(changes, Change{fmt.Sprintf("set %s=%s (was %s)", key, v, cur)})
	}
	// Sysctls lvsd set that are no longer wanted get their value back.
	restore := make([]string, 0, len(saved.Sysctls))
	for key := range saved.Sysctls {
		if _, ok := sysctls[key]; !ok {
			restore = append(restore, key)
		}
	}
	sort.Strings(restore)
	for _, key := range restore {
		orig := saved.Sysctls[key]
		if err := k.SetSysctl(key, orig); err != nil && !errors.Is(err, errNoSuchKey) {
			errs = append(errs, fmt.Errorf("restoring %s=%s: %w", key, orig, err))
			continue
		}
		delete(saved.Sysctls, key)
		changes = append(changes, Change{fmt.Sprintf("restored %s=%s", key, orig)})
	}
	// Tunnels lvsd brought up that carry nothing now go down again.
	keptTun := saved.Tunnels[:0]
	for _, dev := range saved.Tunnels {
		if slices.Contains(tunnels, dev) {
			keptTun = append(keptTun, dev)
			continue
		}
		if err := k.TunnelDown(dev); err != nil {
			errs = append(errs, fmt.Errorf("tunnel %s: %w", dev, err))
			keptTun = append(keptTun, dev)
			continue
		}
		changes = append(changes, Change{"brought " + dev + " down"})
	}
	saved.Tunnels = keptTun
	return changes, errors.Join(errs...)
}

// errNoSuchKey is returned by a Kernel for a sysctl that does not exist
// (a device gone since).
var errNoSuchKey = errors.New("no such sysctl")

func delIfPresent(k Kernel, la LinkAddr, listed map[string][]netip.Prefix) (bool, error) {
	have, ok := listed[la.Link]
	if !ok {
		var err error
		if have, err = k.Addrs(la.Link); err != nil {
			return false, fmt.Errorf("listing addresses of %s: %w", la.Link, err)
		}
		listed[la.Link] = have
	}
	if !slices.Contains(have, la.Prefix) {
		return false, nil
	}
	if err := k.DelAddr(la.Link, la.Prefix); err != nil {
		return false, fmt.Errorf("removing %v from %s: %w", la.Prefix, la.Link, err)
	}
	return true, nil
}

// Remove undoes what saved records: the addresses lvsd added are deleted,
// the sysctls get their former values. saved keeps what could not be
// undone.
func Remove(k Kernel, saved *Saved) ([]Change, error) {
	return Reconcile(k, Spec{}, saved)
}
