package conf

import (
	"net/netip"
	"time"
)

// BGP is the bgp block, lvsd's own (keepalived has no BGP and warns on the
// block as unknown): the speaker that announces virtual-server addresses to
// routers (ECMP across active-active directors).
type BGP struct {
	RouterID netip.Addr `json:"router_id"`
	LocalAS  uint32     `json:"local_as"`
	// ListenPort is the TCP port the speaker accepts sessions on (179);
	// 0: it does not listen, it only connects.
	ListenPort int `json:"listen_port"`
	// HoldTime is the neighbors' default hold time (90 s).
	HoldTime time.Duration `json:"hold_time"`
	// DrainTime is how long the routes carry the GRACEFUL_SHUTDOWN
	// community (RFC 8326) before they are withdrawn, on SIGTERM and on
	// lvsd ctl drain (0: withdrawn at once).
	DrainTime time.Duration `json:"drain_time"`
	// Attrs are the path attributes of every announcement (an announce line
	// can override them); VRRPInstance the default of the lines.
	// IPVSSysctls: while addresses are announced, lvsd sets the IPVS
	// sysctls active-active directors need (sloppy_tcp, sloppy_sctp;
	// backup_only 0 with the sync daemon in both roles; ipvs/sysctl.go).
	// ipvs_sysctls off leaves them to the operator.
	IPVSSysctls  bool           `json:"ipvs_sysctls"`
	Attrs        BGPAttrs       `json:"attrs"`
	VRRPInstance string         `json:"vrrp_master,omitempty"`
	Neighbors    []*BGPNeighbor `json:"neighbors,omitempty"`
	Announce     []*BGPAnnounce `json:"announce,omitempty"`
	Pos          Pos            `json:"pos"`
}

// BGPAttrs are the path attributes an announcement carries.
type BGPAttrs struct {
	// Communities are RFC 1997 communities, ASN<<16|value.
	Communities []uint32 `json:"communities,omitempty"`
	// MED, when set, is the MULTI_EXIT_DISC.
	MED *uint32 `json:"med,omitempty"`
	// Prepend is how many extra times the local AS is put in the AS path
	// (a less preferred director).
	Prepend int `json:"as_path_prepend,omitempty"`
}

// BGPNeighbor is one neighbor block.
type BGPNeighbor struct {
	Addr     netip.Addr    `json:"addr"`
	RemoteAS uint32        `json:"remote_as"`
	HoldTime time.Duration `json:"hold_time"`
	// Passive: wait for the neighbor to connect.
	Passive bool `json:"passive,omitempty"`
	// Password is the TCP MD5 signature key (RFC 2385).
	Password string `json:"-"`
	// Multihop is the eBGP multihop TTL (0: a directly connected peer).
	Multihop     int        `json:"multihop,omitempty"`
	LocalAddress netip.Addr `json:"local_address,omitempty"`
	// Port is the neighbor's port (179).
	Port int `json:"port"`
	Pos  Pos `json:"pos"`
}

// BGPAnnounce is one announced address: a line of the announce block, or
// one address of a group line (validation expands those). It is announced
// as a host route (/32, /128) while every virtual server of that address
// has quorum (and, with VRRPInstance, while that instance is MASTER). The
// virtual servers of an address are those at that address:port, those of
// a virtual_server_group with that address among its members (an address
// or a range), and, with Fwmark, those of that fwmark (a virtual server
// by fwmark, or a group with an fwmark line of it): an fwmark has no
// address, the operator names the one its clients reach.
type BGPAnnounce struct {
	Prefix       netip.Prefix `json:"prefix"`
	Attrs        BGPAttrs     `json:"attrs"`
	VRRPInstance string       `json:"vrrp_master,omitempty"`
	// Group: the line was group NAME (every address of that
	// virtual_server_group); Fwmark: the line's fwmark option.
	Group  string `json:"group,omitempty"`
	Fwmark uint32 `json:"fwmark,omitempty"`
	// VirtualServers are the keys (VirtualServer.Key) of the virtual
	// servers whose quorum the address follows, set by validation.
	VirtualServers []string `json:"virtual_servers,omitempty"`
	Pos            Pos      `json:"pos"`
}
