package main

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/healthcheck"
	"github.com/lvsd/lvsd/internal/localaddr"
	"github.com/lvsd/lvsd/ipvs"
	"github.com/lvsd/lvsd/notify"
	"github.com/lvsd/lvsd/vrrp"
)

// daemon wires the subsystems together. It owns no shared state of its own:
// each subsystem's goroutine owns its state; the daemon only forwards events
// (health → IPVS, VRRP transitions → the IPVS sync daemon's role).
type daemon struct {
	o   *options
	log *slog.Logger

	vrrp *vrrp.Engine
	nt   *notify.Notifier // notify scripts and smtp_alert of VRRP transitions
	ntLV *notify.Notifier // smtp_alert of the checkers and of quorum changes
	hc   *healthcheck.Scheduler
	rec  *ipvs.Reconciler

	// observe, when set before start, receives every health-check attempt
	// (metrics); ipvsErr says why IPVS is not programmed (status pages).
	observe    func(healthcheck.Observation)
	ipvsErr    error
	scriptExec func(vrrp.ScriptConfig, *conf.Global) vrrp.ScriptExec // vrrp_script runner (nil: the default)
	newKernel  func() (ipvs.Kernel, error)                           // the IPVS table (nil: ipvs.NewKernel)
	// watchAddrs follows this host's addresses for ha_suspend (nil:
	// localaddr.Watch in the daemon's namespace); addrWatched: started.
	watchAddrs  func(ctx context.Context, fn func(map[netip.Addr]bool)) error
	addrWatched bool

	ctx       context.Context                 // of start: what a reload starts runs in it too
	recShared atomic.Pointer[ipvs.Reconciler] // rec, for the VRRP engine's goroutine
	syncInst  atomic.Pointer[string]          // the instance lvs_sync_daemon follows

	wg   sync.WaitGroup
	errs chan error
}

func (d *daemon) runVRRP() bool  { return !d.o.checkOnly || d.o.vrrpOnly }
func (d *daemon) runCheck() bool { return !d.o.vrrpOnly || d.o.checkOnly }

// start builds and starts the subsystems the command line asks for and the
// configuration needs.
func (d *daemon) start(ctx context.Context, cfg *conf.Config) error {
	d.errs = make(chan error, 4)
	d.ctx = ctx
	d.setSyncInstance(cfg)
	if d.runCheck() && len(cfg.VirtualServers) > 0 {
		d.startIPVS(ctx, cfg)
	}
	if d.runVRRP() && len(cfg.Instances) > 0 {
		if err := d.startVRRP(ctx, cfg); err != nil {
			return err
		}
	}
	return nil
}

// startIPVS starts the reconciler and the health checks. Without IPVS in
// the kernel it logs why and leaves them off, as keepalived's checker
// process stops; VRRP goes on.
func (d *daemon) startIPVS(ctx context.Context, cfg *conf.Config) {
	newKernel := d.newKernel
	if newKernel == nil {
		newKernel = ipvs.NewKernel
	}
	k, err := newKernel()
	if err != nil {
		d.log.Error("IPVS is not available: virtual servers are not programmed and not checked", "err", err)
		d.ipvsErr = err
		return
	}
	// Status pages and metrics read the counters through their own netlink
	// socket, in their own goroutine: a scrape of thousands of destinations
	// does not hold up the reconciliation.
	var reader ipvs.Kernel
	if rd, err := newKernel(); err == nil {
		reader = rd
	}
	// The checkers' and the quorum's e-mail have a queue of their own, as
	// keepalived's checker process has: a slow mail server delays no VRRP
	// alert.
	nt := notify.New(cfg, notify.Options{Logger: d.log.With("subsystem", "notify")})
	rec := ipvs.New(cfg, k, ipvs.Options{Logger: d.log.With("subsystem", "ipvs"), DontRelease: d.o.dontReleaseIPVS, Reader: reader,
		Quorum: nt.QuorumAlert})
	d.goRun(ctx, "ipvs", func(ctx context.Context) error { defer nt.Close(); return rec.Run(ctx) }) // programming starts now; the checkers are built meanwhile
	hc := healthcheck.New(cfg, healthcheck.Options{Logger: d.log.With("subsystem", "check"), Observe: d.observe,
		Alert: func(a healthcheck.Alert) {
			nt.RealServerAlert(a.VS, a.RS, a.Up, a.RSChanged, notify.CheckerBody(a.Checker, a.CheckerUp, a.Reason))
		}})
	d.rec, d.hc, d.ntLV = rec, hc, nt
	d.watchLocalAddrs(ctx, cfg)
	d.recShared.Store(rec)
	// The checks start once the table is programmed: the reconciler
	// starts from the initial states the checkers would report (alpha:
	// down, else up), and the start-up programming of a large table is
	// not slowed down by thousands of such events.
	d.goRun(ctx, "check", func(ctx context.Context) error {
		select {
		case <-rec.Ready():
		case <-ctx.Done():
			return nil
		}
		return hc.Run(ctx)
	})
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.forwardHealth(ctx, hc, rec)
	}()
}

// watchLocalAddrs starts following this host's addresses for the
// checkers once a virtual server has ha_suspend. Should that fail, the
// checks are never suspended: a check that runs is safer than one that
// does not.
func (d *daemon) watchLocalAddrs(ctx context.Context, cfg *conf.Config) {
	if d.addrWatched || !slices.ContainsFunc(cfg.VirtualServers, func(vs *conf.VirtualServer) bool { return vs.HASuspend }) {
		return
	}
	watch := d.watchAddrs
	if watch == nil {
		watch = func(ctx context.Context, fn func(map[netip.Addr]bool)) error {
			return localaddr.Watch(ctx, localaddr.Options{}, fn)
		}
	}
	if err := watch(ctx, d.hc.SetLocalAddrs); err != nil {
		d.log.Error("ha_suspend: cannot follow this host's addresses; the checks are not suspended", "subsystem", "check", "err", err)
		return
	}
	d.addrWatched = true
}

// startVRRP starts the VRRP engine and its notifications.
func (d *daemon) startVRRP(ctx context.Context, cfg *conf.Config) error {
	nt := notify.New(cfg, notify.Options{Logger: d.log.With("subsystem", "notify")})
	eng, warnings, err := vrrp.NewEngine(cfg, vrrp.EngineOptions{
		Logger:      d.log.With("subsystem", "vrrp"),
		ScriptExec:  d.scriptExec,
		DontRelease: d.o.dontReleaseVRRP,
		Sink: vrrp.SinkFunc(func(n vrrp.Notification) {
			nt.Post(notify.Event{Group: n.Group != "", Name: n.Instance + n.Group, State: n.To.String(), Priority: int(n.Priority)})
			if rec := d.recShared.Load(); rec != nil && n.Instance != "" && n.Instance == d.syncInstance() {
				rec.SetSyncDaemonRole(n.To == vrrp.StateMaster)
			}
		}),
	})
	for _, w := range warnings {
		d.log.Warn(w, "subsystem", "vrrp")
	}
	if err != nil {
		return err
	}
	d.vrrp, d.nt = eng, nt
	// The STOP notifications of the shutdown run before Close returns.
	d.goRun(ctx, "vrrp", func(ctx context.Context) error { defer nt.Close(); return eng.Run(ctx) })
	return nil
}

// setSyncInstance records the VRRP instance lvs_sync_daemon follows.
func (d *daemon) setSyncInstance(cfg *conf.Config) {
	name := ""
	if s := cfg.Global.LVSSyncDaemon; s != nil {
		name = s.Instance
	}
	d.syncInst.Store(&name)
}

func (d *daemon) syncInstance() string {
	if p := d.syncInst.Load(); p != nil {
		return *p
	}
	return ""
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
func (d *daemon) forwardHealth(ctx context.Context, hc *healthcheck.Scheduler, rec *ipvs.Reconciler) {
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

// reload applies a validated configuration. IPVS and the checkers compute
// their own difference, and so does VRRP. A subsystem the running
// configuration did not need (no virtual servers, or no VRRP instances) is
// started when the new one needs it, as a restart would.
func (d *daemon) reload(cfg *conf.Config) {
	d.setSyncInstance(cfg)
	if d.ntLV != nil {
		d.ntLV.Apply(cfg)
	}
	if d.rec != nil {
		d.rec.Apply(cfg) // first: it returns at once and works in its own goroutine
	}
	if d.hc != nil {
		d.hc.Apply(cfg)
		d.watchLocalAddrs(d.ctx, cfg)
	}
	if d.rec == nil && d.ipvsErr == nil && d.runCheck() && len(cfg.VirtualServers) > 0 {
		d.log.Info("the configuration now has virtual servers: starting IPVS programming and health checks", "virtual_servers", len(cfg.VirtualServers))
		d.startIPVS(d.ctx, cfg)
		if d.rec != nil && d.vrrp != nil {
			// The sync daemon follows its instance's current state.
			for _, st := range d.vrrp.Status() {
				if st.Name == d.syncInstance() && st.State == vrrp.StateMaster {
					d.rec.SetSyncDaemonRole(true)
				}
			}
		}
	}
	if d.vrrp != nil {
		d.nt.Apply(cfg)
		if err := d.vrrp.Apply(cfg); err != nil {
			d.log.Error("VRRP reload", "subsystem", "vrrp", "err", err)
		}
	} else if d.runVRRP() && len(cfg.Instances) > 0 {
		d.log.Info("the configuration now has VRRP instances: starting VRRP", "instances", len(cfg.Instances))
		if err := d.startVRRP(d.ctx, cfg); err != nil {
			d.log.Error("VRRP cannot start", "subsystem", "vrrp", "err", err)
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

// wait blocks until every subsystem has stopped (after ctx is cancelled).
func (d *daemon) wait() { d.wg.Wait() }
