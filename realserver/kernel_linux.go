package realserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// System is the Kernel of the calling thread's network namespace: rtnetlink
// for links and addresses, /proc/sys/net for sysctls.
type System struct {
	// ProcSys is the sysctl root (default /proc/sys/net).
	ProcSys string
}

func (s System) root() string {
	if s.ProcSys != "" {
		return s.ProcSys
	}
	return "/proc/sys/net"
}

func linkByName(name string) (netlink.Link, error) {
	l, err := netlink.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil, nil
	}
	return l, err
}

// Addrs lists the link's addresses; nil, nil when there is no such link.
func (System) Addrs(name string) ([]netip.Prefix, error) {
	l, err := linkByName(name)
	if l == nil || err != nil {
		return nil, err
	}
	list, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, 0, len(list))
	for _, a := range list {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return out, nil
}

func (System) addr(name string, p netip.Prefix) (netlink.Link, *netlink.Addr, error) {
	l, err := linkByName(name)
	if err != nil {
		return nil, nil, err
	}
	if l == nil {
		return nil, nil, fmt.Errorf("no interface %s", name)
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		// A VIP is never to be refused by duplicate address
		// detection: the director holds it too.
		a.Flags = unix.IFA_F_NODAD
	}
	return l, a, nil
}

// AddAddr adds the address to the link.
func (s System) AddAddr(name string, p netip.Prefix) error {
	l, a, err := s.addr(name, p)
	if err != nil {
		return err
	}
	return netlink.AddrAdd(l, a)
}

// DelAddr removes the address from the link.
func (s System) DelAddr(name string, p netip.Prefix) error {
	l, a, err := s.addr(name, p)
	if err != nil {
		return err
	}
	return netlink.AddrDel(l, a)
}

// TunnelUp makes the fallback device exist and up. Asking for a tunnel of
// the type loads its module, which creates the namespace's fallback device
// (tunl0, gre0, ip6tnl0, ip6gre0); the request itself then fails as the
// name exists, which is what is wanted.
func (System) TunnelUp(name string) (bool, error) {
	l, err := linkByName(name)
	if err != nil {
		return false, err
	}
	if l == nil {
		var req netlink.Link
		attrs := netlink.LinkAttrs{Name: name}
		switch name {
		case "tunl0":
			req = &netlink.Iptun{LinkAttrs: attrs}
		case "gre0":
			req = &netlink.Gretun{LinkAttrs: attrs}
		case "ip6tnl0":
			req = &netlink.Ip6tnl{LinkAttrs: attrs}
		case "ip6gre0":
			req = &netlink.Gretun{LinkAttrs: attrs, Local: net.IPv6loopback}
		default:
			return false, fmt.Errorf("unknown tunnel device %s", name)
		}
		addErr := netlink.LinkAdd(req)
		if l, err = linkByName(name); err != nil {
			return false, err
		}
		if l == nil {
			return false, fmt.Errorf("the kernel created no %s (is its tunnel module available?): %v", name, addErr)
		}
	}
	if l.Attrs().Flags&net.FlagUp != 0 {
		return false, nil
	}
	return true, netlink.LinkSetUp(l)
}

// TunnelDown brings the device down (a fallback device cannot be deleted).
func (System) TunnelDown(name string) error {
	l, err := linkByName(name)
	if l == nil || err != nil {
		return err
	}
	return netlink.LinkSetDown(l)
}

func (s System) path(key string) (string, error) {
	if strings.Contains(key, "..") {
		return "", fmt.Errorf("bad sysctl %q", key)
	}
	return filepath.Join(s.root(), key), nil
}

// Sysctl reads net.<key> ("ipv4/conf/lo/arp_ignore").
func (s System) Sysctl(key string) (string, error) {
	p, err := s.path(key)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%s: %w", key, errNoSuchKey)
	}
	return strings.TrimSpace(string(b)), err
}

// SetSysctl writes net.<key>.
func (s System) SetSysctl(key, value string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	err = os.WriteFile(p, []byte(value+"\n"), 0o644)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", key, errNoSuchKey)
	}
	return err
}

// LocalAddrs lists every address of the namespace (to find which real
// servers of a configuration this host is).
func LocalAddrs() ([]netip.Addr, error) {
	list, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(list))
	for _, a := range list {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}
