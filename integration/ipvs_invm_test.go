package integration_test

// The tests of this file run INSIDE the lab VM, on its real IPVS: the host
// test TestIPVSLab (ipvs_lab_test.go) builds this package's test binary,
// ships it into the VM and runs it with -test.run '^TestIPVSInVM' and
// LVSD_IPVS_INVM=1 in the director namespace dirA. On the host they skip.
//
// Every test starts and ends with an empty IPVS table, programs it with an
// ipvs.Reconciler over the real kernel (ipvs.NewKernel) from a
// keepalived.conf text, and compares the table read back through netlink
// with the expectation derived from the configuration. It also dumps
// `ipvsadm -Ln` (and --persistent-conn, --tun-info) with the configuration
// as /results/ipvs-case-NAME.* so that the host checks the same table
// through ipvsadm (an independent reader).

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/integration/lab"
	"github.com/lvsd/lvsd/ipvs"
)

// envInVM marks the lab VM run of this binary.
const envInVM = "LVSD_IPVS_INVM"

func inVMResults() string {
	if d := os.Getenv("LVSD_IPVS_RESULTS"); d != "" {
		return d
	}
	return "/results"
}

// vmKernel skips outside the VM; inside, it returns the real kernel with an
// empty table (emptied again at the end of the test).
func vmKernel(t *testing.T) ipvs.Kernel {
	t.Helper()
	if os.Getenv(envInVM) == "" {
		t.Skipf("runs inside the lab VM (TestIPVSLab sets %s)", envInVM)
	}
	k, err := ipvs.NewKernel()
	if err != nil {
		t.Fatalf("real kernel: %v", err)
	}
	if err := k.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	t.Cleanup(func() {
		k.Flush()
		for _, st := range []ipvs.SyncState{ipvs.SyncMaster, ipvs.SyncBackup} {
			k.StopSyncDaemon(st)
		}
		k.Close()
	})
	return k
}

func vmParse(t *testing.T, text string) *conf.Config {
	t.Helper()
	cfg, diags := conf.Parse("lab.conf", text, conf.Options{ConfigID: "lab"})
	for _, d := range diags {
		if d.Level >= conf.Error {
			t.Fatalf("config: %v", d)
		}
	}
	return cfg
}

// vmRec is a running reconciler.
type vmRec struct {
	t       *testing.T
	r       *ipvs.Reconciler
	cancel  context.CancelFunc
	done    chan error
	mu      sync.Mutex
	scripts []string
}

func startVMRec(t *testing.T, k ipvs.Kernel, cfg *conf.Config, opts ipvs.Options) *vmRec {
	t.Helper()
	v := &vmRec{t: t, done: make(chan error, 1)}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if opts.RepairInterval == 0 {
		opts.RepairInterval = -1
	}
	opts.RunScript = func(s *conf.Script) {
		v.mu.Lock()
		v.scripts = append(v.scripts, strings.Join(s.Args, " "))
		v.mu.Unlock()
	}
	v.r = ipvs.New(cfg, k, opts)
	ctx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	go func() { v.done <- v.r.Run(ctx) }()
	select {
	case <-v.r.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("reconciler not ready")
	}
	t.Cleanup(func() {
		if v.cancel != nil {
			v.stop()
		}
	})
	return v
}

func (v *vmRec) stop() {
	v.cancel()
	v.cancel = nil
	select {
	case err := <-v.done:
		if err != nil {
			v.t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		v.t.Fatal("Run did not return")
	}
}

func (v *vmRec) takeScripts() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := strings.Join(v.scripts, ";")
	v.scripts = nil
	return s
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// kernelTable reads the whole table back through netlink.
func kernelTable(t *testing.T, k ipvs.Reader) ipvs.Table {
	t.Helper()
	svcs, err := k.Services()
	if err != nil {
		t.Fatalf("services: %v", err)
	}
	tb := ipvs.Table{}
	for _, s := range svcs {
		ts := &ipvs.TableService{Service: s.Service, Dests: map[ipvs.DestKey]ipvs.Destination{}}
		dests, err := k.Destinations(s.ServiceKey)
		if err != nil {
			t.Fatalf("destinations of %s: %v", s.ServiceKey, err)
		}
		for _, d := range dests {
			ts.Dests[d.DestKey] = d.Destination
		}
		tb[s.ServiceKey] = ts
	}
	return tb
}

func wantKernel(t *testing.T, k ipvs.Reader, want string) {
	t.Helper()
	if got := kernelTable(t, k).String(); got != want {
		t.Errorf("kernel table (netlink):\n%s\nwant:\n%s", got, want)
	}
}

// wantConfigured checks the kernel against the table the configuration
// asks for with every real server healthy.
func wantConfigured(t *testing.T, k ipvs.Reader, cfg *conf.Config) {
	t.Helper()
	d := ipvs.ComputeDesired(cfg, nil)
	for _, p := range d.Problems {
		t.Errorf("configuration problem: %s", p)
	}
	wantKernel(t, k, d.Table.String())
}

func runCmd(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// dumpCase records the configuration and ipvsadm's view of the table for
// the host's cross-check.
func dumpCase(t *testing.T, name, confText string) {
	t.Helper()
	dir := inVMResults()
	os.WriteFile(filepath.Join(dir, "ipvs-case-"+name+".conf"), []byte(confText), 0o644)
	out := runCmd(t, "ipvsadm", "-Ln")
	os.WriteFile(filepath.Join(dir, "ipvs-case-"+name+".ipvsadm.txt"), []byte(out), 0o644)
	t.Logf("ipvsadm -Ln:\n%s", out)
	pc := runCmd(t, "ipvsadm", "-Ln", "--persistent-conn")
	os.WriteFile(filepath.Join(dir, "ipvs-case-"+name+".persistent-conn.txt"), []byte(pc), 0o644)
	if tun := runCmd(t, "ipvsadm", "-Ln", "--tun-info"); tun != "" {
		os.WriteFile(filepath.Join(dir, "ipvs-case-"+name+".tun-info.txt"), []byte(tun), 0o644)
	}
}

// hasTwos reports whether the kernel ships the twos scheduler (Linux 6.3+).
func hasTwos() bool {
	if _, err := os.Stat("/sys/module/ip_vs_twos"); err == nil {
		return true
	}
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return false
	}
	_, err = os.Stat("/lib/modules/" + strings.TrimSpace(string(b)) + "/kernel/net/netfilter/ipvs/ip_vs_twos.ko")
	return err == nil
}

const vmSchedulers = `virtual_server 10.1.0.1 80 {
	protocol TCP
	lvs_sched rr
	flag-1
	flag-2
	flag-3
	real_server 10.2.0.1 80 {
		weight 1
	}
	real_server 10.2.0.2 80 {
		weight 3
	}
}
virtual_server 10.1.0.2 80 {
	protocol TCP
	lvs_sched wrr
	real_server 10.2.0.1 80 {
		weight 1
	}
	real_server 10.2.0.2 80 {
		weight 3
	}
}
virtual_server 10.1.0.3 80 {
	protocol TCP
	lvs_sched lc
	real_server 10.2.0.1 80 {
	}
}
virtual_server 10.1.0.4 80 {
	protocol TCP
	lvs_sched wlc
	real_server 10.2.0.1 80 {
		weight 7
	}
}
virtual_server 10.1.0.5 80 {
	protocol TCP
	lvs_sched lblc
	real_server 10.2.0.1 80 {
	}
}
virtual_server 10.1.0.6 80 {
	protocol TCP
	lvs_sched lblcr
	real_server 10.2.0.1 80 {
	}
}
virtual_server 10.1.0.7 80 {
	protocol TCP
	lvs_sched dh
	real_server 10.2.0.1 80 {
	}
}
virtual_server 10.1.0.8 80 {
	protocol TCP
	lvs_sched sh
	sh-port
	sh-fallback
	real_server 10.2.0.1 80 {
	}
}
virtual_server 10.1.0.9 80 {
	protocol TCP
	lvs_sched sed
	real_server 10.2.0.1 80 {
	}
}
virtual_server 10.1.0.10 80 {
	protocol TCP
	lvs_sched nq
	real_server 10.2.0.1 80 {
	}
}
virtual_server 10.1.0.11 80 {
	protocol TCP
	lvs_sched mh
	mh-port
	mh-fallback
	real_server 10.2.0.1 80 {
	}
}
virtual_server 10.1.0.12 80 {
	protocol TCP
	lvs_sched fo
	real_server 10.2.0.1 80 {
		weight 2
	}
	real_server 10.2.0.2 80 {
		weight 1
	}
}
virtual_server 10.1.0.13 80 {
	protocol TCP
	lvs_sched ovf
	real_server 10.2.0.1 80 {
		weight 2
	}
}
virtual_server 10.1.0.14 53 {
	protocol TCP
	lvs_sched rr
	protocol UDP
	ops
	real_server 10.2.0.1 53 {
	}
}
virtual_server 10.1.0.15 3868 {
	protocol TCP
	lvs_sched rr
	protocol SCTP
	real_server 10.2.0.1 3868 {
	}
}
`

const vmTwos = `virtual_server 10.1.0.16 80 {
	protocol TCP
	lvs_sched twos
	real_server 10.2.0.1 80 {
	}
}
`

// TestIPVSInVMSchedulers programs every scheduler (with its flags), UDP
// with one-packet scheduling and SCTP; twos when the kernel has it, and
// otherwise checks that its failure is counted without hurting the rest.
func TestIPVSInVMSchedulers(t *testing.T) {
	k := vmKernel(t)
	cfg := vmParse(t, vmSchedulers+vmTwos)
	v := startVMRec(t, k, cfg, ipvs.Options{})
	c := v.r.Counters()
	if hasTwos() {
		wantConfigured(t, k, cfg)
		if c.Errors != 0 {
			t.Errorf("errors: %+v", c)
		}
	} else {
		t.Log("the kernel has no twos scheduler: its service must fail alone")
		wantConfigured(t, k, vmParse(t, vmSchedulers))
		if c.Errors != 1 {
			t.Errorf("errors %d, want 1 (twos): %+v", c.Errors, c)
		}
	}
	dumpCase(t, "schedulers", vmSchedulers)
	v.stop()
	wantKernel(t, k, "")
}

const vmForwarding = `virtual_server 10.1.1.1 80 {
	protocol TCP
	lvs_method NAT
	real_server 10.2.1.1 8080 {
	}
	real_server 10.2.1.2 80 {
		lvs_method DR
	}
	real_server 10.2.1.3 80 {
		lvs_method TUN
	}
}
virtual_server 10.1.1.2 80 {
	protocol TCP
	lvs_method DR
	real_server 10.2.1.1 80 {
	}
	real_server 10.2.1.2 8080 {
		lvs_method NAT
	}
}
virtual_server 10.1.1.3 80 {
	protocol TCP
	lvs_method TUN
	real_server 10.2.1.1 80 {
	}
	real_server 10.2.1.2 80 {
		lvs_method TUN type gue port 6080
	}
	real_server 10.2.1.3 80 {
		lvs_method TUN type gue port 6081 csum
	}
	real_server 10.2.1.4 80 {
		lvs_method TUN type gue port 6082 remcsum
	}
	real_server 10.2.1.5 80 {
		lvs_method TUN type gre
	}
	real_server 10.2.1.6 80 {
		lvs_method TUN type gre csum
	}
}
virtual_server 2001:db8:1::1 443 {
	protocol TCP
	lvs_method DR
	real_server 2001:db8:2::1 443 {
		weight 4
	}
	real_server 2001:db8:2::2 443 {
		lvs_method NAT
		weight 2
	}
}
`

// TestIPVSInVMForwarding programs NAT, DR and TUN (ipip, gue with port and
// checksum flags, gre), per virtual server and per real server, IPv4 and
// IPv6.
func TestIPVSInVMForwarding(t *testing.T) {
	k := vmKernel(t)
	cfg := vmParse(t, vmForwarding)
	startVMRec(t, k, cfg, ipvs.Options{})
	wantConfigured(t, k, cfg)
	dumpCase(t, "forwarding", vmForwarding)
}

const vmPersistence = `virtual_server_group web {
	10.1.2.10-12 80
	10.1.2.20 8080
	fwmark 21
}
virtual_server fwmark 7 {
	lvs_sched sh
	persistence_timeout 600
	persistence_granularity 255.255.255.0
	lvs_method DR
	real_server 10.2.2.1 0 {
	}
	real_server 10.2.2.2 0 {
		weight 2
	}
}
virtual_server 10.1.2.1 443 {
	protocol TCP
	persistence_timeout
	persistence_granularity 24
	real_server 10.2.2.1 443 {
	}
}
virtual_server 10.1.2.2 {
	protocol TCP
	persistence_timeout 30
	lvs_method DR
	real_server 10.2.2.1 {
	}
}
virtual_server 10.1.2.3 5060 {
	protocol UDP
	lvs_sched rr
	persistence_timeout 60
	persistence_engine sip
	real_server 10.2.2.1 5060 {
	}
}
virtual_server fwmark 9 {
	persistence_timeout 60
	persistence_granularity 64
	real_server 2001:db8:2::1 0 {
	}
}
virtual_server group web {
	protocol TCP
	lvs_sched wrr
	persistence_timeout 120
	lvs_method DR
	real_server 10.2.2.3 80 {
		weight 5
	}
}
`

// TestIPVSInVMFwmarkPersistence programs firewall-mark services with
// persistence and granularity (IPv4 and IPv6), a port-less persistent
// service, a SIP service with its persistence engine (persistence_engine
// sip: the kernel's pe_name, read back through netlink and shown by the
// real ipvsadm as "pe sip") and a virtual_server_group with a range, an
// address and an fwmark.
func TestIPVSInVMFwmarkPersistence(t *testing.T) {
	k := vmKernel(t)
	cfg := vmParse(t, vmPersistence)
	startVMRec(t, k, cfg, ipvs.Options{})
	wantConfigured(t, k, cfg)
	if n := len(kernelTable(t, k)); n != 10 {
		t.Errorf("%d services, want 10 (4 single + 1 fwmark v6 + group: 3 range + 1 address + 1 fwmark)", n)
	}
	if out := runCmd(t, "ipvsadm", "-Ln", "-u", "10.1.2.3:5060"); !strings.Contains(out, "persistent 60 pe sip") {
		t.Errorf("ipvsadm does not show the persistence engine:\n%s", out)
	}
	dumpCase(t, "persistence", vmPersistence)
}

func lns(s ...string) string { return strings.Join(s, "\n") + "\n" }

func vmEvent(vs, rs string, up bool, w int) ipvs.HealthEvent {
	return ipvs.HealthEvent{VS: vs, RS: netip.MustParseAddrPort(rs), Up: up, Weight: w}
}

// TestIPVSInVMHealth drives health events through sorry server, quorum
// with hysteresis and inhibit_on_failure, checking the kernel after each.
func TestIPVSInVMHealth(t *testing.T) {
	k := vmKernel(t)
	text := `virtual_server 10.1.3.1 80 {
	protocol TCP
	lvs_sched wrr
	quorum 4
	hysteresis 1
	quorum_up "/bin/up web"
	quorum_down "/bin/down web"
	sorry_server 10.2.3.99 80
	real_server 10.2.3.1 80 {
		weight 2
	}
	real_server 10.2.3.2 80 {
		weight 2
		inhibit_on_failure
	}
	real_server 10.2.3.3 80 {
		weight 2
	}
}
virtual_server 10.1.3.2 80 {
	protocol TCP
	sorry_server 10.2.3.98 80
	sorry_server_inhibit
	inhibit_on_failure
	real_server 10.2.3.1 80 {
	}
}
`
	cfg := vmParse(t, text)
	v := startVMRec(t, k, cfg, ipvs.Options{})
	web, other := "TCP/10.1.3.1:80", "TCP/10.1.3.2:80"
	otherUp := lns("TCP 10.1.3.2:80 wlc", "  -> 10.2.3.1:80 masq w1", "  -> 10.2.3.98:80 masq w0")
	steps := []struct {
		ev      *ipvs.HealthEvent
		want    string
		scripts string
	}{
		// Started with the quorum up: quorum_up runs, as keepalived's.
		{scripts: "/bin/up web", want: lns("TCP 10.1.3.1:80 wrr", "  -> 10.2.3.1:80 masq w2", "  -> 10.2.3.2:80 masq w2", "  -> 10.2.3.3:80 masq w2") + otherUp},
		// 4 left: above quorum-hysteresis (3), quorum kept; inhibited: weight 0.
		{ev: ptr(vmEvent(web, "10.2.3.2:80", false, -1)),
			want: lns("TCP 10.1.3.1:80 wrr", "  -> 10.2.3.1:80 masq w2", "  -> 10.2.3.2:80 masq w0", "  -> 10.2.3.3:80 masq w2") + otherUp},
		// 2 left < 3: quorum lost, the sorry server replaces the real servers.
		{ev: ptr(vmEvent(web, "10.2.3.3:80", false, -1)), scripts: "/bin/down web",
			want: lns("TCP 10.1.3.1:80 wrr", "  -> 10.2.3.2:80 masq w0", "  -> 10.2.3.99:80 masq w1") + otherUp},
		// 4 < quorum+hysteresis (5): still down.
		{ev: ptr(vmEvent(web, "10.2.3.3:80", true, -1)),
			want: lns("TCP 10.1.3.1:80 wrr", "  -> 10.2.3.2:80 masq w0", "  -> 10.2.3.99:80 masq w1") + otherUp},
		// 6 >= 5: quorum regained, the sorry server leaves.
		{ev: ptr(vmEvent(web, "10.2.3.2:80", true, -1)), scripts: "/bin/up web",
			want: lns("TCP 10.1.3.1:80 wrr", "  -> 10.2.3.1:80 masq w2", "  -> 10.2.3.2:80 masq w2", "  -> 10.2.3.3:80 masq w2") + otherUp},
		// A dynamic weight (misc_dynamic).
		{ev: ptr(vmEvent(web, "10.2.3.1:80", true, 9)),
			want: lns("TCP 10.1.3.1:80 wrr", "  -> 10.2.3.1:80 masq w9", "  -> 10.2.3.2:80 masq w2", "  -> 10.2.3.3:80 masq w2") + otherUp},
		// inhibit_on_failure inherited from the virtual server, and the
		// inhibited sorry server taking weight when quorum is lost.
		{ev: ptr(vmEvent(other, "10.2.3.1:80", false, -1)),
			want: lns("TCP 10.1.3.1:80 wrr", "  -> 10.2.3.1:80 masq w9", "  -> 10.2.3.2:80 masq w2", "  -> 10.2.3.3:80 masq w2",
				"TCP 10.1.3.2:80 wlc", "  -> 10.2.3.1:80 masq w0", "  -> 10.2.3.98:80 masq w1")},
	}
	for i, st := range steps {
		if st.ev != nil {
			v.r.SetHealth(*st.ev)
		}
		v.r.Snapshot()
		if got := kernelTable(t, k).String(); got != st.want {
			t.Errorf("step %d: kernel table:\n%s\nwant:\n%s", i, got, st.want)
		}
		if got := v.takeScripts(); got != st.scripts {
			t.Errorf("step %d: scripts %q, want %q", i, got, st.scripts)
		}
	}
	dumpCase(t, "health-final", text)
}

func ptr[T any](v T) *T { return &v }

// TestIPVSInVMDriftRepair edits and deletes owned entries with ipvsadm and
// checks that a repair pass restores them, counts them, and leaves a
// foreign service alone (also at stop).
func TestIPVSInVMDriftRepair(t *testing.T) {
	k := vmKernel(t)
	runCmd(t, "ipvsadm", "-A", "-t", "10.1.4.99:25", "-s", "rr")
	runCmd(t, "ipvsadm", "-a", "-t", "10.1.4.99:25", "-r", "10.2.4.9:25", "-m")
	text := `virtual_server 10.1.4.1 80 {
	protocol TCP
	lvs_sched wrr
	real_server 10.2.4.1 80 {
		weight 1
	}
	real_server 10.2.4.2 80 {
		weight 3
	}
}
virtual_server 10.1.4.2 80 {
	protocol TCP
	lvs_sched rr
	real_server 10.2.4.1 80 {
	}
}
`
	cfg := vmParse(t, text)
	v := startVMRec(t, k, cfg, ipvs.Options{})
	foreign := lns("TCP 10.1.4.99:25 rr", "  -> 10.2.4.9:25 masq w1")
	want := lns("TCP 10.1.4.1:80 wrr", "  -> 10.2.4.1:80 masq w1", "  -> 10.2.4.2:80 masq w3",
		"TCP 10.1.4.2:80 rr", "  -> 10.2.4.1:80 masq w1") + foreign
	wantKernel(t, k, want)

	runCmd(t, "ipvsadm", "-d", "-t", "10.1.4.1:80", "-r", "10.2.4.2:80")
	runCmd(t, "ipvsadm", "-e", "-t", "10.1.4.1:80", "-r", "10.2.4.1:80", "-m", "-w", "9")
	runCmd(t, "ipvsadm", "-E", "-t", "10.1.4.2:80", "-s", "lc")
	before := v.r.Counters()
	v.r.RepairNow()
	s := v.r.Snapshot()
	wantKernel(t, k, want)
	if d := s.Counters.DriftRepairs - before.DriftRepairs; d != 3 {
		t.Errorf("drift repairs %d, want 3", d)
	}
	// A whole service deleted by hand.
	runCmd(t, "ipvsadm", "-D", "-t", "10.1.4.1:80")
	v.r.RepairNow()
	s = v.r.Snapshot()
	wantKernel(t, k, want)
	if d := s.Counters.DriftRepairs - before.DriftRepairs; d != 6 {
		t.Errorf("drift repairs %d, want 6 (3 + service and its 2 destinations)", d)
	}
	dumpCase(t, "drift", text)
	// The periodic pass does the same on its own.
	v.stop()
	wantKernel(t, k, foreign)
	v = startVMRec(t, k, cfg, ipvs.Options{RepairInterval: 200 * time.Millisecond})
	runCmd(t, "ipvsadm", "-d", "-t", "10.1.4.2:80", "-r", "10.2.4.1:80")
	deadline := time.Now().Add(10 * time.Second)
	for v.r.Counters().DriftRepairs == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	wantKernel(t, k, want)
	v.stop()
	wantKernel(t, k, foreign)
}

// TestIPVSInVMReload applies configurations: the same one (no mutation),
// one weight changed (exactly one mutation), scheduler and persistence
// edited in place (a hand-added destination in the service survives: it
// was not re-created).
func TestIPVSInVMReload(t *testing.T) {
	k := vmKernel(t)
	text := `virtual_server 10.1.5.1 80 {
	protocol TCP
	lvs_sched wrr
	real_server 10.2.5.1 80 {
		weight 1
	}
	real_server 10.2.5.2 80 {
		weight 3
	}
}
virtual_server fwmark 5 {
	lvs_method DR
	real_server 10.2.5.1 0 {
	}
}
`
	cfg := vmParse(t, text)
	v := startVMRec(t, k, cfg, ipvs.Options{})
	runCmd(t, "ipvsadm", "-a", "-t", "10.1.5.1:80", "-r", "10.2.5.77:80", "-m", "-w", "1")
	c0 := v.r.Counters()

	v.r.Apply(vmParse(t, text))
	s := v.r.Snapshot()
	if n := s.Counters.Mutations() - c0.Mutations(); n != 0 {
		t.Errorf("same configuration: %d mutations", n)
	}
	changed := strings.Replace(text, "weight 3", "weight 5", 1)
	v.r.Apply(vmParse(t, changed))
	s = v.r.Snapshot()
	if n := s.Counters.Mutations() - c0.Mutations(); n != 1 || s.Counters.DestsUpdated-c0.DestsUpdated != 1 {
		t.Errorf("one weight changed: %d mutations (%+v), want exactly 1 destination edit", n, s.Counters)
	}
	edited := strings.Replace(changed, "lvs_sched wrr", "lvs_sched sh\n\tsh-port\n\tpersistence_timeout 300", 1)
	v.r.Apply(vmParse(t, edited))
	s = v.r.Snapshot()
	if n := s.Counters.ServicesUpdated - c0.ServicesUpdated; n != 1 || s.Counters.ServicesCreated != c0.ServicesCreated || s.Counters.ServicesRemoved != 0 {
		t.Errorf("scheduler/persistence edit: %+v", s.Counters)
	}
	wantKernel(t, k, lns("TCP 10.1.5.1:80 sh persistent|flag-2 timeout 300",
		"  -> 10.2.5.1:80 masq w1", "  -> 10.2.5.2:80 masq w5", "  -> 10.2.5.77:80 masq w1",
		"FWM 5 wlc", "  -> 10.2.5.1:0 route w1"))
	dumpCase(t, "reload", edited)
}

// TestIPVSInVMGlobals: lvs_flush, lvs_timeouts, lvs_sync_daemon following
// the VRRP role, and lvs_flush_onstop.
func TestIPVSInVMGlobals(t *testing.T) {
	k := vmKernel(t)
	runCmd(t, "ipvsadm", "-A", "-t", "10.1.6.99:25", "-s", "rr")
	text := `global_defs {
	lvs_flush
	lvs_flush_onstop
	lvs_timeouts tcp 7200 tcpfin 30 udp 60
	lvs_sync_daemon eth0 VI_1 id 42
}
vrrp_instance VI_1 {
	interface eth0
	virtual_router_id 51
	priority 100
	virtual_ipaddress {
		192.0.2.200
	}
}
virtual_server 10.1.6.1 80 {
	protocol TCP
	real_server 10.2.6.1 80 {
	}
}
`
	cfg := vmParse(t, text)
	v := startVMRec(t, k, cfg, ipvs.Options{})
	wantKernel(t, k, lns("TCP 10.1.6.1:80 wlc", "  -> 10.2.6.1:80 masq w1"))
	to, err := k.Timeouts()
	if err != nil || to != (ipvs.Timeouts{TCP: 7200 * time.Second, TCPFin: 30 * time.Second, UDP: 60 * time.Second}) {
		t.Errorf("timeouts %+v (%v)", to, err)
	}
	out := runCmd(t, "ipvsadm", "-L", "--timeout")
	if !strings.Contains(out, "7200 30 60") {
		t.Errorf("ipvsadm -L --timeout: %q", out)
	}
	daemons := func() string {
		ds, err := k.SyncDaemons()
		if err != nil {
			t.Errorf("sync daemons: %v", err)
		}
		var s []string
		for _, d := range ds {
			s = append(s, fmt.Sprintf("%s %s %d", d.State, d.Interface, d.SyncID))
		}
		return strings.Join(s, ",")
	}
	if d := daemons(); d != "backup eth0 42" {
		t.Errorf("sync daemons %q, want the backup one", d)
	}
	v.r.SetVRRPState("VI_1", true)
	v.r.Snapshot()
	if d := daemons(); d != "master eth0 42" {
		t.Errorf("sync daemons %q after MASTER, want the master one", d)
	}
	t.Logf("ipvsadm -L --daemon:\n%s", runCmd(t, "ipvsadm", "-L", "--daemon"))
	v.r.SetVRRPState("VI_1", false)
	v.r.Snapshot()
	if d := daemons(); d != "backup eth0 42" {
		t.Errorf("sync daemons %q after BACKUP, want the backup one", d)
	}
	runCmd(t, "ipvsadm", "-A", "-t", "10.1.6.98:25", "-s", "rr")
	v.stop()
	if d := daemons(); d != "" {
		t.Errorf("sync daemons %q after stop", d)
	}
	// lvs_flush_onstop: everything goes, the foreign service too.
	wantKernel(t, k, "")
}

// TestIPVSInVMWRRTraffic sends 400 HTTP requests through the VIP of a wrr
// 1:3 NAT service (client → dirA → rs1/rs2 of the lab topology) and checks
// the split within 10%, then reloads with one weight changed: exactly one
// mutation, and the service's counters are kept.
// natWRRConf is the lab's NAT service of the VIP over rs1 (weight 1) and
// rs2 (weight 3), scheduled wrr.
func natWRRConf() string {
	return fmt.Sprintf(`virtual_server %s 80 {
	protocol TCP
	lvs_sched wrr
	lvs_method NAT
	real_server %s 80 {
		weight 1
	}
	real_server %s 80 {
		weight 3
	}
}
`, lab.VIP, lab.RealServerIP(1), lab.RealServerIP(2))
}

func TestIPVSInVMWRRTraffic(t *testing.T) {
	k := vmKernel(t)
	if os.Getenv("LVSD_IPVS_TOPOLOGY") == "" {
		t.Skip("needs the lab topology (client, dirA, rs1, rs2)")
	}
	text := natWRRConf()
	cfg := vmParse(t, text)
	v := startVMRec(t, k, cfg, ipvs.Options{})
	out, err := exec.Command("ip", "netns", "exec", "client", "labhelper", "get",
		"-url", "http://"+lab.VIP+"/", "-n", "400", "-timeout", "2s").Output()
	if err != nil {
		t.Fatalf("client: %v: %s", err, out)
	}
	var rep lab.ClientReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("client report %q: %v", out, err)
	}
	t.Logf("400 requests: %+v", rep)
	os.WriteFile(filepath.Join(inVMResults(), "ipvs-wrr-client.json"), out, 0o644)
	rs1, rs2 := rep.Answers["rs1"], rep.Answers["rs2"]
	if rep.Failed != 0 || rs1 < 90 || rs1 > 110 || rs2 < 270 || rs2 > 330 {
		t.Errorf("wrr 1:3 over 400 requests: rs1 %d, rs2 %d, failed %d; want 100±10 and 300±30", rs1, rs2, rep.Failed)
	}
	// The kernel folds its per-CPU counters into the totals every 2 s.
	var s *ipvs.Snapshot
	var conns uint64
	for deadline := time.Now().Add(10 * time.Second); ; {
		s = v.r.Snapshot()
		conns = 0
		for _, ss := range s.Services {
			conns += ss.Stats.Connections
		}
		if conns >= 400 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if conns < 400 {
		t.Errorf("service connections %d, want >= 400", conns)
	}
	c0 := s.Counters
	text = strings.Replace(text, "weight 1", "weight 2", 1)
	v.r.Apply(vmParse(t, text))
	s = v.r.Snapshot()
	if n := s.Counters.Mutations() - c0.Mutations(); n != 1 {
		t.Errorf("reload with one weight changed: %d mutations, want 1", n)
	}
	var after uint64
	for _, ss := range s.Services {
		after += ss.Stats.Connections
	}
	if after < conns {
		t.Errorf("service connections %d after the reload, were %d: counters lost", after, conns)
	}
	dumpCase(t, "wrr", text)
}
