package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/healthcheck"
	"github.com/lvsd/lvsd/ipvs"
	"github.com/lvsd/lvsd/metrics"
	"github.com/lvsd/lvsd/status"
	"github.com/lvsd/lvsd/vrrp"
)

// ops is the operator-facing side of the daemon: the HTTP endpoint
// (/metrics, /status, the status page), the SIGUSR1/SIGUSR2 dumps, reload
// accounting and systemd notifications. It only reads what the subsystems
// publish.
type ops struct {
	log     *slog.Logger
	info    *status.Daemon
	cfg     atomic.Pointer[conf.Config] // the configuration in force
	scripts *status.ScriptRecorder
	checks  *metrics.Checks
	src     status.Sources                 // reads cur: the endpoint keeps it from the start
	cur     atomic.Pointer[status.Sources] // the running subsystems' sources (a reload can start one)
	srv     *http.Server
	dumpDir string
}

func newOps(o *options, log *slog.Logger, cfg *conf.Config, started time.Time) *ops {
	host, _ := os.Hostname()
	op := &ops{
		log:     log,
		info:    status.NewDaemon(version, runtime.Version(), o.configFile, host, started),
		scripts: status.NewScriptRecorder(),
		checks:  metrics.NewChecks(),
		dumpDir: status.DefaultDumpDir,
	}
	// LVSD_DUMP_DIR moves keepalived.data and keepalived.stats (tests,
	// containers with a read-only /tmp).
	if dir := os.Getenv("LVSD_DUMP_DIR"); dir != "" {
		op.dumpDir = dir
	}
	op.cfg.Store(cfg)
	op.cur.Store(&status.Sources{})
	op.src = status.Sources{
		Daemon: op.info,
		Config: func() *conf.Config { return op.cfg.Load() },
		VRRPConfig: func() *conf.Config {
			if f := op.cur.Load().VRRPConfig; f != nil {
				return f()
			}
			return nil
		},
		VRRP: func() []vrrp.InstanceStatus {
			if f := op.cur.Load().VRRP; f != nil {
				return f()
			}
			return nil
		},
		Scripts: func() []status.Script {
			if f := op.cur.Load().Scripts; f != nil {
				return f()
			}
			return nil
		},
		Health: func() []healthcheck.RealServerStatus {
			if f := op.cur.Load().Health; f != nil {
				return f()
			}
			return nil
		},
		IPVS: func() *ipvs.Snapshot {
			if f := op.cur.Load().IPVS; f != nil {
				return f()
			}
			return nil
		},
	}
	return op
}

// wire gives the daemon the hooks ops reads through; call before start.
func (op *ops) wire(d *daemon) {
	d.observe = op.checks.Observe
	d.scriptExec = op.scripts.ScriptExec(nil)
}

// started records what the daemon runs; call after start and after each
// reload (which can start a subsystem).
func (op *ops) started(d *daemon) {
	switch {
	case d.ipvsErr != nil:
		op.info.SetIPVSUnavailable("IPVS is not available: virtual servers are not programmed and not checked: " + d.ipvsErr.Error())
	case !d.runCheck():
		op.info.SetIPVSUnavailable("IPVS is not programmed by this process (-P: VRRP only)")
	}
	current := func() *conf.Config { return op.cfg.Load() }
	cur := &status.Sources{}
	if d.vrrp != nil {
		// A reload applies VRRP changes too: the engine runs the
		// configuration in force.
		cur.VRRP, cur.VRRPConfig = d.vrrp.Status, current
		cur.Scripts = func() []status.Script { return op.scripts.Scripts(current()) }
	}
	if d.hc != nil {
		cur.Health = d.hc.Snapshot
	}
	if d.rec != nil {
		cur.IPVS = d.rec.Snapshot
	}
	op.cur.Store(cur)
}

// reloaded records a reload attempt: cfg is the new configuration, or nil
// when it was rejected (err).
func (op *ops) reloaded(cfg *conf.Config, err error) {
	if cfg != nil {
		op.cfg.Store(cfg)
	}
	op.info.RecordReload(time.Now(), err)
}

// listen starts the HTTP endpoint on addr ("" disables it). A failure to
// listen is logged, not fatal: VRRP and IPVS matter more than their
// metrics.
func (op *ops) listen(addr string) {
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		op.log.Error("metrics and status endpoint not started", "listen", addr, "err", err)
		return
	}
	op.srv = &http.Server{
		Handler:           status.Handler(op.src, metrics.Handler(metrics.New(op.src, op.checks))),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(op.log.Handler(), slog.LevelWarn),
	}
	op.log.Info("metrics and status endpoint", "listen", ln.Addr().String(), "paths", "/metrics /status /")
	go func() {
		if err := op.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			op.log.Error("metrics and status endpoint stopped", "err", err)
		}
	}()
}

func (op *ops) close() {
	if op.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = op.srv.Shutdown(ctx)
}

// dump writes keepalived's dump for SIGUSR1 (state) or SIGUSR2 (counters).
func (op *ops) dump(stats bool) {
	st := status.Build(op.src)
	write, what := status.DumpData, "data"
	if stats {
		write, what = status.DumpStats, "stats"
	}
	path, err := write(op.dumpDir, st)
	if err != nil {
		op.log.Error("cannot write the "+what+" dump", "file", path, "err", err)
		return
	}
	op.log.Info("wrote the "+what+" dump", "file", path)
}

// sdNotify tells systemd (Type=notify) about our state; without
// NOTIFY_SOCKET it does nothing.
func (op *ops) sdNotify(state string) {
	if _, err := sddaemon.SdNotify(false, state); err != nil {
		op.log.Warn("systemd notification failed", "state", state, "err", err)
	}
}

// sdReloading is RELOADING=1 with the CLOCK_MONOTONIC time systemd wants
// (it compares it with its own to order the READY=1 that follows).
func (op *ops) sdReloading() {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	op.sdNotify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000))
}
