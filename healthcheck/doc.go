// Package healthcheck runs the health checkers of the real servers of
// keepalived.conf's virtual servers and reports when a real server goes up or
// down, as keepalived's checker process does.
//
// # Checkers
//
//   - TCP_CHECK: the connection completes within connect_timeout.
//   - HTTP_GET, SSL_GET: for every url, in order and each on a connection of
//     its own, "GET path" (HTTP/1.0; 1.0C adds "Connection: close"; 1.1 is
//     HTTP/1.1 with "Connection: close") with the Host header of the url's
//     virtualhost, else the checker's, real server's or virtual server's, else
//     the connect address and port. The status must be in status_code (default
//     200-299), the MD5 of the body equal digest, and regex (RE2 syntax) match
//     (or not, with regex_no_match). SSL_GET verifies no certificate and sends
//     the virtual host as SNI when enable_sni is set.
//   - MISC_CHECK: misc_path runs without a shell, in a process group of its
//     own, as its user (else global_defs script_user, else keepalived_script
//     when it exists). Exit status 0 is up, anything else down; with
//     misc_dynamic 1 is down and 2-255 up with weight status-2. After
//     misc_timeout (default delay_loop) the group gets SIGTERM, then SIGKILL a
//     second later, and the attempt fails.
//   - EXPECT_CHECK (lvsd's own, after Piranha's nanny): connect, write send,
//     then read until the reply contains expect (a substring) and matches
//     expect_regex (RE2), whichever are set. The attempt fails when the
//     connection closes, 64 KiB arrive, or connect_timeout passes (once for the
//     connection, once more for the whole exchange) without a match. send is
//     optional (for servers that speak first) and takes the configuration's
//     escapes (\r, \n, \t, \\).
//   - SMTP_CHECK: the greeting is 220, "HELO helo_name" (default keepalived's
//     smtpchecker.keepalived.org) is answered 250 and QUIT is answered;
//     multi-line replies are read to their last line. connect_timeout bounds
//     the connection and each step after it.
//   - DNS_CHECK: a UDP query (name, default "."; type, default SOA; RD set)
//     passes at the first response with its ID and RCODE 0, whatever the
//     answers; another RCODE, an ICMP port unreachable or connect_timeout
//     fails it. Other datagrams are ignored.
//   - UDP_CHECK: payload (default keepalived's 32 octets) is sent on a
//     connected socket; the check fails on an ICMP destination unreachable
//     within connect_timeout, and with require_reply also without a reply, or
//     with a pattern when the reply's length is outside [min_reply_length,
//     max_reply_length] or its first octets differ from the pattern (x: any
//     digit).
//   - PING_CHECK: an ICMP or ICMPv6 echo reply (same identifier and sequence)
//     within connect_timeout, over a ping socket when ping_group_range allows
//     it, else a raw socket.
//
// # State
//
// A real server is up when all its checkers are. A checker starts up, or down
// with alpha (its own, else the real server's, else the virtual server's). An
// up checker that fails is retried retry times, delay_before_retry apart,
// before it goes down; a down checker is not retried and comes up at its first
// success. A transition is logged once, with its reason; notify_up and
// notify_down run in the background, one at a time per real server, without a
// shell and bounded by Options.NotifyTimeout.
//
// # Scheduling
//
// One goroutine keeps every checker in a heap by due time. It runs each due
// TCP_CHECK itself, as keepalived's checker does: a non-blocking connect and
// a look at its state, the connections still pending watched in an epoll
// instance along with a timerfd for the next due time (the loop waits in
// Go's netpoller on that instance, so an attempt costs no goroutine hand-off).
// It hands the other attempts to worker goroutines. At most Options.Workers
// attempts run at once (workers are started as needed and kept); nothing
// waits on a running check. The first attempt of a checker comes after a random
// delay in [0, warmup]. Attempts are delay_loop apart, start to start: an
// attempt still running when the next is due is not started twice, and the
// periods it overran are skipped. Retries come delay_before_retry after the
// failed attempt ends, and the period restarts after the last retry.
//
// # API
//
// New builds a Scheduler from a conf.Config; Run runs it, emitting the initial
// state of every real server on Events, then every change of state or of
// misc_dynamic weight. Apply reloads a configuration, keeping the state and the
// timing of the checkers whose configuration did not change (and the state of
// those whose timers alone changed, as keepalived). Snapshot returns
// the state of every real server and checker for status pages and metrics.
// Real servers are identified by conf's VirtualServer.Key() and
// RealServer.AddrPort(): a virtual_server_group's real servers are checked once
// each, not once per address of the group.
package healthcheck
