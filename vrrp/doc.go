// Package vrrp implements the VRRP engine of lvsd: the VRRPv2 (RFC 3768) and
// VRRPv3 over IPv4 and IPv6 (RFC 5798) packet codec and receive validation, a
// pure event-driven state machine with injected time, effective-priority
// tracking, sync groups, and the kernel-facing pieces (raw IP sockets, netlink
// VIPs, gratuitous ARP and neighbour advertisements) behind small interfaces.
//
// keepalived's behaviour is the reference; where it differs from the RFCs the
// difference is noted at the place it is implemented.
package vrrp
