package netwatch

import (
	"cmp"
	"maps"
	"slices"
)

// state is what a watcher knows of its namespace.
type state struct {
	links map[int]Link
	addrs map[Addr]bool
}

func newState() *state { return &state{links: map[int]Link{}, addrs: map[Addr]bool{}} }

// apply records e, as decoded from a message, and appends to out the
// events it makes: e itself if it changes something or is a deletion of
// an address (with the interface name filled in for an address), after
// the deletion of the addresses still recorded on a link gone.
func (s *state) apply(e Event, out []Event) []Event {
	switch e.Kind {
	case LinkUp, LinkDown:
		l := Link{Index: e.Index, Name: e.Name, Up: e.Kind == LinkUp}
		if old, ok := s.links[e.Index]; ok && old == l {
			return out
		}
		s.links[e.Index] = l
	case LinkGone:
		l, ok := s.links[e.Index]
		if !ok {
			return out
		}
		for _, a := range s.sortedAddrs() {
			if a.Index == e.Index {
				out = s.apply(Event{Kind: AddrDeleted, Index: a.Index, Prefix: a.Prefix}, out)
			}
		}
		if e.Name == "" {
			e.Name = l.Name
		}
		delete(s.links, e.Index)
	case AddrAdded:
		a := Addr{Index: e.Index, Prefix: e.Prefix}
		if s.addrs[a] {
			return out
		}
		s.addrs[a] = true
		e.Name = s.links[e.Index].Name
	case AddrDeleted:
		// Reported even if not known: the kernel announces an address
		// it configures itself (an IPv6 link-local one) only once
		// duplicate address detection is over, but its deletion before
		// that all the same.
		delete(s.addrs, Addr{Index: e.Index, Prefix: e.Prefix})
		e.Name = s.links[e.Index].Name
	default:
		return out
	}
	return append(out, e)
}

// replace makes s what next is and returns the events that lead there:
// addresses deleted, links gone, links new or changed, addresses added.
func (s *state) replace(next *state) []Event {
	var out []Event
	for _, a := range s.sortedAddrs() {
		if !next.addrs[a] {
			out = s.apply(Event{Kind: AddrDeleted, Index: a.Index, Prefix: a.Prefix}, out)
		}
	}
	for _, l := range s.sortedLinks() {
		if _, ok := next.links[l.Index]; !ok {
			out = s.apply(Event{Kind: LinkGone, Index: l.Index, Name: l.Name}, out)
		}
	}
	for _, l := range next.sortedLinks() {
		out = s.apply(linkEvent(l), out)
	}
	for _, a := range next.sortedAddrs() {
		out = s.apply(Event{Kind: AddrAdded, Index: a.Index, Prefix: a.Prefix}, out)
	}
	return out
}

func linkEvent(l Link) Event {
	e := Event{Kind: LinkDown, Index: l.Index, Name: l.Name}
	if l.Up {
		e.Kind = LinkUp
	}
	return e
}

func (s *state) sortedLinks() []Link {
	links := slices.Collect(maps.Values(s.links))
	slices.SortFunc(links, func(a, b Link) int { return cmp.Compare(a.Index, b.Index) })
	return links
}

func (s *state) sortedAddrs() []Addr {
	return slices.SortedFunc(maps.Keys(s.addrs), func(a, b Addr) int {
		if c := cmp.Compare(a.Index, b.Index); c != 0 {
			return c
		}
		return a.Prefix.Compare(b.Prefix)
	})
}
