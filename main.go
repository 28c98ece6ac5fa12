// Command lvsd replaces keepalived on LVS/IPVS load-balancer directors: it reads
// keepalived.conf unchanged, runs VRRP, programs IPVS and health-checks real
// servers. The command line and signals follow keepalived's.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/control"
)

// Exit codes, as keepalived 2.2.7 uses them.
const (
	exitOK           = 0
	exitProgramError = 1
	// exitMissingParameter: a keyword lacks the parameter keepalived requires
	// ("missing a parameter after keyword"); keepalived 2.2.7's -t and its
	// daemon both exit 2 (its KEEPALIVED_EXIT_PROGRAM_ERROR) for it.
	exitMissingParameter = 2
	exitConfig           = 4 // the configuration cannot run
	exitConfigTest       = 5 // errors reported, but it would run
	exitConfigSecurity   = 6 // scripts configured without enable_script_security
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

func versionString() string {
	s := "lvsd " + version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" && len(kv.Value) >= 12 {
				s += " (" + kv.Value[:12] + ")"
			}
		}
		s += " " + bi.GoVersion
	}
	return s + "\nkeepalived.conf compatible (reference: keepalived 2.2.7)"
}

func main() {
	os.Exit(run(os.Args[0], os.Args[1:], os.Stdout, os.Stderr))
}

func run(prog string, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "realserver" {
		return realserverMain(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "ctl" {
		return runCtl(args[1:], stdout, stderr)
	}
	o, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n%s", filepath.Base(prog), err, usage(filepath.Base(prog)))
		return exitProgramError
	}
	if o.help {
		fmt.Fprint(stdout, usage(filepath.Base(prog)))
		return exitOK
	}
	if o.version {
		fmt.Fprintln(stdout, versionString())
		return exitOK
	}
	if o.signum != "" {
		return signumOutput(o.signum, stdout, stderr)
	}
	if o.configTest {
		// The default GC target (issue 17): 400 made it 10% faster and
		// 15 MB bigger on a 660,000-line file (docs/BENCHMARKS.md).
		return configTest(o, stdout, stderr)
	}
	if !o.dontFork && os.Getenv("LVSD_FOREGROUND") == "" {
		return daemonize(prog, args, stderr)
	}
	log, err := newLogger(o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "lvsd: %v\n", err)
		return exitProgramError
	}
	slog.SetDefault(log)
	tuneGC()
	if path := os.Getenv("LVSD_CPUPROFILE"); path != "" {
		// For developers: a CPU profile of the whole run, written at exit.
		if f, err := os.Create(path); err != nil {
			log.Warn("LVSD_CPUPROFILE", "err", err)
		} else if err := pprof.StartCPUProfile(f); err != nil {
			log.Warn("LVSD_CPUPROFILE", "err", err)
			f.Close()
		} else {
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
	}
	return serve(o, log)
}

// loadOptions are the conf.Options this command line implies.
func loadOptions(o *options) conf.Options {
	return conf.Options{
		ConfigID: o.configID,
		InterfaceExists: func(name string) bool {
			_, err := net.InterfaceByName(name)
			return err == nil
		},
	}
}

// configTest implements -t: report every diagnostic, exit as keepalived does.
func configTest(o *options, stdout, stderr io.Writer) int {
	file := o.configFile
	if o.configTestFile != "" {
		file = o.configTestFile
	}
	cfg, diags := conf.Load(file, loadOptions(o))
	if err := enterNetNamespace(o, cfg); err != nil {
		// keepalived: "Unable to set network namespace NAME - exiting".
		fmt.Fprintf(stderr, "lvsd: %v\n", err)
		return exitConfig
	}
	for _, d := range diags {
		fmt.Fprintln(stderr, d)
	}
	if o.dumpConf {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(cfg); err != nil {
			fmt.Fprintf(stderr, "lvsd: dump: %v\n", err)
		}
	}
	return testExitCode(cfg, diags)
}

// testExitCode maps a load result to keepalived's -t exit codes.
func testExitCode(cfg *conf.Config, diags []conf.Diag) int {
	if conf.MissingParameter(diags) {
		return exitMissingParameter
	}
	switch conf.MaxLevel(diags) {
	case conf.Fatal:
		return exitConfig
	case conf.Error, conf.Warning:
		return exitConfigTest
	}
	if !cfg.Global.EnableScriptSecurity && len(cfg.AllScripts()) > 0 {
		return exitConfigSecurity
	}
	return exitOK
}

// daemonize starts lvsd again in a new session, detached, and returns at once,
// which is what keepalived does without -n.
func daemonize(prog string, args []string, stderr io.Writer) int {
	self, err := os.Executable()
	if err != nil {
		self = prog
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintf(stderr, "lvsd: %v\n", err)
		return exitProgramError
	}
	defer null.Close()
	env := append(os.Environ(), "LVSD_FOREGROUND=1")
	p, err := os.StartProcess(self, append([]string{prog}, args...), &os.ProcAttr{
		Env:   env,
		Files: []*os.File{null, null, null},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		fmt.Fprintf(stderr, "lvsd: cannot start in the background: %v\n", err)
		return exitProgramError
	}
	_ = p.Release()
	return exitOK
}

// keepalived's SIGJSON (SIGRTMIN+2) and SIGSTATS_CLEAR (SIGRTMAX-1), as
// --signum prints them.
var (
	sigJSON       = syscall.Signal(signalNumbers["JSON"])
	sigStatsClear = syscall.Signal(signalNumbers["STATS_CLEAR"])
)

// serve runs the daemon until SIGTERM/SIGINT. SIGHUP reloads (see
// reload). SIGUSR1 and SIGUSR2 write keepalived's state and counter dumps.
// With systemd (Type=notify) it reports READY, RELOADING and STOPPING.
func serve(o *options, log *slog.Logger) int {
	log.Info("starting", "version", version, "config", o.configFile)
	startedAt := time.Now()
	restoreGC := relaxGC()
	cfg, diags := conf.Load(o.configFile, loadOptions(o))
	if err := enterNetNamespace(o, cfg); err != nil {
		log.Error("cannot run in the network namespace", "err", err)
		return exitProgramError
	}
	logDiags(log, diags)
	if conf.MaxLevel(diags) == conf.Fatal {
		log.Error("configuration cannot run; stopping", "config", o.configFile)
		if conf.MissingParameter(diags) {
			return exitMissingParameter
		}
		return exitConfig
	}
	// global_defs umask, or keepalived's own (0177, whatever the umask it
	// was started with), as keepalived: for the files lvsd makes (the
	// notify FIFOs; the pid files stay 0644, the dumps 0600) and the
	// scripts it runs; set at start.
	umask := keepalivedUmask
	if cfg.Global.Umask >= 0 {
		umask = cfg.Global.Umask
	}
	syscall.Umask(umask)
	removePid, err := writeOurPidFile(o, &cfg.Global)
	if err != nil {
		log.Error("pid file", "err", err)
		return exitProgramError
	}
	defer removePid()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1, syscall.SIGUSR2,
		sigJSON, sigStatsClear)
	defer signal.Stop(sigs)

	log.Info("configuration loaded", "instances", len(cfg.Instances), "virtual_servers", len(cfg.VirtualServers))
	rec := newRecorders()
	reserveProcs()
	d, err := newDaemon(o, log, cfg, rec.deps())
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitConfig
	}
	op := newOps(o, log, cfg, startedAt, d, rec)
	d.start(ctx, cfg)
	defer d.wait()
	programmed := d.programmed()
	go func() {
		<-programmed
		restoreGC()
		releaseMemory()
	}()
	op.listen(o)
	defer op.close()
	s := &server{o: o, log: log, d: d, op: op, diags: diags}
	reloads := make(chan chan control.ReloadResult)
	stopCtl := startControl(ctx, o, log, d, op, reloads)
	defer stopCtl()
	op.sdNotify("READY=1\nSTATUS=running")
	defer op.sdNotify("STOPPING=1")
	for {
		select {
		case reply := <-reloads:
			reply <- s.reload()
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				s.reload()
			case syscall.SIGUSR1:
				op.dump(false)
			case syscall.SIGUSR2:
				op.dump(true)
			case sigJSON:
				op.dumpJSON()
			case sigStatsClear:
				// keepalived's SIGSTATS_CLEAR (--signum=STATS_CLEAR): caught,
				// so that sending it does not stop lvsd.
				log.Warn("signal not supported by lvsd; ignored", "signal", int(sig.(syscall.Signal)))
			default:
				log.Info("stopping", "signal", sig.String())
				d.gracefulStop(sigs)
				cancel()
				return exitOK
			}
		case err := <-d.errs:
			log.Error("stopping: a subsystem failed", "err", err)
			cancel()
			return exitProgramError
		}
	}
}

// server is what a reload needs; the goroutine of serve owns it.
type server struct {
	o     *options
	log   *slog.Logger
	d     *daemon
	op    *ops
	diags []conf.Diag // the diagnostics of the configuration in force
}

// reload is SIGHUP (and lvsd ctl reload): read the configuration,
// validate it, then either reject it (the running configuration stays in
// force) or hand it to the subsystems, and report the outcome in the log,
// the status, to systemd and to the caller: the error when rejected, and
// every diagnostic of the new configuration (file:line first).
func (s *server) reload() control.ReloadResult {
	s.op.sdReloading()
	defer releaseMemory()
	defer relaxGC()()
	t0 := time.Now()
	next, diags := conf.Load(s.o.configFile, loadOptions(s.o))
	parsed := time.Since(t0)
	logDiags(s.log, diags)
	res := control.ReloadResult{}
	for _, d := range diags {
		res.Diagnostics = append(res.Diagnostics, d.String())
	}
	if err := s.validate(diags); err != nil {
		s.log.Error("reload rejected: " + err.Error() + "; keeping the running configuration")
		s.op.reloaded(s.o, nil, err)
		s.op.sdNotify("READY=1\nSTATUS=running; the last reload was rejected, the previous configuration is kept")
		res.Err = err
		return res
	}
	keepStartNames(s.log, s.o, &s.op.cfg.Load().Global, &next.Global)
	s.diags = diags
	s.d.apply(next)
	s.d.writeStatesOnReload(next)
	s.op.reloaded(s.o, next, nil)
	s.log.Info("configuration reloaded", "instances", len(next.Instances), "virtual_servers", len(next.VirtualServers),
		"parse", parsed.Round(10*time.Microsecond), "took", time.Since(t0).Round(10*time.Microsecond))
	s.op.sdNotify("READY=1\nSTATUS=running")
	return res
}

// validate refuses a reloaded configuration that cannot run, or that has
// errors the running one did not have (see newErrors).
func (s *server) validate(diags []conf.Diag) error {
	if conf.MaxLevel(diags) == conf.Fatal {
		return fmt.Errorf("%s cannot run: %s", s.o.configFile, firstFatal(diags))
	}
	if bad := newErrors(s.diags, diags); len(bad) > 0 {
		return fmt.Errorf("%s has new errors (%d): %s", s.o.configFile, len(bad), bad[0])
	}
	return nil
}

// relaxGC raises the garbage collector's target while lvsd builds a
// configuration and its derived state (parse, desired IPVS table, checkers):
// nearly everything allocated then stays, and at the default target the
// heap growing from nothing triggers a collection at each doubling. It
// returns the function restoring the previous target; a target set higher
// (or GOGC=off) is left alone.
func relaxGC() (restore func()) {
	const relaxed = 400
	old := debug.SetGCPercent(relaxed)
	if old < 0 || old >= relaxed {
		debug.SetGCPercent(old)
		return func() {}
	}
	var once sync.Once
	return func() { once.Do(func() { debug.SetGCPercent(old) }) }
}

// newErrors returns the error diagnostics of a reloaded configuration that
// the running one did not have, compared without their position (moving
// lines does not make an error new). A reload bringing new errors is
// rejected: an error drops a value or an element, and applying it would
// take that out of service (a syntax error, an unclosed block, can swallow
// the rest of the file). Errors the running configuration already had were
// accepted at start, as keepalived accepts them, and do not block reloads.
func newErrors(running, next []conf.Diag) []conf.Diag {
	key := func(d conf.Diag) string { return d.Keyword + "\x00" + d.Msg }
	seen := map[string]int{}
	for _, d := range running {
		if d.Level >= conf.Error {
			seen[key(d)]++
		}
	}
	var out []conf.Diag
	for _, d := range next {
		if d.Level < conf.Error {
			continue
		}
		if k := key(d); seen[k] > 0 {
			seen[k]--
			continue
		}
		out = append(out, d)
	}
	return out
}

// firstFatal is the first fatal diagnostic, for the reload's record.
func firstFatal(diags []conf.Diag) string {
	for _, d := range diags {
		if d.Level == conf.Fatal {
			return d.String()
		}
	}
	return "fatal error"
}

func logDiags(log *slog.Logger, diags []conf.Diag) {
	for _, d := range diags {
		lvl := slog.LevelInfo
		switch d.Level {
		case conf.Warning:
			lvl = slog.LevelWarn
		case conf.Error, conf.Fatal:
			lvl = slog.LevelError
		}
		log.Log(context.Background(), lvl, d.String())
	}
}

// keepalivedUmask is keepalived 2.2.7's umask when no umask keyword is
// given (its processes' Umask in /proc/PID/status, whatever the umask it
// was started with).
const keepalivedUmask = 0o177

// writePidFile writes our pid (mode 0644 whatever the umask, as
// keepalived's), refusing to follow a symlink.
func writePidFile(path string) error {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return errors.New(path + " is a symbolic link; refusing to write it")
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
