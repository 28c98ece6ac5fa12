package vrrp

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lvsd/lvsd/vrrp/advert"
)

// Acceptance tests with the built lvsd binary ("lvsd -P -n -l -f conf -p
// pid") running in network namespaces. LVSD_BIN names a prebuilt binary;
// otherwise the test builds the module's main package once.

var lvsdBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func lvsdBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LVSD_BIN"); p != "" {
		return p
	}
	lvsdBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "lvsd-bin")
		if err != nil {
			lvsdBuild.err = err
			return
		}
		lvsdBuild.dir = dir
		lvsdBuild.path = filepath.Join(dir, "lvsd")
		cmd := exec.Command("go", "build", "-o", lvsdBuild.path, ".")
		cmd.Dir = ".." // the module root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			lvsdBuild.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if lvsdBuild.err != nil {
		t.Fatal(lvsdBuild.err)
	}
	return lvsdBuild.path
}

type lvsdProc struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuf
	done chan struct{}
	conf string
}

// startLvsd runs the lvsd binary in ns ("": the test's own namespace) with
// the configuration text, and args before the usual options.
func startLvsd(t *testing.T, ns, name, confText string, args ...string) *lvsdProc {
	t.Helper()
	bin := lvsdBinary(t)
	dir := t.TempDir()
	cf := filepath.Join(dir, name+".conf")
	if err := os.WriteFile(cf, []byte(confText), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &lvsdProc{name: name, out: &lockedBuf{}, done: make(chan struct{}), conf: cf}
	argv := append([]string{"ip", "netns", "exec", ns, bin}, args...)
	if ns == "" {
		argv = append([]string{bin}, args...)
	}
	argv = append(argv, "-P", "-n", "-l", "-f", cf, "-p", filepath.Join(dir, name+".pid"))
	if !slices.Contains(args, "--metrics-listen") {
		argv = append(argv, "--metrics-listen", "")
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			fmt.Fprintf(os.Stderr, "--- lvsd %s output:\n%s", name, p.out.String())
		}
	})
	return p
}

func (p *lvsdProc) signal(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }

// rewrite replaces the configuration file (for a SIGHUP).
func (p *lvsdProc) rewrite(t *testing.T, confText string) {
	t.Helper()
	if err := os.WriteFile(p.conf, []byte(confText), 0o600); err != nil {
		t.Fatal(err)
	}
}

var transitionRE = regexp.MustCompile(`msg="\(\S+\) Entering [A-Z]+ STATE".* instance=(\S+) from=(\S+) to=(\S+)`)

type logTransition struct{ instance, from, to string }

func (p *lvsdProc) transitions() []logTransition {
	var out []logTransition
	sc := bufio.NewScanner(strings.NewReader(p.out.String()))
	for sc.Scan() {
		if m := transitionRE.FindStringSubmatch(sc.Text()); m != nil {
			out = append(out, logTransition{m[1], m[2], m[3]})
		}
	}
	return out
}

// state returns the last state logged for the instance ("" if none).
func (p *lvsdProc) state(inst string) string {
	s := ""
	for _, tr := range p.transitions() {
		if tr.instance == inst {
			s = tr.to
		}
	}
	return s
}

func (p *lvsdProc) waitState(t *testing.T, inst, state string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if p.state(inst) == state {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("lvsd %s exited", p.name)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("lvsd %s: %s not %s after %v (transitions %v)", p.name, inst, state, d, p.transitions())
}

func hasAddr(t *testing.T, ns, dev, addr string) bool {
	out := ipCmd(t, "-n", ns, "-4", "-o", "addr", "show", "dev", dev)
	return strings.Contains(out, " "+addr+"/")
}

func lvsdConf(prio int, extra string, vips ...string) string {
	if len(vips) == 0 {
		vips = []string{"192.0.2.100/24"}
	}
	return fmt.Sprintf(`global_defs {
  router_id lvsd%d
  vrrp_garp_master_delay 2
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority %d
  advert_int 1
  authentication {
    auth_type PASS
    auth_pass s3cret
  }
  virtual_ipaddress {
    %s
  }
%s}
`, prio, prio, strings.Join(vips, "\n    "), extra)
}

func advertsFrom(frames []vrrpFrame, src netip.Addr) []vrrpFrame {
	var out []vrrpFrame
	for _, f := range frames {
		if f.src == src {
			out = append(out, f)
		}
	}
	return out
}

// Two lvsd directors on a bridge: exactly one MASTER, the VIP only on it,
// its GARPs and its adverts every advert_int with TTL 255 on the wire; the
// backup stays silent.
func TestLvsdTwoDirectors(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	capA := startCapture(t, n.br, "va")
	a := startLvsd(t, n.a, "A", lvsdConf(150, ""))
	b := startLvsd(t, n.b, "B", lvsdConf(100, ""))
	a.waitState(t, "VI_1", "MASTER", 6*time.Second)
	mastered := time.Now()
	time.Sleep(5 * time.Second)
	if s := b.state("VI_1"); s != "BACKUP" {
		t.Fatalf("B is %q", s)
	}
	if !hasAddr(t, n.a, "eth0", "192.0.2.100") || hasAddr(t, n.b, "eth0", "192.0.2.100") {
		t.Fatalf("VIP not only on the master:\nA %s\nB %s", n.addrs(t, n.a), n.addrs(t, n.b))
	}
	frames, arps := capA.snapshot()
	fromA := advertsFrom(frames, netip.MustParseAddr("192.0.2.1"))
	if len(fromA) < 5 {
		t.Fatalf("%d adverts from A", len(fromA))
	}
	for i, f := range fromA {
		if f.ttl != 255 || f.adv.Priority != 150 || f.adv.VRID != 51 || f.adv.AuthType != advert.AuthPass {
			t.Fatalf("advert %d: ttl %d %+v", i, f.ttl, f.adv)
		}
		if i > 0 {
			if gap := f.at.Sub(fromA[i-1].at); gap < 900*time.Millisecond || gap > 1100*time.Millisecond {
				t.Fatalf("advert gap %v, want advert_int 1s", gap)
			}
		}
	}
	if fromB := advertsFrom(frames, netip.MustParseAddr("192.0.2.2")); len(fromB) != 0 {
		t.Fatalf("the backup sent %d adverts", len(fromB))
	}
	garps := 0
	vip := netip.MustParseAddr("192.0.2.100")
	for _, f := range arps {
		if f.sender == vip && f.target == vip && f.bcastTo {
			garps++
		}
	}
	// garp_master_repeat 5, twice (garp_master_delay 2).
	if garps != 10 {
		t.Fatalf("%d GARPs for the VIP, want 10", garps)
	}
	t.Logf("A MASTER; %d adverts, %d GARPs captured in %v", len(fromA), garps, time.Since(mastered).Round(time.Millisecond))
}

// SIGTERM: the master sends priority 0 and drops its VIP, the backup takes
// over within Skew_Time + 5ms; the old master comes back with a higher
// priority and preempts, unless nopreempt.
func TestLvsdSIGTERMAndPreempt(t *testing.T) {
	requireIntegration(t)
	for _, nopreempt := range []bool{false, true} {
		t.Run(fmt.Sprintf("nopreempt=%v", nopreempt), func(t *testing.T) {
			extra := ""
			if nopreempt {
				extra = "  nopreempt\n"
			}
			n := newTestNet(t)
			capB := startCapture(t, n.br, "vb")
			a := startLvsd(t, n.a, "A", lvsdConf(150, extra))
			b := startLvsd(t, n.b, "B", lvsdConf(100, extra))
			a.waitState(t, "VI_1", "MASTER", 6*time.Second)
			b.waitState(t, "VI_1", "BACKUP", time.Second)
			time.Sleep(1500 * time.Millisecond)

			a.signal(syscall.SIGTERM)
			select {
			case <-a.done:
			case <-time.After(5 * time.Second):
				t.Fatal("lvsd A did not exit on SIGTERM")
			}
			if hasAddr(t, n.a, "eth0", "192.0.2.100") {
				t.Fatal("VIP left on the stopped master")
			}
			b.waitState(t, "VI_1", "MASTER", 3*time.Second)
			waitFor(t, time.Second, "VIP on B", func() bool { return hasAddr(t, n.b, "eth0", "192.0.2.100") })
			frames, _ := capB.snapshot()
			var prio0, firstB time.Time
			for _, f := range frames {
				switch {
				case f.src.String() == "192.0.2.1" && f.adv.Priority == 0:
					prio0 = f.at
				case f.src.String() == "192.0.2.2" && !prio0.IsZero() && firstB.IsZero():
					firstB = f.at
				}
			}
			if prio0.IsZero() || firstB.IsZero() {
				t.Fatalf("priority 0 at %v, B's first advert at %v", prio0, firstB)
			}
			skew := time.Duration(256-100) * time.Second / 256
			took := firstB.Sub(prio0)
			t.Logf("SIGTERM: B's first advert %v after A's priority 0 (Skew_Time %v)", took, skew)
			if took < skew-20*time.Millisecond || took > skew+5*time.Millisecond {
				t.Fatalf("takeover %v after priority 0, want Skew_Time %v + at most 5ms", took, skew)
			}

			// A comes back with the higher priority.
			a2 := startLvsd(t, n.a, "A2", lvsdConf(150, extra))
			a2.waitState(t, "VI_1", "BACKUP", 2*time.Second)
			if nopreempt {
				time.Sleep(6 * time.Second) // > Master_Down_Interval
				if s := a2.state("VI_1"); s != "BACKUP" || b.state("VI_1") != "MASTER" {
					t.Fatalf("nopreempt: A %s, B %s", s, b.state("VI_1"))
				}
				if !hasAddr(t, n.b, "eth0", "192.0.2.100") || hasAddr(t, n.a, "eth0", "192.0.2.100") {
					t.Fatal("nopreempt: the VIP moved")
				}
				return
			}
			a2.waitState(t, "VI_1", "MASTER", 6*time.Second)
			b.waitState(t, "VI_1", "BACKUP", 2*time.Second)
			waitFor(t, time.Second, "VIP back on A", func() bool {
				return hasAddr(t, n.a, "eth0", "192.0.2.100") && !hasAddr(t, n.b, "eth0", "192.0.2.100")
			})
		})
	}
}

// -V (--dont-release-vrrp): on SIGTERM a MASTER leaves its VIP and its
// virtual_routes in place and, as keepalived, sends no priority 0 advert.
func TestLvsdDontReleaseVRRP(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	capA := startCapture(t, n.br, "va")
	a := startLvsd(t, n.a, "A", lvsdConf(150, "  virtual_routes {\n    198.51.100.0/24 via 192.0.2.254\n  }\n"), "-V")
	a.waitState(t, "VI_1", "MASTER", 6*time.Second)
	waitFor(t, time.Second, "VIP on A", func() bool { return hasAddr(t, n.a, "eth0", "192.0.2.100") })
	const route = "198.51.100.0/24 via 192.0.2.254"
	hasRoute := func() bool { return strings.Contains(ipCmd(t, "-n", n.a, "-4", "route", "show"), route) }
	waitFor(t, time.Second, "route on A", hasRoute)

	a.signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(5 * time.Second):
		t.Fatal("lvsd A did not exit on SIGTERM")
	}
	if !hasAddr(t, n.a, "eth0", "192.0.2.100") {
		t.Fatalf("-V: VIP released on stop:\n%s", n.addrs(t, n.a))
	}
	if !hasRoute() {
		t.Fatalf("-V: route released on stop:\n%s", ipCmd(t, "-n", n.a, "-4", "route", "show"))
	}
	time.Sleep(100 * time.Millisecond)
	frames, _ := capA.snapshot()
	for _, f := range advertsFrom(frames, netip.MustParseAddr("192.0.2.1")) {
		if f.adv.Priority == 0 {
			t.Fatal("-V: priority 0 advert sent on stop")
		}
	}
}

// A MASTER reloads (SIGHUP) with one more VIP: the VIP appears, no
// transition, no GARP for the VIP it already had.
func TestLvsdReloadAddsVIP(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	capA := startCapture(t, n.br, "va")
	a := startLvsd(t, n.a, "A", lvsdConf(150, ""))
	a.waitState(t, "VI_1", "MASTER", 6*time.Second)
	time.Sleep(3 * time.Second) // both GARP bursts are over
	before := len(a.transitions())
	_, arps := capA.snapshot()
	oldGARPs := len(arps)
	a.rewrite(t, lvsdConf(150, "", "192.0.2.100/24", "192.0.2.101/24"))
	reloaded := time.Now()
	a.signal(syscall.SIGHUP)
	waitFor(t, 3*time.Second, "new VIP", func() bool { return hasAddr(t, n.a, "eth0", "192.0.2.101") })
	t.Logf("new VIP up %v after SIGHUP", time.Since(reloaded).Round(time.Millisecond))
	time.Sleep(3 * time.Second)
	if tr := a.transitions(); len(tr) != before {
		t.Fatalf("transitions on reload: %v", tr[before:])
	}
	if !hasAddr(t, n.a, "eth0", "192.0.2.100") {
		t.Fatal("old VIP gone")
	}
	frames, arps := capA.snapshot()
	var newG int
	for _, f := range arps[oldGARPs:] {
		switch f.sender.String() {
		case "192.0.2.100":
			t.Fatalf("GARP for the unchanged VIP after the reload at %v", f.at.Sub(reloaded))
		case "192.0.2.101":
			newG++
		}
	}
	if newG == 0 {
		t.Fatal("the new VIP was not announced")
	}
	last := frames[len(frames)-1]
	if len(last.adv.Addrs) != 2 || last.adv.Priority != 150 {
		t.Fatalf("adverts after reload: %+v", last.adv)
	}
	for _, f := range frames {
		if f.at.After(reloaded) && f.adv.Priority == 0 {
			t.Fatal("priority 0 sent on reload")
		}
	}
	// A removed instance stops: priority 0, its VIPs released.
	a.rewrite(t, "global_defs {\n  router_id x\n}\n")
	a.signal(syscall.SIGHUP)
	waitFor(t, 3*time.Second, "VIPs released", func() bool {
		return !hasAddr(t, n.a, "eth0", "192.0.2.100") && !hasAddr(t, n.a, "eth0", "192.0.2.101")
	})
	waitFor(t, 2*time.Second, "priority 0", func() bool {
		frames, _ := capA.snapshot()
		return frames[len(frames)-1].adv.Priority == 0
	})
}

// A reload bringing the first VRRP instance into a configuration that had
// none starts VRRP, as a restart would: the engine built at start idled
// until then (no advert, no VIP), and the reload only applies.
func TestLvsdReloadStartsVRRP(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	capA := startCapture(t, n.br, "va")
	a := startLvsd(t, n.a, "A", "global_defs {\n  router_id lvsd1\n}\n")
	time.Sleep(time.Second)
	if frames, _ := capA.snapshot(); len(frames) != 0 || hasAddr(t, n.a, "eth0", "192.0.2.100") {
		t.Fatal("VRRP runs without an instance")
	}
	a.rewrite(t, lvsdConf(150, ""))
	a.signal(syscall.SIGHUP)
	a.waitState(t, "VI_1", "MASTER", 6*time.Second)
	waitFor(t, 3*time.Second, "the VIP", func() bool { return hasAddr(t, n.a, "eth0", "192.0.2.100") })
	waitFor(t, 3*time.Second, "adverts", func() bool {
		frames, _ := capA.snapshot()
		return len(frames) > 0 && frames[len(frames)-1].adv.Priority == 150
	})
}

// Split brain: the bridge is partitioned, both become MASTER; healed, one
// MASTER remains within 3 adverts.
func TestLvsdSplitBrainHeal(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	a := startLvsd(t, n.a, "A", lvsdConf(150, ""))
	b := startLvsd(t, n.b, "B", lvsdConf(100, ""))
	a.waitState(t, "VI_1", "MASTER", 6*time.Second)
	b.waitState(t, "VI_1", "BACKUP", time.Second)
	ipCmd(t, "-n", n.br, "link", "set", "vb", "nomaster")
	b.waitState(t, "VI_1", "MASTER", 6*time.Second)
	if a.state("VI_1") != "MASTER" || !hasAddr(t, n.a, "eth0", "192.0.2.100") || !hasAddr(t, n.b, "eth0", "192.0.2.100") {
		t.Fatal("not split: both should be MASTER with the VIP")
	}
	ipCmd(t, "-n", n.br, "link", "set", "vb", "master", "br0")
	healed := time.Now()
	b.waitState(t, "VI_1", "BACKUP", 3*time.Second)
	waitFor(t, 500*time.Millisecond, "VIP gone from B", func() bool { return !hasAddr(t, n.b, "eth0", "192.0.2.100") })
	t.Logf("split brain healed %v after the bridge came back", time.Since(healed).Round(time.Millisecond))
	time.Sleep(3 * time.Second)
	if a.state("VI_1") != "MASTER" || b.state("VI_1") != "BACKUP" || !hasAddr(t, n.a, "eth0", "192.0.2.100") {
		t.Fatalf("after heal: A %s B %s", a.state("VI_1"), b.state("VI_1"))
	}
}

// The reference NAT pair (two instances on eth0/eth1 in one sync group):
// eth1 going down on the master moves both VIPs together.
func TestLvsdNATPairSyncGroup(t *testing.T) {
	requireIntegration(t)
	nsSeq.Lock()
	nsSeq.n++
	p := fmt.Sprintf("lvsdn%d-%d", os.Getpid()%100000, nsSeq.n)
	nsSeq.Unlock()
	nsA, nsB, nsBr := p+"a", p+"b", p+"br"
	for _, ns := range []string{nsA, nsB, nsBr} {
		ipCmd(t, "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	for _, br := range []string{"br0", "br1"} {
		ipCmd(t, "-n", nsBr, "link", "add", br, "type", "bridge")
		ipCmd(t, "-n", nsBr, "link", "set", br, "up")
	}
	for _, x := range []struct{ ns, port, dev, br, addr string }{
		{nsA, "a0", "eth0", "br0", "192.0.2.1/24"}, {nsA, "a1", "eth1", "br1", "198.51.100.1/24"},
		{nsB, "b0", "eth0", "br0", "192.0.2.2/24"}, {nsB, "b1", "eth1", "br1", "198.51.100.2/24"},
	} {
		ipCmd(t, "-n", nsBr, "link", "add", x.port, "type", "veth", "peer", "name", x.dev, "netns", x.ns)
		ipCmd(t, "-n", nsBr, "link", "set", x.port, "master", x.br, "up")
		ipCmd(t, "-n", x.ns, "addr", "add", x.addr, "dev", x.dev)
		ipCmd(t, "-n", x.ns, "link", "set", x.dev, "up")
		ipCmd(t, "-n", x.ns, "link", "set", "lo", "up")
	}
	load := func(name string) string {
		b, err := os.ReadFile(filepath.Join("/work/shared/corpus/reference", name))
		if err != nil {
			b, err = os.ReadFile(filepath.Join("..", "..", "shared", "corpus", "reference", name))
		}
		if err != nil {
			t.Fatalf("reference configuration: %v", err)
		}
		// Documentation ranges; no mail server in the namespaces.
		s := strings.NewReplacer(
			"192.168.1.1", "192.0.2.100", "10.0.0.100", "198.51.100.100",
			"10.0.0.71", "198.51.100.71", "10.0.0.72", "198.51.100.72",
			"smtp_server localhost", "smtp_server 127.0.0.1",
		).Replace(string(b))
		return s
	}
	a := startLvsd(t, nsA, "primary", load("nat-primary.conf"))
	b := startLvsd(t, nsB, "backup", load("nat-backup.conf"))
	for _, inst := range []string{"external", "internal"} {
		a.waitState(t, inst, "MASTER", 6*time.Second)
		b.waitState(t, inst, "BACKUP", 2*time.Second)
	}
	waitFor(t, time.Second, "VIPs on the primary", func() bool {
		return hasAddr(t, nsA, "eth0", "192.0.2.100") && hasAddr(t, nsA, "eth1", "198.51.100.100")
	})
	time.Sleep(2 * time.Second)
	if hasAddr(t, nsB, "eth0", "192.0.2.100") || hasAddr(t, nsB, "eth1", "198.51.100.100") {
		t.Fatal("VIPs on the backup")
	}
	ipCmd(t, "-n", nsA, "link", "set", "eth1", "down")
	down := time.Now()
	a.waitState(t, "internal", "FAULT", 2*time.Second)
	a.waitState(t, "external", "FAULT", time.Second)
	for _, inst := range []string{"external", "internal"} {
		b.waitState(t, inst, "MASTER", 3*time.Second)
	}
	waitFor(t, time.Second, "both VIPs on the backup", func() bool {
		return hasAddr(t, nsB, "eth0", "192.0.2.100") && hasAddr(t, nsB, "eth1", "198.51.100.100")
	})
	t.Logf("eth1 down on the primary: both VIPs on the backup after %v", time.Since(down).Round(time.Millisecond))
	if hasAddr(t, nsA, "eth0", "192.0.2.100") {
		t.Fatal("the external VIP stayed on the faulty primary")
	}
	// eth1 back: the primary (200) preempts again, both instances together.
	ipCmd(t, "-n", nsA, "link", "set", "eth1", "up")
	for _, inst := range []string{"external", "internal"} {
		a.waitState(t, inst, "MASTER", 8*time.Second)
		b.waitState(t, inst, "BACKUP", 2*time.Second)
	}
}

// The lvsd binary runs notify scripts (MASTER, then STOP on SIGTERM, as
// script_user) and a vrrp_script whose failure lowers the advertised
// priority.
func TestLvsdNotifyAndTrackScript(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	capA := startCapture(t, n.br, "va")
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	for d := filepath.Dir(dir); d != "/"; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			_ = os.Chmod(d, fi.Mode().Perm()|0o005)
			restore := fi.Mode().Perm()
			t.Cleanup(func() { _ = os.Chmod(d, restore) })
		}
	}
	out := filepath.Join(dir, "notify.out")
	script := filepath.Join(dir, "notify.sh")
	if err := os.WriteFile(script, []byte(fmt.Sprintf("#!/bin/sh\necho \"$(id -un) $*\" >> %s\n", out)), 0o755); err != nil {
		t.Fatal(err)
	}
	okFile := filepath.Join(dir, "ok")
	if err := os.WriteFile(okFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`global_defs {
  router_id lvsdA
  script_user nobody
  enable_script_security
}
vrrp_script chk {
  script "/usr/bin/test -e %s"
  interval 0.2
  fall 2
  rise 2
  weight -60
}
`, okFile) + lvsdConf(150, fmt.Sprintf("  track_script {\n    chk\n  }\n  notify %s\n  notify_stop \"%s stop-arg\"\n", script, script))
	a := startLvsd(t, n.a, "A", conf)
	a.waitState(t, "VI_1", "MASTER", 6*time.Second)
	waitFor(t, 2*time.Second, "notify MASTER", func() bool {
		b, _ := os.ReadFile(out)
		return strings.Contains(string(b), "nobody INSTANCE VI_1 MASTER 150\n")
	})
	prio := func() uint8 {
		frames, _ := capA.snapshot()
		if len(frames) == 0 {
			return 0
		}
		return frames[len(frames)-1].adv.Priority
	}
	os.Remove(okFile)
	waitFor(t, 3*time.Second, "priority 90 after the script fails", func() bool { return prio() == 90 })
	if err := os.WriteFile(okFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "priority 150 after the script recovers", func() bool { return prio() == 150 })
	a.signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(5 * time.Second):
		t.Fatal("lvsd did not stop")
	}
	b, _ := os.ReadFile(out)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	want := []string{"nobody INSTANCE VI_1 BACKUP 150", "nobody INSTANCE VI_1 MASTER 150", "nobody stop-arg", "nobody INSTANCE VI_1 STOP 150"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Fatalf("notifications:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// Restart after kill -9: the killed MASTER leaves its VIP on eth0 (nothing
// ran to remove it) while the BACKUP takes over. Restarted with nopreempt,
// it stays BACKUP and removes the leftover VIP: once the pair has settled
// the VIP is on one director only, the one that is MASTER.
func TestLvsdRestartAfterKill(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	confA := lvsdConf(150, "  nopreempt\n")
	a := startLvsd(t, n.a, "A", confA)
	b := startLvsd(t, n.b, "B", lvsdConf(100, ""))
	a.waitState(t, "VI_1", "MASTER", 6*time.Second)
	b.waitState(t, "VI_1", "BACKUP", time.Second)
	a.signal(syscall.SIGKILL)
	<-a.done
	b.waitState(t, "VI_1", "MASTER", 6*time.Second)
	if !hasAddr(t, n.a, "eth0", "192.0.2.100") {
		t.Fatal("the killed master's VIP is already gone: nothing to adopt (the test needs the leftover)")
	}
	a2 := startLvsd(t, n.a, "A2", confA)
	a2.waitState(t, "VI_1", "BACKUP", 6*time.Second)
	waitFor(t, 2*time.Second, "leftover VIP removed from the restarted backup", func() bool { return !hasAddr(t, n.a, "eth0", "192.0.2.100") })
	// Settled: B stays MASTER with the VIP, A2 BACKUP without it.
	time.Sleep(4 * time.Second)
	if a2.state("VI_1") != "BACKUP" || b.state("VI_1") != "MASTER" {
		t.Fatalf("after the restart: A %s, B %s; want BACKUP and MASTER (nopreempt)", a2.state("VI_1"), b.state("VI_1"))
	}
	if hasAddr(t, n.a, "eth0", "192.0.2.100") || !hasAddr(t, n.b, "eth0", "192.0.2.100") {
		t.Fatal("the VIP is not on the MASTER alone after the restart")
	}
}
