package integration_test

// IPVS programming benchmark on the lab VM's real kernel: 1,000 virtual
// servers × 10 real servers programmed at start by lvsd, by keepalived and
// by `ipvsadm -R`, and by the ipvs.Reconciler in-process; then a reload
// changing one real server's weight. TestIPVSBenchLab (host, needs
// LVSD_INTEGRATION=1 and LVSD_LAB_BENCH=1) runs TestIPVSBenchInVM inside
// the VM and reports its numbers.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
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

// waitDest polls, every 20 ms and cheaply (one netlink dump of one
// service), until destination rs of virtual server vs has weight w (any
// weight when w < 0). Every tool adds the destinations of a service after
// it and the last virtual server's last destination last, so that one
// showing up means the table is complete (waitFull then checks it all).
func waitDest(t *testing.T, k ipvs.Reader, limit time.Duration, what string, vs, rs int, w int) bool {
	sk := ipvs.ServiceKey{Family: ipvs.INET, Proto: ipvs.TCP, Addr: netip.MustParseAddr(benchVSAddr(vs)), Port: 80}
	want := netip.MustParseAddr(benchRSAddr(vs, rs))
	start := time.Now()
	for {
		dests, _ := k.Destinations(sk)
		for _, d := range dests {
			if d.Addr == want && (w < 0 || d.Weight == w) {
				return true
			}
		}
		if time.Since(start) > limit {
			t.Errorf("%s: not reached in %v", what, limit)
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFull waits for the last destination, then checks the whole table.
func waitFull(t *testing.T, k ipvs.Reader, what string) {
	if waitDest(t, k, 5*time.Minute, what, benchVS-1, benchRS-1, -1) {
		waitTable(t, 30*time.Second, what+" (complete)", func(s, d, _ int) bool { return s == benchVS && d == benchVS*benchRS })
	}
}

// BenchResult is one tool's numbers (milliseconds).
type BenchResult struct {
	Tool      string  `json:"tool"`
	StartMS   float64 `json:"start_ms"`            // process start (or call) until the full table is in the kernel
	ReloadMS  float64 `json:"reload_ms"`           // reload signal (or call) until the changed weight is in the kernel
	StopMS    float64 `json:"stop_ms,omitempty"`   // SIGTERM until the table is empty (daemons)
	Mutations int64   `json:"mutations,omitempty"` // kernel mutations of the reload (in-process only)
	// ReloadApplyMS is the reload without parsing: from the parsed
	// configuration (in-process: Apply; lvsd: its "configuration reloaded"
	// log line) until the change is in the kernel.
	ReloadApplyMS float64 `json:"reload_apply_ms,omitempty"`
	CPUMS         float64 `json:"cpu_ms"` // CPU time (user+system) of the whole run
	Note          string  `json:"note,omitempty"`
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
	procStart := start
	if err := cmd.Start(); err != nil {
		t.Errorf("%s: %v", tool, err)
		return res
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	waitDest(t, k, 5*time.Minute, tool+" start", benchVS-1, benchRS-1, -1)
	res.StartMS = ms(time.Since(start))
	waitFull(t, k, tool+" start")

	time.Sleep(2 * time.Second) // let it settle (checkers, first repair pass)
	if err := os.WriteFile(confPath, []byte(benchConfig(77)), 0o644); err != nil {
		t.Fatal(err)
	}
	// keepalived reloads the checker child on SIGHUP to the parent; lvsd is one process.
	start = time.Now()
	cmd.Process.Signal(syscall.SIGHUP)
	waitDest(t, k, 5*time.Minute, tool+" reload", 0, 0, 77)
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
	if ps := cmd.ProcessState; ps != nil {
		res.CPUMS = ms(ps.UserTime() + ps.SystemTime()) // with its waited-for children
	}
	if tool == "lvsd" {
		if at, ok := loggedAt(logf.Name(), `msg="ipvs: table programmed"`); ok {
			res.Note = fmt.Sprintf("its log says the table was programmed at +%.0f ms", ms(at.Sub(procStart)))
		}
		// From the parsed configuration to the kernel's acknowledgement:
		// the reconciler's own measure.
		if d, ok := loggedDuration(logf.Name(), `msg="ipvs: configuration applied"`, "took"); ok {
			res.ReloadApplyMS = ms(d)
		}
	}
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

// benchIPVSADM programs the table with ipvsadm -R; its "reload" is one
// ipvsadm -e (an operator knowing the one change).
func benchIPVSADM(t *testing.T, k ipvs.Kernel, dir string) BenchResult {
	rules := filepath.Join(dir, "rules")
	os.WriteFile(rules, []byte(benchRules()), 0o644)
	k.Flush()
	in, _ := os.Open(rules)
	defer in.Close()
	start := time.Now()
	cmd := exec.Command("ipvsadm", "-R")
	cmd.Stdin = in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("ipvsadm -R: %v: %s", err, out)
	}
	r := BenchResult{Tool: "ipvsadm -R", StartMS: ms(time.Since(start))}
	if ps := cmd.ProcessState; ps != nil {
		r.CPUMS = ms(ps.UserTime() + ps.SystemTime())
	}
	waitFull(t, k, "ipvsadm -R")
	start = time.Now()
	if out, err := exec.Command("ipvsadm", "-e", "-t", benchVSAddr(0)+":80", "-r", benchRSAddr(0, 0)+":80", "-m", "-w", "77").CombinedOutput(); err != nil {
		t.Errorf("ipvsadm -e: %v: %s", err, out)
	}
	r.ReloadMS = ms(time.Since(start))
	start = time.Now()
	k.Flush()
	r.StopMS = ms(time.Since(start))
	r.Note = "reload: one ipvsadm -e; stop: ipvsadm -C"
	return r
}

// benchInProcess runs the ipvs.Reconciler in this process: start excludes
// parsing the configuration, the reload includes it.
func benchInProcess(t *testing.T, k ipvs.Kernel) BenchResult {
	k.Flush()
	cfg := vmParse(t, benchConfig(1))
	cpu0 := selfCPU()
	start := time.Now()
	rec := ipvs.New(cfg, k, ipvs.Options{Logger: quietVMLogger(), RepairInterval: -1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	<-rec.Ready()
	r := BenchResult{Tool: "ipvs.Reconciler in-process", StartMS: ms(time.Since(start))}
	waitFull(t, k, "reconciler")
	c0 := rec.Counters()
	start = time.Now()
	next := vmParse(t, benchConfig(77))
	// The reload is applied when the mutation is counted: the reconciler
	// counts it once the kernel acknowledged it.
	applyAt := time.Now()
	rec.Apply(next)
	for rec.Counters().Mutations() == c0.Mutations() && time.Since(applyAt) < time.Minute {
		time.Sleep(time.Millisecond)
	}
	r.ReloadApplyMS = ms(time.Since(applyAt))
	r.ReloadMS = ms(time.Since(start))
	waitDest(t, k, time.Minute, "reconciler reload", 0, 0, 77)

	s := rec.Snapshot()
	r.Mutations = int64(s.Counters.Mutations() - c0.Mutations())
	if r.Mutations != 1 {
		t.Errorf("in-process reload: %d mutations, want 1", r.Mutations)
	}
	start = time.Now()
	cancel()
	<-done
	r.StopMS = ms(time.Since(start))
	r.CPUMS = ms(selfCPU() - cpu0)
	r.Note = "start without, reload with parsing the configuration"
	return r
}

// loggedAt returns the time of the first slog line of file containing msg.
func loggedAt(file, msg string) (time.Time, bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return time.Time{}, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, msg) || !strings.HasPrefix(l, "time=") {
			continue
		}
		f := strings.Fields(l)
		if at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(f[0], "time=")); err == nil {
			return at, true
		}
	}
	return time.Time{}, false
}

// loggedDuration returns the duration field of the first slog line of
// file containing msg.
func loggedDuration(file, msg, field string) (time.Duration, bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, msg) {
			continue
		}
		for _, f := range strings.Fields(l) {
			if v, ok := strings.CutPrefix(f, field+"="); ok {
				d, err := time.ParseDuration(v)
				return d, err == nil
			}
		}
	}
	return 0, false
}

// selfCPU is this process's CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchReps is how many times each tool runs (LVSD_LAB_BENCH_REPS, default 3).
func benchReps() int {
	if n, err := strconv.Atoi(os.Getenv("LVSD_LAB_BENCH_REPS")); err == nil && n > 0 {
		return n
	}
	return 3
}

// BenchSummary is the median of a tool's runs, with every run.
type BenchSummary struct {
	Median BenchResult   `json:"median"`
	Runs   []BenchResult `json:"runs"`
}

func median(v []float64) float64 {
	c := append([]float64(nil), v...)
	sort.Float64s(c)
	return c[len(c)/2]
}

func summarize(runs []BenchResult) BenchSummary {
	var st, re, sp []float64
	notes := map[string]bool{}
	m := runs[0]
	for _, r := range runs {
		st, re, sp = append(st, r.StartMS), append(re, r.ReloadMS), append(sp, r.StopMS)
		if r.Note != "" && r.Note != m.Note {
			notes[r.Note] = true
		}
	}
	var cpu []float64
	for _, r := range runs {
		cpu = append(cpu, r.CPUMS)
	}
	m.StartMS, m.ReloadMS, m.StopMS, m.CPUMS = median(st), median(re), median(sp), median(cpu)
	var ra []float64
	for _, r := range runs {
		ra = append(ra, r.ReloadApplyMS)
	}
	m.ReloadApplyMS = median(ra)
	for n := range notes {
		m.Note += "; " + n
	}
	return BenchSummary{Median: m, Runs: runs}
}

// TestIPVSBenchInVM runs the tools named by LVSD_IPVS_BENCH_TOOLS (comma
// separated, default all) once each, inside the VM with LVSD_IPVS_BENCH=1,
// and writes their results to /results/ipvs-bench-$LVSD_IPVS_BENCH_TAG.json.
// TestIPVSBenchLab starts it in a fresh network namespace per tool and run:
// the kernel keeps the destinations of a flushed table in a per-namespace
// trash list that every later add scans, so a tool run after another in
// the same namespace is slowed down (up to 3x in the emulated VM) by what
// the previous one left there.
func TestIPVSBenchInVM(t *testing.T) {
	if os.Getenv("LVSD_IPVS_BENCH") == "" {
		t.Skip("the IPVS benchmark runs inside the lab VM (TestIPVSBenchLab)")
	}
	k := vmKernel(t)
	dir := t.TempDir()
	all := map[string]func() BenchResult{
		"parse": func() BenchResult {
			start := time.Now()
			vmParse(t, benchConfig(1))
			return BenchResult{Tool: "conf.Parse of the 1,000 VS file", StartMS: ms(time.Since(start))}
		},
		"ipvsadm":    func() BenchResult { return benchIPVSADM(t, k, dir) },
		"in-process": func() BenchResult { return benchInProcess(t, k) },
		"lvsd":       func() BenchResult { return benchDaemon(t, k, "lvsd", dir) },
		"keepalived": func() BenchResult { return benchDaemon(t, k, "keepalived", dir) },
	}
	tools := benchToolOrder
	if v := os.Getenv("LVSD_IPVS_BENCH_TOOLS"); v != "" {
		tools = strings.Split(v, ",")
	}
	var out []BenchResult
	for _, name := range tools {
		run, ok := all[name]
		if !ok {
			t.Fatalf("unknown tool %q", name)
		}
		r := run()
		t.Logf("%-28s start %9.1f ms  reload %8.1f ms  stop %8.1f ms  cpu %8.1f ms  %s", r.Tool, r.StartMS, r.ReloadMS, r.StopMS, r.CPUMS, r.Note)
		out = append(out, r)
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	os.WriteFile(filepath.Join(inVMResults(), "ipvs-bench-"+os.Getenv("LVSD_IPVS_BENCH_TAG")+".json"), b, 0o644)
}

// benchToolOrder is the order of the tools in each round.
var benchToolOrder = []string{"ipvsadm", "in-process", "lvsd", "keepalived"}

func quietVMLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestIPVSBenchLab runs TestIPVSBenchInVM in the lab VM and reports its
// numbers. Long: it needs LVSD_LAB_BENCH=1 on top of LVSD_INTEGRATION=1.
func TestIPVSBenchLab(t *testing.T) {
	if os.Getenv("LVSD_LAB_BENCH") == "" {
		t.Skip("set LVSD_LAB_BENCH=1 (with LVSD_INTEGRATION=1) to run the IPVS benchmark in the lab VM")
	}
	im := needLab(t)
	bins := buildInVMTests(t, "integration")
	// One fresh network namespace (a fresh IPVS table) per tool and run:
	// see TestIPVSBenchInVM.
	script := fmt.Sprintf(`
cp /lab/files/integration.test /tmp/integration.test && chmod +x /tmp/integration.test || exit 13
rc=0 i=0
for tools in parse $(seq %d | while read _; do echo %s; done); do
	i=$((i+1))
	ip netns add bench$i && ip -n bench$i link set lo up || exit 10
	LVSD_IPVS_INVM=1 LVSD_IPVS_BENCH=1 LVSD_IPVS_BENCH_TOOLS=$tools LVSD_IPVS_BENCH_TAG=$i LVSD_IPVS_RESULTS=/results \
		/usr/bin/ip netns exec bench$i /tmp/integration.test -test.run '^TestIPVSBenchInVM$' -test.v -test.count 1 -test.timeout 10m >> /results/ipvs-bench.txt 2>&1 || rc=$?
	sleep 2
done
echo $rc > /results/ipvs-bench.rc
grep -E '^(--- |FAIL)|start .* ms' /results/ipvs-bench.txt
exit 0
`, benchReps(), strings.Join(benchToolOrder, " "))
	res := runLab(t, im, lab.Scenario{
		Name:     "ipvs-bench",
		Script:   script,
		Files:    bins,
		Timeout:  40 * time.Minute,
		WithLVSD: true,
		MemoryMB: 2048,
	}, "ipvs-bench.txt", "ipvs-bench-lvsd.log", "ipvs-bench-keepalived.log")
	if rc := strings.TrimSpace(res.File("ipvs-bench.rc")); rc != "0" {
		t.Errorf("in-VM benchmark exit status %q:\n%s", rc, tail(res.File("ipvs-bench.txt"), 60))
	}
	// Each file holds one run of one tool, in the order the tools ran.
	var names []string
	for n := range res.Files {
		if strings.HasPrefix(n, "ipvs-bench-") && strings.HasSuffix(n, ".json") {
			names = append(names, n)
		}
	}
	sort.Slice(names, func(i, j int) bool { return benchTag(names[i]) < benchTag(names[j]) })
	byTool := map[string][]BenchResult{}
	var order []string
	for _, n := range names {
		var rs []BenchResult
		if err := json.Unmarshal(res.Files[n], &rs); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		for _, r := range rs {
			if byTool[r.Tool] == nil {
				order = append(order, r.Tool)
			}
			byTool[r.Tool] = append(byTool[r.Tool], r)
		}
	}
	if len(order) == 0 {
		t.Fatalf("no results:\n%s", tail(res.File("ipvs-bench.txt"), 60))
	}
	for _, l := range strings.Split(res.File("ipvs-bench-lvsd.log"), "\n") {
		if strings.Contains(l, "ipvs") || strings.Contains(l, "starting") || strings.Contains(l, "loaded") || strings.Contains(l, "reload") {
			t.Logf("lvsd log: %s", l)
		}
	}
	t.Logf("IPVS programming, %d virtual servers × %d real servers, kernel %s, accel %s, each run in a fresh network namespace:", benchVS, benchRS, im.KernelVersion, res.Accel)
	t.Logf("medians of %d runs:", benchReps())
	for _, tool := range order {
		sm := summarize(byTool[tool])
		r := sm.Median
		t.Logf("  %-30s start %9.1f ms  reload(1 weight) %8.1f ms (after the parse %7.1f ms)  stop %8.1f ms  cpu %8.1f ms  %s", r.Tool, r.StartMS, r.ReloadMS, r.ReloadApplyMS, r.StopMS, r.CPUMS, r.Note)
		for i, x := range sm.Runs {
			t.Logf("      run %d: start %9.1f  reload %8.1f (%7.1f)  stop %8.1f  cpu %8.1f  %s", i+1, x.StartMS, x.ReloadMS, x.ReloadApplyMS, x.StopMS, x.CPUMS, x.Note)
		}
	}
}

// benchTag is the run number of a result file ipvs-bench-N.json.
func benchTag(name string) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, "ipvs-bench-"), ".json"))
	return n
}
