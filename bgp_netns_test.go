package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvsd/lvsd/integration/lab"
	"github.com/lvsd/lvsd/ipvs"
	"github.com/lvsd/lvsd/status"
)

// TestBGPHelperProcess is not a test: it is lvsd (serve, signals, control
// socket, metrics) run by TestNetnsBGPBird in a director's namespace, on
// an in-memory IPVS table (the host kernel has no IPVS). Its arguments
// follow "--".
func TestBGPHelperProcess(t *testing.T) {
	if os.Getenv("LVSD_BGP_HELPER") == "" {
		t.Skip("helper process of TestNetnsBGPBird")
	}
	k := newMemKernel()
	serveKernel = func() (ipvs.Kernel, error) { return k, nil }
	args := flag.Args()
	os.Exit(run(args[0], args[1:], os.Stdout, os.Stderr))
}

// bgpVSBody is the body of the test's virtual servers: mh, DR, a real
// server checked by TCP_CHECK at the director's listener.
const bgpVSBody = `  lb_algo mh
  lb_kind DR
  delay_loop 1
  real_server 127.0.0.1 8080 {
    TCP_CHECK {
      connect_timeout 1
      retry 0
    }
  }
}
`

const bgpDirectorConf = "virtual_server 203.0.113.10 80 {\n  protocol TCP\n" + bgpVSBody + `bgp {
  router_id %s
  local_as 65001
  drain_time %s
  community 65001:%d
  neighbor 192.0.2.1 {
    remote_as 65000
    hold_time 3
  }
  announce {
    203.0.113.10
  }
}
`

// bgpLab is a router namespace running BIRD 2 and two lvsd directors
// peering with it over a bridge.
type bgpLab struct {
	t       *testing.T
	net     *opsNet
	sock    string // birdc's socket
	ctlSock map[string]string
	listen  map[string]net.Listener // the real server of each director
}

var viaRE = regexp.MustCompile(`via (\S+)`)

// nextHops are the next hops of the router's kernel route to the VIP.
func (l *bgpLab) nextHops() []string {
	out, _ := exec.Command("ip", "-n", l.net.a, "route", "show", "203.0.113.10/32").CombinedOutput()
	var hops []string
	for _, m := range viaRE.FindAllStringSubmatch(string(out), -1) {
		hops = append(hops, m[1])
	}
	slices.Sort(hops)
	return hops
}

func (l *bgpLab) birdc(args ...string) string {
	out, _ := exec.Command("birdc", append([]string{"-s", l.sock}, args...)...).CombinedOutput()
	return string(out)
}

// waitHops waits until the kernel route's next hops are want; it returns
// how long that took.
func (l *bgpLab) waitHops(want []string, timeout time.Duration) time.Duration {
	l.t.Helper()
	t0 := time.Now()
	for !slices.Equal(l.nextHops(), want) {
		if time.Since(t0) > timeout {
			l.t.Fatalf("router's next hops to 203.0.113.10: %v after %v, want %v\n%s", l.nextHops(), timeout, want, l.birdc("show", "protocols", "all"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(t0)
}

// realServer opens (up) or closes the listener the director's TCP_CHECK
// connects to, in its namespace.
func (l *bgpLab) realServer(ns string, up bool) {
	l.t.Helper()
	if !up {
		l.listen[ns].Close()
		return
	}
	err := inNetns(ns, func() error {
		ln, err := net.Listen("tcp", "127.0.0.1:8080")
		if err == nil {
			l.listen[ns] = ln
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
		return err
	})
	if err != nil {
		l.t.Fatal(err)
	}
}

func (l *bgpLab) startDirector(ns, addr, drain string, community int) *director {
	l.t.Helper()
	return l.startDirectorText(ns, fmt.Sprintf(bgpDirectorConf, addr, drain, community), "-C")
}

// startDirectorText runs the helper lvsd in ns with the configuration
// text and its control socket in a directory of its own.
func (l *bgpLab) startDirectorText(ns, text string, extra ...string) *director {
	l.t.Helper()
	l.ctlSock[ns] = filepath.Join(l.t.TempDir(), "ctl")
	return startDirectorConf(l.t, "lvsd", ns, ns, text, append(extra, "--ctl-socket", l.ctlSock[ns]),
		os.Args[0], "-test.run=^TestBGPHelperProcess$", "--")
}

// ctl runs lvsd ctl against ns's director.
func (l *bgpLab) ctl(ns string, args ...string) string {
	l.t.Helper()
	var stdout, stderr strings.Builder
	if code := runCtl(append([]string{"--socket", l.ctlSock[ns]}, args...), &stdout, &stderr); code != ctlOK {
		l.t.Fatalf("lvsd ctl %v: exit %d: %s %s", args, code, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// peerSince is when the director's session with the router was
// established (lvsd ctl status --json).
func (l *bgpLab) peerSince(ns string) time.Time {
	l.t.Helper()
	var st status.Status
	if err := json.Unmarshal([]byte(l.ctl(ns, "status", "--json")), &st); err != nil || st.BGP == nil || len(st.BGP.Peers) != 1 {
		l.t.Fatalf("status: %v %+v", err, st.BGP)
	}
	return st.BGP.Peers[0].Since
}

// birdSince is BIRD's "since" of protocol p.
func (l *bgpLab) birdSince(p string) string {
	for _, line := range strings.Split(l.birdc("show", "protocols", p), "\n") {
		if f := strings.Fields(line); len(f) >= 6 && f[0] == p {
			return f[4] + " " + f[5]
		}
	}
	return ""
}

// TestNetnsBGPBird: BGP between lvsd and BIRD 2, a real router, in
// network namespaces: router a (192.0.2.1, BIRD with merge paths), and
// directors b (.2) and c (.3), each an lvsd process announcing
// 203.0.113.10 while its real server (a listener in its namespace) passes
// TCP_CHECK. Asserted in BIRD and in the router's kernel table: two ECMP
// next hops; one withdrawn on its director's quorum loss and back with
// it; lvsd ctl drain puts GRACEFUL_SHUTDOWN (65535:0) on the route and
// withdraws it after drain_time, enable brings it back; a graceful stop
// (SIGTERM, drain_time 0) withdraws within 1 s; kill -9 within the hold
// time (3 s), and so when the director is frozen (SIGSTOP: no Cease, no
// FIN, only the router's hold timer); a restarted director is a next hop
// again; a reload changing the announcement keeps the session; with
// vrrp_master, the route is there only while the instance is MASTER.
func TestNetnsBGPBird(t *testing.T) {
	if os.Getenv("LVSD_INTEGRATION") == "" {
		t.Skip("netns test: set LVSD_INTEGRATION=1 (needs root and BIRD 2: scripts/deps.sh)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("LVSD_INTEGRATION is set but the test is not running as root")
	}
	if _, err := exec.LookPath("bird"); err != nil {
		t.Fatal("BIRD 2 is not installed (bird2: scripts/deps.sh)")
	}
	t.Setenv("LVSD_BGP_HELPER", "1")
	l := &bgpLab{t: t, net: newOpsNet(t), ctlSock: map[string]string{}, listen: map[string]net.Listener{}}
	r, d1, d2 := l.net.a, l.net.b, l.net.c
	dir := t.TempDir()
	l.sock = filepath.Join(dir, "bird.ctl")
	if err := os.WriteFile(filepath.Join(dir, "bird.conf"), []byte(lab.BirdRouter("192.0.2.1", map[string]string{"d1": "192.0.2.2", "d2": "192.0.2.3"})), 0o644); err != nil {
		t.Fatal(err)
	}
	bird := exec.Command("ip", "netns", "exec", r, "bird", "-f", "-c", filepath.Join(dir, "bird.conf"), "-s", l.sock, "-P", filepath.Join(dir, "bird.pid"))
	birdOut := &lockedBuffer{}
	bird.Stdout, bird.Stderr = birdOut, birdOut
	if err := bird.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = bird.Process.Kill()
		_ = bird.Wait()
		if t.Failed() {
			t.Logf("bird:\n%s", birdOut.String())
		}
	})
	for _, ns := range []string{d1, d2} {
		l.realServer(ns, true)
	}
	t.Cleanup(func() {
		for _, ln := range l.listen {
			ln.Close()
		}
	})
	a := l.startDirector(d1, "192.0.2.2", "1", 1)
	b := l.startDirector(d2, "192.0.2.3", "0", 2)

	took := l.waitHops([]string{"192.0.2.2", "192.0.2.3"}, 30*time.Second)
	t.Logf("ECMP: two next hops in the router's kernel table %v after the start", took.Round(time.Millisecond))
	show := l.birdc("show", "route", "for", "203.0.113.10/32", "all")
	if strings.Count(show, "BGP.as_path: 65001\n") != 2 || !strings.Contains(show, "(65001,1)") || !strings.Contains(show, "(65001,2)") {
		t.Fatalf("birdc show route:\n%s", show)
	}
	if v := a.value(t, "lvsd_bgp_session_up", `neighbor="192.0.2.1"`); v != 1 {
		t.Fatalf("lvsd_bgp_session_up %v", v)
	}
	if v := a.value(t, "lvsd_bgp_prefixes_announced"); v != 1 {
		t.Fatalf("lvsd_bgp_prefixes_announced %v", v)
	}

	// A reload changing d1's community, not its neighbor: the route
	// changes, the session is not reset (lvsd's and BIRD's view).
	since, birdSince := l.peerSince(d1), l.birdSince("d1")
	if since.IsZero() || birdSince == "" {
		t.Fatalf("session since %v, BIRD %q", since, birdSince)
	}
	if err := os.WriteFile(a.conf, []byte(fmt.Sprintf(bgpDirectorConf, "192.0.2.2", "1", 11)), 0o644); err != nil {
		t.Fatal(err)
	}
	reloaded := time.Now()
	a.kill(syscall.SIGHUP)
	for !strings.Contains(l.birdc("show", "route", "for", "203.0.113.10/32", "protocol", "d1", "all"), "(65001,11)") {
		if time.Since(reloaded) > 10*time.Second {
			t.Fatalf("the reloaded community did not reach BIRD:\n%s", l.birdc("show", "route", "all"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s, bs := l.peerSince(d1), l.birdSince("d1"); !s.Equal(since) || bs != birdSince {
		t.Fatalf("the reload reset the session: lvsd since %v then %v, BIRD %q then %q", since, s, birdSince, bs)
	}
	t.Logf("reload (SIGHUP, new community): in BIRD after %v, session kept (established %v)", time.Since(reloaded).Round(time.Millisecond), since.Format(time.RFC3339))

	// Quorum lost on d1 only: its next hop goes, d2's stays.
	l.realServer(d1, false)
	took = l.waitHops([]string{"192.0.2.3"}, 20*time.Second)
	t.Logf("quorum lost on d1: withdrawn from the router %v after its real server closed", took.Round(time.Millisecond))
	if v := a.value(t, "lvsd_bgp_withdrawals_total"); v < 1 {
		t.Fatalf("lvsd_bgp_withdrawals_total %v", v)
	}
	l.realServer(d1, true)
	took = l.waitHops([]string{"192.0.2.2", "192.0.2.3"}, 20*time.Second)
	t.Logf("quorum back on d1: re-announced %v after its real server reopened", took.Round(time.Millisecond))

	// lvsd ctl drain on d1 (drain_time 1 s).
	t0 := time.Now()
	l.ctl(d1, "drain")
	for !strings.Contains(l.birdc("show", "route", "for", "203.0.113.10/32", "protocol", "d1", "all"), "(65535,0)") {
		if time.Since(t0) > 5*time.Second {
			t.Fatalf("no GRACEFUL_SHUTDOWN on d1's route:\n%s", l.birdc("show", "route", "all"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	gs := time.Since(t0)
	l.waitHops([]string{"192.0.2.3"}, 5*time.Second)
	withdrawn := time.Since(t0)
	t.Logf("lvsd ctl drain: GRACEFUL_SHUTDOWN in BIRD after %v, withdrawn after %v (drain_time 1 s)", gs.Round(time.Millisecond), withdrawn.Round(time.Millisecond))
	if withdrawn < time.Second {
		t.Fatalf("withdrawn %v after the drain, before drain_time", withdrawn)
	}
	l.ctl(d1, "enable")
	l.waitHops([]string{"192.0.2.2", "192.0.2.3"}, 10*time.Second)
	if strings.Contains(l.birdc("show", "route", "for", "203.0.113.10/32", "protocol", "d1", "all"), "(65535,0)") {
		t.Fatal("GRACEFUL_SHUTDOWN still on d1's route after enable")
	}

	// Graceful stop of d2 (drain_time 0): withdrawn within 1 s.
	t0 = time.Now()
	b.kill(syscall.SIGTERM)
	took = l.waitHops([]string{"192.0.2.2"}, 5*time.Second)
	t.Logf("SIGTERM on d2: withdrawn from the router's kernel table after %v", took.Round(time.Millisecond))
	if took > time.Second {
		t.Fatalf("graceful stop: withdrawn after %v, want within 1 s", took)
	}
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("d2 did not exit after SIGTERM")
	}
	if !strings.Contains(b.out.String(), "bgp: route withdrawn") {
		t.Fatalf("d2 did not withdraw before stopping:\n%s", b.out.String())
	}

	// d2 comes back: a next hop again.
	b2 := l.startDirector(d2, "192.0.2.3", "0", 2)
	took = l.waitHops([]string{"192.0.2.2", "192.0.2.3"}, 30*time.Second)
	t.Logf("d2 restarted: a next hop again after %v", took.Round(time.Millisecond))

	// kill -9 d1: gone within the hold time.
	t0 = time.Now()
	a.kill(syscall.SIGKILL)
	took = l.waitHops([]string{"192.0.2.3"}, 10*time.Second)
	t.Logf("kill -9 on d1: withdrawn from the router's kernel table after %v (hold time 3 s)", took.Round(time.Millisecond))
	if took > 3*time.Second {
		t.Fatalf("kill -9: withdrawn after %v, want within the hold time (3 s)", took)
	}

	// A director that goes silent without closing its sessions (frozen:
	// SIGSTOP; as a hung host or a cut link): the router's hold timer
	// withdraws its route.
	c := l.startDirector(d1, "192.0.2.2", "1", 1)
	l.waitHops([]string{"192.0.2.2", "192.0.2.3"}, 30*time.Second)
	t0 = time.Now()
	c.kill(syscall.SIGSTOP)
	defer c.kill(syscall.SIGCONT)
	took = l.waitHops([]string{"192.0.2.3"}, 10*time.Second)
	t.Logf("SIGSTOP on d1: withdrawn by BIRD's hold timer after %v (hold time 3 s)", took.Round(time.Millisecond))
	if took > 4*time.Second {
		t.Fatalf("silent director: withdrawn after %v, want within the hold time (3 s, plus 1 s of scheduling margin)", took)
	}
	c.kill(syscall.SIGCONT)
	c.kill(syscall.SIGKILL)

	// A hybrid: d2 announces only while its VRRP instance is MASTER.
	b2.kill(syscall.SIGTERM)
	l.waitHops(nil, 5*time.Second)
	hybrid := strings.Replace(fmt.Sprintf(bgpDirectorConf, "192.0.2.3", "0", 2), "  announce {", "  vrrp_master VI_1\n  announce {", 1) + `vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 100
  advert_int 1
  virtual_ipaddress {
    192.0.2.100/24
  }
}
`
	t0 = time.Now()
	h := l.startDirectorText(d2, hybrid)
	for {
		hops := l.nextHops()
		st := h.state(t)
		if len(hops) > 0 {
			if st != 2 {
				t.Fatalf("d2 announced (next hops %v) while VI_1 is %v, not MASTER", hops, st)
			}
			break
		}
		if time.Since(t0) > 30*time.Second {
			t.Fatalf("d2 never announced; VI_1 state %v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("hybrid: d2 announced once VI_1 became MASTER, %v after its start", time.Since(t0).Round(time.Millisecond))
	l.ctl(d2, "failover", "VI_1")
	took = l.waitHops(nil, 5*time.Second)
	t.Logf("hybrid: withdrawn %v after lvsd ctl failover VI_1 (BACKUP)", took.Round(time.Millisecond))

	// A virtual_server_group (an address range and an address) and an
	// fwmark virtual server: every member address in BIRD's table as a
	// /32, the fwmark one at the address its line names; withdrawn
	// together when their quorum goes.
	t0 = time.Now()
	l.startDirectorText(d1, bgpGroupConf)
	groupPrefixes := []string{"203.0.113.20/32", "203.0.113.21/32", "203.0.113.22/32", "203.0.113.40/32"}
	l.waitBirdPrefixes("d1", groupPrefixes, 30*time.Second)
	t.Logf("group and fwmark: %v in BIRD's table, %v after d1's start", groupPrefixes, time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	l.realServer(d1, false)
	l.waitBirdPrefixes("d1", nil, 20*time.Second)
	t.Logf("group and fwmark: all withdrawn %v after their quorum went", time.Since(t0).Round(time.Millisecond))
}

const bgpGroupConf = `virtual_server_group VSG_1 {
  203.0.113.20-21 80
  203.0.113.22 80
}
virtual_server group VSG_1 {
  protocol TCP
` + bgpVSBody + "virtual_server fwmark 7 {\n" + bgpVSBody + `bgp {
  router_id 192.0.2.2
  local_as 65001
  neighbor 192.0.2.1 {
    remote_as 65000
    hold_time 3
  }
  announce {
    group VSG_1
    203.0.113.40 fwmark 7
  }
}
`

var birdPrefixRE = regexp.MustCompile(`(?m)^(\d+\.\d+\.\d+\.\d+/\d+)\s`)

// waitBirdPrefixes waits until the prefixes BIRD has from protocol p are
// want (sorted).
func (l *bgpLab) waitBirdPrefixes(p string, want []string, timeout time.Duration) {
	l.t.Helper()
	t0 := time.Now()
	var got []string
	for {
		got = nil
		for _, m := range birdPrefixRE.FindAllStringSubmatch(l.birdc("show", "route", "protocol", p), -1) {
			got = append(got, m[1])
		}
		slices.Sort(got)
		if slices.Equal(got, want) {
			return
		}
		if time.Since(t0) > timeout {
			l.t.Fatalf("BIRD's prefixes from %s: %v after %v, want %v\n%s", p, got, timeout, want, l.birdc("show", "route", "all"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
