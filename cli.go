package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// options is the parsed command line. It mirrors keepalived's, plus lvsd's own.
type options struct {
	configFile      string
	dontFork        bool
	logConsole      bool
	logDetail       bool
	logFacility     string
	configTest      bool
	configTestFile  string
	dumpConf        bool
	vrrpOnly        bool
	checkOnly       bool
	pidFile         string
	netNamespace    string // -s: overrides net_namespace
	vrrpPidFile     string
	checkPidFile    string
	configID        string
	version         bool
	help            bool
	dontReleaseVRRP bool
	dontReleaseIPVS bool
	metricsListen   string
	// webConfigFile is the Prometheus web configuration file (TLS, basic
	// auth) of the metrics and status endpoint, as node_exporter's
	// --web.config.file.
	webConfigFile string
	// allowManaged lets the endpoint answer on the addresses lvsd manages
	// (VIPs, virtual servers), which it refuses by default.
	allowManaged bool
	// signum is --signum=NAME: print the signal number keepalived uses for NAME.
	signum       string
	ctlSocket    string // the control socket; "" disables it (see ctlSocketPath)
	ctlSocketSet bool   // --ctl-socket given
	ctlGroup     string // the group that may use the control socket besides root
}

const defaultConfigFile = "/etc/keepalived/keepalived.conf"

// optSpec describes one option: its short and long names and whether it takes
// an argument (argNone, argRequired, argOptional as in getopt_long).
type optSpec struct {
	short byte
	long  string
	arg   int
	set   func(o *options, v string) error
	help  string
}

const (
	argNone = iota
	argRequired
	argOptional
)

var optSpecs = []optSpec{
	{'f', "use-file", argRequired, func(o *options, v string) error { o.configFile = v; return nil }, "Use the specified configuration file"},
	{'n', "dont-fork", argNone, func(o *options, _ string) error { o.dontFork = true; return nil }, "Don't fork the daemon process"},
	{'l', "log-console", argNone, func(o *options, _ string) error { o.logConsole = true; return nil }, "Log messages to the local console"},
	{'D', "log-detail", argNone, func(o *options, _ string) error { o.logDetail = true; return nil }, "Detailed log messages"},
	{'S', "log-facility", argRequired, func(o *options, v string) error {
		if _, err := parseFacility(v); err != nil {
			return err
		}
		o.logFacility = v
		return nil
	}, "0-7|local0-7|user|daemon: syslog facility (default daemon)"},
	{'t', "config-test", argOptional, func(o *options, v string) error { o.configTest = true; o.configTestFile = v; return nil }, "Check the configuration for obvious errors (optionally of FILE)"},
	{'d', "dump-conf", argNone, func(o *options, _ string) error { o.dumpConf = true; return nil }, "Dump the parsed configuration as JSON (with -t)"},
	{'P', "vrrp", argNone, func(o *options, _ string) error { o.vrrpOnly = true; return nil }, "Only run the VRRP subsystem"},
	{'C', "check", argNone, func(o *options, _ string) error { o.checkOnly = true; return nil }, "Only run the health-checker and IPVS subsystems"},
	{'p', "pid", argRequired, func(o *options, v string) error { o.pidFile = v; return nil }, "Use the specified pidfile"},
	{'r', "vrrp_pid", argRequired, func(o *options, v string) error { o.vrrpPidFile = v; return nil }, "Accepted for compatibility (lvsd is one process)"},
	{'c', "checkers_pid", argRequired, func(o *options, v string) error { o.checkPidFile = v; return nil }, "Accepted for compatibility (lvsd is one process)"},
	{'s', "namespace", argRequired, func(o *options, v string) error { o.netNamespace = v; return nil }, "Run in network namespace NAME (overrides config)"},
	{'i', "config-id", argRequired, func(o *options, v string) error { o.configID = v; return nil }, "Use the specified config id for @ID lines (default: short host name)"},
	{'V', "dont-release-vrrp", argNone, func(o *options, _ string) error { o.dontReleaseVRRP = true; return nil }, "Don't remove VRRP VIPs on daemon stop"},
	{'I', "dont-release-ipvs", argNone, func(o *options, _ string) error { o.dontReleaseIPVS = true; return nil }, "Don't remove IPVS topology on daemon stop"},
	{'v', "version", argNone, func(o *options, _ string) error { o.version = true; return nil }, "Display the version number"},
	{'h', "help", argNone, func(o *options, _ string) error { o.help = true; return nil }, "Display this help message"},
	{0, "signum", argRequired, func(o *options, v string) error {
		if v == "" {
			return fmt.Errorf("requires an argument")
		}
		o.signum = v
		return nil
	}, "SIGFUNC: print the signal number for STOP, RELOAD, DATA, STATS, STATS_CLEAR, JSON"},
	{0, "metrics-listen", argRequired, func(o *options, v string) error { o.metricsListen = v; return nil }, "ADDR: Prometheus metrics listen address (default :9165; empty disables)"},
	{0, "web.config.file", argRequired, func(o *options, v string) error { o.webConfigFile = v; return nil }, "FILE: Prometheus web configuration (TLS, basic auth) of the metrics endpoint"},
	{0, "metrics-allow-managed-addresses", argNone, func(o *options, _ string) error { o.allowManaged = true; return nil }, "Let the metrics endpoint answer on VIPs and virtual server addresses"},
	{0, "ctl-socket", argRequired, func(o *options, v string) error { o.ctlSocket, o.ctlSocketSet = v, true; return nil }, "PATH: control socket for lvsd ctl (default /run/lvsd/ctl, or lvsd.ctl beside the -p pid file; empty disables)"},
	{0, "ctl-group", argRequired, func(o *options, v string) error { o.ctlGroup = v; return nil }, "GROUP: group that may use the control socket besides root"},
}

// parseArgs parses args (without the program name) the way getopt_long does:
// short options may be grouped (-nlD), a required argument may be attached
// (-fFILE) or the next word, an optional one must be attached (-tFILE,
// --config-test=FILE); "--" ends the options. Non-option words are an error.
func parseArgs(args []string) (*options, error) {
	o := &options{configFile: defaultConfigFile, metricsListen: ":9165"}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if i+1 < len(args) {
				return nil, fmt.Errorf("unexpected argument '%s'", args[i+1])
			}
			return o, nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			spec := findLong(name)
			if spec == nil {
				return nil, fmt.Errorf("unrecognized option '--%s'", name)
			}
			switch spec.arg {
			case argNone:
				if hasVal {
					return nil, fmt.Errorf("option '--%s' doesn't allow an argument", name)
				}
			case argRequired:
				if !hasVal {
					if i+1 >= len(args) {
						return nil, fmt.Errorf("option '--%s' requires an argument", name)
					}
					i++
					val = args[i]
				}
			}
			if err := spec.set(o, val); err != nil {
				return nil, fmt.Errorf("option '--%s': %v", name, err)
			}
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				spec := findShort(a[j])
				if spec == nil {
					return nil, fmt.Errorf("invalid option -- '%c'", a[j])
				}
				val := ""
				switch spec.arg {
				case argRequired:
					if j+1 < len(a) {
						val = a[j+1:]
					} else if i+1 < len(args) {
						i++
						val = args[i]
					} else {
						return nil, fmt.Errorf("option requires an argument -- '%c'", a[j])
					}
					j = len(a)
				case argOptional:
					val = a[j+1:]
					j = len(a)
				}
				if err := spec.set(o, val); err != nil {
					return nil, fmt.Errorf("option -%c: %v", spec.short, err)
				}
			}
		default:
			return nil, fmt.Errorf("unexpected argument '%s'", a)
		}
	}
	return o, nil
}

func findLong(name string) *optSpec {
	for i := range optSpecs {
		if optSpecs[i].long == name {
			return &optSpecs[i]
		}
	}
	return nil
}

func findShort(c byte) *optSpec {
	for i := range optSpecs {
		if optSpecs[i].short == c && c != 0 {
			return &optSpecs[i]
		}
	}
	return nil
}

func usage(prog string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: %s [OPTION...]\n", prog)
	for _, s := range optSpecs {
		left := ""
		if s.short != 0 {
			left = fmt.Sprintf("  -%c, --%s", s.short, s.long)
		} else {
			left = fmt.Sprintf("      --%s", s.long)
		}
		switch s.arg {
		case argRequired:
			left += " ARG"
		case argOptional:
			left += "[=FILE]"
		}
		fmt.Fprintf(&b, "%-34s %s\n", left, s.help)
	}
	return b.String()
}

// signalNumbers are the numbers keepalived 2.2.7's --signum prints on Linux
// (glibc: SIGRTMIN is 34, SIGRTMAX 64). keepalived sends its children
// SIGJSON (SIGRTMIN+2) and SIGSTATS_CLEAR (SIGRTMAX-1); lvsd catches both so
// that a script sending them cannot kill it (see serve).
var signalNumbers = map[string]int{
	"STOP":        15, // SIGTERM
	"RELOAD":      1,  // SIGHUP
	"DATA":        10, // SIGUSR1
	"STATS":       12, // SIGUSR2
	"STATS_CLEAR": 63, // SIGRTMAX-1
	"JSON":        36, // SIGRTMIN+2
}

// signumOutput is --signum's answer: the number and exit 0, or keepalived's
// "Unknown sigfunc NAME" and exit 1. Names are matched exactly, in upper case.
func signumOutput(name string, stdout, stderr io.Writer) int {
	n, ok := signalNumbers[name]
	if !ok {
		fmt.Fprintf(stderr, "Unknown sigfunc %s\n", name)
		return exitProgramError
	}
	fmt.Fprintf(stdout, "%d\n", n)
	return exitOK
}

// defaultCtlSocket is the control socket without -p or --ctl-socket.
const defaultCtlSocket = "/run/lvsd/ctl"

// ctlSocketPath is where the control socket is: --ctl-socket, else
// lvsd.ctl beside the pid file (-p), else defaultCtlSocket.
func ctlSocketPath(o *options) string {
	switch {
	case o.ctlSocketSet:
		return o.ctlSocket
	case o.pidFile != "":
		return filepath.Join(filepath.Dir(o.pidFile), "lvsd.ctl")
	}
	return defaultCtlSocket
}
