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
//   - machine is the state machine of one instance (RFC 3768/5798 §6.4):
//     no sockets, no goroutines, time read from an injected clock. Handle
//     takes an event (start, advertReceived, timerFired, interfaceChanged,
//     trackingChanged, shutdown) and returns actions (sendAdvert, addVIPs,
//     removeVIPs, sendGARP, setTimer, stopTimer, transition).
//   - syncGroup drives the machines of a vrrp_sync_group (not in the RFCs):
//     syncGroup.Dispatch feeds an event to one member and applies the group
//     rules, so that the members move to MASTER, BACKUP and FAULT together.
//   - tracker turns the tracked objects of an instance (track_interface,
//     track_script, track_file, track_process; see track for the weight
//     rules) into a priority weight and a fault flag, reported as
//     trackingChanged. The quorums of track_processes come from outside
//     the package (package proctrack, through Engine.SetProcess).
//     ScriptTracker runs one vrrp_script with keepalived's rise/fall
//     counting (ScriptState); track files are read and watched with
//     inotify by the Engine.
//   - runner is one goroutine that owns one instance, or the instances of
//     one sync group: their machines (and syncGroup), trackers, timers and
//     counters (Stats). It carries out the actions through the memberSpec's
//     kernel interfaces: AdvertSender, AddrManager, RouteManager,
//     GARPSender.
//   - Engine runs a whole configuration: fromConfig turns conf.Config into
//     runnerSpecs, Engine.Run opens one socket (vrrpConn) and one dispatcher
//     per interface, family and group, starts a runner per spec, the
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
//  1. vrrpConn.Serve reads a packet with recvmsg. Over IPv4,
//     advert.SplitIPv4 takes the TTL, source and destination from the IP
//     header; over IPv6 they come from recvmsg and its control messages.
//     The receiving interface and the kernel's arrival time (SO_TIMESTAMPNS)
//     come from the control messages too. A packet with a bad IP header or
//     received on another interface is handed to dispatcher.Drop.
//  2. dispatcher.Handle routes the packet by its VRID (its second byte) to
//     runner.HandlePacket, which posts it to the runner's goroutine.
//     dispatcher.Drop counts a dropped packet against the instance its VRID
//     names (runner.DropPacket); a packet naming no instance on the socket
//     is counted in dispatcher.Drops instead.
//  3. In the runner's goroutine, runner.receive ignores our own adverts
//     (Stats.OwnPackets), then advert.Decode checks what depends on the
//     packet alone and advert.Expect.Validate what depends on the instance. A drop
//     is counted in Stats.Drops by its advert.DropReason; an accepted
//     advert becomes an advertReceived event.
//  4. runner.dispatch hands the event to machine.Handle, or to
//     syncGroup.Dispatch in a sync group.
//
// Out, from the state machine to the world: runner.do carries out each
// action in order. sendAdvert builds an advert.Advert and Marshals it for
// each destination (the group, or the unicast peers) and sends it with
// vrrpConn.SendAdvert; addVIPs and removeVIPs add and remove the addresses
// (netlinkAddrs) and the virtual routes (netlinkRoutes); sendGARP announces
// each VIP through pacedGARP (vrrp_garp_interval, vrrp_gna_interval) on
// packetGARP; setTimer and stopTimer arm and stop the instance's timers,
// whose expiry comes back as a timerFired event posted to the runner;
// transition updates the counters and leaves the package through the
// Sink given in EngineOptions, which the daemon fans out to notify
// scripts, the IPVS sync daemon's role and the metrics.
//
// # Who owns what
//
// A machine, a syncGroup and a tracker are not safe for concurrent use: each
// belongs to the goroutine of its runner, and every input reaches that
// goroutine as an event on the runner's channel (HandlePacket, DropPacket,
// SetInterface, SetTrack, SetTrackValue, AddrDeleted, Reconfigure, Flush,
// the timers). Stats are atomic counters and runner.Status a snapshot
// published after every event, so both can be read from anywhere.
//
// The Engine's state (its runners, sockets, dispatchers, scripts and the
// file watcher) is owned by the goroutine of Engine.Run; Engine.Apply hands
// that goroutine a new configuration and waits for the result. Each socket
// has one receive goroutine running vrrpConn.Serve, stopped only after the
// runners, so that a master's last priority 0 advert still goes out.
// Engine.Status, Engine.setScript and Engine.setFileValue read the current
// runners under a mutex.
//
// # Where lvsd follows keepalived rather than the RFCs
//
// keepalived is the reference, and each difference is noted where it is
// implemented; the main ones:
//
//   - Every instance starts as BACKUP, except an address owner (priority
//     255) not configured "state BACKUP", which becomes MASTER at once
//     (machineConfig.InitialState).
//   - A master that hears a lower priority answers with an advert unless
//     LowerPrioNoAdvert; nopreempt and preempt_delay are keepalived's
//     (machineConfig.Normalize).
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
//   - A MASTER whose interface went away and comes back before any backup
//     can have timed it out re-enters MASTER at once rather than BACKUP
//     (machine.mayReturn, ReturnWindow; the runner reports each send's
//     result with machine.advertSent). keepalived always waits
//     Master_Down_Interval in BACKUP.
package vrrp
