// Command bench measures the health-check scheduler: N TCP_CHECKs at a given
// delay_loop against loopback listeners, for a bounded time. It reports the
// checker process's CPU time and memory and the lateness of the checks (how
// long after its due time each one started).
//
//	go run ./healthcheck/bench -n 10000 -delay 1s -duration 20s
//
// The listeners run in a child process (this program re-executed with
// -serve), so the figures are the checker's alone.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/healthcheck"
)

func main() {
	n := flag.Int("n", 10000, "number of TCP_CHECKs (one real server each)")
	delay := flag.Duration("delay", time.Second, "delay_loop")
	duration := flag.Duration("duration", 20*time.Second, "how long to run (at most 5m)")
	listeners := flag.Int("listeners", 16, "loopback listeners to spread the checks over")
	workers := flag.Int("workers", 0, "Options.Workers (0: default)")
	serve := flag.Int("serve", 0, "internal: run N listeners and print their ports")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	if *serve > 0 {
		serveListeners(*serve)
		return
	}
	if *duration > 5*time.Minute {
		*duration = 5 * time.Minute
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if err := bench(*n, *delay, *duration, *listeners, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// serveListeners accepts and closes connections until stdin closes.
func serveListeners(n int) {
	var ports []string
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		ports = append(ports, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	fmt.Println(strings.Join(ports, " "))
	io.Copy(io.Discard, os.Stdin) // the parent closes stdin (or dies): stop
}

func startListeners(n int) (*exec.Cmd, []int, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(self, "-serve", strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	_ = stdin // closed when this process exits, or by stop
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		return nil, nil, fmt.Errorf("listener process: %v", err)
	}
	var ports []int
	for _, f := range strings.Fields(line) {
		p, _ := strconv.Atoi(f)
		ports = append(ports, p)
	}
	return cmd, ports, nil
}

func config(n int, ports []int, delay time.Duration) (*conf.Config, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "virtual_server 192.0.2.1 80 {\n  delay_loop %g\n", delay.Seconds())
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  real_server 10.%d.%d.%d 80 {\n    TCP_CHECK {\n      connect_ip 127.0.0.1\n      connect_port %d\n      connect_timeout 2\n    }\n  }\n",
			i>>16&255, i>>8&255, i&255, ports[i%len(ports)])
	}
	b.WriteString("}\n")
	cfg, diags := conf.Parse("bench.conf", b.String(), conf.Options{ConfigID: "bench"})
	for _, d := range diags {
		if d.Level >= conf.Error {
			return nil, fmt.Errorf("config: %v", d)
		}
	}
	return cfg, nil
}

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func userTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano())
}

// procStatus reads a "VmRSS:  1234 kB" line of /proc/self/status, in MiB.
func procStatus(key string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), key+":") {
			fs := strings.Fields(sc.Text())
			if len(fs) >= 2 {
				kb, _ := strconv.ParseFloat(fs[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

func bench(n int, delay, duration time.Duration, nl, workers int) error {
	child, ports, err := startListeners(nl)
	if err != nil {
		return err
	}
	var childCPU time.Duration
	defer func() {
		child.Process.Signal(syscall.SIGTERM)
		child.Wait()
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
		childCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		fmt.Printf("listeners:  %.2fs CPU (the other process, on the same machine)\n", childCPU.Seconds())
	}()
	cfg, err := config(n, ports, delay)
	if err != nil {
		return err
	}
	runtime.GC()
	rssBefore := procStatus("VmRSS")

	var mu sync.Mutex
	lateness := make([]time.Duration, 0, int(float64(n)*duration.Seconds()/delay.Seconds())+n)
	failed := 0
	reasons := map[string]int{}
	var stopAt time.Time
	s := healthcheck.New(cfg, healthcheck.Options{
		Workers: workers,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Observe: func(o healthcheck.Observation) {
			mu.Lock()
			defer mu.Unlock()
			if !stopAt.IsZero() && o.Start.Add(o.Duration).After(stopAt) {
				return
			}
			lateness = append(lateness, o.Start.Sub(o.Due))
			if !o.OK {
				failed++
				if len(reasons) < 20 {
					reasons[o.Reason]++
				}
			}
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		for range s.Events() {
		}
	}()
	cpu0, user0, t0 := cpu(), userTime(), time.Now()
	go func() { done <- s.Run(ctx) }()

	maxG := 0
	tick := time.NewTicker(100 * time.Millisecond)
	end := time.After(duration)
loop:
	for {
		select {
		case <-tick.C:
			maxG = max(maxG, runtime.NumGoroutine())
		case <-end:
			break loop
		}
	}
	tick.Stop()
	mu.Lock()
	stopAt = time.Now()
	mu.Unlock()
	elapsed, used := time.Since(t0), cpu()-cpu0
	userCPU := userTime()
	rss, hwm := procStatus("VmRSS"), procStatus("VmHWM")
	cancel()
	<-done

	mu.Lock()
	defer mu.Unlock()
	sort.Slice(lateness, func(i, j int) bool { return lateness[i] < lateness[j] })
	pct := func(p float64) time.Duration {
		if len(lateness) == 0 {
			return 0
		}
		return lateness[int(p*float64(len(lateness)-1))]
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("checks:     %d TCP_CHECKs, delay_loop %v, %d loopback listeners (another process), workers %d (0: default)\n", n, delay, nl, workers)
	fmt.Printf("ran:        %.1fs, %d attempts (%.0f/s), %d failed\n", elapsed.Seconds(), len(lateness), float64(len(lateness))/elapsed.Seconds(), failed)
	for r, c := range reasons {
		fmt.Printf("            %d× %s\n", c, r)
	}
	fmt.Printf("cpu:        %.2fs user + %.2fs sys = %.2fs in %.1fs = %.1f%% of one CPU (%.1fµs per check)\n",
		(userCPU - user0).Seconds(), (used - (userCPU - user0)).Seconds(), used.Seconds(), elapsed.Seconds(), 100*used.Seconds()/elapsed.Seconds(), float64(used.Microseconds())/float64(max(len(lateness), 1)))
	fmt.Printf("memory:     RSS %.1f MiB (%.1f MiB before Run), peak %.1f MiB; Go heap in use %.1f MiB; max %d goroutines\n",
		rss, rssBefore, hwm, float64(ms.HeapInuse)/(1<<20), maxG)
	fmt.Printf("lateness:   p50 %v  p90 %v  p99 %v  p99.9 %v  max %v\n",
		pct(0.5).Round(time.Microsecond), pct(0.9).Round(time.Microsecond), pct(0.99).Round(time.Microsecond),
		pct(0.999).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	return nil
}
