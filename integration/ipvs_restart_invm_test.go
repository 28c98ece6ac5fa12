package integration_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
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
	vmKernel(t)
	if os.Getenv("LVSD_IPVS_TOPOLOGY") == "" {
		t.Skip("needs the lab topology (client, dirA, rs1, rs2)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	sock := filepath.Join(dir, "ctl")
	text := fmt.Sprintf(`virtual_server %s 80 {
	protocol TCP
	lvs_sched wrr
	lvs_method NAT
	real_server %s 80 {
		weight 1
	}
	real_server %s 80 {
		weight 3
	}
}
`, lab.VIP, lab.RealServerIP(1), lab.RealServerIP(2))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
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
	if c := serviceConns(t); c < conns+10 {
		t.Errorf("connections counted after 40 more requests: %d, want at least %d", c, conns+10)
	}
}
