// Package localaddr follows the addresses configured on this host (all
// interfaces of a network namespace), for ha_suspend: the checks of a
// virtual server run only while one of its addresses is here.
package localaddr

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Options are optional settings of Watch.
type Options struct {
	// Namespace to watch (default: the caller's).
	Namespace *netns.NsHandle
}

type entry struct {
	ifindex int
	addr    netip.Addr
}

// Watch calls fn with the set of local addresses: once before it returns,
// then after every change (changes arriving together are reported once),
// from its own goroutine, until ctx is done. fn owns the map it is given.
func Watch(ctx context.Context, opts Options, fn func(map[netip.Addr]bool)) error {
	ch := make(chan netlink.AddrUpdate, 256)
	done := make(chan struct{})
	so := netlink.AddrSubscribeOptions{Namespace: opts.Namespace}
	// Subscribe first, then list: an update that raced the list is applied
	// again, which changes nothing (the set is keyed by interface and
	// address, and updates say "present" or "absent").
	if err := netlink.AddrSubscribeWithOptions(ch, done, so); err != nil {
		close(done)
		return fmt.Errorf("localaddr: address subscription: %w", err)
	}
	h := &netlink.Handle{}
	if opts.Namespace != nil {
		var err error
		if h, err = netlink.NewHandleAt(*opts.Namespace); err != nil {
			close(done)
			return fmt.Errorf("localaddr: %w", err)
		}
	}
	list, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if opts.Namespace != nil {
		h.Close()
	}
	if err != nil {
		close(done)
		return fmt.Errorf("localaddr: listing addresses: %w", err)
	}
	set := map[entry]bool{}
	for _, a := range list {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			set[entry{a.LinkIndex, ip.Unmap()}] = true
		}
	}
	fn(flatten(set))
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case u, ok := <-ch:
				if !ok {
					return
				}
				changed := apply(set, u)
				for more := true; more; { // what else has arrived
					select {
					case u, ok = <-ch:
						if !ok {
							return
						}
						changed = apply(set, u) || changed
					default:
						more = false
					}
				}
				if changed {
					fn(flatten(set))
				}
			}
		}
	}()
	return nil
}

func apply(set map[entry]bool, u netlink.AddrUpdate) bool {
	ip, ok := netip.AddrFromSlice(u.LinkAddress.IP)
	if !ok {
		return false
	}
	e := entry{u.LinkIndex, ip.Unmap()}
	if set[e] == u.NewAddr {
		return false
	}
	if u.NewAddr {
		set[e] = true
	} else {
		delete(set, e)
	}
	return true
}

func flatten(set map[entry]bool) map[netip.Addr]bool {
	out := make(map[netip.Addr]bool, len(set))
	for e := range set {
		out[e.addr] = true
	}
	return out
}
