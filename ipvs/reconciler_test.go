package ipvs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
)

// harness runs a Reconciler over a fake kernel.
type harness struct {
	t       *testing.T
	k       *fakeKernel
	bk      *batchFake // nil: the reconciler talks to k op by op
	r       *Reconciler
	cancel  context.CancelFunc
	done    chan error
	mu      sync.Mutex
	scripts []string
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newHarness(t *testing.T, cfg *conf.Config, k *fakeKernel, opts Options) *harness {
	t.Helper()
	if k == nil {
		k = newFakeKernel()
	}
	h := &harness{t: t, k: k, done: make(chan error, 1)}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	if opts.RepairInterval == 0 {
		opts.RepairInterval = -1 // tests trigger repairs explicitly
	}
	opts.RunScript = func(s *conf.Script) {
		h.mu.Lock()
		h.scripts = append(h.scripts, strings.Join(s.Args, " "))
		h.mu.Unlock()
	}
	h.bk = &batchFake{fakeKernel: k}
	var kk Kernel = h.bk
	h.r = New(cfg, kk, opts)
	return h
}

// newUnbatchedHarness is newHarness over a kernel without ApplyOps.
func newUnbatchedHarness(t *testing.T, cfg *conf.Config, opts Options) *harness {
	h := newHarness(t, cfg, nil, opts)
	opts = h.r.opts
	h.r = New(cfg, h.k, opts)
	h.bk = nil
	return h
}

func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.r.Run(ctx) }()
	select {
	case <-h.r.Ready():
	case <-time.After(5 * time.Second):
		h.t.Fatal("Run not ready")
	}
	h.t.Cleanup(func() {
		if h.cancel != nil {
			h.stop()
		}
	})
}

func (h *harness) stop() {
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		h.t.Fatal("Run did not return")
	}
}

func (h *harness) takeScripts() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.scripts
	h.scripts = nil
	return s
}

func (h *harness) wantTable(want string) {
	h.t.Helper()
	if got := h.k.table().String(); got != want {
		h.t.Errorf("kernel table:\n%s\nwant:\n%s", got, want)
	}
}

func (h *harness) wantMutations(want ...string) {
	h.t.Helper()
	got := h.k.mutations()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		h.t.Errorf("mutations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

const twoServers = `virtual_server 192.0.2.1 80 {
	protocol TCP
	lvs_sched wrr
	real_server 10.0.0.1 80 {
		weight 1
	}
	real_server 10.0.0.2 80 {
		weight 3
	}
}
virtual_server fwmark 1 {
	persistence_timeout 60
	lvs_method DR
	real_server 10.0.0.1 0 {
	}
}
`

func TestReconcilerStartAndStop(t *testing.T) {
	h := newHarness(t, parse(t, twoServers), nil, Options{})
	h.start()
	h.wantTable(lines("TCP 192.0.2.1:80 wrr",
		"  -> 10.0.0.1:80 masq w1",
		"  -> 10.0.0.2:80 masq w3",
		"FWM 1 wlc persistent timeout 60",
		"  -> 10.0.0.1:0 route w1"))
	c := h.r.Counters()
	if c.ServicesCreated != 2 || c.DestsCreated != 3 || c.Mutations() != 5 || c.Errors != 0 {
		t.Errorf("counters: %+v", c)
	}
	h.k.mutations()
	h.stop()
	h.wantMutations("remove-service TCP 192.0.2.1:80", "remove-service FWM 1")
	h.wantTable("")
}

func TestReconcilerDontRelease(t *testing.T) {
	h := newHarness(t, parse(t, twoServers), nil, Options{DontRelease: true})
	h.start()
	h.k.mutations()
	h.stop()
	h.wantMutations()
	if len(h.k.table()) != 2 {
		t.Error("table released")
	}
	// A restart adopts the entries left behind: no mutation at all.
	h2 := newHarness(t, parse(t, twoServers), h.k, Options{})
	h2.start()
	h2.wantMutations()
	h2.stop()
	h2.wantMutations("remove-service TCP 192.0.2.1:80", "remove-service FWM 1")
}

func TestReconcilerOwnership(t *testing.T) {
	k := newFakeKernel()
	foreign := svc(tcpKey("198.51.100.1", 25), "rr")
	k.handService(foreign, dst("10.1.0.1:25", Masq, 1))
	// Another tool put a destination into a service lvsd also wants.
	k.handService(svc(tcpKey("192.0.2.1", 80), "wrr"), dst("10.0.0.9:80", Masq, 1), dst("10.0.0.1:80", Masq, 7))
	k.mutations()
	h := newHarness(t, parse(t, twoServers), k, Options{})
	h.start()
	// The foreign service and destination are untouched; the wanted
	// destination present with another weight is adopted and fixed.
	h.wantMutations(
		"create-service FWM 1 wlc persistent timeout 60",
		"create-dest TCP 192.0.2.1:80 -> 10.0.0.2:80 masq w3",
		"create-dest FWM 1 -> 10.0.0.1:0 route w1",
		"update-dest TCP 192.0.2.1:80 -> 10.0.0.1:80 masq w1")
	s := h.r.Snapshot()
	var sawForeign bool
	for _, ss := range s.Services {
		if ss.Key == foreign.ServiceKey {
			sawForeign = true
			if ss.Owned || ss.Desired != nil || ss.Kernel == nil {
				t.Errorf("foreign service status: %+v", ss)
			}
		}
		if ss.Key == tcpKey("192.0.2.1", 80) {
			if !ss.Owned || !ss.InSync || len(ss.Dests) != 3 {
				t.Errorf("web status: %+v", ss)
			}
			for _, d := range ss.Dests {
				if d.Key.Addr.String() == "10.0.0.9" && (d.Owned || d.Desired != nil) {
					t.Errorf("foreign destination status: %+v", d)
				}
			}
		}
	}
	if !sawForeign {
		t.Error("foreign service missing from the snapshot")
	}
	// Reload dropping the web service: it was adopted, so it is removed.
	h.r.Apply(parse(t, `virtual_server fwmark 1 {
	persistence_timeout 60
	lvs_method DR
	real_server 10.0.0.1 0 {
	}
}`))
	h.r.Snapshot()
	h.wantMutations("remove-service TCP 192.0.2.1:80")
	h.stop()
	h.wantMutations("remove-service FWM 1")
	h.wantTable(lines("TCP 198.51.100.1:25 rr", "  -> 10.1.0.1:25 masq w1"))
}

func TestReconcilerReloadOnlyTheDifference(t *testing.T) {
	h := newHarness(t, parse(t, twoServers), nil, Options{})
	h.start()
	h.k.mutations()
	before := h.r.Counters().Mutations()

	// Same configuration: nothing at all.
	h.r.Apply(parse(t, twoServers))
	h.r.Snapshot()
	h.wantMutations()

	// One weight changes: exactly one mutation.
	h.r.Apply(parse(t, strings.Replace(twoServers, "weight 3", "weight 5", 1)))
	s := h.r.Snapshot()
	h.wantMutations("update-dest TCP 192.0.2.1:80 -> 10.0.0.2:80 masq w5")
	if n := s.Counters.Mutations() - before; n != 1 {
		t.Errorf("%d mutations for one weight change", n)
	}
	if s.Counters.Reloads != 2 {
		t.Errorf("reloads: %d", s.Counters.Reloads)
	}

	// Scheduler, persistence and flags change: edits, never re-creation.
	h.r.Apply(parse(t, `virtual_server 192.0.2.1 80 {
	protocol TCP
	lvs_sched sh
	sh-port
	persistence_timeout 300
	persistence_granularity 255.255.255.0
	real_server 10.0.0.1 80 {
		weight 1
	}
	real_server 10.0.0.2 80 {
		weight 5
	}
}
virtual_server fwmark 1 {
	persistence_timeout 120
	lvs_method NAT
	real_server 10.0.0.1 0 {
	}
}`))
	h.r.Snapshot()
	h.wantMutations(
		"update-service TCP 192.0.2.1:80 sh persistent|flag-2 timeout 300 mask 255.255.255.0",
		"update-service FWM 1 wlc persistent timeout 120",
		"update-dest FWM 1 -> 10.0.0.1:0 masq w1")
}

func TestReconcilerHealthEvents(t *testing.T) {
	cfg := parse(t, `virtual_server 192.0.2.1 80 {
	protocol TCP
	quorum 2
	quorum_up "/bin/up web"
	quorum_down "/bin/down web"
	sorry_server 10.0.0.99 80
	real_server 10.0.0.1 80 {
	}
	real_server 10.0.0.2 80 {
		inhibit_on_failure
	}
}`)
	h := newHarness(t, cfg, nil, Options{})
	h.start()
	h.k.mutations()
	// As keepalived: starting with the quorum up runs quorum_up.
	if s := h.takeScripts(); strings.Join(s, ";") != "/bin/up web" {
		t.Errorf("scripts at start: %q", s)
	}
	vs := "TCP/192.0.2.1:80"
	h.r.SetHealth(*ev(vs, "10.0.0.2:80", false, -1))
	h.r.Snapshot()
	// Quorum lost: the sorry server goes in first, then the real server leaves.
	h.wantMutations(
		"create-dest TCP 192.0.2.1:80 -> 10.0.0.99:80 masq w1",
		"update-dest TCP 192.0.2.1:80 -> 10.0.0.2:80 masq w0",
		"remove-dest TCP 192.0.2.1:80 -> 10.0.0.1:80")
	if s := h.takeScripts(); strings.Join(s, ";") != "/bin/down web" {
		t.Errorf("scripts: %q", s)
	}
	h.r.SetHealth(*ev(vs, "10.0.0.2:80", true, -1))
	s := h.r.Snapshot()
	h.wantMutations(
		"create-dest TCP 192.0.2.1:80 -> 10.0.0.1:80 masq w1",
		"update-dest TCP 192.0.2.1:80 -> 10.0.0.2:80 masq w1",
		"remove-dest TCP 192.0.2.1:80 -> 10.0.0.99:80")
	if s := h.takeScripts(); strings.Join(s, ";") != "/bin/up web" {
		t.Errorf("scripts: %q", s)
	}
	if len(s.VirtualServers) != 1 || !s.VirtualServers[0].QuorumUp || s.VirtualServers[0].WeightSum != 2 {
		t.Errorf("vs status: %+v", s.VirtualServers)
	}
	// A verdict repeating the state costs no diff pass.
	rc := s.Counters.Reconciles
	h.r.SetHealth(*ev(vs, "10.0.0.1:80", true, -1))
	if s := h.r.Snapshot(); s.Counters.Reconciles != rc {
		t.Errorf("a repeated verdict ran %d diff passes", s.Counters.Reconciles-rc)
	}
	// Unknown servers are counted and ignored.
	h.r.SetHealth(*ev(vs, "10.9.9.9:80", false, -1))
	h.r.SetHealth(*ev("TCP/192.0.2.9:80", "10.0.0.1:80", false, -1))
	s = h.r.Snapshot()
	h.wantMutations()
	if s.Counters.HealthIgnored != 2 || s.Counters.HealthEvents != 5 {
		t.Errorf("counters: %+v", s.Counters)
	}
}

func TestReconcilerHealthCoalesced(t *testing.T) {
	h := newHarness(t, parse(t, twoServers), nil, Options{})
	vs := "TCP/192.0.2.1:80"
	// Before Run: queued, coalesced, applied before the first programming.
	h.r.SetHealth(*ev(vs, "10.0.0.1:80", false, -1))
	h.r.SetHealth(*ev(vs, "10.0.0.1:80", true, 4))
	h.r.SetHealth(*ev(vs, "10.0.0.1:80", false, -1))
	h.start()
	h.wantTable(lines("TCP 192.0.2.1:80 wrr",
		"  -> 10.0.0.2:80 masq w3",
		"FWM 1 wlc persistent timeout 60",
		"  -> 10.0.0.1:0 route w1"))
	h.r.SetHealth(*ev(vs, "10.0.0.1:80", true, -1))
	h.r.Snapshot()
	// The dynamic weight 4 queued with the coalesced events was kept.
	h.wantTable(lines("TCP 192.0.2.1:80 wrr",
		"  -> 10.0.0.1:80 masq w4",
		"  -> 10.0.0.2:80 masq w3",
		"FWM 1 wlc persistent timeout 60",
		"  -> 10.0.0.1:0 route w1"))
}

func TestReconcilerDriftRepair(t *testing.T) {
	h := newHarness(t, parse(t, twoServers), nil, Options{})
	h.start()
	h.k.mutations()
	web := tcpKey("192.0.2.1", 80)
	// By hand: a destination deleted, a service edited, a foreign one added.
	h.k.RemoveDestination(web, DestKey{Addr: dst("10.0.0.2:80", 0, 0).Addr, Port: 80})
	h.k.UpdateService(svc(fwmKey(1), "rr"))
	h.k.CreateService(svc(tcpKey("198.51.100.7", 22), "rr"))
	h.k.mutations()
	h.r.RepairNow()
	s := h.r.Snapshot()
	h.wantMutations(
		"update-service FWM 1 wlc persistent timeout 60",
		"create-dest TCP 192.0.2.1:80 -> 10.0.0.2:80 masq w3")
	if s.Counters.DriftRepairs != 2 {
		t.Errorf("drift repairs: %d", s.Counters.DriftRepairs)
	}
	// A whole service deleted by hand comes back with its destinations.
	h.k.RemoveService(web)
	h.k.mutations()
	h.r.RepairNow()
	s = h.r.Snapshot()
	h.wantMutations(
		"create-service TCP 192.0.2.1:80 wrr",
		"create-dest TCP 192.0.2.1:80 -> 10.0.0.1:80 masq w1",
		"create-dest TCP 192.0.2.1:80 -> 10.0.0.2:80 masq w3")
	if s.Counters.DriftRepairs != 5 {
		t.Errorf("drift repairs: %d", s.Counters.DriftRepairs)
	}
	// Nothing drifted: nothing done.
	h.r.RepairNow()
	h.r.Snapshot()
	h.wantMutations()
}

func TestReconcilerPeriodicRepair(t *testing.T) {
	h := newHarness(t, parse(t, twoServers), nil, Options{RepairInterval: 20 * time.Millisecond})
	h.start()
	h.k.RemoveService(fwmKey(1))
	deadline := time.Now().Add(5 * time.Second)
	for h.r.Counters().DriftRepairs < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no periodic repair")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok := h.k.table()[fwmKey(1)]; !ok {
		t.Error("service not restored")
	}
}

func TestReconcilerErrorsAreRetried(t *testing.T) {
	k := newFakeKernel()
	k.fail["sched:twos"] = syscall.ENOENT // the kernel has no such scheduler
	cfg := parse(t, `virtual_server 192.0.2.1 80 {
	protocol TCP
	lvs_sched twos
	real_server 10.0.0.1 80 {
	}
}
virtual_server 192.0.2.2 80 {
	protocol TCP
	real_server 10.0.0.1 80 {
	}
}`)
	h := newHarness(t, cfg, k, Options{})
	h.start()
	// The failing service does not stop the others.
	h.wantTable(lines("TCP 192.0.2.2:80 wlc", "  -> 10.0.0.1:80 masq w1"))
	c := h.r.Counters()
	if c.Errors != 1 || c.Mutations() != 2 {
		t.Errorf("counters: %+v", c)
	}
	// The kernel learns the scheduler: the next pass creates the service,
	// which is a retry, not drift.
	k.mu.Lock()
	delete(k.fail, "sched:twos")
	k.mu.Unlock()
	h.r.RepairNow()
	s := h.r.Snapshot()
	h.wantTable(lines("TCP 192.0.2.1:80 twos", "  -> 10.0.0.1:80 masq w1", "TCP 192.0.2.2:80 wlc", "  -> 10.0.0.1:80 masq w1"))
	if s.Counters.DriftRepairs != 0 || s.Counters.Errors != 1 || s.Counters.Mutations() != 4 {
		t.Errorf("counters: %+v", s.Counters)
	}
}

func TestReconcilerStalePicture(t *testing.T) {
	h := newHarness(t, parse(t, twoServers), nil, Options{})
	h.start()
	h.k.mutations()
	// Behind lvsd's back the destination that a reload will add appears.
	h.k.CreateDestination(tcpKey("192.0.2.1", 80), dst("10.0.0.3:80", Masq, 2))
	h.k.mutations()
	h.r.Apply(parse(t, strings.Replace(twoServers, "weight 3\n\t}", "weight 3\n\t}\n\treal_server 10.0.0.3 80 {\n\t\tweight 2\n\t}", 1)))
	s := h.r.Snapshot()
	// EEXIST: the kernel is re-read, the entry adopted, nothing more to do.
	h.wantMutations()
	for _, ss := range s.Services {
		if !ss.InSync {
			t.Errorf("not in sync: %+v", ss)
		}
	}
}

func TestReconcilerFlushAndTimeouts(t *testing.T) {
	k := newFakeKernel()
	k.handService(svc(tcpKey("198.51.100.1", 25), "rr"))
	cfg := parse(t, `global_defs {
	lvs_flush
	lvs_flush_onstop
	lvs_timeouts tcp 7200 udp 60
}
`+twoServers)
	h := newHarness(t, cfg, k, Options{})
	h.start()
	got := h.k.mutations()
	if len(got) < 2 || got[0] != "flush" || got[1] != "set-timeouts 2h0m0s 0s 1m0s" {
		t.Errorf("start: %q", got)
	}
	if _, ok := h.k.table()[tcpKey("198.51.100.1", 25)]; ok {
		t.Error("lvs_flush kept a foreign service")
	}
	// Reload: tcp dropped (back to the kernel's original), tcpfin added.
	h.r.Apply(parse(t, `global_defs {
	lvs_flush_onstop
	lvs_timeouts tcpfin 30 udp 60
}
`+twoServers))
	h.r.Snapshot()
	h.wantMutations("set-timeouts 15m0s 30s 0s")
	h.stop()
	h.wantMutations("flush")
}

func TestReconcilerSyncDaemon(t *testing.T) {
	cfg := parse(t, `global_defs {
	lvs_sync_daemon eth0 VI_1 maxlen 1400 port 8850 ttl 2 group 239.1.1.1
}
vrrp_instance VI_1 {
	interface eth0
	virtual_router_id 51
	priority 100
	virtual_ipaddress {
		192.0.2.1
	}
}
`)
	h := newHarness(t, cfg, nil, Options{})
	h.start()
	h.wantMutations("start-sync backup eth0 id 51")
	h.r.SetVRRPState("VI_1", true)
	s := h.r.Snapshot()
	h.wantMutations("stop-sync backup", "start-sync master eth0 id 51")
	if len(s.SyncDaemons) != 1 || s.SyncDaemons[0] != (SyncDaemon{State: SyncMaster, Interface: "eth0", SyncID: 51,
		MaxLen: 1400, Port: 8850, TTL: 2, Group: s.SyncDaemons[0].Group}) || s.SyncDaemons[0].Group.String() != "239.1.1.1" {
		t.Errorf("sync daemons: %+v", s.SyncDaemons)
	}
	h.r.SetVRRPState("VI_1", true)
	h.r.Snapshot()
	h.wantMutations()
	// A reload changing the id restarts it.
	h.r.Apply(parse(t, strings.Replace(`global_defs {
	lvs_sync_daemon eth0 VI_1 id 7
}
vrrp_instance VI_1 {
	interface eth0
	virtual_router_id 51
	priority 100
	virtual_ipaddress {
		192.0.2.1
	}
}
`, "\t", "\t", 1)))
	h.r.Snapshot()
	h.wantMutations("stop-sync master", "start-sync master eth0 id 7")
	h.r.SetVRRPState("VI_1", false)
	h.r.Snapshot()
	h.wantMutations("stop-sync master", "start-sync backup eth0 id 7")
	h.stop()
	h.wantMutations("stop-sync backup")
}

func TestReconcilerOmega(t *testing.T) {
	cfg := parse(t, `virtual_server 192.0.2.1 80 {
	protocol TCP
	omega
	quorum_down /bin/down
	real_server 10.0.0.1 80 {
	}
	real_server 10.0.0.2 80 {
	}
	real_server 10.0.0.3 80 {
	}
}
virtual_server 192.0.2.2 80 {
	protocol TCP
	quorum_down /bin/down2
	real_server 10.0.0.1 80 {
	}
}`)
	// The omega lines: the real servers up (in order), then the virtual
	// server; with lvs_flush_onstop only the virtual server, with -I none.
	for _, tc := range []struct {
		flush       string
		dontRelease bool
		want        string
	}{
		{"", false, "192.0.2.1:80: 10.0.0.1:80 10.0.0.3:80"},
		{"vs", false, "192.0.2.1:80:"},
		{"", true, ""},
	} {
		cfg.Global.LVSFlushOnStop = tc.flush
		var got []string
		h := newHarness(t, cfg, nil, Options{DontRelease: tc.dontRelease, Omega: func(vs *conf.VirtualServer, up []*conf.RealServer) {
			l := vs.Addr.String() + ":" + strconv.Itoa(vs.Port) + ":"
			for _, rs := range up {
				l += " " + rs.AddrPort().String()
			}
			got = append(got, l)
		}})
		h.start()
		h.r.SetHealth(*ev("TCP/192.0.2.1:80", "10.0.0.2:80", false, -1))
		h.r.Snapshot()
		h.stop()
		if s := h.takeScripts(); strings.Join(s, ";") != "/bin/down" {
			t.Errorf("scripts at stop: %q", s)
		}
		if g := strings.Join(got, ";"); g != tc.want {
			t.Errorf("flush %q, -I %v: omega %q, want %q", tc.flush, tc.dontRelease, g, tc.want)
		}
	}
}

func TestReconcilerSnapshotStats(t *testing.T) {
	h := newHarness(t, parse(t, twoServers), nil, Options{})
	// Before Run: lvsd's picture, nothing in the kernel yet.
	s := h.r.Snapshot()
	if s.Fresh || len(s.Services) != 2 || s.Services[0].Kernel != nil || s.Services[0].Desired == nil {
		t.Errorf("snapshot before run: %+v", s)
	}
	h.start()
	s = h.r.Snapshot()
	if !s.Fresh || len(s.Services) != 2 {
		t.Fatalf("snapshot: %+v", s)
	}
	web := s.Services[0]
	if web.VS != "TCP/192.0.2.1:80" || web.Stats.Connections != 7 || len(web.Dests) != 2 {
		t.Errorf("web: %+v", web)
	}
	d := web.Dests[1]
	if d.RS.String() != "10.0.0.2:80" || !d.Healthy || d.ActiveConns != 3 || d.Stats.Connections != 5 ||
		d.Kernel == nil || d.Kernel.Weight != 3 || !d.InSync || !d.Owned {
		t.Errorf("dest: %+v", d)
	}
	h.stop()
	s = h.r.Snapshot()
	if s.Fresh || len(s.Services) != 2 || s.Services[0].Kernel != nil {
		t.Errorf("snapshot after stop: %+v", s)
	}
}

func TestReconcilerRunTwice(t *testing.T) {
	h := newHarness(t, parse(t, twoServers), nil, Options{})
	h.start()
	if err := h.r.Run(context.Background()); err == nil {
		t.Error("second Run accepted")
	}
}

// TestReconcilerUnbatched runs start, reload, health and drift repair over
// a kernel without ApplyOps (one operation per call): same mutations.
func TestReconcilerUnbatched(t *testing.T) {
	h := newUnbatchedHarness(t, parse(t, twoServers), Options{})
	h.start()
	h.wantMutations(
		"create-service TCP 192.0.2.1:80 wrr",
		"create-service FWM 1 wlc persistent timeout 60",
		"create-dest TCP 192.0.2.1:80 -> 10.0.0.1:80 masq w1",
		"create-dest TCP 192.0.2.1:80 -> 10.0.0.2:80 masq w3",
		"create-dest FWM 1 -> 10.0.0.1:0 route w1")
	h.r.Apply(parse(t, strings.Replace(twoServers, "weight 3", "weight 5", 1)))
	h.r.SetHealth(*ev("TCP/192.0.2.1:80", "10.0.0.1:80", false, -1))
	h.r.Snapshot()
	h.wantMutations(
		"update-dest TCP 192.0.2.1:80 -> 10.0.0.2:80 masq w5",
		"remove-dest TCP 192.0.2.1:80 -> 10.0.0.1:80")
	h.k.RemoveService(fwmKey(1))
	h.k.mutations()
	h.r.RepairNow()
	if s := h.r.Snapshot(); s.Counters.DriftRepairs != 2 {
		t.Errorf("drift repairs %d", s.Counters.DriftRepairs)
	}
	h.wantMutations("create-service FWM 1 wlc persistent timeout 60", "create-dest FWM 1 -> 10.0.0.1:0 route w1")
	h.stop()
	h.wantMutations("remove-service TCP 192.0.2.1:80", "remove-service FWM 1")
}

// TestReconcilerBatchesByPhase checks that a start-up sends one batch of
// services and one of destinations.
func TestReconcilerBatchesByPhase(t *testing.T) {
	h := newHarness(t, parse(t, twoServers), nil, Options{})
	h.start()
	h.bk.mu.Lock()
	got := fmt.Sprint(h.bk.batches)
	h.bk.mu.Unlock()
	if got != "[2 3]" {
		t.Errorf("batches %s, want [2 3] (services, then destinations)", got)
	}
}

// TestReconcilerRunsScriptsWithoutShell runs quorum_down for real (the
// default runner): the command gets its arguments verbatim, without a shell.
func TestReconcilerRunsScriptsWithoutShell(t *testing.T) {
	dir := t.TempDir()
	out := dir + "/quorum"
	cfg := parse(t, `virtual_server 192.0.2.1 80 {
	protocol TCP
	quorum_down "/bin/sh -c 'echo down $0 > `+out+`' 'a;b'"
	real_server 10.0.0.1 80 {
	}
}`)
	k := newFakeKernel()
	r := New(cfg, k, Options{Logger: quietLogger(), RepairInterval: -1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	<-r.Ready()
	r.SetHealth(*ev("TCP/192.0.2.1:80", "10.0.0.1:80", false, -1))
	r.Snapshot()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(out)
		if err == nil && len(b) > 0 {
			if string(b) != "down a;b\n" {
				t.Errorf("script wrote %q", b)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("quorum_down did not run")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The sync daemon follows the instance lvs_sync_daemon names, whichever
// instance the transitions come from; a reload naming another instance
// takes that instance's last known state.
func TestReconcilerSyncDaemonFollowsItsInstance(t *testing.T) {
	text := `global_defs {
	lvs_sync_daemon eth0 VI_1 id 9
}
vrrp_instance VI_1 {
	interface eth0
	virtual_router_id 51
	priority 100
	virtual_ipaddress {
		192.0.2.1
	}
}
vrrp_instance VI_2 {
	interface eth0
	virtual_router_id 52
	priority 100
	virtual_ipaddress {
		192.0.2.2
	}
}
`
	h := newHarness(t, parse(t, text), nil, Options{})
	h.start()
	h.wantMutations("start-sync backup eth0 id 9")
	h.r.SetVRRPState("VI_2", true) // not the sync daemon's instance
	h.r.Snapshot()
	h.wantMutations()
	h.r.SetVRRPState("VI_1", false)
	h.r.Snapshot()
	h.wantMutations()
	// A reload moving the sync daemon to VI_2, which is MASTER.
	h.r.Apply(parse(t, strings.Replace(text, "eth0 VI_1 id 9", "eth0 VI_2 id 9", 1)))
	h.r.Snapshot()
	h.wantMutations("stop-sync backup", "start-sync master eth0 id 9")
	h.r.SetVRRPState("VI_1", true)
	h.r.Snapshot()
	h.wantMutations()
	h.r.SetVRRPState("VI_2", false)
	h.r.Snapshot()
	h.wantMutations("stop-sync master", "start-sync backup eth0 id 9")
	h.stop()
	h.wantMutations("stop-sync backup")
}
