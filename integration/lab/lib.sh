# lvsd lab topology helpers, sourced by scenarios inside the VM (busybox sh).
#
# Topology built by topo_nat (documentation address ranges only):
#
#   client (192.0.2.10) --- br-pub ---+-- eth0 dirA 192.0.2.2   eth1 198.51.100.2 --+--- br-priv --- rs1 198.51.100.71
#                                     +-- eth0 dirB 192.0.2.3   eth1 198.51.100.3 --+              rs2 198.51.100.72 ...
#   VIP 192.0.2.100 (public side), private VIP 198.51.100.254 (real servers' default gateway)
#
# Every network namespace is named after its role; the bridges live in the
# VM's root namespace, which has no other interface. Every wait is bounded.

# busybox-static's sh (and its timeout, xargs, ...) run busybox applets
# before PATH: make sure "ip" is iproute2's (netns support), not busybox's.
# Use /usr/bin/ip explicitly after timeout/xargs and for background jobs
# whose $! matters (a function call in the background is a subshell).
ip() { /usr/bin/ip "$@"; }

LAB_VIP=192.0.2.100
LAB_PRIV_VIP=198.51.100.254
LAB_CLIENT_IP=192.0.2.10
LAB_RS_BASE=70          # rsN is 198.51.100.(70+N)
LAB_RESULTS=/results
LAB_RUN=/run/lab        # pid and stop files (init creates it and /results)

# say TEXT: a narration line with the VM uptime (the lab demo shows these).
say() { read -r _u _ < /proc/uptime; echo "LAB: [$_u] $*"; }

# now_cs: VM uptime in centiseconds.
now_cs() { read -r _u _ < /proc/uptime; echo "${_u%.*}${_u#*.}" | sed 's/^0*//;s/^$/0/'; }

# wait_until SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.1 s until
# it succeeds or SECONDS pass. Appends "DESCRIPTION ok|timeout SECONDS" to
# /results/waits.txt and returns COMMAND's last status.
wait_until() {
	_limit=$1 _desc=$2
	shift 2
	_t0=$(now_cs)
	_end=$((_t0 + _limit * 100))
	_n=0
	while [ "$_n" -lt 100000 ]; do
		_n=$((_n + 1))
		if "$@" >/dev/null 2>&1; then
			_dt=$(( $(now_cs) - _t0 ))
			echo "$_desc ok $((_dt / 100)).$(printf %02d $((_dt % 100)))" >> "$LAB_RESULTS/waits.txt"
			say "after $((_dt / 100)).$(printf %02d $((_dt % 100)))s: $_desc"
			return 0
		fi
		[ "$(now_cs)" -ge "$_end" ] && break
		sleep 0.1
	done
	echo "$_desc timeout $_limit" >> "$LAB_RESULTS/waits.txt"
	say "TIMEOUT after ${_limit}s waiting for: $_desc"
	return 1
}

ns_add() {
	ip netns add "$1" && ip -n "$1" link set lo up
}

bridge_add() {
	ip link add "$1" type bridge forward_delay 0 stp_state 0 && ip link set "$1" up
}

# ns_link NS IFNAME BRIDGE ADDR/PREFIX: a veth from bridge BRIDGE into NS.
ns_link() {
	ip link add "$1-$2" type veth peer name "$2" netns "$1" &&
		ip link set "$1-$2" master "$3" up &&
		ip -n "$1" addr add "$4" dev "$2" &&
		ip -n "$1" link set "$2" up
}

# topo_nat N: client, directors dirA and dirB, real servers rs1..rsN.
topo_nat() {
	bridge_add br-pub || return 1
	bridge_add br-priv || return 1
	ns_add client && ns_link client eth0 br-pub "$LAB_CLIENT_IP/24" || return 1
	for _d in dirA:2 dirB:3; do
		_n=${_d%%:*} _h=${_d#*:}
		ns_add "$_n" || return 1
		ns_link "$_n" eth0 br-pub "192.0.2.$_h/24" || return 1
		ns_link "$_n" eth1 br-priv "198.51.100.$_h/24" || return 1
		ip netns exec "$_n" sysctl -qw net.ipv4.ip_forward=1 || return 1
	done
	_i=1
	while [ "$_i" -le "$1" ]; do
		ns_add "rs$_i" || return 1
		ns_link "rs$_i" eth0 br-priv "198.51.100.$((LAB_RS_BASE + _i))/24" || return 1
		ip -n "rs$_i" route add default via "$LAB_PRIV_VIP" || return 1
		_i=$((_i + 1))
	done
	say "topology: client, dirA, dirB, rs1..rs$1 on br-pub (192.0.2.0/24) and br-priv (198.51.100.0/24)"
}

rs_ip() { echo "198.51.100.$((LAB_RS_BASE + ${1#rs}))"; }

# rs_start NAME: the helper HTTP server on port 80, answering NAME.
rs_start() {
	# /usr/bin/ip, not the ip function: $! must be the server's pid, not a subshell's.
	/usr/bin/ip netns exec "$1" labhelper serve -name "$1" -listen :80 >> "$LAB_RESULTS/$1-http.log" 2>&1 &
	echo $! > "$LAB_RUN/$1-http.pid"
	ip netns exec "$1" labhelper wait -addr 127.0.0.1:80 -timeout 5s
}

# rs_stop NAME: stop the HTTP server (the port then refuses connections).
rs_stop() {
	kill "$(cat "$LAB_RUN/$1-http.pid")" 2>/dev/null
	wait "$(cat "$LAB_RUN/$1-http.pid")" 2>/dev/null
	true
}

# director_start NAME DAEMON CONFIG: run keepalived or lvsd in NAME's
# namespace, in the foreground of a background job, logging to
# /results/NAME-DAEMON.log.
director_start() {
	_log="$LAB_RESULTS/$1-$2.log"
	case "$2" in
	keepalived)
		/usr/bin/ip netns exec "$1" keepalived -n -l -D -f "$3" -p "$LAB_RUN/$1.pid" \
			-r "$LAB_RUN/$1-vrrp.pid" -c "$LAB_RUN/$1-checkers.pid" > "$_log" 2>&1 &
		;;
	lvsd)
		# A control socket per director (lvsd ctl --socket $LAB_RUN/NAME.ctl):
		# beside the pid file, two directors would share $LAB_RUN/lvsd.ctl.
		/usr/bin/ip netns exec "$1" lvsd -n -l -f "$3" -p "$LAB_RUN/$1.pid" --ctl-socket "$LAB_RUN/$1.ctl" > "$_log" 2>&1 &
		;;
	*)
		echo "director_start: unknown daemon $2" >&2
		return 1
		;;
	esac
	echo $! > "$LAB_RUN/$1-daemon.pid"
}

# director_kill NAME: power the director off: its cables cut first (its
# veths deleted, both ends at once: deleting a namespace takes IPVS away
# before its interfaces, and in that window the kernel would answer the
# VIP's packets with resets, which a powered-off box does not; and the
# kernel frees a deleted namespace's veths late, so that the names would
# not be free for a new director), SIGKILL every process in its namespace
# (no graceful VRRP shutdown), then delete the namespace.
director_kill() {
	for _l in $(ip -o link show | sed -n "s/^[0-9]*: \($1-[^@:]*\)[@:].*/\1/p"); do ip link del "$_l"; done
	for _p in $(ip netns pids "$1"); do kill -9 "$_p" 2>/dev/null; done
	wait "$(cat "$LAB_RUN/$1-daemon.pid")" 2>/dev/null
	ip netns del "$1"
}

# namespaces: the lab's network namespaces, one a line.
namespaces() { ip netns list | cut -d' ' -f1; }

# addr_table: "NS IFINDEX: IFNAME inet ADDR/LEN ..." for every namespace.
addr_table() {
	for _ns in $(namespaces); do
		ip -n "$_ns" -o -4 addr show | sed "s/^/$_ns /"
	done
}

# vip_holders ADDR [TABLE]: the namespaces that have ADDR on an interface.
vip_holders() {
	[ $# -ge 2 ] || set -- "$1" "$(addr_table)"
	echo "$2" | awk -v a="$1" '$5 == a || index($5, a "/") == 1 { print $1 }' | sort -u
}

# holds_only NS ADDR...: true when NS, and no other namespace, holds every ADDR.
holds_only() {
	_ns=$1
	shift
	_tab=$(addr_table)
	for _a in "$@"; do
		[ "$(vip_holders "$_a" "$_tab" | tr '\n' ' ')" = "$_ns " ] || return 1
	done
}

# ipvs NS: ipvsadm -Ln in NS.
ipvs() { ip netns exec "$1" ipvsadm -Ln; }

# ipvs_has NS ADDR:PORT: the IPVS table of NS lists ADDR:PORT.
ipvs_has() { ipvs "$1" | grep -q -- "-> $2 "; }
ipvs_lacks() { ipvs "$1" >/dev/null 2>&1 && ! ipvs_has "$1" "$2"; }

# snapshot TAG: record ip addresses of every namespace and the IPVS tables
# of the directors as /results/TAG-addr-NS.txt and /results/TAG-ipvs-NS.txt.
snapshot() {
	for _ns in $(namespaces); do
		ip -n "$_ns" -o addr show > "$LAB_RESULTS/$1-addr-$_ns.txt" 2>&1
		case "$_ns" in dir*)
			ipvs "$_ns" > "$LAB_RESULTS/$1-ipvs-$_ns.txt" 2>&1
			;;
		esac
	done
	namespaces > "$LAB_RESULTS/$1-namespaces.txt"
}

# client_get TAG N: N HTTP requests from the client to the VIP; the report
# (answers by server name, failures) goes to /results/TAG-client.json.
client_get() {
	ip netns exec client labhelper get -url "http://$LAB_VIP/" -n "$2" -timeout 3s > "$LAB_RESULTS/$1-client.json"
	say "$1: client -> $LAB_VIP: $(report_line "$LAB_RESULTS/$1-client.json")"
}

# client_loop_start TAG / client_loop_stop TAG: requests in a loop (200 ms
# timeout, 20 ms apart, at most 60 s) measuring the longest gap between
# answers; the report goes to /results/TAG-loop.json.
client_loop_start() {
	rm -f "$LAB_RUN/$1.stop"
	/usr/bin/ip netns exec client labhelper loop -url "http://$LAB_VIP/" -timeout 200ms -interval 20ms \
		-max 60s -stop "$LAB_RUN/$1.stop" > "$LAB_RESULTS/$1-loop.json" 2>> "$LAB_RESULTS/$1-loop.err" &
	echo $! > "$LAB_RUN/$1-loop.pid"
}
client_loop_stop() {
	touch "$LAB_RUN/$1.stop"
	wait "$(cat "$LAB_RUN/$1-loop.pid")" 2>/dev/null
	say "$1: client loop: $(report_line "$LAB_RESULTS/$1-loop.json")"
}

# report_line FILE: a labhelper JSON report in one short line.
report_line() {
	sed -n 's/.*"requests":\([0-9]*\),"failed":\([0-9]*\),"answers":{\([^}]*\)}.*/\1 requests, \2 failed, answers {\3}/p' "$1" | tr -d '"' | tr '\n' ' '
	sed -n 's/.*"longest_gap_ms":\([0-9]*\).*/longest gap between answers \1 ms/p' "$1"
	echo
}

# vrrp_states NAME: the VRRP state changes logged by the director NAME.
vrrp_states() {
	grep -hiE 'entering [a-z]+ state|state (master|backup|fault)' "$LAB_RESULTS/$1"-*.log 2>/dev/null | sed "s/^/$1: /"
}
