// Package proctrack follows the processes that keepalived's
// vrrp_track_process blocks name, and reports when each gains or loses
// its quorum (between quorum and quorum_max matching processes running),
// as keepalived 2.2.7 does (its track_process.c):
//
//   - At start, and after each reload, every process in /proc is matched
//     (scan). A process matches by its name (comm, as
//     /proc/PID/stat and /proc/PID/comm give it), or with full_command by
//     argv[0] of its command line, whose other words are compared with
//     the configured parameters as param_match says (match.go).
//   - Then the kernel's process connector (netlink NETLINK_CONNECTOR,
//     CN_IDX_PROC) tells of every fork, exec, comm change and exit
//     (connector_linux.go): a fork of a counted process is counted, an exec
//     or a comm change is matched again, an exit uncounts. fork_delay
//     delays a quorum gained by a fork, terminate_delay one lost by an
//     exit. Lost messages (ENOBUFS) mean a new scan a second later.
//   - Where the connector cannot be had (no CONFIG_PROC_EVENTS, no
//     CAP_NET_ADMIN, a network namespace other than the initial one, where
//     the kernel's connector does not listen), a scan every PollInterval
//     stands in for it, with a notice.
//
// The state (which process counts for which tracked process, the counts,
// the delay timers) is owned by one goroutine, Tracker.Run; the process
// table and the events come through the small interfaces Procs and
// Source, and time through a clock.Clock, so that the rules are tested
// with fakes and an injected clock (state_test.go), and for real with
// processes started, renamed and killed (connector_linux_test.go).
//
// The tracker knows nothing of VRRP: it reports (name, quorum) to a
// function, which the daemon points at the VRRP engine.
package proctrack
