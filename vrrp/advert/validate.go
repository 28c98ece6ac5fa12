package advert

import (
	"crypto/subtle"
	"fmt"
	"net/netip"
	"time"
)

// DropReason says why a received packet was not handed to the state machine.
// Each reason is counted separately.
type DropReason uint8

// Drop reasons, in the order of the checks of RFC 3768/5798 §7.1 as
// keepalived applies them.
const (
	DropNone        DropReason = iota // accepted
	DropTooShort                      // shorter than the VRRP header
	DropLength                        // length does not match the address count
	DropTTL                           // IP TTL is not 255 (multicast mode)
	DropVersion                       // unknown version, or not the configured one
	DropType                          // not an advertisement
	DropChecksum                      // bad checksum
	DropUnknownVRID                   // no instance for this VRID: ignored, not an instance error
	DropAuthType                      // v2 auth type differs from ours
	DropAuthFailure                   // v2 simple password differs
	DropInterval                      // v2 advert interval differs: dropped, timer not reset
	DropNotPeer                       // unicast mode: source is not a configured peer

	// Checked by package vrrp's socket, before the above.
	DropIPHeader       // the IPv4 header is malformed or truncated, or the IPv6 sender unreadable
	DropWrongInterface // received on another interface than the socket's
	dropMax
)

// NumDropReasons is the number of DropReason values, DropNone included:
// the length of an array of counters indexed by DropReason.
const NumDropReasons = int(dropMax)

var dropNames = [...]string{
	DropNone:        "none",
	DropTooShort:    "too_short",
	DropLength:      "length",
	DropTTL:         "ttl",
	DropVersion:     "version",
	DropType:        "type",
	DropChecksum:    "checksum",
	DropUnknownVRID: "unknown_vrid",
	DropAuthType:    "auth_type",
	DropAuthFailure: "auth_failure",
	DropInterval:    "interval",
	DropNotPeer:     "not_peer",

	DropIPHeader:       "ip_header",
	DropWrongInterface: "wrong_interface",
}

func (r DropReason) String() string {
	if int(r) < len(dropNames) {
		return dropNames[r]
	}
	return fmt.Sprintf("drop(%d)", uint8(r))
}

// DropReasons lists every reason other than DropNone, for metrics.
func DropReasons() []DropReason {
	rs := make([]DropReason, 0, dropMax-1)
	for r := DropNone + 1; r < dropMax; r++ {
		rs = append(rs, r)
	}
	return rs
}

// Expect is what an instance expects of the adverts it receives.
type Expect struct {
	Version  uint8
	VRID     uint8
	Interval time.Duration // configured advert_int (checked for v2 only)
	AuthType AuthType
	AuthData [AuthDataLen]byte
	Addrs    []netip.Addr // configured VIPs, in any order
	// Unicast disables the TTL check (as keepalived: unicast adverts may be
	// routed) and, with Peers set, restricts sources to the peers.
	Unicast bool
	Peers   []netip.Addr
	// PeerTTL, by Peers index when given, is the TTL accepted from each
	// peer (unicast_peer's min_ttl and max_ttl); outside it: DropTTL.
	PeerTTL []TTLRange
}

// TTLRange is an accepted range of TTLs (hop limits), bounds included.
type TTLRange struct{ Min, Max uint8 }

// Check is the outcome of Validate. Drop is DropNone for an accepted advert;
// AddrListMismatch and PriorityZero are noted on accepted adverts and counted.
type Check struct {
	Drop             DropReason
	AddrListMismatch bool
	PriorityZero     bool
}

// Validate applies the per-instance checks of RFC 3768/5798 §7.1 to a decoded
// advert.
//
// Differences from the RFCs, following keepalived: an address owner does not
// drop adverts for its VRID; an address-list mismatch is noted and counted
// but the advert is accepted (the RFC says MAY verify).
func (e *Expect) Validate(a *Advert, info PacketInfo) Check {
	if !e.Unicast && info.TTL >= 0 && info.TTL != TTL {
		return Check{Drop: DropTTL}
	}
	if a.Version != e.Version {
		return Check{Drop: DropVersion}
	}
	if a.Type != TypeAdvertisement {
		return Check{Drop: DropType}
	}
	if a.VRID != e.VRID {
		return Check{Drop: DropUnknownVRID}
	}
	if a.Version == 2 {
		if a.AuthType != e.AuthType {
			return Check{Drop: DropAuthType}
		}
		if e.AuthType == AuthPass && subtle.ConstantTimeCompare(a.AuthData[:], e.AuthData[:]) != 1 {
			return Check{Drop: DropAuthFailure}
		}
		if a.Interval != e.Interval {
			return Check{Drop: DropInterval}
		}
	}
	if e.Unicast && len(e.Peers) > 0 {
		found := -1
		for i, p := range e.Peers {
			if p == info.Src {
				found = i
				break
			}
		}
		if found < 0 {
			return Check{Drop: DropNotPeer}
		}
		if found < len(e.PeerTTL) && info.TTL >= 0 {
			if r := e.PeerTTL[found]; info.TTL < int(r.Min) || info.TTL > int(r.Max) {
				return Check{Drop: DropTTL}
			}
		}
	}
	return Check{AddrListMismatch: !sameAddrs(a.Addrs, e.Addrs), PriorityZero: a.Priority == 0}
}

// sameAddrs reports whether a and b hold the same addresses, in any order.
func sameAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range b {
		found := false
		for _, y := range a {
			if x == y {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
