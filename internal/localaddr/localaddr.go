// Package localaddr follows the addresses configured on this host (all
// interfaces of a network namespace), for ha_suspend: the checks of a
// virtual server run only while one of its addresses is here.
package localaddr

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netns"

	"github.com/lvsd/lvsd/internal/netwatch"
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
	w, err := netwatch.New(netwatch.Options{Namespace: opts.Namespace})
	if err != nil {
		return fmt.Errorf("localaddr: %w", err)
	}
	set := map[entry]bool{}
	for _, a := range w.Addrs() {
		set[entry{a.Index, a.Prefix.Addr().Unmap()}] = true
	}
	fn(flatten(set))
	go func() {
		// The first events are the listing just reported: they change nothing.
		_ = w.Run(ctx, func(evs []netwatch.Event) {
			changed := false
			for _, e := range evs {
				changed = apply(set, e) || changed
			}
			if changed {
				fn(flatten(set))
			}
		})
	}()
	return nil
}

func apply(set map[entry]bool, e netwatch.Event) bool {
	if e.Kind != netwatch.AddrAdded && e.Kind != netwatch.AddrDeleted {
		return false
	}
	k, present := entry{e.Index, e.Prefix.Addr().Unmap()}, e.Kind == netwatch.AddrAdded
	if set[k] == present {
		return false
	}
	if present {
		set[k] = true
	} else {
		delete(set, k)
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
