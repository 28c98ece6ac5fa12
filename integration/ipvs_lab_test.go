package integration_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/integration/lab"
	"github.com/lvsd/lvsd/ipvs"
)

// buildInVMTests builds the test binaries (static) of the module's
// packages named (by directory: "integration", "ipvs") for the VM, in one
// go build, as the files NAME.test.
func buildInVMTests(t *testing.T, pkgs ...string) map[string][]byte {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	args := []string{"test", "-c", "-trimpath", "-o", dir + string(filepath.Separator)}
	for _, p := range pkgs {
		args = append(args, "./"+p)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the in-VM tests: %v: %s", err, b)
	}
	t.Logf("in-VM test binaries built in %v", time.Since(start).Round(time.Millisecond))
	files := map[string][]byte{}
	for _, p := range pkgs {
		b, err := os.ReadFile(filepath.Join(dir, p+".test"))
		if err != nil {
			t.Fatal(err)
		}
		files[p+".test"] = b
	}
	return files
}

// ipvsLabScript builds the NAT topology (for the traffic test), gives dirA
// the VIP and the real servers' gateway, and runs the in-VM IPVS tests in
// dirA; then the ipvs package's kernel tests (each makes a network
// namespace of its own).
const ipvsLabScript = `
topo_nat 2 || exit 10
rs_start rs1 || exit 11
rs_start rs2 || exit 11
ip -n dirA addr add "$LAB_VIP/24" dev eth0 || exit 12
ip -n dirA addr add "$LAB_PRIV_VIP/24" dev eth1 || exit 12
cp /lab/files/integration.test /tmp/integration.test && chmod +x /tmp/integration.test || exit 13
say "running the IPVS tests in dirA"
LVSD_IPVS_INVM=1 LVSD_IPVS_TOPOLOGY=1 LVSD_IPVS_RESULTS=/results /usr/bin/ip netns exec dirA \
	/tmp/integration.test -test.run '^TestIPVSInVM' -test.v -test.count 1 -test.timeout 6m > /results/ipvs-tests.txt 2>&1
rc=$?
echo "$rc" > /results/ipvs-tests.rc
grep -E '^(--- |=== RUN|PASS|FAIL|ok)' /results/ipvs-tests.txt
cp /lab/files/ipvs.test /tmp/ipvs.test && chmod +x /tmp/ipvs.test || exit 14
say "running the ipvs package's kernel tests"
LVSD_IPVS_INVM=1 /tmp/ipvs.test -test.run '^TestKernel' -test.v -test.count 1 -test.timeout 3m > /results/ipvs-kernel-tests.txt 2>&1
echo "$?" > /results/ipvs-kernel-tests.rc
grep -E '^(--- |PASS|FAIL|ok)' /results/ipvs-kernel-tests.txt
cp /lab/files/vrrp.test /tmp/vrrp.test && cp /lab/files/dash /tmp/tp-dash && cp /lab/files/sleep /tmp/tp-sleep &&
	chmod +x /tmp/vrrp.test /tmp/tp-dash /tmp/tp-sleep || exit 15
say "running track_process beside keepalived (the VM's initial namespace: the process connector answers)"
LVSD_TRACKPROC_INVM=1 LVSD_TP_DASH=/tmp/tp-dash LVSD_TP_SLEEP=/tmp/tp-sleep LVSD_BIN="$(command -v lvsd)" \
	/tmp/vrrp.test -test.run '^TestTrackProcessInVM' -test.v -test.count 1 -test.timeout 3m > /results/trackproc-tests.txt 2>&1
echo "$?" > /results/trackproc-tests.rc
grep -E '^(--- |PASS|FAIL|ok)' /results/trackproc-tests.txt
cp /lab/files/monitoring.test /tmp/monitoring.test && chmod +x /tmp/monitoring.test || exit 15
say "running the monitoring test: a real Prometheus scraping two lvsd directors with IPVS"
(cd /lab/files/monitoring && LVSD_INTEGRATION=1 LVSD_IPVS_INVM=1 LVSD_BIN=/usr/sbin/lvsd \
	/tmp/monitoring.test -test.run '^TestPrometheusScrapesDirectors$' -test.v -test.count 1 -test.timeout 3m) > /results/monitoring-tests.txt 2>&1
echo "$?" > /results/monitoring-tests.rc
grep -E '^(--- |PASS|FAIL|ok)' /results/monitoring-tests.txt
exit 0
`

// TestIPVSLab runs, in one boot of the lab VM, the in-VM IPVS tests
// (ipvs_invm_test.go) and the ipvs package's kernel tests (its TestKernel*,
// the netlink layer) on the VM's real kernel, reports each as a subtest,
// and cross-checks every table the in-VM tests dumped through ipvsadm
// against the configuration.
func TestIPVSLab(t *testing.T) {
	im := needLab(t)
	bins := buildInVMTests(t, "integration", "ipvs", "vrrp", "monitoring")
	// The host's dash and sleep (busybox's applets go by their name):
	// copies of them are the tracked processes of the vrrp track_process test.
	for name, path := range map[string]string{"dash": "/bin/dash", "sleep": "/bin/sleep"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		bins[name] = b
	}
	for _, f := range []string{"rules.yml", "dashboard.json"} {
		b, err := os.ReadFile(filepath.Join("..", "monitoring", f))
		if err != nil {
			t.Fatal(err)
		}
		bins["monitoring/"+f] = b
	}
	prometheus, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("the lab's monitoring test needs Debian's prometheus on the host (scripts/deps.sh)")
	}
	res := runLab(t, im, lab.Scenario{
		Name:      "ipvs",
		Script:    ipvsLabScript,
		Files:     bins,
		HostFiles: []string{prometheus},
		Timeout:   10 * time.Minute,
		WithLVSD:  true, // TestIPVSInVMCtl runs lvsd and lvsd ctl
	}, "ipvs-tests.txt", "ipvs-kernel-tests.txt", "trackproc-tests.txt", "monitoring-tests.txt")
	if res.ExitCode != 0 {
		t.Fatalf("scenario exit status %d (10 topology, 11 real servers, 12 addresses, 13, 14 and 15 test binaries)", res.ExitCode)
	}
	reportInVM(t, res, "ipvs-tests", "TestIPVSInVM", "",
		"Schedulers", "Forwarding", "FwmarkPersistence", "Health", "DriftRepair", "Reload", "Globals", "WRRTraffic", "CtlListings", "Ctl", "Strict", "IPVlan", "RestartAdopts", "FlappingRealServer", "HASuspendOverrun", "NotifyFIFO")
	reportInVM(t, res, "ipvs-kernel-tests", "TestKernel", "kernel/",
		"Services", "Destinations", "Errors", "Batch", "Timeouts", "SyncDaemons", "Flush")
	reportInVM(t, res, "trackproc-tests", "TestTrackProcessInVM", "trackproc/", "LikeKeepalived")
	reportInVM(t, res, "monitoring-tests", "TestPrometheusScrapesDirectors", "monitoring", "")

	// ipvsadm's view of every dumped case against the configuration.
	var cases []string
	for f := range res.Files {
		if strings.HasPrefix(f, "ipvs-case-") && strings.HasSuffix(f, ".conf") {
			cases = append(cases, strings.TrimSuffix(strings.TrimPrefix(f, "ipvs-case-"), ".conf"))
		}
	}
	sort.Strings(cases)
	for _, c := range cases {
		if c == "health-final" || c == "reload" {
			continue // health-dependent and hand-edited tables: checked in the VM
		}
		t.Run("ipvsadm/"+c, func(t *testing.T) {
			text := res.File("ipvs-case-" + c + ".conf")
			got := res.File("ipvs-case-" + c + ".ipvsadm.txt")
			// The drift case has a foreign service lvsd must leave alone.
			checkIPVSADM(t, text, got, c == "schedulers", map[string]bool{"TCP 10.1.4.99:25": c == "drift"})
		})
	}
	if len(cases) < 5 {
		t.Errorf("only %d ipvsadm dumps came back: %v", len(cases), cases)
	}
}

// reportInVM reports the tests a test binary ran in the VM (its -test.v
// output in NAME.txt, its exit status in NAME.rc) as subtests named
// sub + the test's name without prefix. A test that skipped, failed or is
// missing from want fails.
func reportInVM(t *testing.T, res *lab.Result, name, prefix, sub string, want ...string) {
	t.Helper()
	out := res.File(name + ".txt")
	results := parseGoTestV(out)
	if len(results) == 0 {
		t.Errorf("%s: no in-VM test ran:\n%s", name, out)
		return
	}
	names := make([]string, 0, len(results))
	for n := range results {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := results[n]
		t.Run(sub+strings.TrimPrefix(n, prefix), func(t *testing.T) {
			switch r.status {
			case "PASS":
				t.Logf("in VM: PASS (%s)", r.dur)
			case "SKIP":
				t.Errorf("in VM: skipped:\n%s", r.log)
			default:
				t.Errorf("in VM: %s:\n%s", r.status, r.log)
			}
		})
	}
	for _, w := range want {
		if _, ok := results[prefix+w]; !ok {
			t.Errorf("in-VM test %s%s did not run", prefix, w)
		}
	}
	if rc := strings.TrimSpace(res.File(name + ".rc")); rc != "0" {
		t.Errorf("%s: in-VM test binary exit status %s", name, rc)
	}
}

type goTestResult struct {
	status string
	dur    string
	log    string
}

var goTestLine = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+) \(([^)]*)\)`)

// parseGoTestV extracts the top-level test results of `go test -v` output,
// each with the lines logged under it.
func parseGoTestV(out string) map[string]goTestResult {
	res := map[string]goTestResult{}
	logs := map[string][]string{}
	cur := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "=== RUN   ") {
			name := strings.TrimPrefix(l, "=== RUN   ")
			if i := strings.IndexByte(name, '/'); i >= 0 {
				name = name[:i]
			}
			cur = name
			continue
		}
		if m := goTestLine.FindStringSubmatch(l); m != nil && !strings.Contains(m[2], "/") {
			r := res[m[2]]
			r.status, r.dur = m[1], m[3]
			res[m[2]] = r
			continue
		}
		if cur != "" {
			logs[cur] = append(logs[cur], l)
		}
	}
	for n, r := range res {
		l := logs[n]
		if len(l) > 150 {
			l = l[len(l)-150:]
		}
		r.log = strings.Join(l, "\n")
		res[n] = r
	}
	return res
}

// checkIPVSADM compares `ipvsadm -Ln` output with the table a configuration
// asks for: services, schedulers, persistence, real servers, forwarding and
// weights. skipMissing tolerates services the kernel could not create
// (the twos scheduler on kernels before 6.3); foreign lists services
// ("TCP 10.1.4.99:25") that must be there although no configuration asks.
func checkIPVSADM(t *testing.T, confText, ipvsadmOut string, skipMissing bool, foreign map[string]bool) {
	t.Helper()
	cfg, diags := conf.Parse("case.conf", confText, conf.Options{ConfigID: "lab"})
	if conf.MaxLevel(diags) >= conf.Error {
		t.Fatalf("config: %v", diags)
	}
	want := ipvs.ComputeDesired(cfg, nil).Table
	svcs, err := lab.ParseIPVS(ipvsadmOut)
	if err != nil {
		t.Fatalf("%v\n%s", err, ipvsadmOut)
	}
	seen := map[string]bool{}
	for _, k := range want.Keys() {
		ws := want[k]
		proto, addr := ipvsadmKey(k)
		s := lab.FindService(svcs, proto, addr)
		if s == nil {
			if skipMissing && ws.Service.Scheduler == "twos" {
				t.Logf("%s %s (twos) absent: the kernel has no twos", proto, addr)
				continue
			}
			t.Errorf("ipvsadm lacks %s %s", proto, addr)
			continue
		}
		seen[proto+" "+addr] = true
		sched, flags := s.Sched, s.Flags
		if k.Fwmark != 0 && k.Family == ipvs.INET6 {
			// "FWM  9 IPv6 wlc ...": the family comes before the scheduler.
			f := strings.Fields(s.Sched + " " + s.Flags)
			if len(f) < 2 || f[0] != "IPv6" {
				t.Errorf("%s %s: want an IPv6 fwmark service, got %q %q", proto, addr, s.Sched, s.Flags)
				continue
			}
			sched, flags = f[1], strings.Join(f[2:], " ")
		}
		if sched != ws.Service.Scheduler {
			t.Errorf("%s %s: scheduler %s, want %s", proto, addr, sched, ws.Service.Scheduler)
		}
		if wf := ipvsadmFlags(ws.Service); flags != wf {
			t.Errorf("%s %s: flags %q, want %q", proto, addr, flags, wf)
		}
		var wantReals []string
		for _, dk := range ws.DestKeys() {
			d := ws.Dests[dk]
			wantReals = append(wantReals, fmt.Sprintf("%s %s %d", ipvsadmAddr(dk.Addr.String(), dk.Port), ipvsadmFwd(d.Fwd), d.Weight))
		}
		var gotReals []string
		for _, r := range s.Reals {
			gotReals = append(gotReals, fmt.Sprintf("%s %s %d", r.Addr, r.Forward, r.Weight))
		}
		sort.Strings(wantReals)
		sort.Strings(gotReals)
		if strings.Join(gotReals, "\n") != strings.Join(wantReals, "\n") {
			t.Errorf("%s %s real servers:\n%s\nwant:\n%s", proto, addr, strings.Join(gotReals, "\n"), strings.Join(wantReals, "\n"))
		}
	}
	for _, s := range svcs {
		if k := s.Proto + " " + s.Addr; !seen[k] && !foreign[k] {
			t.Errorf("ipvsadm lists an unexpected service %s", k)
		}
	}
	for k, want := range foreign {
		if want && lab.FindService(svcs, strings.Fields(k)[0], strings.Fields(k)[1]) == nil {
			t.Errorf("the foreign service %s is gone", k)
		}
	}
}

func ipvsadmAddr(addr string, port uint16) string {
	if strings.Contains(addr, ":") {
		return "[" + addr + "]:" + strconv.Itoa(int(port))
	}
	return addr + ":" + strconv.Itoa(int(port))
}

func ipvsadmKey(k ipvs.ServiceKey) (string, string) {
	if k.Fwmark != 0 {
		return "FWM", strconv.FormatUint(uint64(k.Fwmark), 10)
	}
	return k.Proto.String(), ipvsadmAddr(k.Addr.String(), k.Port)
}

func ipvsadmFwd(f ipvs.Forward) string {
	switch f {
	case ipvs.Masq:
		return "Masq"
	case ipvs.Route:
		return "Route"
	case ipvs.Tunnel:
		return "Tunnel"
	case ipvs.Local:
		return "Local"
	}
	return f.String()
}

// ipvsadmFlags renders the service flags as ipvsadm -Ln prints them after
// the scheduler: the scheduler flags in parentheses ("(flag-1,flag-2)", sh
// and mh by their names), then "persistent T [mask M]", then "ops".
func ipvsadmFlags(s ipvs.Service) string {
	var parts []string
	names := [3]string{"flag-1", "flag-2", "flag-3"}
	switch s.Scheduler {
	case "sh":
		names = [3]string{"sh-fallback", "sh-port", "flag-3"}
	case "mh":
		names = [3]string{"mh-fallback", "mh-port", "flag-3"}
	}
	var sf []string
	for i, f := range []ipvs.Flags{ipvs.FlagSched1, ipvs.FlagSched2, ipvs.FlagSched3} {
		if s.Flags&f != 0 {
			sf = append(sf, names[i])
		}
	}
	if len(sf) > 0 {
		parts = append(parts, "("+strings.Join(sf, ",")+")")
	}
	if s.Flags&ipvs.FlagPersistent != 0 {
		p := "persistent " + strconv.Itoa(int(s.Timeout))
		if s.Family == ipvs.INET6 {
			if s.Netmask != 128 {
				p += " mask " + strconv.Itoa(int(s.Netmask))
			}
		} else if s.Netmask != 0xffffffff {
			m := s.Netmask
			p += fmt.Sprintf(" mask %d.%d.%d.%d", byte(m>>24), byte(m>>16), byte(m>>8), byte(m))
		}
		if s.PEName != "" {
			p += " pe " + s.PEName // the real ipvsadm's "pe sip"
		}
		parts = append(parts, p)
	}
	if s.Flags&ipvs.FlagOnePacket != 0 {
		parts = append(parts, "ops")
	}
	return strings.Join(parts, " ")
}
