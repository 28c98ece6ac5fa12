package healthcheck

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// scaleConf checks n real servers (10.x.y.z:80, fake) by connecting to the
// loopback listeners' ports in turn.
func scaleConf(n int, ports []int, delayLoop string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "virtual_server 192.0.2.1 80 {\nprotocol TCP\n  delay_loop %s\n", delayLoop)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  real_server 10.%d.%d.%d 80 {\n    TCP_CHECK {\n      connect_ip 127.0.0.1\n      connect_port %d\n      connect_timeout 1\n    }\n  }\n",
			i>>16&255, i>>8&255, i&255, ports[i%len(ports)])
	}
	b.WriteString("}\n")
	return b.String()
}

type attempt struct{ due, start time.Time }

// 2000 TCP checks at delay_loop 1 for 3 s: every check runs on time (no
// later than 10% of its interval after it was due, no two starts more than
// 110% of the interval apart). On a shared machine a burst of foreign load can
// stall the process; the lateness bound gets one more run before failing.
func TestScale2000TCP(t *testing.T) {
	var ports []int
	for i := 0; i < 4; i++ {
		ports = append(ports, listen(t, nil))
	}
	for try := 1; ; try++ {
		late := scaleRun(t, 2000, ports, time.Second, 3*time.Second)
		if late == "" {
			return
		}
		if try == 2 {
			t.Fatal(late)
		}
		t.Logf("run %d: %s; once more", try, late)
	}
}

// scaleRun fails the test on wrong results and returns a lateness complaint.
func scaleRun(t *testing.T, n int, ports []int, interval, run time.Duration) (late string) {
	var mu sync.Mutex
	runs := map[netip.AddrPort][]attempt{}
	failed := 0
	var stopAt time.Time
	opts := Options{Observe: func(o Observation) {
		mu.Lock()
		defer mu.Unlock()
		if !stopAt.IsZero() && o.Start.Add(o.Duration).After(stopAt) {
			return // cut short by the end of the run
		}
		if !o.OK {
			failed++
		}
		runs[o.RS] = append(runs[o.RS], attempt{o.Due, o.Start})
	}}
	r := startRun(t, scaleConf(n, ports, fmt.Sprint(interval.Seconds())), opts)
	for i := 0; i < n; i++ {
		if ev := r.next(t, 2*time.Second); !ev.Up {
			t.Fatalf("initial event %+v", ev)
		}
	}
	time.Sleep(run)
	mu.Lock()
	stopAt = time.Now()
	mu.Unlock()
	r.stop(t)

	mu.Lock()
	defer mu.Unlock()
	if len(runs) != n {
		t.Fatalf("%d of %d checkers ran", len(runs), n)
	}
	if failed > 0 {
		t.Fatalf("%d failed checks against loopback listeners", failed)
	}
	var lateness []time.Duration
	worst, worstGap := time.Duration(0), time.Duration(0)
	for rs, as := range runs {
		if len(as) < int(run/interval)-1 {
			t.Fatalf("%v ran %d times in %v at delay_loop %v", rs, len(as), run, interval)
		}
		for i, a := range as {
			l := a.start.Sub(a.due)
			lateness = append(lateness, l)
			worst = max(worst, l)
			if i > 0 {
				worstGap = max(worstGap, a.start.Sub(as[i-1].start))
			}
		}
	}
	sort.Slice(lateness, func(i, j int) bool { return lateness[i] < lateness[j] })
	pct := func(p float64) time.Duration { return lateness[int(p*float64(len(lateness)-1))] }
	t.Logf("%d checks of %d checkers in %v: lateness p50 %v p99 %v max %v; longest gap %v",
		len(lateness), n, run, pct(0.5), pct(0.99), worst, worstGap)
	switch {
	case worst > interval/10:
		return fmt.Sprintf("a check started %v after its due time, want at most %v", worst, interval/10)
	case worstGap > interval+interval/10:
		return fmt.Sprintf("%v between two checks, want at most %v", worstGap, interval+interval/10)
	}
	return ""
}
