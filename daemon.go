package main

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/lvsd/lvsd/bgp"
	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/firewall"
	"github.com/lvsd/lvsd/healthcheck"
	"github.com/lvsd/lvsd/internal/localaddr"
	"github.com/lvsd/lvsd/ipvs"
	"github.com/lvsd/lvsd/notify"
	"github.com/lvsd/lvsd/proctrack"
	"github.com/lvsd/lvsd/vrrp"
)

// daemon holds the subsystems, each built once by newDaemon from the
// configuration at start. Those the command line asks for are always built
// (-P: VRRP only, -C: IPVS and the checks only), even when the
// configuration has nothing for them: they idle, and a reload only hands
// them the new configuration (apply). Each subsystem's goroutine owns its
// state; the daemon only connects their inputs and outputs:
//
//	vrrp.Engine ──Sink──▶ transitions ──▶ notify (scripts, mail), ipvs (sync daemon role)
//	healthcheck.Scheduler ──Events──▶ forwardHealth ──▶ ipvs.Reconciler
//	localaddr.Watch ──▶ healthcheck (ha_suspend)
//	proctrack.Tracker ──SetProcess──▶ vrrp.Engine (vrrp_track_process quorums)
//	ipvs.Reconciler (quorum) and vrrp (transitions) ──▶ bgp.Service (announcements)
type daemon struct {
	log *slog.Logger

	vrrp       *vrrp.Engine       // nil with -C
	vrrpNotify *notify.Notifier   // notify scripts and smtp_alert of VRRP transitions; nil with -C
	procs      *proctrack.Tracker // vrrp_track_process, reported to vrrp; nil with -C
	fw         *firewall.Firewall // the nftables drop of no_accept VIPs; nil with -C
	fwOpts     firewall.Options   // its settings, those of the start

	rec         *ipvs.Reconciler       // nil with -P, or without IPVS in the kernel (ipvsErr)
	hc          *healthcheck.Scheduler // the checks; nil when rec is
	checkNotify *notify.Notifier       // smtp_alert of the checkers and of quorum changes; nil when rec is
	bgp         *bgp.Service           // BGP announcements of the virtual servers; nil when rec is
	ipvsErr     error                  // why IPVS is not programmed although -P was not given
	fifos       *notify.FIFOs          // the notify FIFOs, shared by both notifiers; closed by wait
	addrsErr    error                  // why ha_suspend cannot follow this host's addresses

	watchAddrs func(ctx context.Context, fn func(map[netip.Addr]bool)) error
	// addrResyncs counts the resyncs of ha_suspend's address watch.
	addrResyncs atomic.Uint64
	// resizeAddrs resizes that watch's netlink buffer on reload (nil
	// before it runs, or with a test's watchAddrs).
	resizeAddrs atomic.Pointer[func(int, bool) error]
	// newKernel opens the IPVS table (lvsd ctl ipvs reads it through its
	// own socket); nil when rec is.
	newKernel func() (ipvs.Kernel, error)

	wg   sync.WaitGroup
	errs chan error
}

// deps are the daemon's ties to the world that tests replace; a nil field
// is the real thing.
type deps struct {
	// observe receives every health-check attempt (metrics).
	observe func(healthcheck.Observation)
	// scriptExec makes the runner of a vrrp_script (status records them).
	scriptExec func(vrrp.ScriptConfig, *conf.Global) vrrp.ScriptExec
	// newKernel opens the IPVS table: ipvs.NewKernel.
	newKernel func() (ipvs.Kernel, error)
	// watchAddrs follows this host's addresses for ha_suspend:
	// localaddr.Watch in the daemon's namespace.
	watchAddrs func(ctx context.Context, fn func(map[netip.Addr]bool)) error
	// vrrpKernel is the VRRP engine's system access (nil: the real one).
	vrrpKernel vrrp.Kernel
}

// newDaemon builds the subsystems o asks for, configured with cfg. Nothing
// runs before start.
func newDaemon(o *options, log *slog.Logger, cfg *conf.Config, dp deps) (*daemon, error) {
	d := &daemon{log: log, errs: make(chan error, 4), watchAddrs: dp.watchAddrs}
	d.fifos = notify.NewFIFOs(cfg, log.With("subsystem", "notify"))
	if d.watchAddrs == nil {
		g := cfg.Global // the buffer sizes of the start; apply resizes them
		d.watchAddrs = func(ctx context.Context, fn func(map[netip.Addr]bool)) error {
			return localaddr.Watch(ctx, localaddr.Options{
				ReadBuffer: g.LVSNetlinkMonitorRcvBufs, ForceBuffer: g.LVSNetlinkMonitorRcvBufsForce,
				Resynced: func() { d.addrResyncs.Add(1) },
				Resize:   func(f func(int, bool) error) { d.resizeAddrs.Store(&f) },
			}, fn)
		}
	}
	runVRRP := !o.checkOnly || o.vrrpOnly
	runCheck := !o.vrrpOnly || o.checkOnly
	if runCheck {
		d.buildIPVS(o, cfg, dp)
	}
	if runVRRP {
		if err := d.buildVRRP(o, cfg, dp); err != nil {
			d.fifos.Close()
			return nil, err
		}
	}
	d.logBGPUnavailable(cfg)
	return d, nil
}

// buildIPVS builds the reconciler, the checks and their mail. Without IPVS
// in the kernel they are left out, as keepalived's checker process stops,
// and VRRP goes on; ipvsErr says why.
func (d *daemon) buildIPVS(o *options, cfg *conf.Config, dp deps) {
	newKernel := dp.newKernel
	if newKernel == nil {
		newKernel = defaultNewKernel
	}
	k, err := newKernel()
	if err != nil {
		d.ipvsErr = err
		if len(cfg.VirtualServers) > 0 {
			d.logIPVSUnavailable()
		}
		return
	}
	// Status pages and metrics read the counters through their own netlink
	// socket, in their own goroutine: a scrape of thousands of destinations
	// does not hold up the reconciliation.
	var reader ipvs.Reader
	if rd, err := newKernel(); err == nil {
		reader = rd
	}
	// The checkers' and the quorum's e-mail have a queue of their own, as
	// keepalived's checker process has: a slow mail server delays no VRRP
	// alert.
	nt := notify.New(cfg, notify.Options{Logger: d.log.With("subsystem", "notify"), FIFO: d.fifos})
	nt.HoldStart(cfg) // released once the checks have started: keepalived's order of the start-up lines
	d.checkNotify = nt
	d.newKernel = newKernel
	d.bgp = bgp.New(cfg, bgp.Options{Logger: d.log.With("subsystem", "bgp")})
	d.rec = ipvs.New(cfg, k, ipvs.Options{Logger: d.log.With("subsystem", "ipvs"), DontRelease: o.dontReleaseIPVS,
		Reader: reader, QuorumStates: d.bgp.SetQuorum, Quorum: func(vs *conf.VirtualServer, up, init bool, sum int) {
			nt.QuorumFIFO(vs, up)
			nt.QuorumAlert(vs, up, init, sum)
		}, Omega: func(vs *conf.VirtualServer, up []*conf.RealServer) {
			nt.ReleaseStart() // stopped before the checks started
			for _, rs := range up {
				nt.RealServerFIFO(vs, rs, false)
			}
			nt.QuorumFIFO(vs, false)
		}})
	d.hc = healthcheck.New(cfg, healthcheck.Options{Logger: d.log.With("subsystem", "check"), Observe: dp.observe,
		RealServer: nt.RealServerFIFO, Started: nt.ReleaseStart,
		Alert: func(a healthcheck.Alert) {
			nt.RealServerAlert(a.VS, a.RS, a.Up, a.RSChanged, notify.CheckerBody(a.Checker, a.CheckerUp, a.Reason))
		}})
}

// defaultNewKernel opens the kernel's IPVS table; the soak benchmark's build
// (-tags lvsdbench, soak_lvsdbench.go) replaces it with an in-memory one.
var defaultNewKernel = ipvs.NewKernel

func (d *daemon) logIPVSUnavailable() {
	d.log.Error("IPVS is not available: virtual servers are not programmed and not checked", "err", d.ipvsErr)
}

// buildVRRP builds the VRRP engine and the notifications of its
// transitions.
func (d *daemon) buildVRRP(o *options, cfg *conf.Config, dp deps) error {
	d.vrrpNotify = notify.New(cfg, notify.Options{Logger: d.log.With("subsystem", "notify"), FIFO: d.fifos})
	fwLog := d.log.With("subsystem", "firewall")
	d.fw, d.fwOpts = newFirewall(cfg, fwLog), nftOptions(cfg)
	eng, warnings, err := vrrp.NewEngine(cfg, vrrp.EngineOptions{
		Filter:      vipFilter(d.fw, fwLog),
		OnVMAC:      vmacHook(d.fw, fwLog),
		Logger:      d.log.With("subsystem", "vrrp"),
		Sink:        transitions{notify: d.vrrpNotify, rec: d.rec, bgp: d.bgp},
		Kernel:      dp.vrrpKernel,
		ScriptExec:  dp.scriptExec,
		DontRelease: o.dontReleaseVRRP,
	})
	for _, w := range warnings {
		d.log.Warn(w, "subsystem", "vrrp")
	}
	if err != nil {
		return err
	}
	d.vrrp = eng
	// The initial quorums reach the engine before New returns: the
	// instances start from them.
	d.procs = proctrack.New(cfg, eng.SetProcess, proctrack.Options{Logger: d.log.With("subsystem", "proctrack"),
		ReadBuffer: cfg.Global.ProcessMonitorRcvBufs, ForceBuffer: cfg.Global.ProcessMonitorRcvBufsForce})
	return nil
}

// transitions is the VRRP engine's sink: every transition goes to the
// notify scripts and mail, and an instance's to the IPVS reconciler, whose
// sync daemon follows the instance lvs_sync_daemon names.
type transitions struct {
	notify *notify.Notifier
	rec    *ipvs.Reconciler // nil without IPVS
	bgp    *bgp.Service     // nil without IPVS
}

// Transition implements vrrp.Sink; it never blocks.
func (t transitions) Transition(n vrrp.Notification) {
	t.notify.Post(notify.Event{Group: n.Group != "", Name: n.Instance + n.Group, State: n.To.String(), Priority: int(n.Priority)})
	if t.rec != nil && n.Instance != "" {
		t.rec.SetVRRPState(n.Instance, n.To == vrrp.StateMaster)
	}
	if t.bgp != nil && n.Instance != "" {
		t.bgp.SetMaster(n.Instance, n.To == vrrp.StateMaster)
	}
}

// Event implements vrrp.EventSink: an instance's priority change, or a
// lower priority heard as MASTER, for the notify FIFOs and
// notify_master_rx_lower_pri.
func (t transitions) Event(n vrrp.Notification) {
	state := notify.BackupPriority
	switch {
	case n.Event == vrrp.EventMasterRxLowerPri:
		state = notify.MasterRxLowerPri
	case n.To == vrrp.StateMaster:
		state = notify.MasterPriority
	}
	t.notify.Post(notify.Event{Name: n.Instance, State: state, Priority: int(n.Priority)})
}

// start runs every subsystem until ctx is done; wait returns when they
// have stopped. A subsystem that fails sends its error on errs.
func (d *daemon) start(ctx context.Context, cfg *conf.Config) {
	if d.rec != nil {
		rec, hc, nt := d.rec, d.hc, d.checkNotify
		// ha_suspend: the watcher reports this host's addresses before it
		// returns, so no check runs before they are known. Should it fail,
		// the checks are never suspended: a check that runs is safer than
		// one that does not.
		if d.addrsErr = d.watchAddrs(ctx, hc.SetLocalAddrs); d.addrsErr != nil {
			d.logAddrsErr(cfg)
		}
		// Programming starts now; the checks start once the table is
		// programmed: the reconciler starts from the initial states the
		// checkers would report (alpha: down, else up), and the start-up
		// programming of a large table is not slowed down by thousands of
		// such events.
		d.goRun(ctx, "ipvs", func(ctx context.Context) error { defer nt.Close(); return rec.Run(ctx) })
		d.goRun(ctx, "check", func(ctx context.Context) error {
			select {
			case <-rec.Ready():
			case <-ctx.Done():
				return nil
			}
			return hc.Run(ctx)
		})
		d.goRun(ctx, "health", func(ctx context.Context) error { forwardHealth(ctx, hc, rec); return nil })
		d.goRun(ctx, "bgp", d.bgp.Run)
	}
	if d.vrrp != nil {
		eng, nt := d.vrrp, d.vrrpNotify
		vrrpDone := make(chan struct{})
		d.runFirewall(vrrpDone)
		// The STOP notifications of the shutdown run before Close returns.
		d.goRun(ctx, "vrrp", func(ctx context.Context) error {
			defer close(vrrpDone)
			defer nt.Close()
			return eng.Run(ctx)
		})
		d.goRun(ctx, "proctrack", d.procs.Run)
	}
}

func (d *daemon) logAddrsErr(cfg *conf.Config) {
	if d.addrsErr != nil && slices.ContainsFunc(cfg.VirtualServers, func(vs *conf.VirtualServer) bool { return vs.HASuspend }) {
		d.log.Error("ha_suspend: cannot follow this host's addresses; the checks are not suspended", "subsystem", "check", "err", d.addrsErr)
	}
}

func (d *daemon) goRun(ctx context.Context, name string, run func(context.Context) error) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			d.log.Error("subsystem stopped", "subsystem", name, "err", err)
			select {
			case d.errs <- err:
			default:
			}
		}
	}()
}

// forwardHealth turns checker verdicts into IPVS health.
func forwardHealth(ctx context.Context, hc *healthcheck.Scheduler, rec *ipvs.Reconciler) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-hc.Events():
			if !ok {
				return
			}
			rec.SetHealth(ipvs.HealthEvent{VS: ev.VS, RS: ev.RS, Up: ev.Up, Weight: ev.Weight})
		}
	}
}

// apply hands a validated configuration to every subsystem; each computes
// its own difference and returns at once (VRRP's answer waits for its
// engine to take the new instances).
func (d *daemon) apply(cfg *conf.Config) {
	d.fifos.Apply(cfg)
	if d.rec != nil {
		d.rec.Apply(cfg) // first: it works in its own goroutine
		d.bgp.Apply(cfg)
		d.hc.Apply(cfg)
		d.checkNotify.Apply(cfg)
		d.logAddrsErr(cfg)
		if f := d.resizeAddrs.Load(); f != nil {
			if err := (*f)(cfg.Global.LVSNetlinkMonitorRcvBufs, cfg.Global.LVSNetlinkMonitorRcvBufsForce); err != nil {
				d.log.Warn("cannot resize the netlink receive buffer of ha_suspend's address watch; kept", "err", err)
			}
		}
	} else if d.ipvsErr != nil && len(cfg.VirtualServers) > 0 {
		d.logIPVSUnavailable()
	}
	d.logBGPUnavailable(cfg)
	if d.vrrp != nil {
		d.checkFirewallReload(cfg)
		d.vrrpNotify.Apply(cfg)
		d.procs.Apply(cfg) // the quorums first: new instances start from them
		if err := d.vrrp.Apply(cfg); err != nil {
			d.log.Error("VRRP reload", "subsystem", "vrrp", "err", err)
		}
	}
}

// programmed is closed once the start-up programming of IPVS is done (at
// once without IPVS).
func (d *daemon) programmed() <-chan struct{} {
	if d.rec != nil {
		return d.rec.Ready()
	}
	c := make(chan struct{})
	close(c)
	return c
}

// resyncs counts by watch the netlink subscriptions repaired by a new
// listing: VRRP's and ha_suspend's ("localaddr", while the checks run).
func (d *daemon) resyncs() map[string]uint64 {
	m := map[string]uint64{}
	if d.vrrp != nil {
		maps.Copy(m, d.vrrp.Resyncs())
	}
	if d.hc != nil {
		m["localaddr"] = d.addrResyncs.Load()
	}
	return m
}

// wait blocks until every subsystem has stopped (after ctx is cancelled),
// then closes the notify FIFOs (after the STOP lines).
func (d *daemon) wait() {
	d.wg.Wait()
	d.fifos.Close()
}
