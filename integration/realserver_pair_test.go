package integration_test

// The second half of TestRealserverLab's VM boot (issue 15 §3 and §4), on
// the same LAN and the same real servers (still set up by lvsd realserver):
//
//   - drain in DR: one connection held open through the VIP (HTTP/1.1
//     keep-alive, labhelper hold), `lvsd ctl drain` of the real server it
//     is on: new connections all go to the other one, the held one keeps
//     being answered by the drained one (weight 0, ActiveConn 1 in
//     `ipvsadm -Ln`); `lvsd ctl enable` restores the weight. The virtual
//     server has the CommuniGate guide's persistence: the director sets
//     net.ipv4.vs.expire_quiescent_template=1, the kernel's switch that lets
//     a drained (weight 0) server's persistence templates expire; without
//     it the one client would stay on the drained server, by design.
//   - a DR pair (dirA MASTER, dirB BACKUP) with lvs_sync_daemon, 200
//     long-lived connections exchanging a request a second each through the
//     VIP; kill -9 of dirA (its namespace deleted: powered off); the share
//     of connections still exchanging after dirB took over. Run with lvsd,
//     with keepalived, and with lvsd without the sync daemon (the
//     comparison: dirB then resets the connections it does not know).
//     A connection is kept when it had at least 2 answers after dirB
//     holds the VIP and no error to the end. Each run's connections come
//     from a client address of their own; one that fails while they are
//     being set up (before the kill: the loaded lab VM loses a first
//     request now and then) is redialed, and the redials are logged.

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/lvsd/lvsd/integration/lab"
)

const rsLabConns = 200

// rsLabDrainScript runs after the DR/TUN traffic, with dirA the only
// director (rsLabDirector).
const rsLabDrainScript = `
# hold_start TAG N ADDR: N long-lived connections from the client through
# ADDR:80 (labhelper hold), the report in /results/TAG-hold.json.
hold_start() {
	rm -f "$LAB_RUN/$1.stop" "$LAB_RESULTS/$1-ready.txt" "$LAB_RUN/$1.progress"
	/usr/bin/ip netns exec client labhelper hold -addr "$3:80" -n "$2" -interval "$HOLD_INTERVAL" -timeout 60s \
		-max 300s -need 2 ${HOLD_LOCAL:+-local "$HOLD_LOCAL"} -stop "$LAB_RUN/$1.stop" -ready "$LAB_RESULTS/$1-ready.txt" \
		-progress "$LAB_RUN/$1.progress" > "$LAB_RESULTS/$1-hold.json" 2> "$LAB_RESULTS/$1-hold.err" &
	echo $! > "$LAB_RUN/$1-hold.pid"
}
# hold_phase TAG: the next phase (SIGUSR1); hold_stop TAG: the report.
hold_phase() { kill -USR1 "$(cat "$LAB_RUN/$1-hold.pid")"; }
hold_stop() {
	touch "$LAB_RUN/$1.stop"
	wait "$(cat "$LAB_RUN/$1-hold.pid")" 2>/dev/null
	rm -f "$LAB_RUN/$1-hold.pid"
}
# hold_done TAG PHASE: in PHASE, every connection alive with 2 answers;
# hold_settled TAG PHASE: every connection so, or ended.
hold_progress() { [ -s "$LAB_RUN/$1.progress" ] && read -r _ HP _ HN _ HD _ HK < "$LAB_RUN/$1.progress"; }
hold_done() { hold_progress "$1" && [ "$HP" = "$2" ] && [ "$HD" = 0 ] && [ "$HK" = "$HN" ]; }
hold_settled() { hold_progress "$1" && [ "$HP" = "$2" ] && [ $((HD + HK)) -ge "$HN" ]; }
has_vip() { ip -n "$1" -o addr show dev eth0 | grep -q " $DR/24 "; }

say "=== drain in DR: a connection held through the VIP, lvsd ctl drain of its real server"
CTL="lvsd ctl --socket $LAB_RUN/dirA.ctl"
ip netns exec dirA sysctl -qw net.ipv4.vs.expire_quiescent_template=1
HOLD_INTERVAL=300ms
hold_start drain 1 "$DR"
drain_phases() {
	wait_until 20 "drain: the held connection answered twice" hold_done drain 0 || return 1
	HELD=$(head -n 1 "$LAB_RESULTS/drain-ready.txt")
	case "$HELD" in
	rs1) HELD_IP=192.0.2.11 ;;
	rs2) HELD_IP=192.0.2.12 ;;
	*) return 1 ;;
	esac
	echo "$HELD" > "$LAB_RESULTS/drain-held.txt"
	$CTL drain "$DR:80" "$HELD_IP:80" > "$LAB_RESULTS/drain-ctl.txt" 2>&1
	echo "exit $?" >> "$LAB_RESULTS/drain-ctl.txt"
	hold_phase drain # 1: drained
	ip netns exec client labhelper get -url "http://$DR/" -n 20 -timeout 3s > "$LAB_RESULTS/drain-client.json"
	say "drained $HELD: new connections: $(report_line "$LAB_RESULTS/drain-client.json")"
	wait_until 20 "drain: the held connection answered twice while drained" hold_done drain 1
	ip netns exec dirA ipvsadm -Ln > "$LAB_RESULTS/drain-ipvs.txt" 2>&1
	$CTL status > "$LAB_RESULTS/drain-status.txt" 2>&1
	$CTL enable "$DR:80" "$HELD_IP:80" > "$LAB_RESULTS/enable-ctl.txt" 2>&1
	echo "exit $?" >> "$LAB_RESULTS/enable-ctl.txt"
	hold_phase drain # 2: enabled again
	ip netns exec dirA ipvsadm -Ln > "$LAB_RESULTS/enable-ipvs.txt" 2>&1
	wait_until 20 "drain: the held connection answered twice after enable" hold_done drain 2
}
drain_phases
hold_stop drain
`

// rsLabPairScript: the failover runs, one after the other, each with its
// own pair of directors on the LAN.
const rsLabPairScript = `
director_kill dirA
mv "$LAB_RESULTS/dirA-lvsd.log" "$LAB_RESULTS/single-dirA.log"
HOLD_INTERVAL=1s
conns_to_vip() { ip netns exec "$1" ipvsadm -Lnc 2>/dev/null | grep -c " ESTABLISHED .* $DR:80 "; }
conns_at_least() { [ "$(conns_to_vip "$1")" -ge "$2" ]; }
pair_ready() {
	has_vip dirA && ! has_vip dirB &&
		ipvs_has dirA 192.0.2.11:80 && ipvs_has dirA 192.0.2.12:80 &&
		ipvs_has dirB 192.0.2.11:80 && ipvs_has dirB 192.0.2.12:80
}
sync_roles() {
	ip netns exec dirA ipvsadm -L --daemon | grep -q "master sync daemon" &&
		ip netns exec dirB ipvsadm -L --daemon | grep -q "backup sync daemon"
}
# tcp_stats TAG: the TCP counters and socket states of the real servers
# and the client (/proc/net/netstat: listen overflows, SYN cookies, ...).
tcp_stats() {
	for _n in rs1 rs2 client; do
		{
			ip netns exec "$_n" cat /proc/net/netstat /proc/net/snmp
			echo "sockets by state (hex, /proc/net/tcp):"
			ip netns exec "$_n" awk 'NR > 1 { print $4 }' /proc/net/tcp | sort | uniq -c
		} > "$LAB_RESULTS/$1-tcp-$_n.txt" 2>&1
	done
}
# pair_phases TAG DAEMON SYNC: the run with the directors started.
pair_phases() {
	wait_until 60 "$1: dirA holds the VIP, both directors list both real servers" pair_ready || return 20
	if [ "$3" = yes ]; then
		wait_until 30 "$1: dirA runs the master sync daemon, dirB the backup one" sync_roles || return 21
	fi
	for _d in dirA dirB; do ip netns exec "$_d" ipvsadm -L --daemon > "$LAB_RESULTS/$1-daemon-$_d.txt" 2>&1; done
	hold_start "$1" "$CONNS" "$DR"
	_ok=yes
	wait_until 90 "$1: $CONNS connections answered twice" hold_done "$1" 0 || _ok=no
	[ "$_ok" = yes ] || { tcp_stats "$1"; return 22; }
	if [ "$3" = yes ]; then
		wait_until 30 "$1: dirB lists the $CONNS connections" conns_at_least dirB "$CONNS" || return 23
	fi
	for _d in dirA dirB; do ip netns exec "$_d" ipvsadm -Lnc > "$LAB_RESULTS/$1-conns-$_d.txt" 2>&1; done
	hold_phase "$1" # 1: the failover
	say "$1: kill -9 dirA"
	director_kill dirA
	wait_until 30 "$1: dirB holds the VIP" has_vip dirB || return 24
	hold_phase "$1" # 2: after the takeover
	wait_until 60 "$1: every connection answered twice since the takeover, or ended" hold_settled "$1" 2
	ip netns exec dirB ipvsadm -L --daemon > "$LAB_RESULTS/$1-daemon-after.txt" 2>&1
	ip netns exec dirB ipvsadm -Lnc > "$LAB_RESULTS/$1-conns-after.txt" 2>&1
	return 0
}
# pair_run TAG DAEMON SYNC CLIENT: dirA and dirB with DAEMON and TAG's
# configurations, the client's connections from its address CLIENT (a new
# one each run: no 4-tuple in common with an earlier run's connections,
# which a real server may still be closing); the exit status in
# /results/TAG-status.txt.
pair_run() {
	say "=== $1: a $2 pair, sync daemon: $3, $CONNS connections, kill -9 of the MASTER"
	_rc=0
	HOLD_LOCAL=$4
	ip -n client addr add "$4/24" dev eth0 || _rc=10
	# director_kill deleted them; a safety net.
	wait_until 30 "$1: the former directors' veths are gone" sh -c '! /usr/bin/ip link show dirA-eth0 && ! /usr/bin/ip link show dirB-eth0' || _rc=10
	for _d in dirA:2 dirB:3; do
		ns_add "${_d%%:*}" && ns_link "${_d%%:*}" eth0 br-lan "192.0.2.${_d#*:}/24" || _rc=10
	done
	if [ "$_rc" = 0 ]; then
		director_start dirA "$2" "/lab/files/$1-dirA.conf" && director_start dirB "$2" "/lab/files/$1-dirB.conf" || _rc=12
	fi
	[ "$_rc" = 0 ] && { pair_phases "$@" || _rc=$?; }
	[ -f "$LAB_RUN/$1-hold.pid" ] && hold_stop "$1"
	for _d in dirA dirB; do
		[ -e "/run/netns/$_d" ] && director_kill "$_d"
		mv "$LAB_RESULTS/$_d-$2.log" "$LAB_RESULTS/$1-$_d.log" 2>/dev/null
		grep -hiE 'entering [a-z]+ state|state (master|backup|fault)' "$LAB_RESULTS/$1-$_d.log" | sed "s/^/$_d: /" >> "$LAB_RESULTS/$1-vrrp.txt"
	done
	echo "$_rc" > "$LAB_RESULTS/$1-status.txt"
	say "$1: status $_rc"
}
pair_run lvsd-sync lvsd yes 192.0.2.21
pair_run keepalived-sync keepalived yes 192.0.2.22
pair_run lvsd-nosync lvsd no 192.0.2.23
HOLD_LOCAL=
`

// rsLabPairRuns are the failover runs of rsLabPairScript.
var rsLabPairRuns = []struct {
	tag  string
	sync bool
}{{"lvsd-sync", true}, {"keepalived-sync", true}, {"lvsd-nosync", false}}

// rsLabPairConf is a director of the DR pair.
func rsLabPairConf(router, state string, prio int, sync bool) string {
	syncLine := ""
	if sync {
		syncLine = "  lvs_sync_daemon eth0 VI_1\n"
	}
	rs := ""
	for _, a := range []string{"192.0.2.11", "192.0.2.12"} {
		rs += fmt.Sprintf("  real_server %s 80 {\n    TCP_CHECK {\n      connect_timeout 1\n    }\n  }\n", a)
	}
	return fmt.Sprintf(`global_defs {
  router_id %s
%s}
vrrp_instance VI_1 {
  interface eth0
  state %s
  priority %d
  virtual_router_id 52
  advert_int 1
  virtual_ipaddress {
    192.0.2.100/24
  }
}
virtual_server 192.0.2.100 80 {
  delay_loop 1
  lb_algo rr
  lb_kind DR
  protocol TCP
%s}
`, router, syncLine, state, prio, rs)
}

// rsLabPairFiles are the pair runs' configurations, by file name.
func rsLabPairFiles() map[string][]byte {
	files := map[string][]byte{}
	for _, r := range rsLabPairRuns {
		files[r.tag+"-dirA.conf"] = []byte(rsLabPairConf("dirA", "MASTER", 150, r.sync))
		files[r.tag+"-dirB.conf"] = []byte(rsLabPairConf("dirB", "BACKUP", 100, r.sync))
	}
	return files
}

// jsonFile decodes the result file name into v.
func jsonFile(res *lab.Result, name string, v any) error {
	b, ok := res.Files[name]
	if !ok {
		return fmt.Errorf("no %s in the results", name)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %v: %q", name, err, b)
	}
	return nil
}

func holdReport(t *testing.T, res *lab.Result, tag string) (lab.HoldReport, bool) {
	t.Helper()
	var rep lab.HoldReport
	if err := jsonFile(res, tag+"-hold.json", &rep); err != nil {
		t.Errorf("%s: %v (stderr: %s)", tag, err, res.File(tag+"-hold.err"))
		return rep, false
	}
	return rep, true
}

// ipvsRealLine is the fields of a real server's line in `ipvsadm -Ln`
// ("-> ADDR:PORT Forward Weight ActiveConn InActConn"), nil when absent.
func ipvsRealLine(text, addr string) []string {
	for _, l := range strings.Split(text, "\n") {
		if f := strings.Fields(l); len(f) >= 6 && f[0] == "->" && f[1] == addr {
			return f
		}
	}
	return nil
}

func checkDrainDR(t *testing.T, res *lab.Result) {
	held := strings.TrimSpace(res.File("drain-held.txt"))
	heldIP, other := map[string]string{"rs1": "192.0.2.11", "rs2": "192.0.2.12"}[held], map[string]string{"rs1": "rs2", "rs2": "rs1"}[held]
	if heldIP == "" {
		t.Fatalf("the held connection's server: %q (hold: %s)", held, res.File("drain-hold.err"))
	}
	for _, f := range []string{"drain-ctl.txt", "enable-ctl.txt"} {
		if !strings.HasSuffix(strings.TrimSpace(res.File(f)), "exit 0") {
			t.Errorf("lvsd ctl: %s", res.File(f))
		}
	}
	// The kernel: weight 0 while drained, the held connection still
	// active on it; the configured weight after enable.
	if f := ipvsRealLine(res.File("drain-ipvs.txt"), heldIP+":80"); f == nil || f[2] != "Route" || f[3] != "0" || f[4] == "0" {
		t.Errorf("drained %s: want weight 0 and an active connection:\n%s", heldIP, res.File("drain-ipvs.txt"))
	}
	if f := ipvsRealLine(res.File("enable-ipvs.txt"), heldIP+":80"); f == nil || f[3] != "1" {
		t.Errorf("enabled %s: want weight 1:\n%s", heldIP, res.File("enable-ipvs.txt"))
	}
	if !regexp.MustCompile(`(?m)` + regexp.QuoteMeta(heldIP) + `:80.*drained`).MatchString(res.File("drain-status.txt")) {
		t.Errorf("lvsd ctl status does not show %s drained:\n%s", heldIP, res.File("drain-status.txt"))
	}
	// New connections: all on the other real server.
	var rep lab.ClientReport
	if err := jsonFile(res, "drain-client.json", &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 0 || rep.Answers[other] != rep.Requests || rep.Requests != 20 {
		t.Errorf("new connections while %s is drained: %+v, want all 20 on %s", held, rep, other)
	}
	// The held connection: answered by the drained server throughout.
	hold, ok := holdReport(t, res, "drain")
	if !ok {
		return
	}
	if len(hold.Conns) != 1 || hold.Phases != 3 {
		t.Fatalf("drain hold report: %+v", hold)
	}
	c := hold.Conns[0]
	if c.Err != "" || c.Server != held || c.Switched != 0 || c.Answers[1] < 2 || c.Answers[2] < 2 {
		t.Errorf("the held connection: %+v; want answered by %s before (%d), while drained (>= 2) and after enable (>= 2)", c, held, c.Answers[0])
	}
	t.Logf("drain %s: held connection answered %v by %s (%d bytes out, %d in); 20 new connections on %v", heldIP, c.Answers, c.Server, c.BytesOut, c.BytesIn, rep.Answers)
}

// ipvsConns maps a client address:port to its destination for the
// ESTABLISHED connections to vip in `ipvsadm -Lnc`.
func ipvsConns(text, vip string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(text, "\n") {
		if f := strings.Fields(l); len(f) == 6 && f[2] == "ESTABLISHED" && f[4] == vip {
			m[f[3]] = f[5]
		}
	}
	return m
}

func checkPairFailover(t *testing.T, res *lab.Result, tag string, sync bool) {
	if st := strings.TrimSpace(res.File(tag + "-status.txt")); st != "0" {
		t.Errorf("%s: scenario status %q (10 topology, 12 directors, 20 not ready, 21 sync daemons, 22 connections, 23 not synced, 24 no takeover)\n%s",
			tag, st, res.File(tag+"-vrrp.txt"))
	}
	vip := rsLabDRVIP + ":80"
	onA, onB := ipvsConns(res.File(tag+"-conns-dirA.txt"), vip), ipvsConns(res.File(tag+"-conns-dirB.txt"), vip)
	hold, ok := holdReport(t, res, tag)
	if !ok {
		return
	}
	kept, errs := hold.Kept(2, 2), hold.Errors()
	out, in := hold.Bytes()
	servers, redials := map[string]int{}, 0
	for _, c := range hold.Conns {
		servers[c.Server]++
		redials += c.Redials
		if c.Switched != 0 {
			t.Errorf("%s: a connection answered by two servers: %+v", tag, c)
		}
	}
	t.Logf("%s: %d/%d connections kept exchanging after the takeover (>= 2 answers each), ended: %v; %d bytes out, %d in; on %v; ESTABLISHED entries before the kill: dirA %d, dirB %d; redials while setting up %d",
		tag, kept, len(hold.Conns), errs, out, in, servers, len(onA), len(onB), redials)
	if len(hold.Conns) != rsLabConns || hold.Phases != 3 {
		t.Fatalf("%s: %d connections, %d phases", tag, len(hold.Conns), hold.Phases)
	}
	if len(onA) < rsLabConns {
		t.Errorf("%s: the MASTER lists %d ESTABLISHED connections to the VIP, want %d", tag, len(onA), rsLabConns)
	}
	if servers["rs1"] == 0 || servers["rs2"] == 0 {
		t.Errorf("%s: connections on %v, want both real servers (rr)", tag, servers)
	}
	if !sync {
		// Without the sync daemon the BACKUP knows none of them and the
		// connections die on their first packet through it (a reset).
		if len(onB) != 0 || kept > rsLabConns/2 || errs["reset"] == 0 {
			t.Errorf("%s: without the sync daemon, dirB had %d entries, %d connections kept, ended %v: want none, most reset", tag, len(onB), kept, errs)
		}
		return
	}
	// The BACKUP has every connection, to the same real server.
	missing := 0
	for client, dst := range onA {
		if onB[client] != dst {
			missing++
		}
	}
	if missing != 0 {
		t.Errorf("%s: %d of the MASTER's %d connections not on the BACKUP with the same real server:\n%s", tag, missing, len(onA), tail(res.File(tag+"-conns-dirB.txt"), 10))
	}
	if !strings.Contains(res.File(tag+"-daemon-dirA.txt"), "master sync daemon") || !strings.Contains(res.File(tag+"-daemon-dirB.txt"), "backup sync daemon") ||
		!strings.Contains(res.File(tag+"-daemon-after.txt"), "master sync daemon") {
		t.Errorf("%s: sync daemons: dirA %q, dirB %q, dirB after the takeover %q", tag, res.File(tag+"-daemon-dirA.txt"), res.File(tag+"-daemon-dirB.txt"), res.File(tag+"-daemon-after.txt"))
	}
	if kept*100 < 99*rsLabConns {
		t.Errorf("%s: %d of %d connections kept exchanging after the takeover, want >= 99%% (ended: %v)", tag, kept, rsLabConns, errs)
	}
}
