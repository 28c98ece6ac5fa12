package integration_test

// Health-checker benchmark on the lab VM (issue 6): TCP_CHECKs against
// loopback listeners, run by `lvsd -C` and then by `keepalived -C` on the
// same configuration in the same VM run, one after the other in one
// network namespace. Gated by LVSD_BENCH=1 (not in CI).
//
// The configurations are N/100 virtual servers 192.0.2.i:80 of 100 real
// servers each, 203.0.113.1-100:80 (the same 100 addresses in every
// virtual server: checkers belong to a virtual server, so N checkers hit
// 100 addresses; the addresses sit on lo and one labhelper HTTP server on
// :80 accepts them all). Both daemons also program IPVS with the N
// destinations (keepalived -C does too): the few virtual servers keep that
// part small.
//
// Under TCG the VM makes only a few hundred loopback connections per
// second in all (at 2,000 checks per second it is saturated: neither
// daemon keeps up, connects time out and real servers flap), so there are
// two phases:
//
//   - rate: N checks at delay_loop 1 (LVSD_BENCH_CHECKS, default 100) for
//     LVSD_BENCH_SECONDS (default 60): the CPU comparison, at a rate both
//     daemons keep up with;
//   - scale: LVSD_BENCH_SCALE_CHECKS (default 10,000; 0 skips it) checks at
//     delay_loop 60, measured for 30 s once every checker has run (warm-up
//     = delay_loop): the RSS of the full count of checkers, at ~170 checks
//     per second.
//
// Measured over each window: CPU from /proc/PID/stat (utime+stime, waited-
// for children included; keepalived: its parent and its checker child),
// RSS from /proc/PID/status VmRSS (keepalived: the sum of both; the
// maximum of the samples), and the TCP connections the namespace opened
// (/proc/net/snmp Tcp ActiveOpens: the checks actually made, against the
// number due). lvsd exports no lateness metric: the rate phase also runs
// healthcheck/bench (lvsd's scheduler alone, same N, same VM), which
// measures it.
//
//	LVSD_INTEGRATION=1 LVSD_BENCH=1 go test -count=1 -v -run TestCheckerBenchLab ./integration/
//	(LVSD_BENCH_CPUS=1|2, default 2: under TCG a second vCPU inflates
//	every process's CPU time, see the report)

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lvsd/lvsd/integration/lab"
)

const (
	chkDefaultChecks  = 100 // rate phase (TCG: see the top of the file)
	chkDefaultSeconds = 60
	chkDefaultScale   = 10000 // scale phase
	chkRSPerVS        = 100
)

// chkPhase is one configuration run by both daemons.
type chkPhase struct {
	Name    string
	N       int // checks (destinations)
	Delay   int // delay_loop, s
	Wait    int // s from the full IPVS table to the window
	Seconds int // window, s
}

// chkConfig is the benchmark's keepalived.conf: n checks at delay_loop
// delay as n/100 virtual servers of 100 real servers.
func chkConfig(n, delay int) string {
	var b strings.Builder
	b.WriteString("# lvsd lab: checker benchmark (bench_checker_lab_test.go)\nglobal_defs {\n    router_id lab-bench\n}\n")
	for i := 0; i*chkRSPerVS < n; i++ {
		fmt.Fprintf(&b, "virtual_server 192.0.2.%d 80 {\n    delay_loop %d\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n", i+1, delay)
		for j := 0; j < chkRSPerVS && i*chkRSPerVS+j < n; j++ {
			fmt.Fprintf(&b, "    real_server 203.0.113.%d 80 {\n        weight 1\n        TCP_CHECK {\n            connect_timeout 3\n        }\n    }\n", j+1)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

const chkScript = `
# rss PID: VmRSS in kB.
rss() { while read -r _k _v _; do [ "$_k" = VmRSS: ] && echo "$_v" && return; done < "/proc/$1/status"; echo 0; }
# opens PID: Tcp ActiveOpens of PID's network namespace.
opens() {
	_h=
	while read -r _l; do
		case "$_l" in Tcp:*)
			if [ -z "$_h" ]; then _h=$_l; else set -- $_l; echo "$6"; return; fi
		esac
	done < "/proc/$1/net/snmp"
}
dests() { ip netns exec bench cat /proc/net/ip_vs | grep -c '^  -> [0-9A-F]'; }
dests_are() { [ "$(dests)" -ge "$1" ]; }
sum() { _t=0; for _p in $PIDS; do _t=$((_t + $($1 "$_p"))); done; echo "$_t"; }
# idle: the VM's idle CPU ticks (all CPUs).
idle() { read -r _c _u _n _s _i _ < /proc/stat; echo "$_i"; }
sample() { read -r _a _ < /proc/uptime; echo "$1 $_a $(sum ticks) $(opens $DPID) $(sum rss) $(ticks $LPID) $(idle)" >> "$out"; }

# bench PHASE DAEMON N WAIT SECONDS: run DAEMON -C on /lab/files/PHASE.conf
# (N destinations), wait WAIT s once IPVS has them all, then sample for
# SECONDS s into /results/bench-PHASE-DAEMON.txt.
bench() {
	out="$LAB_RESULTS/bench-$1-$2.txt"
	say "=== $1: $2 -C, $3 checks"
	read -r t0 _ < /proc/uptime
	case $2 in
	lvsd)
		/usr/bin/ip netns exec bench lvsd -n -l -C -f "/lab/files/$1.conf" -p "$LAB_RUN/bench-lvsd.pid" \
			--metrics-listen 127.0.0.1:9165 > "$LAB_RESULTS/bench-$1-lvsd.log" 2>&1 &
		;;
	keepalived)
		/usr/bin/ip netns exec bench keepalived -n -l -C -f "/lab/files/$1.conf" -p "$LAB_RUN/bench-ka.pid" \
			-c "$LAB_RUN/bench-ka-checkers.pid" > "$LAB_RESULTS/bench-$1-keepalived.log" 2>&1 &
		;;
	esac
	DPID=$!
	if ! wait_until 300 "$1: $2: IPVS has the $3 destinations" dests_are "$3"; then
		echo "error IPVS never had the $3 destinations" >> "$out"
		kill -TERM $DPID
		wait $DPID
		ip netns exec bench ipvsadm -C
		return
	fi
	read -r t1 _ < /proc/uptime
	echo "programmed $t0 $t1" >> "$out"
	sleep "$4"
	case $2 in
	lvsd) PIDS=$(cat "$LAB_RUN/bench-lvsd.pid") ;;
	keepalived) PIDS="$(cat "$LAB_RUN/bench-ka.pid") $(cat "$LAB_RUN/bench-ka-checkers.pid")" ;;
	esac
	echo "pids $PIDS" >> "$out"
	sample start
	_n=0
	while [ $_n -lt "$5" ]; do
		sleep 5
		_n=$((_n + 5))
		sample sample
	done
	sample end
	for _p in $PIDS; do echo "status $_p $(grep -E '^(VmHWM|Threads)' "/proc/$_p/status" | tr '\n\t' '  ')" >> "$out"; done
	if [ "$2" = lvsd ]; then
		# After the samples: the Go runtime's view of the RSS measured.
		scrape bench "bench-$1-lvsd"
	fi
	kill -TERM $DPID
	wait $DPID
	ip netns exec bench ipvsadm -C
	say "$1: $2: $(grep '^end' "$out")"
}

say "=== checker benchmark"
ns_add bench || exit 10
i=1
while [ $i -le 100 ]; do echo "addr add 203.0.113.$i/32 dev lo"; i=$((i + 1)); done > /tmp/addrs.batch
ip -n bench -batch /tmp/addrs.batch || exit 10
/usr/bin/ip netns exec bench labhelper serve -name bench -listen :80 > "$LAB_RESULTS/bench-listener.log" 2>&1 &
LPID=$!
ip netns exec bench labhelper wait -addr 203.0.113.100:80 -timeout 10s || exit 11
`

// chkRun is one daemon's measurements.
type chkRun struct {
	Daemon     string
	Programmed time.Duration // start until the table had the N destinations
	Window     time.Duration
	CPUTicks   int64 // over the window (USER_HZ = 100)
	Opens      int64 // TCP connections opened over the window
	MaxRSSKB   int64
	Err        string
}

func parseChkRun(daemon, text string) chkRun {
	r := chkRun{Daemon: daemon}
	var start, end []string
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "error":
			r.Err = strings.Join(f[1:], " ")
		case "programmed":
			if len(f) == 3 {
				a, _ := uptime(f[1])
				b, _ := uptime(f[2])
				r.Programmed = b - a
			}
		case "start", "sample", "end":
			if len(f) != 7 {
				continue
			}
			if rss, err := strconv.ParseInt(f[4], 10, 64); err == nil {
				r.MaxRSSKB = max(r.MaxRSSKB, rss)
			}
			if f[0] == "start" {
				start = f
			}
			if f[0] == "end" {
				end = f
			}
		}
	}
	if start == nil || end == nil {
		if r.Err == "" {
			r.Err = "no measurement"
		}
		return r
	}
	a, _ := uptime(start[1])
	b, _ := uptime(end[1])
	r.Window = b - a
	t0, _ := strconv.ParseInt(start[2], 10, 64)
	t1, _ := strconv.ParseInt(end[2], 10, 64)
	o0, _ := strconv.ParseInt(start[3], 10, 64)
	o1, _ := strconv.ParseInt(end[3], 10, 64)
	r.CPUTicks, r.Opens = t1-t0, o1-o0
	return r
}

// CPU is the CPU share over the window, in percent of one CPU.
func (r chkRun) CPU() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.CPUTicks) / 100 / r.Window.Seconds() * 100
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return v
}

// TestCheckerBenchLab: see the top of this file.
func TestCheckerBenchLab(t *testing.T) {
	if os.Getenv("LVSD_BENCH") == "" {
		t.Skip("the checker benchmark runs with LVSD_BENCH=1 (and LVSD_INTEGRATION=1)")
	}
	im := needLab(t)
	n := envInt(t, "LVSD_BENCH_CHECKS", chkDefaultChecks)
	secs := (envInt(t, "LVSD_BENCH_SECONDS", chkDefaultSeconds) + 4) / 5 * 5
	scale := chkDefaultScale
	if v := os.Getenv("LVSD_BENCH_SCALE_CHECKS"); v != "" {
		var err error
		if scale, err = strconv.Atoi(v); err != nil || scale < 0 {
			t.Fatalf("LVSD_BENCH_SCALE_CHECKS=%q", v)
		}
	}
	cpus := envInt(t, "LVSD_BENCH_CPUS", 2)
	phases := []chkPhase{{Name: "rate", N: n, Delay: 1, Wait: 5, Seconds: secs}}
	if scale > 0 {
		phases = append(phases, chkPhase{Name: "scale", N: scale, Delay: 60, Wait: 65, Seconds: 30})
	}
	for _, p := range phases {
		if p.N > 25400 {
			t.Fatalf("%d checks: at most 25400 (254 virtual servers of 100)", p.N)
		}
	}
	daemons := []string{"lvsd", "keepalived"}
	sched := chkBuildSched(t)

	files := map[string][]byte{"hcbench": sched}
	var script strings.Builder
	script.WriteString(labShell + chkScript)
	timeout := 90 * time.Second
	for _, p := range phases {
		files[p.Name+".conf"] = []byte(chkConfig(p.N, p.Delay))
		for _, d := range daemons {
			fmt.Fprintf(&script, "bench %s %s %d %d %d\n", p.Name, d, p.N, p.Wait, p.Seconds)
			timeout += time.Duration(p.Wait+p.Seconds+90) * time.Second
		}
	}
	fmt.Fprintf(&script, `say "=== healthcheck/bench: lvsd's scheduler alone, %d checks"
cp /lab/files/hcbench /tmp/hcbench && chmod +x /tmp/hcbench
ip netns exec bench /tmp/hcbench -n %d -delay 1s -duration %ds > "$LAB_RESULTS/bench-sched.txt" 2>&1
sed 's/^/    /' "$LAB_RESULTS/bench-sched.txt"
exit 0
`, n, n, secs)
	timeout += time.Duration(secs+30) * time.Second
	res := runLab(t, im, lab.Scenario{
		Name:     "checker-bench",
		Script:   script.String(),
		Files:    files,
		WithLVSD: true,
		MemoryMB: 2048,
		CPUs:     cpus,
		Timeout:  timeout,
	}, "waits.txt", "bench-rate-lvsd.txt", "bench-rate-keepalived.txt", "bench-scale-lvsd.txt", "bench-scale-keepalived.txt")
	keepResults(t, res, "checker-bench")
	if res.ExitCode != 0 {
		t.Fatalf("scenario exit status %d (10 addresses, 11 listener)", res.ExitCode)
	}

	var rows, misses []string
	for _, p := range phases {
		runs := map[string]chkRun{}
		for _, d := range daemons {
			r := parseChkRun(d, res.File("bench-"+p.Name+"-"+d+".txt"))
			runs[d] = r
			if r.Err != "" {
				t.Errorf("%s: %s: %s", p.Name, d, r.Err)
				continue
			}
			due := float64(p.N) / float64(p.Delay)
			made := float64(r.Opens) / r.Window.Seconds()
			rows = append(rows, fmt.Sprintf("| %s | `%s -C` | %d (%d×%d), delay_loop %d | %.1f%% | %.2f ms | %.1f MB | %.0f/s of %.0f/s (%.0f%%) | %s |",
				p.Name, d, p.N, (p.N+chkRSPerVS-1)/chkRSPerVS, min(p.N, chkRSPerVS), p.Delay, r.CPU(),
				float64(r.CPUTicks)*10/float64(max(r.Opens, 1)), float64(r.MaxRSSKB)/1024, made, due, made/due*100, secs2(r.Programmed)))
		}
		l, k := runs["lvsd"], runs["keepalived"]
		if l.Err != "" || k.Err != "" {
			continue
		}
		// Issue 17: no more than keepalived's checker and VRRP processes
		// together, and under 24 MB.
		if l.MaxRSSKB > k.MaxRSSKB || l.MaxRSSKB >= 24*1024 {
			misses = append(misses, fmt.Sprintf("%s: lvsd RSS %.1f MB, target under 24 MB and at most keepalived's %.1f MB", p.Name, float64(l.MaxRSSKB)/1024, float64(k.MaxRSSKB)/1024))
		}
		if p.Name == "rate" && l.CPU() > k.CPU() {
			misses = append(misses, fmt.Sprintf("%s: lvsd CPU %.1f%% above keepalived's %.1f%% (target: no more)", p.Name, l.CPU(), k.CPU()))
		}
	}
	note := ""
	if m := labMetricsOpt(res, "bench-rate-lvsd", "bench"); m != nil {
		ok, _ := promGet(m, "lvsd_healthcheck_checks_total", "type", "TCP_CHECK", "result", "success")
		fail, _ := promGet(m, "lvsd_healthcheck_checks_total", "type", "TCP_CHECK", "result", "failure")
		cnt, _ := promGet(m, "lvsd_healthcheck_duration_seconds_count", "type", "TCP_CHECK")
		sum, _ := promGet(m, "lvsd_healthcheck_duration_seconds_sum", "type", "TCP_CHECK")
		if cnt > 0 {
			note = fmt.Sprintf("rate phase, lvsd's /metrics since its start: %.0f successful and %.0f failed TCP_CHECKs, mean check duration %.1f ms (lvsd exports no lateness).\n",
				ok, fail, sum/cnt*1000)
		}
	}
	for _, p := range phases {
		if m := labMetricsOpt(res, "bench-"+p.Name+"-lvsd", "bench"); m != nil {
			get := func(name string) float64 { v, _ := promGet(m, name); return v / (1 << 20) }
			note += fmt.Sprintf("%s: lvsd's Go runtime after the window: heap in use %.1f MiB (objects %.1f MiB), heap released %.1f MiB, stacks %.1f MiB, total from the OS %.1f MiB, next GC at %.1f MiB.\n",
				p.Name, get("go_memstats_heap_inuse_bytes"), get("go_memstats_heap_alloc_bytes"), get("go_memstats_heap_released_bytes"),
				get("go_memstats_stack_inuse_bytes"), get("go_memstats_sys_bytes"), get("go_memstats_next_gc_bytes"))
		}
	}
	var sch []string
	for _, l := range strings.Split(res.File("bench-sched.txt"), "\n") {
		if f := strings.Fields(l); len(f) > 0 && (f[0] == "ran:" || f[0] == "cpu:" || f[0] == "memory:" || f[0] == "lateness:") {
			sch = append(sch, "    "+strings.TrimSpace(l))
		}
	}
	for _, d := range daemons {
		for _, p := range phases {
			if c := strings.Count(res.File("bench-"+p.Name+"-"+d+".log"), "DOWN") + strings.Count(res.File("bench-"+p.Name+"-"+d+".log"), "Removing service"); c > 0 {
				note += fmt.Sprintf("%s: %s logged %d real servers going down (loopback listeners: none expected; the VM was too busy).\n", p.Name, d, c)
			}
		}
	}
	t.Logf("\nchecker benchmark, %d vCPUs (%s), %s\n\n| phase | daemon | checks | CPU (of one CPU) | CPU per check | RSS (max) | checks made | IPVS programmed in |\n|---|---|---|---|---|---|---|---|\n%s\n\n%shealthcheck/bench (lvsd's scheduler alone, %d checks, delay_loop 1, %d s, listeners in another process):\n%s",
		cpus, res.Accel, "windows: rate "+strconv.Itoa(secs)+" s, scale 30 s", strings.Join(rows, "\n"), note, n, secs, strings.Join(sch, "\n"))
	for _, m := range misses {
		t.Errorf("target missed: %s", m)
	}
}

// chkBuildSched builds healthcheck/bench (static) for the VM.
func chkBuildSched(t *testing.T) []byte {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "hcbench")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./healthcheck/bench")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building healthcheck/bench: %v: %s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func secs2(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

// labMetricsOpt is labMetrics without failing: nil when absent.
func labMetricsOpt(res *lab.Result, tag, ns string) []promSample {
	ss, err := parseProm(res.File(tag + "-metrics-" + ns + ".txt"))
	if err != nil || len(ss) == 0 {
		return nil
	}
	return ss
}
