package netwatch

import (
	"net/netip"
	"slices"
	"testing"
)

func link(k Kind, i int, name string) Event { return Event{Kind: k, Index: i, Name: name} }
func addr(k Kind, i int, p string) Event {
	return Event{Kind: k, Index: i, Prefix: netip.MustParsePrefix(p)}
}
func named(e Event, name string) Event { e.Name = name; return e }

// A state reports changes only (and every address deletion), names the
// interface of an address, and deletes the addresses left on a link gone.
func TestStateApply(t *testing.T) {
	s := newState()
	for _, c := range []struct {
		in   Event
		want []Event
	}{
		{link(LinkDown, 2, "eth0"), []Event{link(LinkDown, 2, "eth0")}},
		{link(LinkDown, 2, "eth0"), nil}, // a message that changes nothing
		{link(LinkUp, 2, "eth0"), []Event{link(LinkUp, 2, "eth0")}},
		{link(LinkUp, 2, "wan"), []Event{link(LinkUp, 2, "wan")}}, // renamed
		{addr(AddrAdded, 2, "192.0.2.1/24"), []Event{named(addr(AddrAdded, 2, "192.0.2.1/24"), "wan")}},
		{addr(AddrAdded, 2, "192.0.2.1/24"), nil},
		{addr(AddrAdded, 2, "192.0.2.1/32"), []Event{named(addr(AddrAdded, 2, "192.0.2.1/32"), "wan")}}, // another prefix length
		{addr(AddrAdded, 9, "2001:db8::1/64"), []Event{addr(AddrAdded, 9, "2001:db8::1/64")}},           // link not known
		{addr(AddrDeleted, 2, "192.0.2.1/24"), []Event{named(addr(AddrDeleted, 2, "192.0.2.1/24"), "wan")}},
		{addr(AddrDeleted, 2, "192.0.2.1/24"), []Event{named(addr(AddrDeleted, 2, "192.0.2.1/24"), "wan")}}, // not known: reported all the same
		{link(LinkGone, 3, "other"), nil},
		{link(LinkGone, 2, ""), []Event{named(addr(AddrDeleted, 2, "192.0.2.1/32"), "wan"), link(LinkGone, 2, "wan")}},
	} {
		if got := s.apply(c.in, nil); !slices.Equal(got, c.want) {
			t.Errorf("apply(%v) = %v; want %v", c.in, got, c.want)
		}
	}
	if got, want := s.sortedAddrs(), []Addr{{9, netip.MustParsePrefix("2001:db8::1/64")}}; !slices.Equal(got, want) {
		t.Errorf("addresses %v; want %v", got, want)
	}
	if got := s.sortedLinks(); len(got) != 0 {
		t.Errorf("links %v; want none", got)
	}
}

// replace reports the difference between two listings, deletions first.
func TestStateReplace(t *testing.T) {
	build := func(evs ...Event) *state {
		s := newState()
		for _, e := range evs {
			s.apply(e, nil)
		}
		return s
	}
	old := build(link(LinkUp, 1, "lo"), link(LinkUp, 2, "eth0"), link(LinkUp, 3, "eth1"),
		addr(AddrAdded, 1, "127.0.0.1/8"), addr(AddrAdded, 2, "192.0.2.1/24"), addr(AddrAdded, 2, "192.0.2.7/32"), addr(AddrAdded, 3, "198.51.100.1/24"))
	next := build(link(LinkUp, 1, "lo"), link(LinkDown, 2, "eth0"), link(LinkUp, 4, "eth2"),
		addr(AddrAdded, 1, "127.0.0.1/8"), addr(AddrAdded, 2, "192.0.2.1/24"), addr(AddrAdded, 4, "203.0.113.1/24"), addr(AddrAdded, 2, "2001:db8::1/64"))
	want := []Event{
		named(addr(AddrDeleted, 2, "192.0.2.7/32"), "eth0"),
		named(addr(AddrDeleted, 3, "198.51.100.1/24"), "eth1"),
		link(LinkGone, 3, "eth1"),
		link(LinkDown, 2, "eth0"),
		link(LinkUp, 4, "eth2"),
		named(addr(AddrAdded, 2, "2001:db8::1/64"), "eth0"),
		named(addr(AddrAdded, 4, "203.0.113.1/24"), "eth2"),
	}
	if got := old.replace(next); !slices.Equal(got, want) {
		t.Errorf("replace:\n got %v\nwant %v", got, want)
	}
	if !slices.Equal(old.sortedLinks(), next.sortedLinks()) || !slices.Equal(old.sortedAddrs(), next.sortedAddrs()) {
		t.Errorf("after replace: %v %v; want %v %v", old.sortedLinks(), old.sortedAddrs(), next.sortedLinks(), next.sortedAddrs())
	}
	if got := old.replace(next); len(got) != 0 {
		t.Errorf("replace with the same state: %v", got)
	}
	// The first listing: everything is new.
	if got := newState().replace(build(link(LinkDown, 5, "x"), addr(AddrAdded, 5, "192.0.2.5/24"))); !slices.Equal(got,
		[]Event{link(LinkDown, 5, "x"), named(addr(AddrAdded, 5, "192.0.2.5/24"), "x")}) {
		t.Errorf("first listing: %v", got)
	}
}
