package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/exporter-toolkit/web"
	"golang.org/x/sys/unix"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/internal/addrguard"
	"github.com/lvsd/lvsd/ipvs"
	"github.com/lvsd/lvsd/metrics"
	"github.com/lvsd/lvsd/notify"
	"github.com/lvsd/lvsd/status"
)

// ops is the operator-facing side of the daemon: the HTTP endpoint
// (/metrics, /status, the status page), the SIGUSR1/SIGUSR2 dumps, reload
// accounting and systemd notifications. It only reads what the subsystems
// publish.
type ops struct {
	log      *slog.Logger
	info     *status.Daemon
	d        *daemon
	cfg      atomic.Pointer[conf.Config] // the configuration in force, for the HTTP goroutines
	scripts  *status.ScriptRecorder
	checks   *metrics.Checks
	src      status.Sources
	srv      *http.Server
	guard    *addrguard.Listener // nil when the endpoint answers on managed addresses
	dumpDir  string
	dataFile string // the SIGUSR1 dump's name in dumpDir (dataDumpName)
}

// recorders are what ops records itself, handed to the subsystems as they
// are built: the health-check attempts (metrics) and the vrrp_script runs
// (status).
type recorders struct {
	checks  *metrics.Checks
	scripts *status.ScriptRecorder
}

func newRecorders() recorders {
	return recorders{checks: metrics.NewChecks(), scripts: status.NewScriptRecorder()}
}

// deps are the daemon's hooks that feed the recorders.
func (r recorders) deps() deps {
	return deps{observe: r.checks.Observe, scriptExec: r.scripts.ScriptExec(nil), newKernel: serveKernel}
}

// serveKernel, when set, replaces IPVS for serve: only the netns tests'
// helper processes set it (the host kernel of CI has no IPVS).
var serveKernel func() (ipvs.Kernel, error)

func newOps(o *options, log *slog.Logger, cfg *conf.Config, started time.Time, d *daemon, rec recorders) *ops {
	host, _ := os.Hostname()
	op := &ops{
		log:     log,
		info:    status.NewDaemon(version, runtime.Version(), o.configFile, host, started),
		d:       d,
		scripts: rec.scripts,
		checks:  rec.checks,
		dumpDir: status.DefaultDumpDir,
		// instance and net_namespace are not changed by a reload.
		dataFile: dataDumpName(&cfg.Global),
	}
	// LVSD_DUMP_DIR moves keepalived.data, keepalived.stats and
	// keepalived.json (tests, containers with a read-only /tmp); else
	// TMPDIR does, as for keepalived.
	for _, env := range []string{"LVSD_DUMP_DIR", "TMPDIR"} {
		if dir := os.Getenv(env); dir != "" {
			op.dumpDir = dir
			break
		}
	}
	op.cfg.Store(cfg)
	current := func() *conf.Config { return op.cfg.Load() }
	op.src = status.Sources{Daemon: op.info, Config: current, Resyncs: d.resyncs}
	if d.vrrp != nil {
		op.src.Repairs = d.vrrp.Repairs
		// A reload applies VRRP changes too: the engine runs the
		// configuration in force.
		op.src.VRRP, op.src.VRRPConfig = d.vrrp.Status, current
		op.src.VRRPUnrouted = d.vrrp.UnroutedDrops
		op.src.Scripts = func() []status.Script { return op.scripts.Scripts(current()) }
	}
	if d.hc != nil {
		op.src.Health = d.hc.Snapshot
	}
	if d.bgp != nil {
		op.src.BGP = d.bgp.Status
	}
	if d.rec != nil {
		// The reconciler idles while the configuration has no virtual
		// server: IPVS is reported from the first one on.
		op.src.IPVS = func() *ipvs.Snapshot {
			if len(current().VirtualServers) == 0 {
				return nil
			}
			return d.rec.Snapshot()
		}
	}
	if d.vrrpNotify != nil || d.checkNotify != nil {
		op.src.Notify = func() map[string]notify.Stats {
			m := map[string]notify.Stats{}
			if d.vrrpNotify != nil {
				m["vrrp"] = d.vrrpNotify.Stats()
			}
			if d.checkNotify != nil {
				m["check"] = d.checkNotify.Stats()
			}
			return m
		}
	}
	op.info.SetIPVSUnavailable(op.ipvsDown(o, cfg))
	return op
}

// ipvsDown says why IPVS is not programmed for cfg ("" when it is, or when
// cfg has nothing for it).
func (op *ops) ipvsDown(o *options, cfg *conf.Config) string {
	switch {
	case o.vrrpOnly && !o.checkOnly:
		return "IPVS is not programmed by this process (-P: VRRP only)"
	case op.d.ipvsErr != nil && len(cfg.VirtualServers) > 0:
		return "IPVS is not available: virtual servers are not programmed and not checked: " + op.d.ipvsErr.Error()
	}
	return ""
}

// reloaded records a reload attempt: cfg is the new configuration, or nil
// when it was rejected (err).
func (op *ops) reloaded(o *options, cfg *conf.Config, err error) {
	if cfg != nil {
		op.cfg.Store(cfg)
		op.info.SetIPVSUnavailable(op.ipvsDown(o, cfg))
		if op.guard != nil {
			op.guard.SetManaged(addrguard.FromConfig(cfg))
		}
	}
	op.info.RecordReload(time.Now(), err)
}

// listen starts the HTTP endpoint on o.metricsListen ("" disables it).
// Unless o.allowManaged, connections to an address lvsd manages (a VIP, a
// virtual server: see addrguard) are closed as they are accepted and
// counted. o.webConfigFile is a Prometheus web configuration file (TLS,
// basic auth: exporter-toolkit, as node_exporter's --web.config.file). A
// failure to listen, or a web configuration that does not load, is logged,
// not fatal: VRRP and IPVS matter more than their metrics; and the endpoint
// is then not started, never started without the TLS or the passwords it
// was asked for.
func (op *ops) listen(o *options) {
	addr := o.metricsListen
	if addr == "" {
		return
	}
	if err := web.Validate(o.webConfigFile); err != nil {
		op.log.Error("metrics and status endpoint not started: bad web configuration", "web.config.file", o.webConfigFile, "err", err)
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		op.log.Error("metrics and status endpoint not started", "listen", addr, "err", err)
		return
	}
	if !o.allowManaged {
		g := addrguard.New(ln, addrguard.FromConfig(op.cfg.Load()))
		op.guard, ln = g, g
		op.src.HTTPRefused = g.Refused
		if ap, err := netip.ParseAddrPort(addr); err == nil && g.Managed().Contains(ap.Addr()) {
			op.log.Warn("the metrics endpoint listens on an address lvsd manages: every connection will be refused (see --metrics-allow-managed-addresses)", "listen", addr)
		}
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
	op.log.Info("metrics and status endpoint", "listen", ln.Addr().String(), "paths", "/metrics /status /",
		"web.config.file", o.webConfigFile, "managed_addresses", map[bool]string{true: "answered", false: "refused"}[o.allowManaged])
	flags := &web.FlagConfig{WebListenAddresses: &[]string{addr}, WebSystemdSocket: new(bool), WebConfigFile: &o.webConfigFile}
	// exporter-toolkit logs at Info what it sets up (TLS on or off).
	wlog := op.log.With("subsystem", "web")
	go func() {
		if err := web.Serve(ln, op.srv, flags, wlog); err != nil && !errors.Is(err, http.ErrServerClosed) {
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
	name, body, what := op.dataFile, status.WriteData, "data"
	if stats {
		name, body, what = status.StatsFile, status.WriteStats, "stats"
	}
	path := filepath.Join(op.dumpDir, name)
	if err := status.WriteDumpFile(path, func(w io.Writer) error { return body(w, st) }); err != nil {
		op.log.Error("cannot write the "+what+" dump", "file", path, "err", err)
		return
	}
	op.log.Info("wrote the "+what+" dump", "file", path)
}

// dumpJSON writes SIGJSON's dump, keepalived.json, as keepalived 2.2.7:
// only when VRRP runs instances.
func (op *ops) dumpJSON() {
	if op.src.VRRPConfig == nil || len(op.src.VRRPConfig().Instances) == 0 {
		op.log.Info("no VRRP instance: no JSON dump")
		return
	}
	path, err := status.DumpJSON(op.dumpDir, status.Build(op.src), op.src.VRRPConfig())
	if err != nil {
		op.log.Error("cannot write the JSON dump", "file", path, "err", err)
		return
	}
	op.log.Info("wrote the JSON dump", "file", path)
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
