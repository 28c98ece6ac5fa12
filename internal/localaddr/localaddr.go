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
	// ReadBuffer and ForceBuffer size the netlink socket's receive buffer
	// (netwatch.Options; lvs_netlink_monitor_rcv_bufs and its _force).
	ReadBuffer  int
	ForceBuffer bool
	// Resynced is called (from the watch's goroutine) each time lost
	// notifications or a failed socket were repaired by a new listing,
	// after fn was given the addresses listed; nil: not told.
	Resynced func()
	// Resize, when not nil, is given the watch's socket resizer (for a
	// reload: see netwatch.Watcher.SetReadBuffer) before Watch returns.
	Resize func(func(n int, force bool) error)
}

type entry struct {
	ifindex int
	addr    netip.Addr
}

// Watch calls fn with the set of local addresses: once before it returns,
// then after every change (changes arriving together are reported once),
// from its own goroutine, until ctx is done. fn owns the map it is given.
// Notifications the kernel dropped (a receive buffer overrun while the
// process was stalled) and a socket that failed are repaired by netwatch
// with a new listing: fn then gets the set as listed.
func Watch(ctx context.Context, opts Options, fn func(map[netip.Addr]bool)) error {
	w, err := netwatch.New(netwatch.Options{Namespace: opts.Namespace, ReadBuffer: opts.ReadBuffer, ForceBuffer: opts.ForceBuffer})
	if err != nil {
		return fmt.Errorf("localaddr: %w", err)
	}
	if opts.Resize != nil {
		opts.Resize(w.SetReadBuffer)
	}
	set := map[entry]bool{}
	for _, a := range w.Addrs() {
		set[entry{a.Index, a.Prefix.Addr().Unmap()}] = true
	}
	fn(flatten(set))
	go func() {
		// The first events are the listing just reported: they change nothing.
		_ = w.Run(ctx, func(evs []netwatch.Event) {
			changed, resynced := false, false
			for _, e := range evs {
				changed = apply(set, e) || changed
				resynced = resynced || e.Kind == netwatch.Resynced
			}
			if changed {
				fn(flatten(set))
			}
			if resynced && opts.Resynced != nil {
				opts.Resynced()
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
