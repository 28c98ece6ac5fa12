package integration_test

// IPVS programming benchmark on the lab VM's real kernel: 1,000 virtual
// servers × 10 real servers programmed at start by lvsd, by keepalived and
// by `ipvsadm -R`, and by the ipvs.Reconciler in-process; then a reload
// changing one real server's weight. TestIPVSBenchLab (host, needs
// LVSD_INTEGRATION=1 and LVSD_LAB_BENCH=1) runs TestIPVSInVMBench inside
// the VM and reports its numbers.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvsd/lvsd/integration/lab"
	"github.com/lvsd/lvsd/ipvs"
)

const (
	benchVS = 1000
	benchRS = 10
)

// benchAddrs returns the address of virtual server i and of its real server j.
func benchVSAddr(i int) string { return fmt.Sprintf("10.100.%d.%d", i/250, i%250+1) }
func benchRSAddr(i, j int) string {
	n := i*benchRS + j
	return fmt.Sprintf("10.200.%d.%d", n/250, n%250+1)
}

// benchConfig is the keepalived.conf of the benchmark; weight of real
// server 0 of virtual server 0 is w0 (the reload changes it).
func benchConfig(w0 int) string {
	var b strings.Builder
	b.WriteString("global_defs {\n\trouter_id bench\n}\n")
	for i := 0; i < benchVS; i++ {
		fmt.Fprintf(&b, "virtual_server %s 80 {\n\tprotocol TCP\n\tlvs_sched wrr\n\tlvs_method NAT\n", benchVSAddr(i))
		for j := 0; j < benchRS; j++ {
			w := j + 1
			if i == 0 && j == 0 {
				w = w0
			}
			fmt.Fprintf(&b, "\treal_server %s 80 {\n\t\tweight %d\n\t}\n", benchRSAddr(i, j), w)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// benchRules is the same table as `ipvsadm -R` input.
func benchRules() string {
	var b strings.Builder
	for i := 0; i < benchVS; i++ {
		fmt.Fprintf(&b, "-A -t %s:80 -s wrr\n", benchVSAddr(i))
		for j := 0; j < benchRS; j++ {
			fmt.Fprintf(&b, "-a -t %s:80 -r %s:80 -m -w %d\n", benchVSAddr(i), benchRSAddr(i, j), j+1)
		}
	}
	return b.String()
}

// procTable counts services and destinations of /proc/net/ip_vs and
// returns the weight of the first destination of virtual server 0
// (-1 when absent).
func procTable() (svcs, dests, w0 int, err error) {
	f, err := os.Open("/proc/net/ip_vs")
	if err != nil {
		return 0, 0, -1, err
	}
	defer f.Close()
	vs0 := hexAddrPort(benchVSAddr(0), 80)
	rs0 := hexAddrPort(benchRSAddr(0, 0), 80)
	w0 = -1
	in0 := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		fl := strings.Fields(l)
		switch {
		case len(fl) >= 3 && (fl[0] == "TCP" || fl[0] == "UDP" || fl[0] == "FWM" || fl[0] == "SCTP"):
			svcs++
			in0 = fl[1] == vs0
		case len(fl) >= 4 && fl[0] == "->" && fl[1] != "RemoteAddress:Port":
			dests++
			if in0 && fl[1] == rs0 {
				w0, _ = strconv.Atoi(fl[3])
			}
		}
	}
	return svcs, dests, w0, sc.Err()
}

func hexAddrPort(addr string, port int) string {
	var a [4]int
	fmt.Sscanf(addr, "%d.%d.%d.%d", &a[0], &a[1], &a[2], &a[3])
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", a[0], a[1], a[2], a[3], port)
}

// waitTable polls /proc/net/ip_vs every 10 ms until cond holds.
func waitTable(t *testing.T, limit time.Duration, what string, cond func(s, d, w0 int) bool) (time.Duration, bool) {
	start := time.Now()
	for {
		s, d, w0, err := procTable()
		if err == nil && cond(s, d, w0) {
			return time.Since(start), true
		}
		if time.Since(start) > limit {
			t.Errorf("%s: not reached in %v (services %d, destinations %d, w0 %d, err %v)", what, limit, s, d, w0, err)
			return time.Since(start), false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchResult is one tool's numbers (milliseconds).
type BenchResult struct {
	Tool      string  `json:"tool"`
	StartMS   float64 `json:"start_ms"`            // process start (or call) until the full table is in the kernel
	ReloadMS  float64 `json:"reload_ms"`           // reload signal (or call) until the changed weight is in the kernel
	StopMS    float64 `json:"stop_ms,omitempty"`   // SIGTERM until the table is empty (daemons)
	Mutations int64   `json:"mutations,omitempty"` // kernel mutations of the reload (in-process only)
	Note      string  `json:"note,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// benchDaemon runs keepalived or lvsd on the benchmark configuration.
func benchDaemon(t *testing.T, k ipvs.Kernel, tool string, dir string) BenchResult {
	res := BenchResult{Tool: tool}
	confPath := filepath.Join(dir, tool+".conf")
	if err := os.WriteFile(confPath, []byte(benchConfig(1)), 0o644); err != nil {
		t.Fatal(err)
	}
	k.Flush()
	var cmd *exec.Cmd
	logf, _ := os.Create(filepath.Join(inVMResults(), "ipvs-bench-"+tool+".log"))
	defer logf.Close()
	switch tool {
	case "keepalived":
		cmd = exec.Command("keepalived", "-n", "-l", "-C", "-f", confPath, "-p", filepath.Join(dir, "k.pid"),
			"-c", filepath.Join(dir, "kc.pid"), "-r", filepath.Join(dir, "kv.pid"))
	case "lvsd":
		cmd = exec.Command("lvsd", "-n", "-l", "-C", "-f", confPath, "-p", filepath.Join(dir, "l.pid"), "--metrics-listen=")
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Errorf("%s: %v", tool, err)
		return res
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	waitTable(t, 5*time.Minute, tool+" start", func(s, d, _ int) bool { return s == benchVS && d == benchVS*benchRS })
	res.StartMS = ms(time.Since(start))

	time.Sleep(2 * time.Second) // let it settle (checkers, first repair pass)
	if err := os.WriteFile(confPath, []byte(benchConfig(77)), 0o644); err != nil {
		t.Fatal(err)
	}
	// keepalived reloads the checker child on SIGHUP to the parent; lvsd is one process.
	start = time.Now()
	cmd.Process.Signal(syscall.SIGHUP)
	waitTable(t, 5*time.Minute, tool+" reload", func(_, _, w0 int) bool { return w0 == 77 })
	res.ReloadMS = ms(time.Since(start))
	if _, d, _, _ := procTable(); d != benchVS*benchRS {
		t.Errorf("%s: %d destinations after the reload", tool, d)
	}

	time.Sleep(time.Second)
	start = time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		t.Errorf("%s did not exit in 5 minutes after SIGTERM", tool)
	}
	res.StopMS = ms(time.Since(start))
	if s, d, _, _ := procTable(); s != 0 || d != 0 {
		// keepalived removes destinations one by one; its parent kills the
		// checker process when that takes too long.
		res.Note = fmt.Sprintf("exited leaving %d services and %d destinations", s, d)
		if tool == "lvsd" {
			t.Errorf("lvsd: %s", res.Note)
		}
	}
	return res
}

// TestIPVSInVMBench runs the benchmark (inside the VM, with
// LVSD_IPVS_BENCH=1) and writes /results/ipvs-bench.json.
func TestIPVSInVMBench(t *testing.T) {
	if os.Getenv("LVSD_IPVS_BENCH") == "" {
		t.Skip("the IPVS benchmark runs inside the lab VM (TestIPVSBenchLab)")
	}
	k := vmKernel(t)
	dir := t.TempDir()
	var results []BenchResult

	// ipvsadm -R.
	rules := filepath.Join(dir, "rules")
	os.WriteFile(rules, []byte(benchRules()), 0o644)
	k.Flush()
	in, _ := os.Open(rules)
	start := time.Now()
	cmd := exec.Command("ipvsadm", "-R")
	cmd.Stdin = in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("ipvsadm -R: %v: %s", err, out)
	}
	r := BenchResult{Tool: "ipvsadm -R", StartMS: ms(time.Since(start))}
	in.Close()
	waitTable(t, time.Minute, "ipvsadm -R", func(s, d, _ int) bool { return s == benchVS && d == benchVS*benchRS })
	start = time.Now()
	if out, err := exec.Command("ipvsadm", "-e", "-t", benchVSAddr(0)+":80", "-r", benchRSAddr(0, 0)+":80", "-m", "-w", "77").CombinedOutput(); err != nil {
		t.Errorf("ipvsadm -e: %v: %s", err, out)
	}
	r.ReloadMS = ms(time.Since(start))
	r.Note = "reload = one ipvsadm -e (a human knowing the one change); a full re-apply is ipvsadm -C + -R"
	results = append(results, r)

	// The reconciler in-process (no process start, no configuration parse).
	k.Flush()
	start = time.Now()
	cfg := vmParse(t, benchConfig(1))
	results = append(results, BenchResult{Tool: "conf.Parse (1,000 VS)", StartMS: ms(time.Since(start))})
	start = time.Now()
	rec := ipvs.New(cfg, k, ipvs.Options{Logger: quietVMLogger(), RepairInterval: -1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	<-rec.Ready()
	r = BenchResult{Tool: "ipvs.Reconciler (in-process)", StartMS: ms(time.Since(start))}
	waitTable(t, time.Minute, "reconciler", func(s, d, _ int) bool { return s == benchVS && d == benchVS*benchRS })
	c0 := rec.Counters()
	start = time.Now()
	cfg2 := vmParse(t, benchConfig(77))
	parse := time.Since(start)
	rec.Apply(cfg2)
	waitTable(t, time.Minute, "reconciler reload", func(_, _, w0 int) bool { return w0 == 77 })
	r.ReloadMS = ms(time.Since(start))
	s := rec.Snapshot()
	r.Mutations = int64(s.Counters.Mutations() - c0.Mutations())
	if r.Mutations != 1 {
		t.Errorf("in-process reload: %d mutations, want 1", r.Mutations)
	}
	r.Note = fmt.Sprintf("start excludes, reload includes parsing the configuration (%.0f ms)", ms(parse))
	start = time.Now()
	cancel()
	<-done
	r.StopMS = ms(time.Since(start))
	results = append(results, r)

	// The daemons.
	for _, tool := range []string{"lvsd", "keepalived"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Errorf("%s not in the VM: %v", tool, err)
			continue
		}
		results = append(results, benchDaemon(t, k, tool, dir))
	}
	b, _ := json.MarshalIndent(results, "", "  ")
	os.WriteFile(filepath.Join(inVMResults(), "ipvs-bench.json"), b, 0o644)
	for _, r := range results {
		t.Logf("%-30s start %9.1f ms  reload %8.1f ms  stop %8.1f ms  %s", r.Tool, r.StartMS, r.ReloadMS, r.StopMS, r.Note)
	}
}

func quietVMLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestIPVSBenchLab runs TestIPVSInVMBench in the lab VM and reports its
// numbers. Long: it needs LVSD_LAB_BENCH=1 on top of LVSD_INTEGRATION=1.
func TestIPVSBenchLab(t *testing.T) {
	if os.Getenv("LVSD_LAB_BENCH") == "" {
		t.Skip("set LVSD_LAB_BENCH=1 (with LVSD_INTEGRATION=1) to run the IPVS benchmark in the lab VM")
	}
	im := needLab(t)
	bin := buildInVMTests(t)
	res := runLab(t, im, lab.Scenario{
		Name: "ipvs-bench",
		Script: `
cp /lab/files/integration.test /tmp/integration.test && chmod +x /tmp/integration.test || exit 13
ip netns add bench && ip -n bench link set lo up || exit 10
LVSD_IPVS_INVM=1 LVSD_IPVS_BENCH=1 LVSD_IPVS_RESULTS=/results /usr/bin/ip netns exec bench \
	/tmp/integration.test -test.run '^TestIPVSInVMBench$' -test.v -test.count 1 -test.timeout 20m > /results/ipvs-bench.txt 2>&1
echo $? > /results/ipvs-bench.rc
grep -E '^(--- |PASS|FAIL)|start .* ms' /results/ipvs-bench.txt
exit 0
`,
		Files:    map[string][]byte{"integration.test": bin},
		Timeout:  25 * time.Minute,
		WithLVSD: true,
		MemoryMB: 2048,
	}, "ipvs-bench.txt", "ipvs-bench-lvsd.log", "ipvs-bench-keepalived.log")
	if rc := strings.TrimSpace(res.File("ipvs-bench.rc")); rc != "0" {
		t.Errorf("in-VM benchmark exit status %q:\n%s", rc, tail(res.File("ipvs-bench.txt"), 60))
	}
	var results []BenchResult
	if err := json.Unmarshal(res.Files["ipvs-bench.json"], &results); err != nil {
		t.Fatalf("ipvs-bench.json: %v", err)
	}
	t.Logf("IPVS programming, %d virtual servers × %d real servers, kernel %s, accel %s:", benchVS, benchRS, im.KernelVersion, res.Accel)
	for _, r := range results {
		t.Logf("  %-30s start %9.1f ms  reload(1 weight) %8.1f ms  stop %8.1f ms  %s", r.Tool, r.StartMS, r.ReloadMS, r.StopMS, r.Note)
	}
}
