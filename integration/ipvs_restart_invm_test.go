package integration_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvsd/lvsd/integration/lab"
)

// serviceConns reads the connection counter of the VIP's service from
// `ipvsadm -Ln --stats --exact` (its "TCP VIP:80  Conns ..." line).
func serviceConns(t *testing.T) int {
	t.Helper()
	for _, l := range strings.Split(ipvsadmOut(t, "-Ln", "--stats", "--exact"), "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "TCP" && f[1] == lab.VIP+":80" {
			n, err := strconv.Atoi(f[2])
			if err != nil {
				t.Fatalf("Conns in %q: %v", l, err)
			}
			return n
		}
	}
	t.Fatalf("no service %s:80 in ipvsadm:\n%s", lab.VIP, ipvsadmOut(t, "-Ln"))
	return 0
}

// ipvsTable is `ipvsadm -Ln` without the connection columns, which
// change as connections close and expire.
func ipvsTable(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, l := range strings.Split(ipvsadmOut(t, "-Ln"), "\n") {
		if f := strings.Fields(l); len(f) == 6 && f[0] == "->" {
			l = strings.Join(f[:4], " ")
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

var programmedRE = regexp.MustCompile(`msg="ipvs: table programmed".* mutations=(\d+) errors=(\d+) adopted=(\d+)`)

// TestIPVSInVMRestartAdopts: lvsd in dirA programs a NAT service on the
// real kernel and serves traffic; it is killed with SIGKILL (no cleanup)
// and started again. The restarted lvsd adopts the table it finds: no
// mutation at all, the same `ipvsadm -Ln`, the service's kernel counters
// kept (a flush and re-creation would zero them), the connection entries
// still listed, and the VIP serves at once.
func TestIPVSInVMRestartAdopts(t *testing.T) {
	conf, sock, _ := natWRRSetup(t)
	programmed := func(d *vmLvsd) []string {
		t.Helper()
		var m []string
		for deadline := time.Now().Add(30 * time.Second); m == nil; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("lvsd did not program the table:\n%s", d.logs.String())
			}
			m = programmedRE.FindStringSubmatch(d.logs.String())
		}
		return m
	}
	first := startVMLvsd(t, conf, sock)
	if m := programmed(first); m[1] == "0" {
		t.Fatalf("the first start made no mutation on an empty table: %v", m)
	}
	if rep := clientGet(t, 40); rep.Failed != 0 || rep.Answers["rs1"] == 0 || rep.Answers["rs2"] == 0 {
		t.Fatalf("before the kill: %+v", rep)
	}
	time.Sleep(3 * time.Second) // the kernel sums its per-CPU counters every 2 s
	table, conns := ipvsTable(t), serviceConns(t)
	entries := ipvsadmOut(t, "-Lnc")
	if conns < 10 || strings.Count(entries, lab.VIP+":80") == 0 { // 40 requests, some on one connection
		t.Fatalf("before the kill: %d connections counted, entries:\n%s", conns, entries)
	}

	first.kill9()
	if got := ipvsTable(t); got != table {
		t.Fatalf("the kill changed the table:\n%s\nwas:\n%s", got, table)
	}
	second := startVMLvsd(t, conf, sock)
	m := programmed(second)
	t.Logf("restarted: mutations=%s errors=%s adopted=%s", m[1], m[2], m[3])
	if m[1] != "0" || m[2] != "0" || m[3] != "1" { // adopted: the services lvsd owns
		t.Errorf("the restart did not adopt the table as it was: mutations=%s errors=%s adopted=%s (want 0 0 1)", m[1], m[2], m[3])
	}
	if got := ipvsTable(t); got != table {
		t.Errorf("the table after the restart:\n%s\nwas:\n%s", got, table)
	}
	if c := serviceConns(t); c < conns {
		t.Errorf("the service's connection counter went from %d to %d: the service was re-created", conns, c)
	}
	if after := ipvsadmOut(t, "-Lnc"); strings.Count(after, lab.VIP+":80") == 0 {
		t.Errorf("the connection entries are gone after the restart:\n%s", after)
	}
	if rep := clientGet(t, 40); rep.Failed != 0 || rep.Answers["rs1"] == 0 || rep.Answers["rs2"] == 0 {
		t.Errorf("after the restart: %+v", rep)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		c := serviceConns(t)
		if c > conns {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("connections counted after 40 more requests: %d, want more than %d", c, conns)
			break
		}
	}
}

// rsInTable reports whether `ipvsadm -Ln` lists the real server.
func rsInTable(t *testing.T, rs string) bool {
	t.Helper()
	return listsRS(ipvsadmOut(t, "-Ln"), rs)
}

// listsRS reports whether an `ipvsadm -Ln` listing has the real server.
func listsRS(listing, rs string) bool {
	for _, l := range strings.Split(listing, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "->" && f[1] == rs {
			return true
		}
	}
	return false
}

// TestIPVSInVMFlappingRealServer: lvsd in dirA, a NAT service of rs1 and
// rs2; rs1's MISC_CHECK (delay_loop 1) flips every second for 12 s. The
// kernel table follows: rs1 leaves and comes back several times, rs2
// never leaves, no IPVS operation fails, and 100 requests through the VIP
// made during the flapping are all answered. Once rs1 is steady, it is in
// the table within 3 s and stays.
func TestIPVSInVMFlappingRealServer(t *testing.T) {
	vmKernel(t)
	if os.Getenv("LVSD_IPVS_TOPOLOGY") == "" {
		t.Skip("needs the lab topology (client, dirA, rs1, rs2)")
	}
	dir := t.TempDir()
	flag, check := filepath.Join(dir, "rs1-up"), filepath.Join(dir, "check")
	if err := os.WriteFile(check, []byte("#!/bin/sh\nexec test -e "+flag+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rs1, rs2 := lab.RealServerIP(1)+":80", lab.RealServerIP(2)+":80"
	conf := filepath.Join(dir, "keepalived.conf")
	text := fmt.Sprintf(`virtual_server %s 80 {
	delay_loop 1
	protocol TCP
	lvs_sched rr
	lvs_method NAT
	real_server %s 80 {
		MISC_CHECK {
			misc_path %s
			misc_timeout 1
		}
	}
	real_server %s 80 {
	}
}
`, lab.VIP, lab.RealServerIP(1), check, lab.RealServerIP(2))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	startVMLvsd(t, conf, filepath.Join(dir, "ctl"))
	for deadline := time.Now().Add(30 * time.Second); !rsInTable(t, rs1) || !rsInTable(t, rs2); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the table was not programmed:\n%s", ipvsadmOut(t, "-Ln"))
		}
	}

	type result struct {
		rep lab.ClientReport
		err error
	}
	traffic := make(chan result, 1)
	go func() { // 5 s a request: the VM is emulated on a shared host
		rep, err := clientGetWithin(100, "5s")
		traffic <- result{rep, err}
	}()
	changes, present := 0, true
	rs2Missing := 0
	stop := time.Now().Add(12 * time.Second)
	nextFlip := time.Now().Add(time.Second)
	up := true
	for time.Now().Before(stop) {
		if time.Now().After(nextFlip) {
			up = !up
			if up {
				os.WriteFile(flag, nil, 0o644)
			} else {
				os.Remove(flag)
			}
			nextFlip = nextFlip.Add(time.Second)
		}
		tbl := ipvsadmOut(t, "-Ln")
		if in := listsRS(tbl, rs1); in != present {
			present = in
			changes++
		}
		if !listsRS(tbl, rs2) {
			rs2Missing++
		}
		time.Sleep(100 * time.Millisecond)
	}
	os.WriteFile(flag, nil, 0o644)
	res := <-traffic
	if res.err != nil {
		t.Fatal(res.err)
	}
	rep := res.rep
	t.Logf("12 s of flapping: rs1 left or came back %d times; 100 requests: %+v", changes, rep)
	if changes < 4 {
		t.Errorf("rs1 left or came back only %d times in 12 s of a check flipping every second", changes)
	}
	if rs2Missing > 0 {
		t.Errorf("rs2, which never failed, was missing from the table in %d samples", rs2Missing)
	}
	if rep.Failed != 0 || rep.Requests != 100 {
		t.Errorf("requests through the VIP during the flapping: %+v", rep)
	}
	for deadline := time.Now().Add(3 * time.Second); !rsInTable(t, rs1); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("rs1, steady up, not back in the table after 3 s:\n%s", ipvsadmOut(t, "-Ln"))
		}
	}
	for range 20 {
		if !rsInTable(t, rs1) {
			t.Fatalf("rs1, steady up, left the table:\n%s", ipvsadmOut(t, "-Ln"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	m := metricsText(t, "http://127.0.0.1:9166/metrics")
	for _, l := range strings.Split(m, "\n") {
		if strings.HasPrefix(l, "lvsd_ipvs_errors_total") && !strings.HasSuffix(l, " 0") {
			t.Errorf("IPVS errors during the flapping: %s", l)
		}
	}
}

// metricSum adds up the samples of a metric (any labels) on lvsd's
// /metrics at 127.0.0.1:9166.
func metricSum(t *testing.T, name string) float64 {
	t.Helper()
	sum := 0.0
	for _, l := range strings.Split(metricsText(t, "http://127.0.0.1:9166/metrics"), "\n") {
		if rest, ok := strings.CutPrefix(l, name); ok && (strings.HasPrefix(rest, "{") || strings.HasPrefix(rest, " ")) {
			f := strings.Fields(rest)
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
				sum += v
			}
		}
	}
	return sum
}

// TestIPVSInVMHASuspendOverrun: lvsd in dirA with an ha_suspend virtual
// server whose address is not on the director, so its check is suspended.
// lvsd is stopped (SIGSTOP) while 2,000 addresses are added to and
// removed from another interface and the virtual server's address is
// added, then resumed: ha_suspend's address watch overran and resynced
// (lvsd_netlink_resyncs_total{watch="localaddr"}), and the check runs
// within 5 s (delay_loop 1; the VM is emulated). The address removed again: the check is suspended again.
func TestIPVSInVMHASuspendOverrun(t *testing.T) {
	vmKernel(t)
	if os.Getenv("LVSD_IPVS_TOPOLOGY") == "" {
		t.Skip("needs the lab topology (client, dirA, rs1, rs2)")
	}
	const vsAddr = "192.0.2.150"
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	text := fmt.Sprintf(`virtual_server %s 80 {
	delay_loop 1
	ha_suspend
	protocol TCP
	lvs_method NAT
	real_server %s 80 {
		TCP_CHECK {
			connect_timeout 1
		}
	}
}
`, vsAddr, lab.RealServerIP(1))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ip := func(stdin string, args ...string) {
		t.Helper()
		cmd := exec.Command("ip", args...)
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	d := startVMLvsd(t, conf, filepath.Join(dir, "ctl"))
	t.Cleanup(func() { exec.Command("ip", "addr", "del", vsAddr+"/32", "dev", "eth0").Run() })
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(d.logs.String(), "table programmed"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("lvsd did not program the table:\n%s", d.logs.String())
		}
	}
	const checks, resyncs = "lvsd_healthcheck_checks_total", `lvsd_netlink_resyncs_total{watch="localaddr"}`
	time.Sleep(3 * time.Second)
	if n := metricSum(t, checks); n != 0 {
		t.Fatalf("%v checks ran while the virtual server's address is absent (ha_suspend)", n)
	}

	ip("", "link", "add", "st0", "type", "veth", "peer", "name", "st1")
	t.Cleanup(func() { exec.Command("ip", "link", "del", "st0").Run() })
	d.cmd.Process.Signal(syscall.SIGSTOP)
	var b strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&b, "addr add 10.%d.%d.%d/32 dev st0\n", 64+i/62500, (i/250)%250, 1+i%250)
	}
	ip(b.String(), "-batch", "-")
	ip("", "addr", "flush", "dev", "st0")
	ip("", "addr", "add", vsAddr+"/32", "dev", "eth0")
	d.cmd.Process.Signal(syscall.SIGCONT)
	resumed := time.Now()
	for deadline := resumed.Add(5 * time.Second); metricSum(t, checks) == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no check ran within 5 s of lvsd resuming with the virtual server's address present (%s %v)", resyncs, metricSum(t, resyncs))
		}
	}
	t.Logf("the check ran %v after lvsd resumed; %s %v", time.Since(resumed).Round(time.Millisecond), resyncs, metricSum(t, resyncs))
	if n := metricSum(t, resyncs); n < 1 {
		t.Errorf("%s = %v: the 2,000 changes while stopped did not overrun the watch (the test proves nothing)", resyncs, n)
	}

	ip("", "addr", "del", vsAddr+"/32", "dev", "eth0")
	time.Sleep(2 * time.Second) // a check in flight ends
	before := metricSum(t, checks)
	time.Sleep(3 * time.Second)
	if after := metricSum(t, checks); after != before {
		t.Errorf("checks went on after the address left: %v, then %v", before, after)
	}
}
