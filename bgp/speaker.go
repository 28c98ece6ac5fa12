package bgp

import (
	"net/netip"
	"time"

	"github.com/lvsd/lvsd/conf"
)

// Global is what a speaker is started with; a change restarts it (every
// session is reset).
type Global struct {
	RouterID   netip.Addr
	LocalAS    uint32
	ListenPort int // 0: not listening
}

// GlobalOf returns the speaker settings of a bgp block.
func GlobalOf(b *conf.BGP) Global {
	return Global{RouterID: b.RouterID, LocalAS: b.LocalAS, ListenPort: b.ListenPort}
}

// PeerState is a neighbor's session as the speaker reports it.
type PeerState struct {
	Addr     netip.Addr `json:"addr"`
	RemoteAS uint32     `json:"remote_as"`
	// State is the BGP FSM state: idle, connect, active, opensent,
	// openconfirm, established.
	State string `json:"state"`
	// Since is when the session was last established (zero: never).
	Since time.Time `json:"since,omitzero"`
	// HoldTime is the negotiated hold time (0 before establishment).
	HoldTime time.Duration `json:"hold_time,omitempty"`
}

// Established reports whether the session is up.
func (p PeerState) Established() bool { return p.State == "established" }

// Speaker is the BGP implementation the Service drives: GoBGP (gobgp.go),
// a fake in the unit tests. Methods are called from the Service's
// goroutine, except Peers (any goroutine).
type Speaker interface {
	// Start starts the speaker; Stop ends every session (a Cease
	// notification) and the listener.
	Start(g Global) error
	Stop() error
	// AddPeer adds a neighbor; DeletePeer removes it (its session ends).
	AddPeer(n conf.BGPNeighbor) error
	DeletePeer(addr netip.Addr) error
	// Announce adds or replaces the route for r.Prefix; Withdraw removes it.
	Announce(r Route) error
	Withdraw(p netip.Prefix) error
	// Peers returns the neighbors' sessions.
	Peers() []PeerState
}
