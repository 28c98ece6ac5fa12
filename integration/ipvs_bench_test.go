package integration_test

// IPVS programming benchmark on the lab VM's real kernel: N virtual
// servers × 10 real servers (N = 100, 1,000 and 10,000 by default:
// LVSD_LAB_BENCH_SIZES) programmed at start by lvsd, by keepalived, by
// `ipvsadm -R` (up to 1,000) and by the ipvs.Reconciler in-process; then a
// reload changing one real server's weight. TestIPVSBenchLab (host, needs
// LVSD_INTEGRATION=1 and LVSD_LAB_BENCH=1; `make bench` runs it through
// scripts/bench-ipvs.sh) runs TestIPVSBenchInVM inside the VM and reports
// its numbers as Markdown.

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

const benchRS = 10

// benchVS is the number of virtual servers (LVSD_IPVS_BENCH_VS in the VM,
// set by TestIPVSBenchLab for each size).
var benchVS = 1000

// benchAddrs returns the address of virtual server i and of its real server
// j (inside the VM, in a namespace of its own: no traffic).
func benchVSAddr(i int) string { return fmt.Sprintf("10.100.%d.%d", i/250, i%250+1) }
func benchRSAddr(i, j int) string {
	n := i*benchRS + j
	return fmt.Sprintf("10.%d.%d.%d", 200+n/62500, n/250%250, n%250+1)
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

// waitDest polls, every 20 ms and cheaply (one netlink dump of one
// service), until destination rs of virtual server vs has weight w (any
// weight when w < 0).
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

// complete reports whether service vs has all its real servers in k.
func complete(k ipvs.Reader, vs int) bool {
	sk := ipvs.ServiceKey{Family: ipvs.INET, Proto: ipvs.TCP, Addr: netip.MustParseAddr(benchVSAddr(vs)), Port: 80}
	dests, err := k.Destinations(sk)
	return err == nil && len(dests) == benchRS
}

// waitWhole is the start probe, the same for every tool and run from this
// process (not the tool's) in the tool's network namespace: every 20 ms a
// netlink dump of the first and of the last virtual server's destinations;
// once both have all their real servers, one count of the whole table
// (/proc/net/ip_vs), which must hold every service and real server, else
// the polling goes on. It returns the time since start when first and last
// were seen complete with a full count following, and how many counts
// found the table short. After limit it gives up (ok false) and says what
// the table held.
func waitWhole(k ipvs.Reader, start time.Time, limit time.Duration) (at time.Duration, ok bool, short int, seen string) {
	for {
		if complete(k, 0) && complete(k, benchVS-1) {
			at = time.Since(start)
			s, d, _, err := procTable()
			if err == nil && s == benchVS && d == benchVS*benchRS {
				return at, true, short, ""
			}
			short++
		}
		if time.Since(start) > limit {
			s, d, _, err := procTable()
			return time.Since(start), false, short, fmt.Sprintf("%d services and %d destinations of %d and %d after %v (err %v)", s, d, benchVS, benchVS*benchRS, limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFull is waitWhole for a table programmed before the call (a failure
// is the test's).
func waitFull(t *testing.T, k ipvs.Reader, what string) {
	if _, ok, _, seen := waitWhole(k, time.Now(), 5*time.Minute); !ok {
		t.Errorf("%s: table not complete: %s", what, seen)
	}
}

// BenchResult is one tool's numbers (milliseconds).
type BenchResult struct {
	Tool      string  `json:"tool"`
	VS        int     `json:"vs"`                  // virtual servers (× benchRS real servers)
	StartMS   float64 `json:"start_ms"`            // process start (or call) until the probe sees the whole table (waitWhole)
	ReloadMS  float64 `json:"reload_ms"`           // reload signal (or call) until the changed weight is in the kernel
	StopMS    float64 `json:"stop_ms,omitempty"`   // SIGTERM until the process exited (daemons)
	Mutations int64   `json:"mutations,omitempty"` // kernel mutations of the reload (in-process; lvsd: its log)
	// ReloadApplyMS is the reload without parsing: from the parsed
	// configuration (in-process: Apply; lvsd: its "configuration reloaded"
	// log line) until the change is in the kernel.
	ReloadApplyMS float64 `json:"reload_apply_ms,omitempty"`
	// ProgrammedAtMS (lvsd) is when its log says the start-up programming
	// ended, from the process start; ProgramMS how long that programming
	// took (the kernel read, the diff and the batches).
	ProgrammedAtMS float64 `json:"programmed_at_ms,omitempty"`
	ProgramMS      float64 `json:"program_ms,omitempty"`
	CPUMS          float64 `json:"cpu_ms"` // CPU time (user+system) of the whole run
	// Capped: the table was not whole at the cap (StartMS is the cap).
	Capped bool   `json:"capped,omitempty"`
	Round  int    `json:"round,omitempty"`
	Note   string `json:"note,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// benchCap bounds each phase of a daemon's run (LVSD_IPVS_BENCH_CAP,
// default 5 minutes): TCG is slow and keepalived at 100,000 real servers
// may not finish.
func benchCap() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("LVSD_IPVS_BENCH_CAP")); err == nil && d > 0 {
		return d
	}
	return 5 * time.Minute
}

// benchDaemon runs keepalived or lvsd on the benchmark configuration;
// profile makes lvsd write a CPU profile of its run to /results.
func benchDaemon(t *testing.T, k ipvs.Kernel, tool string, dir string, profile bool) BenchResult {
	res := BenchResult{Tool: tool, VS: benchVS}
	capd := benchCap()
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
		if profile {
			res.Tool = "lvsd (CPU profile)"
			cmd.Env = append(os.Environ(), "LVSD_CPUPROFILE="+filepath.Join(inVMResults(), fmt.Sprintf("lvsd-cpu-%d.pprof", benchVS)))
		}
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
	at, ok, short, seen := waitWhole(k, start, capd)
	res.StartMS = ms(at)
	if short > 0 {
		res.Note = fmt.Sprintf("%d counts found the table short after first and last were complete", short)
	}
	if !ok {
		res.Capped = true
		res.Note = "capped: " + seen
		if tool == "lvsd" {
			t.Errorf("lvsd start: %s", seen)
		}
	}
	if ok {
		time.Sleep(2 * time.Second) // let it settle (checkers, first repair pass)
		if err := os.WriteFile(confPath, []byte(benchConfig(77)), 0o644); err != nil {
			t.Fatal(err)
		}
		// keepalived reloads the checker child on SIGHUP to the parent; lvsd is one process.
		start = time.Now()
		cmd.Process.Signal(syscall.SIGHUP)
		waitDest(t, k, capd, tool+" reload", 0, 0, 77)
		res.ReloadMS = ms(time.Since(start))
		if _, d, _, _ := procTable(); d != benchVS*benchRS {
			t.Errorf("%s: %d destinations after the reload", tool, d)
		}
		time.Sleep(time.Second)
	}
	start = time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(capd):
		t.Logf("%s did not exit in %v after SIGTERM: killed", tool, capd)
		cmd.Process.Kill()
		<-done
	}
	res.StopMS = ms(time.Since(start))
	if ps := cmd.ProcessState; ps != nil {
		res.CPUMS = ms(ps.UserTime() + ps.SystemTime()) // with its waited-for children
	}
	if tool == "lvsd" {
		if at, ok := loggedAt(logf.Name(), `msg="ipvs: table programmed"`); ok {
			res.ProgrammedAtMS = ms(at.Sub(procStart))
		}
		if v, ok := loggedField(logf.Name(), `msg="ipvs: table programmed"`, "took"); ok {
			if d, err := time.ParseDuration(v); err == nil {
				res.ProgramMS = ms(d)
			}
		}
		// From the parsed configuration to the kernel's acknowledgement:
		// the reconciler's own measure, and its mutations.
		if v, ok := loggedField(logf.Name(), `msg="ipvs: configuration applied"`, "took"); ok {
			if d, err := time.ParseDuration(v); err == nil {
				res.ReloadApplyMS = ms(d)
			}
		}
		if v, ok := loggedField(logf.Name(), `msg="ipvs: configuration applied"`, "mutations"); ok {
			res.Mutations, _ = strconv.ParseInt(v, 10, 64)
		}
		if ok && res.Mutations != 1 {
			t.Errorf("lvsd reload of one weight: %d mutations, want 1", res.Mutations)
		}
	}
	if s, d, _, _ := procTable(); s != 0 || d != 0 {
		// keepalived removes destinations one by one; its parent kills the
		// checker process when that takes too long.
		res.Note += fmt.Sprintf("; exited leaving %d services and %d destinations", s, d)
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
	r := BenchResult{Tool: "ipvsadm -R", VS: benchVS, StartMS: ms(time.Since(start))}
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
	r := BenchResult{Tool: "ipvs.Reconciler in-process", VS: benchVS, StartMS: ms(time.Since(start))}
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

// loggedField returns the value of field in the first slog line of file
// containing msg.
func loggedField(file, msg, field string) (string, bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, msg) {
			continue
		}
		for _, f := range strings.Fields(l) {
			if v, ok := strings.CutPrefix(f, field+"="); ok {
				return v, true
			}
		}
	}
	return "", false
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
	if n, err := strconv.Atoi(os.Getenv("LVSD_IPVS_BENCH_VS")); err == nil && n > 0 {
		benchVS = n
	}
	k := vmKernel(t)
	dir := t.TempDir()
	all := map[string]func() BenchResult{
		"parse": func() BenchResult {
			start := time.Now()
			vmParse(t, benchConfig(1))
			return BenchResult{Tool: "conf.Parse in the test process", VS: benchVS, StartMS: ms(time.Since(start))}
		},
		"ipvsadm":      func() BenchResult { return benchIPVSADM(t, k, dir) },
		"in-process":   func() BenchResult { return benchInProcess(t, k) },
		"lvsd":         func() BenchResult { return benchDaemon(t, k, "lvsd", dir, false) },
		"lvsd-profile": func() BenchResult { return benchDaemon(t, k, "lvsd", dir, true) },
		"keepalived":   func() BenchResult { return benchDaemon(t, k, "keepalived", dir, false) },
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
		r.Round, _ = strconv.Atoi(os.Getenv("LVSD_IPVS_BENCH_ROUND"))
		t.Logf("%-28s start %9.1f ms  reload %8.1f ms  stop %8.1f ms  cpu %8.1f ms  %s", r.Tool, r.StartMS, r.ReloadMS, r.StopMS, r.CPUMS, r.Note)
		out = append(out, r)
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	os.WriteFile(filepath.Join(inVMResults(), "ipvs-bench-"+os.Getenv("LVSD_IPVS_BENCH_TAG")+".json"), b, 0o644)
}

// benchToolOrder is the order of the tools in each round; ipvsadm -R runs
// up to benchIPVSADMMax virtual servers (at 1,000 it takes 8-15 s in the
// emulated VM, and more than linearly longer beyond).
var benchToolOrder = []string{"ipvsadm", "in-process", "lvsd", "keepalived"}

const benchIPVSADMMax = 1000

func quietVMLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// benchSizes is LVSD_LAB_BENCH_SIZES (virtual servers, comma separated;
// default 100,1000,10000: 1,000, 10,000 and 100,000 real servers).
func benchSizes(t *testing.T) []int {
	v := os.Getenv("LVSD_LAB_BENCH_SIZES")
	if v == "" {
		v = "100,1000,10000"
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 || n > 10000 {
			t.Fatalf("LVSD_LAB_BENCH_SIZES=%q: want virtual server counts from 2 to 10000", v)
		}
		out = append(out, n)
	}
	return out
}

// benchPlan is the in-VM runs, one a line: "size round tool" (round 0: the
// parse alone, and lvsd's profiled run at the largest size).
func benchPlan(sizes []int, reps int) string {
	var b strings.Builder
	for _, n := range sizes {
		fmt.Fprintf(&b, "%d 0 parse\n", n)
		for r := 1; r <= reps; r++ {
			for _, tool := range benchToolOrder {
				if tool == "ipvsadm" && n > benchIPVSADMMax {
					continue
				}
				fmt.Fprintf(&b, "%d %d %s\n", n, r, tool)
			}
		}
	}
	fmt.Fprintf(&b, "%d 0 lvsd-profile\n", sizes[len(sizes)-1])
	return b.String()
}

// TestIPVSBenchLab runs TestIPVSBenchInVM in the lab VM and reports its
// numbers (as Markdown to LVSD_LAB_BENCH_MD when set). Long: it needs
// LVSD_LAB_BENCH=1 on top of LVSD_INTEGRATION=1, and a go test -timeout
// beyond the default (scripts/bench-ipvs.sh).
func TestIPVSBenchLab(t *testing.T) {
	if os.Getenv("LVSD_LAB_BENCH") == "" {
		t.Skip("set LVSD_LAB_BENCH=1 (with LVSD_INTEGRATION=1) to run the IPVS benchmark in the lab VM")
	}
	sizes := benchSizes(t)
	im := needLab(t)
	bins := buildInVMTests(t, "integration")
	// One fresh network namespace (a fresh IPVS table) per tool and run,
	// deleted after it: see TestIPVSBenchInVM.
	script := fmt.Sprintf(`
cp /lab/files/integration.test /tmp/integration.test && chmod +x /tmp/integration.test || exit 13
rc=0 i=0
while read vs round tools; do
	i=$((i+1))
	ip netns add bench$i && ip -n bench$i link set lo up || exit 10
	LVSD_IPVS_INVM=1 LVSD_IPVS_BENCH=1 LVSD_IPVS_BENCH_TOOLS=$tools LVSD_IPVS_BENCH_TAG=$i LVSD_IPVS_RESULTS=/results \
	LVSD_IPVS_BENCH_VS=$vs LVSD_IPVS_BENCH_ROUND=$round LVSD_IPVS_BENCH_CAP=%s \
		/usr/bin/ip netns exec bench$i /tmp/integration.test -test.run '^TestIPVSBenchInVM$' -test.v -test.count 1 -test.timeout 30m < /dev/null >> /results/ipvs-bench.txt 2>&1 || rc=$?
	ip netns del bench$i
	sleep 2
done <<'PLAN'
%sPLAN
echo $rc > /results/ipvs-bench.rc
grep -E '^(--- |FAIL)|start .* ms' /results/ipvs-bench.txt
exit 0
`, benchCapFlag(), benchPlan(sizes, benchReps()))
	res := runLab(t, im, lab.Scenario{
		Name:     "ipvs-bench",
		Script:   script,
		Files:    bins,
		Timeout:  150 * time.Minute,
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
	var all []BenchResult
	for _, n := range names {
		var rs []BenchResult
		if err := json.Unmarshal(res.Files[n], &rs); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		all = append(all, rs...)
	}
	if len(all) == 0 {
		t.Fatalf("no results:\n%s", tail(res.File("ipvs-bench.txt"), 60))
	}
	for n, b := range res.Files {
		if strings.HasSuffix(n, ".pprof") && os.Getenv("LVSD_LAB_BENCH_PROFILE_DIR") != "" {
			p := filepath.Join(os.Getenv("LVSD_LAB_BENCH_PROFILE_DIR"), filepath.Base(n))
			if err := os.WriteFile(p, b, 0o644); err == nil {
				t.Logf("lvsd CPU profile: %s", p)
			}
		}
	}
	md := benchMarkdown(all, fmt.Sprintf("kernel %s, accel %s, %d runs per size", im.KernelVersion, res.Accel, benchReps()))
	t.Log("\n" + md)
	if p := os.Getenv("LVSD_LAB_BENCH_MD"); p != "" {
		if err := os.WriteFile(p, []byte(md), 0o644); err != nil {
			t.Error(err)
		}
	}
}

func msOrBlank(v float64) string {
	if v == 0 {
		return ""
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// benchCapFlag is LVSD_IPVS_BENCH_CAP passed on into the VM.
func benchCapFlag() string {
	return benchCap().String()
}

// benchMarkdown formats the runs: per size, each tool's medians with the
// spread of the start; lvsd/keepalived per round; the growth across sizes.
func benchMarkdown(all []BenchResult, head string) string {
	var b strings.Builder
	type key struct {
		vs   int
		tool string
	}
	runs := map[key][]BenchResult{}
	var sizes []int
	var tools []string
	seenSize, seenTool := map[int]bool{}, map[string]bool{}
	for _, r := range all {
		k := key{r.VS, r.Tool}
		runs[k] = append(runs[k], r)
		if !seenSize[r.VS] {
			seenSize[r.VS] = true
			sizes = append(sizes, r.VS)
		}
		if !seenTool[r.Tool] {
			seenTool[r.Tool] = true
			tools = append(tools, r.Tool)
		}
	}
	sort.Ints(sizes)
	sec := func(v float64) string { // seconds, blank when not measured
		if v == 0 {
			return ""
		}
		return strconv.FormatFloat(v/1000, 'f', 2, 64)
	}
	fmt.Fprintf(&b, "IPVS programming in the lab VM (%s); start: process start until the probe sees the whole table (first and last service complete, polled every 20 ms, then a full count); each run in a fresh network namespace.\n", head)
	for _, n := range sizes {
		fmt.Fprintf(&b, "\n%d virtual servers × %d = %d real servers (medians; start min–max):\n\n", n, benchRS, n*benchRS)
		b.WriteString("| tool | runs | start s | start min–max s | reload, one weight s | after the parse ms | reload mutations | stop s | CPU s | lvsd: programmed at / programming s | note |\n")
		b.WriteString("|:---|---:|---:|---|---:|---:|---:|---:|---:|---|:---|\n")
		for _, tool := range tools {
			rs := runs[key{n, tool}]
			if len(rs) == 0 {
				continue
			}
			sm := summarize(rs)
			m := sm.Median
			lo, hi := rs[0].StartMS, rs[0].StartMS
			var pa, pm []float64
			capped := 0
			for _, r := range rs {
				lo, hi = min(lo, r.StartMS), max(hi, r.StartMS)
				pa, pm = append(pa, r.ProgrammedAtMS), append(pm, r.ProgramMS)
				if r.Capped {
					capped++
				}
			}
			prog := ""
			if m.ProgrammedAtMS = median(pa); m.ProgrammedAtMS > 0 {
				prog = sec(m.ProgrammedAtMS) + " / " + sec(median(pm))
			}
			mut := ""
			if m.Mutations > 0 || strings.HasPrefix(tool, "lvsd") || strings.HasPrefix(tool, "ipvs.") {
				var mv []string
				for _, r := range rs {
					mv = append(mv, strconv.FormatInt(r.Mutations, 10))
				}
				mut = strings.Join(mv, ", ")
			}
			note := m.Note
			if capped > 0 {
				note = fmt.Sprintf("%d of %d runs capped at %v; ", capped, len(rs), benchCap()) + note
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s–%s | %s | %s | %s | %s | %s | %s | %s |\n", tool, len(rs), sec(m.StartMS), sec(lo), sec(hi),
				sec(m.ReloadMS), msOrBlank(m.ReloadApplyMS), mut, sec(m.StopMS), sec(m.CPUMS), prog, note)
		}
	}
	b.WriteString("\nlvsd / keepalived start, per round:\n\n| real servers | round | lvsd s | keepalived s | ratio |\n|---:|---:|---:|---:|---:|\n")
	for _, n := range sizes {
		kr := map[int]BenchResult{}
		for _, r := range runs[key{n, "keepalived"}] {
			kr[r.Round] = r
		}
		for _, l := range runs[key{n, "lvsd"}] {
			k, ok := kr[l.Round]
			if !ok || k.StartMS == 0 {
				continue
			}
			c := ""
			if k.Capped {
				c = " (capped: ratio at most)"
			}
			fmt.Fprintf(&b, "| %d | %d | %s | %s | %.2f%s |\n", n*benchRS, l.Round, sec(l.StartMS), sec(k.StartMS), l.StartMS/k.StartMS, c)
		}
	}
	b.WriteString("\nGrowth (medians of the start; × the previous size):\n\n| real servers | lvsd s | × | keepalived s | × | lvsd / keepalived |\n|---:|---:|---:|---:|---:|---:|\n")
	var pl, pk float64
	for _, n := range sizes {
		l, k := runs[key{n, "lvsd"}], runs[key{n, "keepalived"}]
		if len(l) == 0 || len(k) == 0 {
			continue
		}
		ml, mk := summarize(l).Median.StartMS, summarize(k).Median.StartMS
		gl, gk := "", ""
		if pl > 0 {
			gl, gk = fmt.Sprintf("%.1f", ml/pl), fmt.Sprintf("%.1f", mk/pk)
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %.2f |\n", n*benchRS, sec(ml), gl, sec(mk), gk, ml/mk)
		pl, pk = ml, mk
	}
	return b.String()
}

// benchTag is the run number of a result file ipvs-bench-N.json.
func benchTag(name string) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, "ipvs-bench-"), ".json"))
	return n
}
