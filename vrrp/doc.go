// Package vrrp is the VRRP engine of lvsd: VRRPv2 (RFC 3768) and VRRPv3
// over IPv4 and IPv6 (RFC 5798), as keepalived runs them, so that lvsd and
// keepalived can be the two directors of one pair.
//
// # The pieces
//
// The advert on the wire (encoding, decoding, receive validation and the
// typed reasons to drop a packet) is package [github.com/lvsd/lvsd/vrrp/advert].
// This package is the rest, from the pure to the kernel-facing:
//
//   - Machine is the state machine of one instance (RFC 3768/5798 §6.4):
//     no sockets, no goroutines, time read from an injected clock. Handle
//     takes an Event (Start, AdvertReceived, TimerFired, InterfaceChanged,
//     TrackingChanged, Shutdown) and returns Actions (SendAdvert, AddVIPs,
//     RemoveVIPs, SendGARP, SetTimer, StopTimer, Transition).
//   - Group drives the machines of a vrrp_sync_group (not in the RFCs):
//     Group.Dispatch feeds an event to one member and applies the group
//     rules, so that the members move to MASTER, BACKUP and FAULT together.
//   - Tracker turns the tracked objects of an instance (track_interface,
//     track_script, track_file; see Track for the weight rules) into a
//     priority weight and a fault flag, reported as TrackingChanged.
//     ScriptTracker runs one vrrp_script with keepalived's rise/fall
//     counting (ScriptState); track files are read and watched with
//     inotify by the Engine.
//   - Runner is one goroutine that owns one instance, or the instances of
//     one sync group: their Machines (and Group), Trackers, timers and
//     counters (Stats). It carries out the actions through the Member's
//     kernel interfaces: AdvertSender, AddrManager, RouteManager,
//     GARPSender.
//   - Engine runs a whole configuration: FromConfig turns conf.Config into
//     RunnerSpecs, Engine.Run opens one socket (Conn) and one Dispatcher
//     per interface, family and group, starts a Runner per spec, the
//     vrrp_scripts and the track_file watcher, and Engine.Apply reloads it
//     without flapping the runners whose identity is unchanged.
//   - Kernel is everything the Engine needs from the system (raw sockets,
//     AF_PACKET for gratuitous ARP and neighbour advertisements, rtnetlink
//     for addresses, routes and links); the default is the real one, tests
//     inject fakes.
//
// # The path of an advert
//
// In, from the wire to the state machine:
//
//  1. Conn.Serve reads a packet with recvmsg. Over IPv4,
//     advert.SplitIPv4 takes the TTL, source and destination from the IP
//     header; over IPv6 they come from recvmsg and its control messages.
//     The receiving interface and the kernel's arrival time (SO_TIMESTAMPNS)
//     come from the control messages too. A packet with a bad IP header or
//     received on another interface is handed to Dispatcher.Drop.
//  2. Dispatcher.Handle routes the packet by its VRID (its second byte) to
//     Runner.HandlePacket, which posts it to the runner's goroutine.
//     Dispatcher.Drop counts a dropped packet against the instance its VRID
//     names (Runner.DropPacket); a packet naming no instance on the socket
//     is counted in Dispatcher.Drops instead.
//  3. In the runner's goroutine, Runner.receive ignores our own adverts
//     (Stats.OwnPackets), then advert.Decode checks what depends on the
//     packet alone and Expect.Validate what depends on the instance. A drop
//     is counted in Stats.Drops by its advert.DropReason; an accepted
//     advert becomes an AdvertReceived event.
//  4. Runner.dispatch hands the event to Machine.Handle, or to
//     Group.Dispatch in a sync group.
//
// Out, from the state machine to the world: Runner.do carries out each
// Action in order. SendAdvert builds an advert.Advert and Marshals it for
// each destination (the group, or the unicast peers) and sends it with
// Conn.SendAdvert; AddVIPs and RemoveVIPs add and remove the addresses
// (NetlinkAddrs) and the virtual routes (NetlinkRoutes); SendGARP announces
// each VIP through PacedGARP (vrrp_garp_interval, vrrp_gna_interval) on
// PacketGARP; SetTimer and StopTimer arm and stop the instance's timers,
// whose expiry comes back as a TimerFired event posted to the runner;
// Transition updates the counters and leaves the package through the
// Sink given in EngineOptions, which the daemon fans out to notify
// scripts, the IPVS sync daemon's role and the metrics.
//
// # Who owns what
//
// A Machine, a Group and a Tracker are not safe for concurrent use: each
// belongs to the goroutine of its Runner, and every input reaches that
// goroutine as an event on the runner's channel (HandlePacket, DropPacket,
// SetInterface, SetTrack, SetTrackValue, AddrDeleted, Reconfigure, Flush,
// the timers). Stats are atomic counters and Runner.Status a snapshot
// published after every event, so both can be read from anywhere.
//
// The Engine's state (its runners, sockets, dispatchers, scripts and the
// file watcher) is owned by the goroutine of Engine.Run; Engine.Apply hands
// that goroutine a new configuration and waits for the result. Each socket
// has one receive goroutine running Conn.Serve, stopped only after the
// runners, so that a master's last priority 0 advert still goes out.
// Engine.Status, Engine.SetScript and Engine.SetFileValue read the current
// runners under a mutex.
//
// # Where lvsd follows keepalived rather than the RFCs
//
// keepalived is the reference, and each difference is noted where it is
// implemented; the main ones:
//
//   - Every instance starts as BACKUP, except an address owner (priority
//     255) not configured "state BACKUP", which becomes MASTER at once
//     (MachineConfig.InitialState).
//   - A master that hears a lower priority answers with an advert unless
//     LowerPrioNoAdvert; nopreempt and preempt_delay are keepalived's
//     (MachineConfig.Normalize).
//   - An advert whose address list differs from ours is counted and
//     accepted; an address owner does not drop adverts for its VRID; in
//     unicast mode the TTL is not checked (advert.Expect.Validate).
//   - The VRRPv3 checksum over IPv4 covers the pseudo-header
//     (advert.Decode), as keepalived does by default.
//   - Gratuitous ARPs are sent in bursts after a takeover and may be
//     refreshed while master (garp_master_delay, garp_master_repeat,
//     garp_master_refresh); sync groups, tracked objects with weights, and
//     --dont-release-vrrp (EngineOptions.DontRelease) are keepalived's.
//   - The Master_Down_Timer counts from the arrival of the last advert in
//     the kernel (PacketInfo.At), not from when the runner got to it.
package vrrp
