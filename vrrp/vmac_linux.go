package vrrp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netlinkVMACs is the real VMACLinks: rtnetlink for the links and
// addresses, /proc/sys for the interfaces' parameters (as keepalived
// without libnl). Safe for concurrent use (the engine and its safety net).
type netlinkVMACs struct {
	mu sync.Mutex
	// bases: per base interface, the VMACs on it and the arp_ignore and
	// arp_filter it had before the first.
	bases map[string]*baseARP
}

type baseARP struct {
	users                  map[string]bool
	arpIgnore, arpFilter   string
	savedIgnore, savedFilt bool
}

// The parameters keepalived sets for an IPv4 instance (vrrp_if_config.c):
// on the VMAC, accept_local to hear the other routers' adverts from an
// address of ours, arp_ignore so that it answers only for its own
// addresses, rp_filter off to receive on an interface without address, and
// promote_secondaries; on the base, arp_ignore and arp_filter so that it
// does not answer for the VIPs.
var (
	vmacIPv4Sysctls = [][2]string{{"arp_ignore", "1"}, {"accept_local", "1"}, {"rp_filter", "0"}, {"promote_secondaries", "1"}}
	baseIPv4Sysctls = [][2]string{{"arp_ignore", "1"}, {"arp_filter", "1"}}
)

func sysctlPath(fam, ifname, key string) string {
	return filepath.Join("/proc/sys/net", fam, "conf", ifname, key)
}

func getSysctl(fam, ifname, key string) (string, error) {
	b, err := os.ReadFile(sysctlPath(fam, ifname, key))
	return strings.TrimSpace(string(b)), err
}

func setSysctl(fam, ifname, key, val string) error {
	return os.WriteFile(sysctlPath(fam, ifname, key), []byte(val), 0o644)
}

func (n *netlinkVMACs) Ensure(v VMACSpec) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	base, err := netlink.LinkByName(v.Base)
	if err != nil {
		return fmt.Errorf("base interface %s: %w", v.Base, err)
	}
	l, err := netlink.LinkByName(v.Name)
	switch {
	case err == nil:
		if !vmacMatches(l, v, base) {
			if !isVMACKind(l) {
				return fmt.Errorf("%s exists and is a %s, not a VMAC", v.Name, l.Type())
			}
			if err := netlink.LinkDel(l); err != nil {
				return fmt.Errorf("removing %s, of another kind or base: %w", v.Name, err)
			}
			l = nil
		}
	case errors.As(err, new(netlink.LinkNotFoundError)):
		l = nil
	default:
		return err
	}
	if l == nil {
		if err := netlink.LinkAdd(newVMACLink(v, base)); err != nil {
			return fmt.Errorf("creating %s on %s: %w", v.Name, v.Base, err)
		}
		if l, err = netlink.LinkByName(v.Name); err != nil {
			return err
		}
	}
	// No IPv6 address of its own from the MAC (RFC 5798 7.4); disabled
	// altogether on an IPv4 instance's VMAC without IPv6 VIPs.
	if !v.IPvlan || v.IPv6 { // keepalived leaves an IPv4 ipvlan's
		if err := netlink.LinkSetIP6AddrGenMode(l, 1 /* IN6_ADDR_GEN_MODE_NONE */); err != nil {
			return fmt.Errorf("%s: addrgenmode none: %w", v.Name, err)
		}
	}
	if !v.IPv6 && !v.IPvlan {
		// keepalived 2.2.7 sets none on an ipvlan (it answers ARP with
		// the base's MAC anyway) or its base.
		for _, kv := range vmacIPv4Sysctls {
			if err := setSysctl("ipv4", v.Name, kv[0], kv[1]); err != nil {
				return err
			}
		}
		if err := n.setBase(v); err != nil {
			return err
		}
	}
	if !v.IPv6 {
		dis := "1"
		if v.KeepIPv6 {
			dis = "0"
		}
		if err := setSysctl("ipv6", v.Name, "disable_ipv6", dis); err != nil {
			return err
		}
	}
	if v.IPv6 && v.LinkLocal.IsValid() {
		// The base's link-local address, deprecated so that nothing else
		// picks it as a source: the adverts go from it on the VMAC.
		a := &netlink.Addr{IPNet: &net.IPNet{IP: v.LinkLocal.AsSlice(), Mask: net.CIDRMask(64, 128)},
			Flags: unix.IFA_F_NODAD, PreferedLft: 0, ValidLft: 0xffffffff}
		if err := netlink.AddrReplace(l, a); err != nil {
			return fmt.Errorf("%s: link-local address %v: %w", v.Name, v.LinkLocal, err)
		}
	}
	if v.Addr.IsValid() {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: v.Addr.Addr().AsSlice(), Mask: net.CIDRMask(v.Addr.Bits(), v.Addr.Addr().BitLen())}}
		if v.Addr.Addr().Is4() {
			a.Broadcast = net.IPv4zero // none, as keepalived
		}
		if err := netlink.AddrReplace(l, a); err != nil {
			return fmt.Errorf("%s: address %v: %w", v.Name, v.Addr, err)
		}
	}
	return netlink.LinkSetUp(l)
}

// setBase sets arp_ignore and arp_filter on the base, remembering the
// values it had before its first VMAC.
func (n *netlinkVMACs) setBase(v VMACSpec) error {
	if n.bases == nil {
		n.bases = map[string]*baseARP{}
	}
	b := n.bases[v.Base]
	if b == nil {
		b = &baseARP{users: map[string]bool{}}
		var err error
		if b.arpIgnore, err = getSysctl("ipv4", v.Base, "arp_ignore"); err == nil {
			b.savedIgnore = true
		}
		if b.arpFilter, err = getSysctl("ipv4", v.Base, "arp_filter"); err == nil {
			b.savedFilt = true
		}
		n.bases[v.Base] = b
	}
	b.users[v.Name] = true
	for _, kv := range baseIPv4Sysctls {
		if err := setSysctl("ipv4", v.Base, kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

func (n *netlinkVMACs) Remove(v VMACSpec) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var err error
	l, lerr := netlink.LinkByName(v.Name)
	switch {
	case lerr == nil && isVMACKind(l):
		err = netlink.LinkDel(l)
	case lerr == nil:
		err = fmt.Errorf("%s is a %s, not a VMAC: left alone", v.Name, l.Type())
	case !errors.As(lerr, new(netlink.LinkNotFoundError)):
		err = lerr
	}
	if b := n.bases[v.Base]; b != nil && b.users[v.Name] {
		delete(b.users, v.Name)
		if len(b.users) == 0 {
			delete(n.bases, v.Base)
			if b.savedIgnore {
				_ = setSysctl("ipv4", v.Base, "arp_ignore", b.arpIgnore)
			}
			if b.savedFilt {
				_ = setSysctl("ipv4", v.Base, "arp_filter", b.arpFilter)
			}
		}
	}
	return err
}

func (n *netlinkVMACs) Leftovers() ([]string, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range links {
		if mv, ok := l.(*netlink.Macvlan); ok && mv.Mode == netlink.MACVLAN_MODE_PRIVATE && isVirtualMAC(l.Attrs().HardwareAddr) {
			out = append(out, l.Attrs().Name)
		}
	}
	return out, nil
}

func isVMACKind(l netlink.Link) bool {
	switch l.(type) {
	case *netlink.Macvlan, *netlink.IPVlan:
		return true
	}
	return false
}

var ipvlanFlags = map[string]netlink.IPVlanFlag{"bridge": netlink.IPVLAN_FLAG_BRIDGE, "private": netlink.IPVLAN_FLAG_PRIVATE, "vepa": netlink.IPVLAN_FLAG_VEPA}

func newVMACLink(v VMACSpec, base netlink.Link) netlink.Link {
	la := netlink.NewLinkAttrs()
	la.Name, la.ParentIndex = v.Name, base.Attrs().Index
	if v.IPvlan {
		return &netlink.IPVlan{LinkAttrs: la, Mode: netlink.IPVLAN_MODE_L2, Flag: ipvlanFlags[v.Mode]}
	}
	la.HardwareAddr = v.MAC
	return &netlink.Macvlan{LinkAttrs: la, Mode: netlink.MACVLAN_MODE_PRIVATE}
}

// vmacMatches reports whether l is the VMAC v asks for: the kind, mode,
// base and MAC.
func vmacMatches(l netlink.Link, v VMACSpec, base netlink.Link) bool {
	if l.Attrs().ParentIndex != base.Attrs().Index {
		return false
	}
	switch x := l.(type) {
	case *netlink.Macvlan:
		return !v.IPvlan && x.Mode == netlink.MACVLAN_MODE_PRIVATE && bytes.Equal(l.Attrs().HardwareAddr, v.MAC)
	case *netlink.IPVlan:
		return v.IPvlan && x.Mode == netlink.IPVLAN_MODE_L2 && x.Flag == ipvlanFlags[v.Mode]
	}
	return false
}

// applyPromoteSecondaries sets promote_secondaries on the interfaces of
// the instances that ask for it (an IPv4 one's secondary addresses then
// survive the deletion of the primary), as keepalived; those it was off on
// get it back off when the engine stops.
func (st *engineState) applyPromoteSecondaries(specs []runnerSpec) {
	for _, s := range specs {
		for _, ic := range s.Instances {
			if !ic.PromoteSecondaries || ic.IPv6 || st.promoted[ic.Interface] {
				continue
			}
			cur, err := getSysctl("ipv4", ic.Interface, "promote_secondaries")
			if err == nil && cur == "0" {
				err = setSysctl("ipv4", ic.Interface, "promote_secondaries", "1")
			}
			if err != nil {
				st.e.log.Warn("vrrp: promote_secondaries", "interface", ic.Interface, "err", err)
				continue
			}
			if cur == "0" {
				if st.promoted == nil {
					st.promoted = map[string]bool{}
				}
				st.promoted[ic.Interface] = true
			}
		}
	}
}

func (st *engineState) resetPromoteSecondaries() {
	for ifname := range st.promoted {
		_ = setSysctl("ipv4", ifname, "promote_secondaries", "0")
	}
	st.promoted = nil
}
