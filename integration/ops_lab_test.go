package integration_test

// Reloads without flaps on the lab VM (issue 7): the NAT director pair
// (the reference configs, lab copies; sync group) with lvsd on both, a
// client looping through the VIP, and on the master dirA:
//
//  1. 100 SIGHUPs in a row, 100-200 ms apart, with the configuration
//     unchanged: no VRRP transition on either director, the VIPs never
//     leave dirA (polled, and watched with `ip monitor address`), no failed
//     request, no IPVS mutation (lvsd_ipvs_operations_total unchanged) and
//     the kernel's connection counters of the service kept;
//  2. a configuration with a syntax error (a real_server block left
//     unclosed): rejected, everything keeps running, reported in
//     lvsd_config_reloads_total{result="failure"} and in the log with
//     file:line;
//  3. a configuration changing rs1's weight 1 -> 2: exactly one IPVS
//     mutation, and ipvsadm -Ln shows weight 2.

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lvsd/lvsd/integration/lab"
)

const olReloads = 100

// reloadConfigs returns dirA's configuration, the same with a syntax error
// (the closing brace of rs1's real_server block removed) and the same
// with rs1's weight 2; and dirB's configuration.
func reloadConfigs() (good, bad, weight, backup string, err error) {
	if good, err = lab.NATConfig(lab.RefNATPrimary); err != nil {
		return
	}
	if backup, err = lab.NATConfig(lab.RefNATBackup); err != nil {
		return
	}
	rs1 := "real_server " + lab.RealServerIP(1) + " 80 {"
	i := strings.Index(good, rs1)
	if i < 0 {
		return "", "", "", "", fmt.Errorf("no %q in the lab config", rs1)
	}
	// rs1's block ends at the first line that is only "}" with the
	// indentation of its opening line.
	lineStart := strings.LastIndex(good[:i], "\n") + 1
	closing := "\n" + good[lineStart:i] + "}\n"
	j := strings.Index(good[i:], closing)
	if j < 0 {
		return "", "", "", "", fmt.Errorf("no end of %q in the lab config", rs1)
	}
	bad = good[:i+j] + "\n" + good[i+j+len(closing):]
	re := regexp.MustCompile(`(` + regexp.QuoteMeta(rs1) + `\s*weight )1\b`)
	if !re.MatchString(good) {
		return "", "", "", "", fmt.Errorf("no weight 1 for rs1 in the lab config")
	}
	weight = re.ReplaceAllString(good, "${1}2")
	return good, bad, weight, backup, nil
}

const reloadScript = `
RS1=$(rs_ip rs1):80
RS2=$(rs_ip rs2):80
VS=$LAB_VIP:80
both_listed() { for d in dirA dirB; do ipvs_has "$d" "$RS1" && ipvs_has "$d" "$RS2" || return 1; done; }
# fib PID: the FIB of PID's network namespace (/proc/PID/net/fib_trie; its
# "/32 host LOCAL" entries are the addresses on the interfaces), read
# without a fork: forking ip every 100 ms is too slow under TCG.
fib() { while read -r _l; do echo "$_l"; done < "/proc/$1/net/fib_trie"; }
vip_sample() { echo "ns dirA"; fib "$PIDA"; echo "ns dirB"; fib "$PIDB"; }
transitions() { grep -c 'Entering [A-Z]* STATE' "$LAB_RESULTS/$1-lvsd.log"; }
log_has() { grep -q "$2" "$LAB_RESULTS/$1-lvsd.log"; }
reloads() { grep -c 'configuration reloaded' "$LAB_RESULTS/dirA-lvsd.log"; }
# settled: no reload logged for a second (queued SIGHUPs all handled).
settled() { _a=$(reloads); sleep 1; [ "$(reloads)" = "$_a" ]; }
# record TAG: /metrics of both directors, dirA's IPVS counters and table,
# and the number of VRRP transitions each has logged.
record() {
	scrape dirA "$1"
	scrape dirB "$1"
	ip netns exec dirA ipvsadm -Ln --stats > "$LAB_RESULTS/$1-stats-dirA.txt" 2>&1
	ipvs dirA > "$LAB_RESULTS/$1-ipvs-dirA.txt" 2>&1
	echo "dirA $(transitions dirA) dirB $(transitions dirB)" > "$LAB_RESULTS/$1-transitions.txt"
}

say "=== reloads without flaps: lvsd NAT pair, a client looping through the VIP"
topo_nat 2 || exit 10
rs_start rs1 || exit 11
rs_start rs2 || exit 11
cp /lab/files/dirA.conf "$LAB_RUN/dirA.conf" || exit 12
director_start dirA lvsd "$LAB_RUN/dirA.conf" || exit 12
director_start dirB lvsd /lab/files/dirB.conf || exit 12
ok=yes
wait_until 30 "dirA holds both VIPs" holds_only dirA "$LAB_VIP" "$LAB_PRIV_VIP" || ok=no
wait_until 30 "dirA and dirB IPVS list rs1 and rs2" both_listed || ok=no
wait_until 20 "dirA metrics endpoint answers" metrics_up dirA || ok=no
wait_until 20 "dirB metrics endpoint answers" metrics_up dirB || ok=no
wait_until 20 "dirB logged its BACKUP state" log_has dirB 'to=BACKUP' || ok=no
[ "$ok" = yes ] || exit 20
PID=$(cat "$LAB_RUN/dirA.pid")
PIDA=$PID
PIDB=$(cat "$LAB_RUN/dirB.pid")
sleep 1

/usr/bin/ip -n dirA -o monitor address > "$LAB_RESULTS/monitor-dirA.txt" 2>&1 &
echo $! > "$LAB_RUN/mon-dirA.pid"
/usr/bin/ip -n dirB -o monitor address > "$LAB_RESULTS/monitor-dirB.txt" 2>&1 &
echo $! > "$LAB_RUN/mon-dirB.pid"
poll_start vips 0.1 vip_sample
record r0
# 1 s timeout: under TCG a busy VM can stall a request for a few hundred ms.
/usr/bin/ip netns exec client labhelper loop -url "http://$LAB_VIP/" -timeout 1s -interval 20ms \
	-max 3m -stop "$LAB_RUN/loop.stop" > "$LAB_RESULTS/ops-loop.json" 2> "$LAB_RESULTS/ops-loop.err" &
echo $! > "$LAB_RUN/loop.pid"
sleep 1

say "=== $RELOADS SIGHUPs to dirA (pid $PID), configuration unchanged"
mark reloads-begin
echo "before $(ticks "$PID")" > "$LAB_RESULTS/reload-cpu.txt"
i=0
while [ $i -lt $RELOADS ]; do
	kill -HUP "$PID" || say "kill -HUP failed"
	sleep 0.1
	i=$((i + 1))
done
mark reloads-end
wait_until 20 "dirA handled the SIGHUPs" settled
mark reloads-settled
echo "after $(ticks "$PID")" >> "$LAB_RESULTS/reload-cpu.txt"
sleep 1.5
record r1

say "=== a configuration with a syntax error"
cp /lab/files/dirA-bad.conf "$LAB_RUN/dirA.conf"
mark bad-reload
kill -HUP "$PID"
wait_until 10 "dirA rejected the bad configuration" log_has dirA 'reload rejected'
sleep 2.5
record r2

say "=== rs1's weight 1 -> 2"
cp /lab/files/dirA-weight.conf "$LAB_RUN/dirA.conf"
mark weight-reload
kill -HUP "$PID"
wait_until 10 "dirA's IPVS has rs1 with weight 2" weight_is dirA "$VS" "$RS1" 2
sleep 1
touch "$LAB_RUN/loop.stop"
wait "$(cat "$LAB_RUN/loop.pid")"
say "client loop: $(report_line "$LAB_RESULTS/ops-loop.json")"
# Let the kernel's 2 s estimator publish the last connections.
sleep 2.5
record r3
poll_stop vips
kill "$(cat "$LAB_RUN/mon-dirA.pid")" "$(cat "$LAB_RUN/mon-dirB.pid")" 2>/dev/null
snapshot end
ipvs dirA | sed 's/^/    /'
say "=== done"
exit 0
`

// TestOpsLab: reloads without flaps (issue 7) on the real kernel with two
// lvsd directors. See the top of this file.
func TestOpsLab(t *testing.T) {
	im := needLab(t)
	good, bad, weight, backup, err := reloadConfigs()
	if err != nil {
		t.Fatal(err)
	}
	res := runLab(t, im, lab.Scenario{
		Name:   "reload-lvsd",
		Script: labShell + fmt.Sprintf("RELOADS=%d\n", olReloads) + reloadScript,
		Files: map[string][]byte{"dirA.conf": []byte(good), "dirA-bad.conf": []byte(bad),
			"dirA-weight.conf": []byte(weight), "dirB.conf": []byte(backup)},
		WithLVSD: true,
		Timeout:  4 * time.Minute,
	}, "waits.txt", "events.txt", "dirB-lvsd.log")
	keepResults(t, res, "reload")
	for w, v := range res.Waits() {
		if v < 0 {
			t.Errorf("timed out waiting for: %s", w)
		}
	}
	if res.ExitCode != 0 {
		t.Fatalf("scenario exit status %d (10 topology, 11 real servers, 12 lvsd, 20 the pair did not converge)", res.ExitCode)
	}
	ev := labEvents(res)
	m := map[string]map[string][]promSample{}
	for _, tag := range []string{"r0", "r1", "r2", "r3"} {
		m[tag] = map[string][]promSample{}
		for _, ns := range []string{lab.DirectorA, lab.DirectorB} {
			m[tag][ns] = labMetrics(t, res, tag, ns)
		}
	}
	get := func(tag, ns, name string, match ...string) float64 {
		v, _ := promGet(m[tag][ns], name, match...)
		return v
	}
	ops := func(tag, ns string) float64 { return promSum(m[tag][ns], "lvsd_ipvs_operations_total") }
	masters := func(tag, ns string) float64 { return promSum(m[tag][ns], "keepalived_become_master_total") }
	transitions := func(tag string) string { return strings.TrimSpace(res.File(tag + "-transitions.txt")) }

	// 1. 100 reloads of an unchanged configuration.
	// SIGHUPs that arrive while a reload runs queue in lvsd's os/signal
	// channel (4 deep); beyond that os/signal drops them, which loses
	// nothing: a queued reload reads the file afresh. Under TCG a reload
	// takes a good part of the interval (see the CPU per reload logged
	// below), so some of the 100 may coalesce.
	okA := get("r1", "dirA", "lvsd_config_reloads_total", "result", "success") - get("r0", "dirA", "lvsd_config_reloads_total", "result", "success")
	if okA < olReloads*3/4 || okA > olReloads {
		t.Errorf("dirA counted %v successful reloads for %d SIGHUPs", okA, olReloads)
	}
	if v := get("r1", "dirA", "lvsd_config_reloads_total", "result", "failure"); v != 0 {
		t.Errorf("dirA: %v failed reloads of an unchanged configuration", v)
	}
	if a, b := ops("r0", "dirA"), ops("r1", "dirA"); a != b {
		t.Errorf("dirA: lvsd_ipvs_operations_total %v -> %v across %d reloads of an unchanged configuration, want no mutation", a, b, olReloads)
	}
	reloadTime := ev["reloads-end"] - ev["reloads-begin"]
	var cpuBefore, cpuAfter int64
	for _, l := range strings.Split(res.File("reload-cpu.txt"), "\n") {
		fmt.Sscanf(l, "before %d", &cpuBefore)
		fmt.Sscanf(l, "after %d", &cpuAfter)
	}
	if okA > 0 && cpuAfter > cpuBefore {
		t.Logf("dirA's lvsd used %.2f s of CPU from the first SIGHUP until its reloads settled (%s): %.0f ms per reload, its checks and adverts included",
			float64(cpuAfter-cpuBefore)/100, secs(ev["reloads-settled"]-ev["reloads-begin"]), float64(cpuAfter-cpuBefore)*10/okA)
	}
	coalesced := ""
	if okA < olReloads {
		coalesced = fmt.Sprintf(" (%v coalesced)", olReloads-okA)
	}
	t.Logf("%d SIGHUPs in %s (one every %s), %v reloads%s; lvsd_ipvs_operations_total on dirA %v -> %v; VRRP transitions logged at r0 %q, r1 %q",
		olReloads, secs(reloadTime), (reloadTime / olReloads).Round(time.Millisecond), okA, coalesced, ops("r0", "dirA"), ops("r1", "dirA"), transitions("r0"), transitions("r1"))

	// VRRP: no transition anywhere, from before the reloads to the end.
	for _, ns := range []string{lab.DirectorA, lab.DirectorB} {
		if a, b := masters("r0", ns), masters("r3", ns); a != b {
			t.Errorf("%s: keepalived_become_master_total %v -> %v during the reloads", ns, a, b)
		}
		if a, b := promSum(m["r0"][ns], "keepalived_release_master_total"), promSum(m["r3"][ns], "keepalived_release_master_total"); a != b {
			t.Errorf("%s: keepalived_release_master_total %v -> %v during the reloads", ns, a, b)
		}
	}
	if transitions("r0") == "" || transitions("r0") != transitions("r3") {
		t.Errorf("VRRP transitions logged: %q before the reloads, %q after", transitions("r0"), transitions("r3"))
	}
	for _, inst := range []string{"external", "internal"} {
		for ns, want := range map[string]float64{lab.DirectorA: 2, lab.DirectorB: 1} {
			for _, tag := range []string{"r0", "r3"} {
				states := promMatch(m[tag][ns], "keepalived_vrrp_state", "iname", inst)
				if len(states) == 0 {
					t.Errorf("%s %s: no keepalived_vrrp_state for %s", tag, ns, inst)
				}
				for _, s := range states {
					if s.Value != want {
						t.Errorf("%s %s: keepalived_vrrp_state%v = %v, want %v", tag, ns, s.Labels, s.Value, want)
					}
				}
			}
		}
	}

	// The VIPs never leave dirA: polled, and no address event at all.
	polls := labPoll(res, "vips")
	if len(polls) < 20 {
		t.Errorf("only %d samples of the VIPs", len(polls))
	}
	flaps := 0
	for _, s := range polls {
		holders := map[string][]string{}
		for ns, addrs := range fibLocal(s.Out) {
			for _, a := range addrs {
				holders[a] = append(holders[a], ns)
			}
		}
		for _, vip := range []string{lab.VIP, lab.PrivateVIP} {
			if h := holders[vip]; len(h) != 1 || h[0] != lab.DirectorA {
				flaps++
				if flaps <= 3 {
					t.Errorf("at %s %s is held by %v, want dirA only:\n%s", secs(s.At), vip, h, s.Out)
				}
			}
		}
	}
	for _, ns := range []string{lab.DirectorA, lab.DirectorB} {
		mon := res.File("monitor-" + ns + ".txt")
		for _, l := range strings.Split(mon, "\n") {
			if strings.Contains(l, lab.VIP+"/") || strings.Contains(l, lab.PrivateVIP+"/") {
				flaps++
				t.Errorf("%s: ip monitor address saw a VIP change: %s", ns, strings.TrimSpace(l))
			}
		}
	}
	t.Logf("VIPs: %d samples of both directors' addresses (at most %s apart), %d flaps; `ip monitor address` on dirA and dirB from before the reloads to the end: %d and %d events",
		len(polls), secs(maxGap(polls)), flaps, strings.Count(res.File("monitor-dirA.txt"), "\n"), strings.Count(res.File("monitor-dirB.txt"), "\n"))

	// The client never failed.
	loop, err := res.Loop("ops")
	if err != nil {
		t.Errorf("client loop: %v", err)
	} else {
		if loop.Requests < 100 || loop.Failed != 0 {
			t.Errorf("client loop: %d of %d requests failed: %v", loop.Failed, loop.Requests, loop.Errors)
		}
		t.Logf("client: %d requests through the VIP over %s, %d failed, longest gap between answers %d ms, answers %v",
			loop.Requests, secs(time.Duration(loop.DurationMS)*time.Millisecond), loop.Failed, loop.LongestGapMS, loop.Answers)
	}

	// The kernel's connection counters: never reset, and every request of
	// the loop counted.
	vsKey := "TCP " + lab.VIP + ":80"
	conns := map[string]int64{}
	for _, tag := range []string{"r0", "r1", "r2", "r3"} {
		st := parseIPVSStats(res.File(tag + "-stats-dirA.txt"))
		c, ok := st[vsKey]
		if !ok {
			t.Errorf("%s: ipvsadm -Ln --stats has no %s:\n%s", tag, vsKey, res.File(tag+"-stats-dirA.txt"))
		}
		conns[tag] = c
	}
	if !(conns["r0"] < conns["r1"] && conns["r1"] <= conns["r2"] && conns["r2"] <= conns["r3"]) {
		t.Errorf("connection counters of %s went %d -> %d -> %d -> %d (r0..r3): reset or not counting", vsKey, conns["r0"], conns["r1"], conns["r2"], conns["r3"])
	}
	if err == nil && loop.Failed == 0 && conns["r3"]-conns["r0"] != int64(loop.Requests) {
		t.Errorf("the kernel counted %d connections of %s during the run, the client made %d requests", conns["r3"]-conns["r0"], vsKey, loop.Requests)
	}
	t.Logf("ipvsadm --stats Conns of %s: r0 %d, after the reloads %d, after the bad reload %d, at the end %d", vsKey, conns["r0"], conns["r1"], conns["r2"], conns["r3"])

	// 2. The bad configuration: rejected, reported, nothing changed.
	if v := get("r2", "dirA", "lvsd_config_reloads_total", "result", "failure") - get("r1", "dirA", "lvsd_config_reloads_total", "result", "failure"); v != 1 {
		t.Errorf("bad reload: lvsd_config_reloads_total{result=\"failure\"} +%v, want +1", v)
	}
	if v := get("r2", "dirA", "lvsd_config_reloads_total", "result", "success") - get("r1", "dirA", "lvsd_config_reloads_total", "result", "success"); v != 0 {
		t.Errorf("bad reload: counted as a successful reload (+%v)", v)
	}
	if v := get("r2", "dirA", "lvsd_config_last_reload_successful"); v != 0 {
		t.Errorf("bad reload: lvsd_config_last_reload_successful = %v, want 0", v)
	}
	if a, b := ops("r1", "dirA"), ops("r2", "dirA"); a != b {
		t.Errorf("bad reload: lvsd_ipvs_operations_total %v -> %v, want no mutation", a, b)
	}
	if svcs, err := res.IPVS("r2", "dirA"); err != nil {
		t.Errorf("r2: %v", err)
	} else if s := lab.FindService(svcs, "TCP", lab.VIP+":80"); s == nil || len(s.Reals) != 2 {
		t.Errorf("after the bad reload dirA's IPVS is %+v, want both real servers", s)
	}
	logA := res.File("dirA-lvsd.log")
	diag := regexp.MustCompile(`dirA\.conf:\d+: (error|fatal): [^"]*`)
	// The starting configuration has no error: any is the bad reload's.
	if d := diag.FindString(logA); d == "" {
		t.Errorf("bad reload: no file:line error in dirA's log:\n%s", tail(logA, 15))
	} else {
		t.Logf("bad reload reported: %s", strings.TrimRight(d, `\`))
	}
	if !strings.Contains(logA, "reload rejected") {
		t.Errorf("bad reload: dirA's log does not say the reload was rejected")
	}

	// 3. rs1's weight: one mutation, the new weight in the kernel.
	if v := get("r3", "dirA", "lvsd_config_reloads_total", "result", "success") - get("r2", "dirA", "lvsd_config_reloads_total", "result", "success"); v != 1 {
		t.Errorf("weight reload: +%v successful reloads, want +1", v)
	}
	if a, b := ops("r2", "dirA"), ops("r3", "dirA"); b-a != 1 {
		t.Errorf("weight reload: lvsd_ipvs_operations_total %v -> %v, want exactly one mutation", a, b)
	}
	if a, b := get("r2", "dirA", "lvsd_ipvs_operations_total", "op", "dest_update"), get("r3", "dirA", "lvsd_ipvs_operations_total", "op", "dest_update"); b-a != 1 {
		t.Errorf("weight reload: lvsd_ipvs_operations_total{op=\"dest_update\"} %v -> %v, want +1", a, b)
	}
	if svcs, err := res.IPVS("r3", "dirA"); err != nil {
		t.Errorf("r3: %v", err)
	} else if s := lab.FindService(svcs, "TCP", lab.VIP+":80"); s == nil || s.Real(lab.RealServerIP(1)+":80") == nil ||
		s.Real(lab.RealServerIP(1)+":80").Weight != 2 || s.Real(lab.RealServerIP(2)+":80") == nil || s.Real(lab.RealServerIP(2)+":80").Weight != 1 {
		t.Errorf("after the weight reload ipvsadm -Ln shows %+v, want rs1 weight 2 and rs2 weight 1", s)
	}
	if v := get("r3", "dirA", "node_ipvs_backend_weight", "local_address", lab.VIP, "remote_address", lab.RealServerIP(1)); v != 2 {
		t.Errorf("after the weight reload node_ipvs_backend_weight of rs1 = %v, want 2", v)
	}
	if a, b := ops("r0", "dirB"), ops("r3", "dirB"); a != b {
		t.Errorf("dirB (not reloaded): lvsd_ipvs_operations_total %v -> %v", a, b)
	}
	t.Logf("weight reload: lvsd_ipvs_operations_total on dirA %v -> %v (%v dest_update)", ops("r2", "dirA"), ops("r3", "dirA"),
		get("r3", "dirA", "lvsd_ipvs_operations_total", "op", "dest_update")-get("r2", "dirA", "lvsd_ipvs_operations_total", "op", "dest_update"))
}

// fibLocal reads samples of "ns NAME" lines each followed by that
// namespace's /proc/net/fib_trie: namespace -> its local IPv4 addresses
// (the "/32 host LOCAL" entries).
func fibLocal(out string) map[string][]string {
	res := map[string][]string{}
	ns, last := "", ""
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 2 && f[0] == "ns":
			ns, last = f[1], ""
			res[ns] = nil
		case len(f) == 2 && f[0] == "|--":
			last = f[1]
		case len(f) >= 3 && f[0] == "/32" && f[1] == "host" && f[2] == "LOCAL" && last != "":
			if !slices.Contains(res[ns], last) {
				res[ns] = append(res[ns], last)
			}
		}
	}
	return res
}
