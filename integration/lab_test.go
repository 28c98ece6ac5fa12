// Package integration holds the real-kernel scenarios of lvsd: each test
// boots the lab VM (see integration/lab) and asserts on what the scenario
// observed inside it. They run only with LVSD_INTEGRATION=1; then every
// missing prerequisite is a failure, not a skip.
package integration_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvsd/lvsd/integration/lab"
)

var (
	imgOnce sync.Once
	img     *lab.Image
	imgErr  error
	imgLog  []string
)

// needLab skips the test unless LVSD_INTEGRATION is set, and otherwise
// returns the (cached) lab image or fails the test.
func needLab(t *testing.T) *lab.Image {
	t.Helper()
	if os.Getenv(lab.EnvIntegration) == "" {
		t.Skipf("real-kernel lab: set %s=1 to boot the QEMU VM", lab.EnvIntegration)
	}
	first := false
	imgOnce.Do(func() {
		first = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		img, imgErr = lab.Build(ctx, lab.BuildOptions{Logf: func(f string, a ...any) {
			imgLog = append(imgLog, fmt.Sprintf(f, a...))
		}})
	})
	if first {
		for _, l := range imgLog {
			t.Log(l)
		}
	}
	if imgErr != nil {
		t.Fatalf("lab image: %v", imgErr)
	}
	if first {
		t.Logf("lab image: kernel %s, accel %s, build %v (base cached: %v)", img.KernelVersion, img.Accel, img.BuildTime.Round(time.Millisecond), img.Cached)
	}
	return img
}

// runLab runs a scenario, logging timings, and on a failed test the tail
// of the console and the named result files.
func runLab(t *testing.T, im *lab.Image, sc lab.Scenario, debugFiles ...string) *lab.Result {
	t.Helper()
	if sc.Timeout == 0 {
		sc.Timeout = 4 * time.Minute
	}
	sc.Logf = t.Logf
	res, err := im.Run(context.Background(), sc)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		lines := strings.Split(res.Console, "\n")
		if len(lines) > 80 {
			lines = lines[len(lines)-80:]
		}
		t.Logf("console (last %d lines):\n%s", len(lines), strings.Join(lines, "\n"))
		for _, f := range debugFiles {
			t.Logf("--- %s:\n%s", f, tail(res.File(f), 40))
		}
	})
	if err != nil {
		t.Fatalf("lab run: %v", err)
	}
	t.Logf("%s: %s boot %v, scenario %v, total %v", sc.Name, res.Accel, res.Boot.Round(time.Millisecond),
		res.Scenario.Round(time.Millisecond), res.Total.Round(time.Millisecond))
	return res
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// TestLabBoot proves the lab itself: the kernel modules load, ipvsadm
// programs IPVS, the tools run, input files arrive, result files and the
// exit status come back.
func TestLabBoot(t *testing.T) {
	im := needLab(t)
	res := runLab(t, im, lab.Scenario{
		Name:  "boot",
		Files: map[string][]byte{"hello.txt": []byte("hello lab\n")},
		Script: `
lsmod | cut -d' ' -f1 > /results/lsmod.txt
ipvsadm -A -t 192.0.2.1:80 -s wlc && ipvsadm -a -t 192.0.2.1:80 -r 198.51.100.71:80 -m -w 3
ipvsadm -Ln > /results/ipvsadm.txt 2>&1
keepalived --version > /results/keepalived.txt 2>&1
tcpdump --version > /results/tcpdump.txt 2>&1
ip -V > /results/ip.txt 2>&1
[ -x /usr/sbin/lvsd ] && echo present > /results/lvsd.txt
cp /lab/files/hello.txt /results/
exit 3
`}, "ipvsadm.txt")
	if res.ExitCode != 3 {
		t.Errorf("exit status %d, want 3 (propagated from the scenario)", res.ExitCode)
	}
	mods := " " + strings.Join(strings.Fields(res.File("lsmod.txt")), " ") + " "
	for _, m := range []string{"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_lc", "ip_vs_wlc", "ip_vs_sh", "ip_vs_dh", "ip_vs_mh", "ip_vs_sed", "ip_vs_nq", "ip_vs_fo", "ip_vs_ovf", "ip_vs_lblc", "ip_vs_lblcr", "veth", "bridge", "nf_conntrack", "nf_defrag_ipv4", "ipip"} {
		if !strings.Contains(mods, " "+m+" ") {
			t.Errorf("module %s not loaded (lsmod: %s)", m, mods)
		}
	}
	svcs, err := lab.ParseIPVS(res.File("ipvsadm.txt"))
	if err != nil {
		t.Fatal(err)
	}
	s := lab.FindService(svcs, "TCP", "192.0.2.1:80")
	if s == nil || s.Sched != "wlc" || s.Real("198.51.100.71:80") == nil || s.Real("198.51.100.71:80").Weight != 3 || s.Real("198.51.100.71:80").Forward != "Masq" {
		t.Errorf("ipvsadm -Ln does not show the programmed service: %q", res.File("ipvsadm.txt"))
	}
	for f, want := range map[string]string{"keepalived.txt": "Keepalived v", "tcpdump.txt": "tcpdump version", "ip.txt": "iproute2", "hello.txt": "hello lab"} {
		if !strings.Contains(res.File(f), want) {
			t.Errorf("%s: %q lacks %q", f, res.File(f), want)
		}
	}
	if (im.LVSD != nil) != (res.File("lvsd.txt") != "") {
		t.Errorf("lvsd binary built: %v, in the VM: %v", im.LVSD != nil, res.File("lvsd.txt") != "")
	}
}
