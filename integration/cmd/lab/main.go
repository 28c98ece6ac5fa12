// Command lab is the lvsd lab demo (make lab): it boots the real-kernel lab
// VM with the reference NAT director pair — lvsd on both directors, or
// keepalived with LVSD_LAB_KEEPALIVED=1 — and narrates what happens: VRRP states,
// ipvsadm -Ln on both directors, the client's requests spread over the real
// servers, a real server failing and coming back, the master director
// failing, and the client-visible outage in milliseconds.
//
// Nothing is left on the host but the image cache (see lab.CacheDir).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lvsd/lvsd/integration/lab"
)

// narrator prints the scenario's narration lines ("LAB: ..." and the
// indented lines after them), or the whole console with -v.
type narrator struct {
	all  bool
	buf  bytes.Buffer
	show bool
}

func (n *narrator) Write(p []byte) (int, error) {
	n.buf.Write(p)
	for {
		line, err := n.buf.ReadString('\n')
		if err != nil {
			n.buf.Reset()
			n.buf.WriteString(line)
			return len(p), nil
		}
		switch {
		case n.all:
			fmt.Print(line)
		case strings.HasPrefix(line, "LAB: "):
			n.show = true
			fmt.Print("  " + strings.TrimPrefix(line, "LAB: "))
		case n.show && strings.HasPrefix(line, "    "):
			fmt.Print("  " + line)
		default:
			n.show = false
		}
	}
}

func main() {
	verbose := flag.Bool("v", false, "show the whole VM console")
	timeout := flag.Duration("timeout", 4*time.Minute, "VM time limit")
	flag.Parse()
	daemon := "lvsd"
	if os.Getenv("LVSD_LAB_KEEPALIVED") != "" {
		daemon = "keepalived"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if os.Getenv("LVSD_LAB_SCENARIO") == "bgp" {
		os.Exit(runBGP(ctx, *verbose, *timeout))
	}
	os.Exit(run(ctx, daemon, *verbose, *timeout))
}

// runBGP is LVSD_LAB_SCENARIO=bgp make lab: three active-active lvsd
// directors behind a BIRD router (ECMP), long-lived connections through
// the loss of one.
func runBGP(ctx context.Context, verbose bool, timeout time.Duration) int {
	start := time.Now()
	logf := func(f string, a ...any) { fmt.Printf(f+"\n", a...) }
	fmt.Println("lvsd lab: three active-active lvsd directors (DR, mh, sync daemon, BGP) behind a BIRD 2 router (ECMP)")
	img, err := lab.Build(ctx, lab.BuildOptions{Logf: logf})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	sc := lab.BGPActiveActive(2400)
	sc.Console = &narrator{all: verbose}
	if timeout < 6*time.Minute {
		timeout = 6 * time.Minute
	}
	sc.Timeout = timeout
	res, err := img.Run(ctx, sc)
	if err == nil && res.ExitCode != 0 {
		err = fmt.Errorf("scenario exit status %d", res.ExitCode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	m, err := lab.BGPResults(res)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println()
	fmt.Println("summary")
	fmt.Printf("  timings: VM boot %v (%s), scenario %v, total %v\n", res.Boot.Round(time.Millisecond), res.Accel,
		res.Scenario.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	fmt.Printf("  router: %s\n", strings.Join(strings.Fields(res.File("route-ecmp.txt")), " "))
	fmt.Printf("  new connections by director (IPVS counters): %v\n", m.Spread)
	fmt.Printf("  kill -9 dirA: its next hop gone from the router after %.2fs\n", m.KillToGone)
	fmt.Printf("  long-lived connections: %d of %d kept exchanging (%d exchanges, %d moved to another real server)\n",
		m.Hold.Survived, m.Hold.Conns, m.Hold.Exchanges, m.Hold.Moved)
	fmt.Printf("  new connections throughout the events: %d, %d failed, %d needed a SYN retransmission (longest handshake %d ms)\n",
		m.Loop.Requests, m.Loop.Failed, m.Loop.Retried, m.Loop.MaxConnectMS)
	fmt.Printf("  IPVS sysctls set by lvsd (sloppy_tcp sloppy_sctp backup_only): %v\n", m.Sysctls)
	if m.Hold.Survived*100 < m.Hold.Conns*99 || m.Loop.Failed > 0 {
		fmt.Println("FAIL: fewer than 99% of the long-lived connections survived, or a new connection failed")
		return 1
	}
	fmt.Println("PASS")
	return 0
}

func run(ctx context.Context, daemon string, verbose bool, timeout time.Duration) int {
	start := time.Now()
	logf := func(f string, a ...any) { fmt.Printf(f+"\n", a...) }
	fmt.Printf("lvsd lab: NAT director pair with %s (reference config, lab copy)\n", daemon)
	img, err := lab.Build(ctx, lab.BuildOptions{Logf: logf})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Printf("lab: image ready in %v (kernel %s, %s)\n", img.BuildTime.Round(time.Millisecond), img.KernelVersion, img.Accel)
	sc, err := lab.NATFailover(daemon)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	sc.Console = &narrator{all: verbose}
	sc.Timeout = timeout
	res, err := img.Run(ctx, sc)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		if !verbose {
			fmt.Fprintln(os.Stderr, "console tail:")
			l := strings.Split(res.Console, "\n")
			if len(l) > 30 {
				l = l[len(l)-30:]
			}
			fmt.Fprintln(os.Stderr, strings.Join(l, "\n"))
		}
		return 1
	}
	fails, sum := lab.CheckNATFailover(res)
	fmt.Println()
	fmt.Println("summary")
	fmt.Printf("  timings: image %v, VM boot %v (%s), scenario %v, total %v\n", img.BuildTime.Round(time.Millisecond),
		res.Boot.Round(time.Millisecond), res.Accel, res.Scenario.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	fmt.Printf("  rr spread, both real servers up: %v\n", sum.Phases["p1"].Answers)
	p2, p4 := sum.Loops["p2"], sum.Loops["p4"]
	fmt.Printf("  real server rs2 fails: removed by the health checks after %.2fs; %d of %d looped requests failed, longest gap %d ms; then answers %v\n",
		sum.Waits["p2: health checks removed rs2 on dirA and dirB"], p2.Failed, p2.Requests, p2.LongestGapMS, sum.Phases["p2"].Answers)
	fmt.Printf("  master dirA fails: dirB held both VIPs after %.2fs; client-visible outage %d ms (%d of %d looped requests failed); then answers %v\n",
		sum.Waits["p4: dirB holds both VIPs"], p4.LongestGapMS, p4.Failed, p4.Requests, sum.Phases["p4"].Answers)
	if len(fails) > 0 {
		fmt.Printf("FAIL: %d expectation(s) not met:\n", len(fails))
		for _, f := range fails {
			fmt.Println("  - " + f)
		}
		return 1
	}
	fmt.Println("PASS: the director pair behaved as the reference keepalived pair must")
	return 0
}
