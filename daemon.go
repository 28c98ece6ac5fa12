package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/healthcheck"
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
	hc   *healthcheck.Scheduler
	rec  *ipvs.Reconciler

	// observe, when set before start, receives every health-check attempt
	// (metrics); ipvsErr says why IPVS is not programmed (status pages).
	observe    func(healthcheck.Observation)
	ipvsErr    error
	scriptExec func(vrrp.ScriptConfig, *conf.Global) vrrp.ScriptExec // vrrp_script runner (nil: the default)
	newKernel  func() (ipvs.Kernel, error)                           // the IPVS table (nil: ipvs.NewKernel)

	wg   sync.WaitGroup
	errs chan error
}

func (d *daemon) runVRRP() bool  { return !d.o.checkOnly || d.o.vrrpOnly }
func (d *daemon) runCheck() bool { return !d.o.vrrpOnly || d.o.checkOnly }

// start builds and starts the subsystems the command line asks for.
func (d *daemon) start(ctx context.Context, cfg *conf.Config) error {
	d.errs = make(chan error, 4)
	if d.runCheck() && len(cfg.VirtualServers) > 0 {
		newKernel := d.newKernel
		if newKernel == nil {
			newKernel = ipvs.NewKernel
		}
		k, err := newKernel()
		if err != nil {
			// keepalived's checker process stops here too; VRRP goes on.
			d.log.Error("IPVS is not available: virtual servers are not programmed and not checked", "err", err)
			d.ipvsErr = err
		} else {
			d.rec = ipvs.New(cfg, k, ipvs.Options{Logger: d.log.With("subsystem", "ipvs"), DontRelease: d.o.dontReleaseIPVS})
			d.hc = healthcheck.New(cfg, healthcheck.Options{Logger: d.log.With("subsystem", "check"), Observe: d.observe})
			d.goRun(ctx, "ipvs", d.rec.Run)
			// The checks start once the table is programmed: the reconciler
			// starts from the initial states the checkers would report
			// (alpha: down, else up), and the start-up programming of a
			// large table is not slowed down by thousands of such events.
			d.goRun(ctx, "check", func(ctx context.Context) error {
				select {
				case <-d.rec.Ready():
				case <-ctx.Done():
					return nil
				}
				return d.hc.Run(ctx)
			})
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				d.forwardHealth(ctx)
			}()
		}
	}
	if d.runVRRP() && len(cfg.Instances) > 0 {
		syncInst := ""
		if s := cfg.Global.LVSSyncDaemon; s != nil {
			syncInst = s.Instance
		}
		nt := notify.New(cfg, notify.Options{Logger: d.log.With("subsystem", "notify")})
		eng, warnings, err := vrrp.NewEngine(cfg, vrrp.EngineOptions{
			Logger:      d.log.With("subsystem", "vrrp"),
			ScriptExec:  d.scriptExec,
			DontRelease: d.o.dontReleaseVRRP,
			Notify: func(n vrrp.Notification) {
				nt.Post(notify.Event{Group: n.Group != "", Name: n.Instance + n.Group, State: n.To.String(), Priority: int(n.Priority)})
				if n.Instance != "" && n.Instance == syncInst && d.rec != nil {
					d.rec.SetSyncDaemonRole(n.To == vrrp.StateMaster)
				}
			},
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
	}
	return nil
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
func (d *daemon) forwardHealth(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-d.hc.Events():
			if !ok {
				return
			}
			d.rec.SetHealth(ipvs.HealthEvent{VS: ev.VS, RS: ev.RS, Up: ev.Up, Weight: ev.Weight})
		}
	}
}

// reload applies a validated configuration. IPVS and the checkers compute
// their own difference. A subsystem the running configuration did not need
// (no virtual servers, or no VRRP instances, at start) is not started by a
// reload yet: that is said once per reload.
func (d *daemon) reload(cfg *conf.Config) {
	if d.rec == nil && d.ipvsErr == nil && d.runCheck() && len(cfg.VirtualServers) > 0 {
		d.log.Warn("the reloaded configuration has virtual servers but lvsd started without any: restart lvsd to program IPVS and run the health checks", "virtual_servers", len(cfg.VirtualServers))
	}
	if d.vrrp == nil && d.runVRRP() && len(cfg.Instances) > 0 {
		d.log.Warn("the reloaded configuration has VRRP instances but lvsd started without any: restart lvsd to run them", "instances", len(cfg.Instances))
	}
	if d.rec != nil {
		d.rec.Apply(cfg) // first: it returns at once and works in its own goroutine
	}
	if d.hc != nil {
		d.hc.Apply(cfg)
	}
	if d.vrrp != nil {
		d.nt.Apply(cfg)
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

// wait blocks until every subsystem has stopped (after ctx is cancelled).
func (d *daemon) wait() { d.wg.Wait() }
