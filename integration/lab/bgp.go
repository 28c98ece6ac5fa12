package lab

import (
	"encoding/json"
	"strconv"
	"strings"
)

// The active-active scenario (issue 16; integration/bgp_lab_test.go checks
// it, make lab shows it with LVSD_LAB_SCENARIO=bgp): a router namespace
// running BIRD 2 (merge paths, layer-4 multipath hash), three lvsd
// directors in DR mode (mh with mh-port, the sync daemon in both roles,
// sloppy_tcp set by lvsd, the VIP on lo, BGP), three real servers set up
// by lvsd realserver, a client behind the router. Phases: ECMP, the spread
// of new connections, 200 long-lived connections and a loop of new ones
// through kill -9 of a director, a quorum loss on another, the first
// one's return.

const bgpDirector = `global_defs {
  router_id @ID@
  lvs_sync_daemon eth0 id 7
}
virtual_server 203.0.113.10 80 {
  delay_loop 1
  lb_algo mh
  mh-port
  lb_kind DR
  protocol TCP
  real_server 192.0.2.11 80 {
    TCP_CHECK {
      connect_timeout 1
      @CHK@
    }
  }
  real_server 192.0.2.12 80 {
    TCP_CHECK {
      connect_timeout 1
      @CHK@
    }
  }
  real_server 192.0.2.13 80 {
    TCP_CHECK {
      connect_timeout 1
      @CHK@
    }
  }
}
virtual_server 203.0.113.10 9000 {
  delay_loop 1
  lb_algo mh
  mh-port
  lb_kind DR
  protocol TCP
  real_server 192.0.2.11 9000 {
    TCP_CHECK {
      connect_timeout 1
      @CHK@
    }
  }
  real_server 192.0.2.12 9000 {
    TCP_CHECK {
      connect_timeout 1
      @CHK@
    }
  }
  real_server 192.0.2.13 9000 {
    TCP_CHECK {
      connect_timeout 1
      @CHK@
    }
  }
}
bgp {
  router_id @ADDR@
  local_as 65001
  hold_time 3
  neighbor 192.0.2.1 {
    remote_as 65000
  }
  announce {
    203.0.113.10
  }
}
`

const bgpScript = `
VIP=203.0.113.10
bridge_add br-lb || exit 10
bridge_add br-cl || exit 10
ns_add router && ns_link router eth1 br-lb 192.0.2.1/24 && ns_link router eth0 br-cl 198.51.100.1/24 || exit 10
ip netns exec router sysctl -qw net.ipv4.ip_forward=1 || exit 10
ip netns exec router sysctl -qw net.ipv4.fib_multipath_hash_policy=1 || exit 10
ns_add client && ns_link client eth0 br-cl 198.51.100.10/24 && ip -n client route add default via 198.51.100.1 || exit 10
for r in rs1:11 rs2:12 rs3:13; do
	n=${r%%:*}
	ns_add "$n" && ns_link "$n" eth0 br-lb "192.0.2.${r#*:}/24" && ip -n "$n" route add default via 192.0.2.1 || exit 10
	rs_start "$n" || exit 11
	/usr/bin/ip netns exec "$n" labhelper echo -name "$n" -listen :9000 >> "$LAB_RESULTS/$n-echo.log" 2>&1 &
	/usr/bin/ip netns exec "$n" lvsd realserver -f /lab/files/rs.conf --arp-interface eth0 \
		--state "$LAB_RUN/$n-state.json" > "$LAB_RESULTS/$n-realserver.log" 2>&1 &
done
# director_up NAME HOST: the namespace, the VIP on lo, lvsd (which sets
# sloppy_tcp itself: sysctls.txt records what it set).
director_up() {
	ns_add "$1" && ns_link "$1" eth0 br-lb "192.0.2.$2/24" && ip -n "$1" route add default via 192.0.2.1 || return 1
	ip -n "$1" addr add "$VIP/32" dev lo || return 1
	sed "s/@ID@/$1/; s/@ADDR@/192.0.2.$2/; s/@CHK@//" /lab/files/dir.conf.in > "$LAB_RUN/$1.conf"
	director_start "$1" lvsd "$LAB_RUN/$1.conf"
}
director_up dirA 2 && director_up dirB 3 && director_up dirC 4 || exit 12
mkdir -p "$LAB_RUN/bird"
/usr/bin/ip netns exec router bird -f -c /lab/files/bird.conf -s "$LAB_RUN/bird/ctl" -P "$LAB_RUN/bird/pid" > "$LAB_RESULTS/bird.log" 2>&1 &
hops() { ip -n router route show "$VIP/32" | grep -o 'via [0-9.]*' | sort | tr '\n' ' '; }
has_hops() { [ "$(hops)" = "$1" ]; }
record_hops() { echo "$1 $(hops)" >> "$LAB_RESULTS/hops.txt"; }
ALL3="via 192.0.2.2 via 192.0.2.3 via 192.0.2.4 "
wait_until 90 "three next hops in the router's kernel table" has_hops "$ALL3" || { record_hops start; birdc -s "$LAB_RUN/bird/ctl" show protocols all > "$LAB_RESULTS/bird-protocols.txt" 2>&1; exit 20; }
record_hops start
ip -n router route show "$VIP/32" > "$LAB_RESULTS/route-ecmp.txt"
# sysctls WHEN DIR...: the IPVS sysctls lvsd set, in each director's namespace.
sysctls() {
	_w=$1
	shift
	for _d in "$@"; do
		echo "$_w $_d $(for _s in sloppy_tcp sloppy_sctp backup_only; do ip netns exec "$_d" cat /proc/sys/net/ipv4/vs/$_s; done | tr '\n' ' ')"
	done >> "$LAB_RESULTS/sysctls.txt"
}
sysctls start dirA dirB dirC
birdc -s "$LAB_RUN/bird/ctl" show route for "$VIP/32" all > "$LAB_RESULTS/bird-route.txt" 2>&1

say "=== spread: $SPREAD new connections"
stats() { for d in dirA dirB dirC; do echo "$d $(ip netns exec $d ipvsadm -Ln --stats -t $VIP:80 | sed -n 's/^TCP .*:80 *\([0-9]*\) .*/\1/p')"; done; }
stats > "$LAB_RESULTS/spread-before.txt"
ip netns exec client labhelper get -url "http://$VIP/" -n "$SPREAD" -parallel 16 -timeout 5s > "$LAB_RESULTS/spread-client.json"
# The kernel folds its per-CPU counters into the ones it reports every 2 s.
sleep 5
stats > "$LAB_RESULTS/spread-after.txt"
say "spread: $(report_line "$LAB_RESULTS/spread-client.json")"

say "=== 200 long-lived connections"
/usr/bin/ip netns exec client labhelper echohold -addr "$VIP:9000" -n 200 -interval 1s -timeout 5s -max 150s \
	-stop "$LAB_RUN/hold.stop" -ready "$LAB_RUN/hold.ready" > "$LAB_RESULTS/hold.json" 2> "$LAB_RESULTS/hold.err" &
HOLD=$!
wait_until 60 "200 connections exchanging" test -e "$LAB_RUN/hold.ready" || exit 21
sleep 3
for d in dirA dirB dirC; do ip netns exec $d ipvsadm -Lnc > "$LAB_RESULTS/conns-$d.txt" 2>&1; done

say "=== new connections throughout the events: one every 50 ms, 5 s each"
mark loop
/usr/bin/ip netns exec client labhelper loop -url "http://$VIP/" -timeout 5s -interval 50ms -max 200s \
	-stop "$LAB_RUN/loop.stop" > "$LAB_RESULTS/loop.json" 2> "$LAB_RESULTS/loop.err" &
LOOP=$!
sleep 2

say "=== kill -9 dirA"
mark kill
kill -9 "$(cat "$LAB_RUN/dirA-daemon.pid")"
wait_until 15 "dirA's next hop gone" has_hops "via 192.0.2.3 via 192.0.2.4 " || exit 22
mark gone
director_kill dirA
record_hops killed
sleep 5
ip netns exec client labhelper get -url "http://$VIP/" -n 30 -timeout 10s > "$LAB_RESULTS/after-kill-client.json"

say "=== dirB loses its quorum (its checks go to a closed port)"
sed "s/@ID@/dirB/; s/@ADDR@/192.0.2.3/; s/@CHK@/connect_port 1/" /lab/files/dir.conf.in > "$LAB_RUN/dirB.conf"
mark quorum
kill -HUP "$(cat "$LAB_RUN/dirB-daemon.pid")"
wait_until 20 "dirB's next hop withdrawn, dirC's kept" has_hops "via 192.0.2.4 " || exit 23
mark quorum-gone
record_hops quorum
sleep 5
ip netns exec client labhelper get -url "http://$VIP/" -n 30 -timeout 10s > "$LAB_RESULTS/after-quorum-client.json"
sed "s/@ID@/dirB/; s/@ADDR@/192.0.2.3/; s/@CHK@//" /lab/files/dir.conf.in > "$LAB_RUN/dirB.conf"
kill -HUP "$(cat "$LAB_RUN/dirB-daemon.pid")"
wait_until 20 "dirB's quorum back: two next hops" has_hops "via 192.0.2.3 via 192.0.2.4 " || exit 24

say "=== dirA comes back"
director_up dirA 2 || exit 25
wait_until 60 "dirA a next hop again" has_hops "$ALL3" || exit 26
record_hops back
sysctls back dirA
sleep 5
ip netns exec client labhelper get -url "http://$VIP/" -n 30 -timeout 10s > "$LAB_RESULTS/after-back-client.json"
touch "$LAB_RUN/loop.stop"
wait "$LOOP"
say "new connections throughout: $(cat "$LAB_RESULTS/loop.json")"
touch "$LAB_RUN/hold.stop"
wait "$HOLD"
say "hold: $(cat "$LAB_RESULTS/hold.json")"
say "=== done"
exit 0
`

// BGPActiveActive is the scenario, with spread new connections in its
// spread phase.
func BGPActiveActive(spread int) Scenario {
	rsConf := strings.NewReplacer("@ID@", "rs", "@ADDR@", "192.0.2.99", "@CHK@", "").Replace(bgpDirector)
	return Scenario{
		Name: "bgp-active-active",
		Script: "mark() { read -r _mu _ < /proc/uptime; echo \"$1 $_mu\" >> \"$LAB_RESULTS/events.txt\"; }\n" +
			"SPREAD=" + strconv.Itoa(spread) + "\n" + bgpScript,
		Files: map[string][]byte{"dir.conf.in": []byte(bgpDirector), "rs.conf": []byte(rsConf),
			"bird.conf": []byte(BirdRouter("192.0.2.1", map[string]string{"dirA": "192.0.2.2", "dirB": "192.0.2.3", "dirC": "192.0.2.4"}))},
		WithLVSD: true,
	}
}

// EchoHoldReport is labhelper echohold's report: of Conns long-lived connections,
// how many kept exchanging until the end.
type EchoHoldReport struct {
	Conns     int            `json:"conns"`
	Survived  int            `json:"survived"`
	Failed    int            `json:"failed"`
	Servers   map[string]int `json:"servers"` // first answering server -> connections
	Moved     int            `json:"moved"`   // connections answered by more than one server
	Errors    []string       `json:"errors,omitempty"`
	Exchanges int            `json:"exchanges"`
}

// BGPResult is what the scenario measured.
type BGPResult struct {
	// Spread is the connections each director scheduled in the spread phase.
	Spread map[string]int
	Hold   EchoHoldReport
	// KillToGone is the time from kill -9 of dirA to its next hop gone
	// from the router's kernel table, in seconds.
	KillToGone float64
	// Loop is the new connections made throughout the events.
	Loop ClientReport
	// Events are the scenario's marks (kill, gone, loop, quorum,
	// quorum-gone), in seconds of the VM's uptime.
	Events map[string]float64
	// Sysctls: "WHEN DIRECTOR" → "sloppy_tcp sloppy_sctp backup_only" as
	// lvsd set them.
	Sysctls map[string]string
}

// BGPResults reads the scenario's results.
func BGPResults(res *Result) (BGPResult, error) {
	counts := func(f string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(strings.TrimSpace(res.File(f)), "\n") {
			if p := strings.Fields(l); len(p) == 2 {
				m[p[0]], _ = strconv.Atoi(p[1])
			}
		}
		return m
	}
	before, after := counts("spread-before.txt"), counts("spread-after.txt")
	r := BGPResult{Spread: map[string]int{}}
	for _, d := range []string{"dirA", "dirB", "dirC"} {
		r.Spread[d] = after[d] - before[d]
	}
	ev := map[string]float64{}
	for _, l := range strings.Split(res.File("events.txt"), "\n") {
		if p := strings.Fields(l); len(p) == 2 {
			ev[p[0]], _ = strconv.ParseFloat(p[1], 64)
		}
	}
	r.KillToGone = ev["gone"] - ev["kill"]
	r.Events = ev
	r.Sysctls = map[string]string{}
	for _, l := range strings.Split(res.File("sysctls.txt"), "\n") {
		if p := strings.Fields(l); len(p) > 2 {
			r.Sysctls[p[0]+" "+p[1]] = strings.Join(p[2:], " ")
		}
	}
	if err := json.Unmarshal([]byte(res.File("loop.json")), &r.Loop); err != nil {
		return r, err
	}
	err := json.Unmarshal([]byte(res.File("hold.json")), &r.Hold)
	return r, err
}
