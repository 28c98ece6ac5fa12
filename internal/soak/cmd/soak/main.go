// Command soak runs the daemon for a long time under a steady load and says
// whether its memory and goroutines stay flat (issue 17's soak; run by
// scripts/bench-soak.sh inside a network namespace where the real servers'
// addresses are local):
//
//	soak -lvsd bin/lvsd-bench -duration 1h -out /tmp/soak
//
// It writes a generated configuration (-vs × -rs TCP_CHECKs at -delay),
// listens on the real servers' ports (accept and close), starts `lvsd -C`
// (the checker and IPVS subsystems; the binary is built with -tags
// lvsdbench: an in-memory IPVS table, this host's kernel has none), and
// until -duration: every -scrape it fetches /metrics (a whole scrape, as
// Prometheus does) and samples VmRSS from /proc/PID/status and lvsd's
// go_goroutines, go_memstats_heap_inuse_bytes and
// process_resident_memory_bytes; every -reload it rewrites the
// configuration (one real server's weight toggled) and sends SIGHUP.
// Heap and goroutine profiles are saved at the settling time and at the
// end. It prints a Markdown report and exits 1 when a series is not flat
// from -settle on (the rule: internal/soak.Rule, the values below), when a
// reload failed or the checks fell behind.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lvsd/lvsd/internal/genconf"
	"github.com/lvsd/lvsd/internal/soak"
)

// The flat rules (README of the figures: docs/BENCHMARKS.md, "Soak").
var (
	memRule = soak.Rule{MaxGrowth: 0.05, GrowthFloor: 2 << 20, MaxSpread: 0.5, SpreadFloor: 8 << 20}
	gorRule = soak.Rule{MaxGrowth: 0.02, GrowthFloor: 2, MaxSpread: 0.10, SpreadFloor: 10}
)

type series struct {
	name, unit string
	rule       soak.Rule
	pts        []soak.Point
}

func main() {
	lvsd := flag.String("lvsd", "bin/lvsd-bench", "lvsd built with -tags lvsdbench")
	duration := flag.Duration("duration", time.Hour, "how long to run (at most 3h)")
	settle := flag.Duration("settle", 0, "judge from this time on (0: a sixth of -duration, 10m for an hour)")
	nVS := flag.Int("vs", 1000, "virtual servers")
	nRS := flag.Int("rs", 10, "real servers per virtual server (one port each, 8000 upwards)")
	delay := flag.Int("delay", 10, "delay_loop in seconds")
	scrapeEvery := flag.Duration("scrape", 5*time.Second, "scrape and sample period")
	reloadEvery := flag.Duration("reload", 30*time.Second, "SIGHUP period")
	judgeFile := flag.String("judge", "", "judge the samples.tsv of a run (finished or not) and exit")
	out := flag.String("out", "", "directory for the configuration, lvsd's log, the samples and the profiles (default: a new one under /tmp)")
	flag.Parse()
	*duration = min(*duration, 3*time.Hour)
	if *settle == 0 {
		*settle = *duration / 6
	}
	if *judgeFile != "" {
		ok, err := judgeSamples(*judgeFile, *settle)
		if err != nil {
			fatal(err)
		}
		if !ok {
			os.Exit(1)
		}
		return
	}
	if *out == "" {
		d, err := os.MkdirTemp("", "lvsd-soak-")
		if err != nil {
			fatal(err)
		}
		*out = d
	} else if err := os.MkdirAll(*out, 0o755); err != nil {
		fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, *lvsd, *out, *duration, *settle, *nVS, *nRS, *delay, *scrapeEvery, *reloadEvery)
	if err != nil {
		fatal(err)
	}
	if !ok {
		os.Exit(1)
	}
}

// newSeries are the series a soak samples, in the columns' order.
func newSeries() []*series {
	return []*series{
		{name: "VmRSS", unit: "MiB", rule: memRule},
		{name: "process_resident_memory_bytes", unit: "MiB", rule: memRule},
		{name: "go_memstats_heap_inuse_bytes", unit: "MiB", rule: memRule},
		{name: "go_goroutines", rule: gorRule},
	}
}

// judgeSamples judges a samples.tsv (columns: seconds, then the series of
// newSeries), as far as it goes.
func judgeSamples(path string, settle time.Duration) (bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	all := newSeries()
	var until time.Duration
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 1+len(all) {
			continue
		}
		sec, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return false, fmt.Errorf("%s: %v", path, err)
		}
		until = time.Duration(sec * float64(time.Second))
		for i, s := range all {
			v, err := strconv.ParseFloat(f[1+i], 64)
			if err != nil {
				return false, fmt.Errorf("%s: %v", path, err)
			}
			s.pts = append(s.pts, soak.Point{At: until, V: v})
		}
	}
	fmt.Printf("%s: %v of samples\n\n", path, until)
	return judge(os.Stdout, all, settle, until), nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "soak:", err)
	os.Exit(2)
}

// configs returns the configuration and its variant with the first real
// server's weight changed (what every other reload applies).
func configs(nVS, nRS, delay int) ([]byte, []byte, error) {
	var b bytes.Buffer
	if err := genconf.Write(&b, nVS, nRS); err != nil {
		return nil, nil, err
	}
	a := bytes.ReplaceAll(b.Bytes(), []byte("delay_loop 6\n"), []byte(fmt.Sprintf("delay_loop %d\n", delay)))
	v := bytes.Replace(a, []byte("        weight 1\n"), []byte("        weight 3\n"), 1)
	if bytes.Equal(a, v) {
		return nil, nil, errors.New("genconf: no weight 1 to change")
	}
	return a, v, nil
}

// listen accepts and closes connections on ports 8000.. (every address: the
// real servers' are local in this namespace).
func listen(nRS int) ([]net.Listener, error) {
	var lns []net.Listener
	for r := range nRS {
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", 8000+r))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, err
		}
		lns = append(lns, ln)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					continue
				}
				c.Close()
			}
		}()
	}
	return lns, nil
}

func writeFile(path string, b []byte) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// scrape is what one /metrics scrape says.
type scrape struct {
	goroutines, heapInuse, procRSS float64
	checksOK, checksFailed         float64
	reloadsOK, reloadsFailed       float64
	rsUp, rsTotal                  int
	bytes                          int64
}

func fetch(c *http.Client, url string) (scrape, error) {
	var s scrape
	resp, err := c.Get(url)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		io.Copy(io.Discard, resp.Body)
		return s, fmt.Errorf("%s: %s", url, resp.Status)
	}
	cr := &countReader{r: resp.Body}
	sc := bufio.NewScanner(cr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	found := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		name, val := line[:sp], line[sp+1:]
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch {
		case name == "go_goroutines":
			s.goroutines = v
			found++
		case name == "go_memstats_heap_inuse_bytes":
			s.heapInuse = v
			found++
		case name == "process_resident_memory_bytes":
			s.procRSS = v
			found++
		case strings.HasPrefix(name, "lvsd_healthcheck_checks_total{"):
			if strings.Contains(name, `result="success"`) {
				s.checksOK += v
			} else {
				s.checksFailed += v
			}
		case strings.HasPrefix(name, "lvsd_config_reloads_total{"):
			if strings.Contains(name, `result="success"`) {
				s.reloadsOK += v
			} else {
				s.reloadsFailed += v
			}
		case strings.HasPrefix(name, "lvsd_real_server_up{"):
			s.rsTotal++
			if v == 1 {
				s.rsUp++
			}
		}
	}
	s.bytes = cr.n
	if err := sc.Err(); err != nil {
		return s, err
	}
	if found != 3 {
		return s, fmt.Errorf("%s: go_goroutines, go_memstats_heap_inuse_bytes or process_resident_memory_bytes missing", url)
	}
	return s, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// vmRSS is VmRSS of pid in bytes.
func vmRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// cpuSeconds is pid's user + system time.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100 // USER_HZ
}

// profiles saves lvsd's heap and goroutine profiles (pprof, from
// LVSD_BENCH_PPROF) as name-heap.pb.gz and name-goroutine.txt.
func profiles(c *http.Client, base, dir, name string) {
	for _, p := range []struct{ path, file string }{
		{"/debug/pprof/heap?gc=1", name + "-heap.pb.gz"},
		{"/debug/pprof/goroutine?debug=1", name + "-goroutine.txt"},
	} {
		resp, err := c.Get(base + p.path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak: profile:", err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		os.WriteFile(filepath.Join(dir, p.file), b, 0o644)
	}
}

func run(ctx context.Context, lvsd, dir string, duration, settle time.Duration, nVS, nRS, delay int,
	scrapeEvery, reloadEvery time.Duration) (bool, error) {
	confA, confB, err := configs(nVS, nRS, delay)
	if err != nil {
		return false, err
	}
	confPath := filepath.Join(dir, "soak.conf")
	if err := writeFile(confPath, confA); err != nil {
		return false, err
	}
	lns, err := listen(nRS)
	if err != nil {
		return false, err
	}
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	logf, err := os.Create(filepath.Join(dir, "lvsd.log"))
	if err != nil {
		return false, err
	}
	defer logf.Close()
	const metricsAddr, pprofAddr = "127.0.0.1:9166", "127.0.0.1:9167"
	cmd := exec.Command(lvsd, "-C", "-n", "-l", "-f", confPath, "-p", filepath.Join(dir, "lvsd.pid"),
		"--ctl-socket", filepath.Join(dir, "lvsd.ctl"), "--metrics-listen", metricsAddr)
	cmd.Env = append(os.Environ(), "LVSD_BENCH_PPROF="+pprofAddr)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return false, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		select {
		case <-exited:
			return
		default:
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}()
	pid := cmd.Process.Pid
	c := &http.Client{Timeout: 30 * time.Second}
	url := "http://" + metricsAddr + "/metrics"
	start := time.Now()

	// Up when every real server is reported and the checks have gone round
	// once.
	var first scrape
	for {
		if time.Since(start) > 2*time.Minute {
			return false, fmt.Errorf("lvsd not checking %d real servers after 2 minutes (log: %s)", nVS*nRS, logf.Name())
		}
		select {
		case err := <-exited:
			return false, fmt.Errorf("lvsd exited: %v (log: %s)", err, logf.Name())
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(time.Second):
		}
		s, err := fetch(c, url)
		if err == nil && s.rsTotal == nVS*nRS && s.checksOK+s.checksFailed >= float64(nVS*nRS) {
			first = s
			break
		}
	}
	ready := time.Since(start)
	t0, cpu0 := time.Now(), cpuSeconds(pid)

	all := newSeries()
	samples, err := os.Create(filepath.Join(dir, "samples.tsv"))
	if err != nil {
		return false, err
	}
	defer samples.Close()
	fmt.Fprintln(samples, "seconds\tvmrss_bytes\tprocess_resident_memory_bytes\theap_inuse_bytes\tgoroutines\tchecks_ok\tchecks_failed\treloads_ok\treloads_failed\trs_up\tscrape_bytes\tscrape_ms")

	scrapeT, reloadT := time.NewTicker(scrapeEvery), time.NewTicker(reloadEvery)
	defer scrapeT.Stop()
	defer reloadT.Stop()
	end := time.After(duration)
	sent, scrapeErrs, maxScrape := 0, 0, time.Duration(0)
	var last scrape
	settled := false
loop:
	for {
		select {
		case err := <-exited:
			return false, fmt.Errorf("lvsd exited during the soak: %v (log: %s)", err, logf.Name())
		case <-ctx.Done():
			return false, ctx.Err()
		case <-end:
			break loop
		case <-reloadT.C:
			b := confA
			if sent%2 == 0 {
				b = confB
			}
			if err := writeFile(confPath, b); err != nil {
				return false, err
			}
			cmd.Process.Signal(syscall.SIGHUP)
			sent++
		case <-scrapeT.C:
			at := time.Since(t0)
			rss, err := vmRSS(pid)
			if err != nil {
				return false, err
			}
			t := time.Now()
			s, err := fetch(c, url)
			took := time.Since(t)
			if err != nil {
				scrapeErrs++
				fmt.Fprintln(os.Stderr, "soak: scrape:", err)
				continue
			}
			maxScrape = max(maxScrape, took)
			last = s
			for i, v := range []float64{rss, s.procRSS, s.heapInuse, s.goroutines} {
				all[i].pts = append(all[i].pts, soak.Point{At: at, V: v})
			}
			fmt.Fprintf(samples, "%.1f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%d\t%d\t%d\n", at.Seconds(), rss, s.procRSS,
				s.heapInuse, s.goroutines, s.checksOK, s.checksFailed, s.reloadsOK, s.reloadsFailed, s.rsUp, s.bytes, took.Milliseconds())
			if !settled && at >= settle {
				settled = true
				profiles(c, "http://"+pprofAddr, dir, "settled")
			}
		}
	}
	elapsed, cpu := time.Since(t0), cpuSeconds(pid)-cpu0
	profiles(c, "http://"+pprofAddr, dir, "end")
	// The last reload's result: wait for it to show (a reload takes a parse).
	for range 30 {
		if last.reloadsOK+last.reloadsFailed >= float64(sent) {
			break
		}
		time.Sleep(time.Second)
		if s, err := fetch(c, url); err == nil {
			last = s
		}
	}
	return report(os.Stdout, reportIn{
		dir: dir, nVS: nVS, nRS: nRS, delay: delay, duration: elapsed, settle: settle, ready: ready,
		scrapeEvery: scrapeEvery, reloadEvery: reloadEvery, cpu: cpu, first: first, last: last,
		sent: sent, scrapeErrs: scrapeErrs, maxScrape: maxScrape, all: all,
	}), nil
}

type reportIn struct {
	dir                      string
	nVS, nRS, delay          int
	duration, settle, ready  time.Duration
	scrapeEvery, reloadEvery time.Duration
	cpu                      float64
	first, last              scrape
	sent, scrapeErrs         int
	maxScrape                time.Duration
	all                      []*series
}

func (s *series) show(v float64) string {
	if s.unit == "MiB" {
		return fmt.Sprintf("%.1f", v/(1<<20))
	}
	return fmt.Sprintf("%.0f", v)
}

// report prints the Markdown report and returns whether the soak passed.
func report(w io.Writer, r reportIn) bool {
	load, _ := os.ReadFile("/proc/loadavg")
	n := r.nVS * r.nRS
	checks := (r.last.checksOK + r.last.checksFailed) - (r.first.checksOK + r.first.checksFailed)
	rate := checks / r.duration.Seconds()
	want := float64(n) / float64(r.delay)
	fmt.Fprintf(w, "## Soak (issue 17): %v of %d TCP_CHECKs\n\n", r.duration.Round(time.Second), n)
	fmt.Fprintf(w, "%s, %d virtual servers × %d real servers, `delay_loop %d` (%.0f checks/s due), `lvsd -C` (in-memory IPVS table), "+
		"a reload (SIGHUP, one weight toggled) every %v, a /metrics scrape and a sample every %v; load average at the end %s; "+
		"ready (every real server reported, one round of checks) %.1f s after the start; files in %s.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), r.nVS, r.nRS, r.delay, want, r.reloadEvery, r.scrapeEvery,
		strings.Join(strings.Fields(string(load))[:3], " "), r.ready.Seconds(), r.dir)
	ok := judge(w, r.all, r.settle, r.duration+r.scrapeEvery)
	fmt.Fprintf(w, "\nChecks: %.0f made (%.0f/s, %.0f%% of those due), %.0f failed in all; real servers up at the end: %d of %d. "+
		"Reloads: %d sent, %.0f applied, %.0f rejected. Scrapes: %d bytes each, slowest %v, %d failed. lvsd CPU: %.1f s (%.1f%% of one CPU).\n",
		checks, rate, 100*rate/want, r.last.checksFailed, r.last.rsUp, r.last.rsTotal,
		r.sent, r.last.reloadsOK, r.last.reloadsFailed, r.last.bytes, r.maxScrape.Round(time.Millisecond), r.scrapeErrs,
		r.cpu, 100*r.cpu/r.duration.Seconds())
	var why []string
	if r.last.reloadsFailed > 0 || r.last.reloadsOK < float64(r.sent) {
		why = append(why, "a reload failed or was not applied")
	}
	if rate < 0.9*want {
		why = append(why, "the checks fell behind (under 90% of those due)")
	}
	if r.last.rsUp != n {
		why = append(why, "real servers down")
	}
	if r.scrapeErrs > 0 {
		why = append(why, "scrapes failed")
	}
	if !ok {
		why = append(why, "a series is not flat")
	}
	if len(why) > 0 {
		fmt.Fprintf(w, "\nVerdict: **FAIL** (%s).\n", strings.Join(why, "; "))
		return false
	}
	fmt.Fprintln(w, "\nVerdict: **flat**, no leak.")
	return true
}

// judge prints the samples at every multiple of settle up to until and
// the verdict of each series from settle on; it returns whether all are
// flat.
func judge(w io.Writer, all []*series, settle, until time.Duration) bool {
	ok := true
	fmt.Fprint(w, "| sample at |")
	for _, s := range all {
		u := ""
		if s.unit != "" {
			u = " (" + s.unit + ")"
		}
		fmt.Fprintf(w, " %s%s |", s.name, u)
	}
	fmt.Fprint(w, "\n|---:|")
	for range all {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w)
	for m := settle; m <= until; m += settle {
		fmt.Fprintf(w, "| %v |", m.Round(time.Second))
		for _, s := range all {
			v, _ := soak.At(s.pts, m)
			fmt.Fprintf(w, " %s |", s.show(v))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\nFrom %v on (flat: the least-squares line grows across the window by at most the growth limit, and max − min "+
		"is at most the spread limit; memory: 5%% of the mean or 2 MiB, spread 50%% or 8 MiB; goroutines: 2%% or 2, spread 10%% or 10):\n\n", settle)
	fmt.Fprintln(w, "| series | samples | mean | min | max | slope per hour | growth over the window (limit) | max − min (limit) | flat |")
	fmt.Fprintln(w, "|:---|---:|---:|---:|---:|---:|---:|---:|:---|")
	for _, s := range all {
		v := soak.Judge(s.pts, settle, s.rule)
		verdict := "**yes**"
		if !v.Flat {
			ok = false
			switch {
			case v.N < 3:
				verdict = "**no**: too few samples"
			case v.Grows && v.Spreads:
				verdict = "**no**: grows and spreads"
			case v.Grows:
				verdict = "**no**: grows"
			default:
				verdict = "**no**: spreads"
			}
		}
		sl := s.show(v.SlopePerHour)
		if s.unit == "MiB" {
			sl = fmt.Sprintf("%+.2f MiB", v.SlopePerHour/(1<<20))
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s (%s) | %s (%s) | %s |\n", s.name, v.N, s.show(v.Mean), s.show(v.Min), s.show(v.Max),
			sl, s.show(v.Growth), s.show(v.GrowthLimit), s.show(v.Spread), s.show(v.SpreadLimit), verdict)
	}
	return ok
}
