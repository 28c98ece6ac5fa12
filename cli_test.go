package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	def := func(mod func(o *options)) *options {
		o := &options{configFile: defaultConfigFile, metricsListen: ":9165"}
		mod(o)
		return o
	}
	cases := []struct {
		args []string
		want *options
	}{
		{nil, def(func(o *options) {})},
		{[]string{"-f", "/x.conf"}, def(func(o *options) { o.configFile = "/x.conf" })},
		{[]string{"-f/x.conf"}, def(func(o *options) { o.configFile = "/x.conf" })},
		{[]string{"--use-file=/x.conf"}, def(func(o *options) { o.configFile = "/x.conf" })},
		{[]string{"--use-file", "/x.conf"}, def(func(o *options) { o.configFile = "/x.conf" })},
		{[]string{"-nlD"}, def(func(o *options) { o.dontFork, o.logConsole, o.logDetail = true, true, true })},
		{[]string{"-nlDf", "/y"}, def(func(o *options) { o.dontFork, o.logConsole, o.logDetail, o.configFile = true, true, true, "/y" })},
		{[]string{"-t"}, def(func(o *options) { o.configTest = true })},
		{[]string{"-t/z.conf"}, def(func(o *options) { o.configTest, o.configTestFile = true, "/z.conf" })},
		{[]string{"--config-test=/z.conf"}, def(func(o *options) { o.configTest, o.configTestFile = true, "/z.conf" })},
		{[]string{"--config-test", "-d"}, def(func(o *options) { o.configTest, o.dumpConf = true, true })},
		{[]string{"-S", "3"}, def(func(o *options) { o.logFacility = "3" })},
		{[]string{"--log-facility=local5"}, def(func(o *options) { o.logFacility = "local5" })},
		{[]string{"-P", "-C"}, def(func(o *options) { o.vrrpOnly, o.checkOnly = true, true })},
		{[]string{"-p", "/run/k.pid", "-r", "/run/v.pid", "-c", "/run/c.pid"}, def(func(o *options) {
			o.pidFile, o.vrrpPidFile, o.checkPidFile = "/run/k.pid", "/run/v.pid", "/run/c.pid"
		})},
		{[]string{"-i", "lb1"}, def(func(o *options) { o.configID = "lb1" })},
		{[]string{"--metrics-listen="}, def(func(o *options) { o.metricsListen = "" })},
		{[]string{"--metrics-listen", "127.0.0.1:9999"}, def(func(o *options) { o.metricsListen = "127.0.0.1:9999" })},
		{[]string{"-I", "-V"}, def(func(o *options) { o.dontReleaseIPVS, o.dontReleaseVRRP = true, true })},
		{[]string{"-v"}, def(func(o *options) { o.version = true })},
		{[]string{"--help"}, def(func(o *options) { o.help = true })},
	}
	for _, c := range cases {
		got, err := parseArgs(c.args)
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", c.args, got, c.want)
		}
	}
}

func TestParseArgsErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--bogus"}, "unrecognized option '--bogus'"},
		{[]string{"-x"}, "invalid option -- 'x'"},
		{[]string{"-f"}, "option requires an argument -- 'f'"},
		{[]string{"--use-file"}, "option '--use-file' requires an argument"},
		{[]string{"--dont-fork=yes"}, "doesn't allow an argument"},
		{[]string{"-S", "9"}, "facility 9 outside 0-7"},
		{[]string{"-S", "kern"}, "unknown facility 'kern'"},
		{[]string{"stray"}, "unexpected argument 'stray'"},
	} {
		_, err := parseArgs(c.args)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: error %v, want it to contain %q", c.args, err, c.msg)
		}
	}
	var out, errb bytes.Buffer
	if code := run("lvsd", []string{"--bogus"}, &out, &errb); code != exitProgramError {
		t.Errorf("unknown flag: exit %d, want %d", code, exitProgramError)
	}
	if !strings.Contains(errb.String(), "Usage: lvsd") {
		t.Errorf("unknown flag: no usage on stderr: %q", errb.String())
	}
}

func writeConf(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigTestExitCodes runs lvsd -t in-process on configurations that give
// each of keepalived's -t exit codes. Interfaces are checked against this host:
// "lo" always exists.
func TestConfigTestExitCodes(t *testing.T) {
	const inst = "vrrp_instance VI_1 {\n interface lo\n virtual_router_id 51\n priority 100\n virtual_ipaddress {\n  192.0.2.1/24\n }\n}\n"
	cases := []struct {
		name, text string
		code       int
		stderr     string
	}{
		{"clean", inst, exitOK, ""},
		{"unknown keyword", "global_defs {\n  foo bar\n}\n" + inst, exitConfigTest, ":2: warning: unknown keyword 'foo'"},
		{"bad VRID", strings.Replace(inst, "51", "300", 1), exitConfigTest, ":3: error: virtual_router_id: 300 outside range [1, 255]"},
		{"missing interface", strings.Replace(inst, "interface lo", "interface nosuchif0", 1), exitConfig, ":1: fatal: interface: interface nosuchif0 does not exist"},
		{"missing interface allowed", "global_defs {\n dynamic_interfaces\n}\n" + strings.Replace(inst, "interface lo", "interface nosuchif0", 1), exitOK, ""},
		{"scripts without security", "vrrp_script chk {\n script \"/bin/true\"\n}\n" + inst, exitConfigSecurity, ""},
		{"missing parameter", strings.Replace(inst, "interface lo", "interface", 1), exitMissingParameter, ":2: fatal: interface: missing a parameter after keyword interface"},
		{"missing parameter beats a missing interface", "vrrp_script {\n script /bin/true\n}\n" + strings.Replace(inst, "interface lo", "interface nosuchif0", 1), exitMissingParameter, ":1: fatal: vrrp_script: missing a parameter"},
		{"scripts with security", "global_defs {\n enable_script_security\n}\nvrrp_script chk {\n script \"/bin/true\"\n}\n" + inst, exitOK, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeConf(t, c.text)
			var out, errb bytes.Buffer
			code := run("lvsd", []string{"-t", "-f", p}, &out, &errb)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, c.code, errb.String())
			}
			if c.stderr != "" && !strings.Contains(errb.String(), p+c.stderr) {
				t.Fatalf("stderr %q does not contain %q", errb.String(), p+c.stderr)
			}
		})
	}
	// The daemon refuses such a file too, with keepalived's exit code.
	{
		p := writeConf(t, strings.Replace(inst, "interface lo", "interface", 1))
		var out, errb bytes.Buffer
		if code := run("lvsd", []string{"-n", "-l", "-f", p, "--metrics-listen="}, &out, &errb); code != exitMissingParameter {
			t.Fatalf("daemon on a missing parameter: exit %d, want %d\n%s", code, exitMissingParameter, errb.String())
		}
		if !strings.Contains(errb.String(), "missing a parameter after keyword interface") {
			t.Fatalf("daemon log: %q", errb.String())
		}
	}
	var out, errb bytes.Buffer
	missing := filepath.Join(t.TempDir(), "nope.conf")
	if code := run("lvsd", []string{"--config-test=" + missing}, &out, &errb); code != exitConfig {
		t.Fatalf("missing file: exit %d, want %d", code, exitConfig)
	}
	if !strings.Contains(errb.String(), missing+": fatal: cannot read configuration") {
		t.Fatalf("missing file: stderr %q", errb.String())
	}
}

func TestDumpConf(t *testing.T) {
	p := writeConf(t, "virtual_server 192.0.2.1 80 {\nprotocol TCP\n lb_algo rr\n lb_kind NAT\n real_server 198.51.100.1 8080 {\n  weight 3\n  TCP_CHECK {\n  }\n }\n}\n")
	var out, errb bytes.Buffer
	if code := run("lvsd", []string{"-d", "-t", "-f", p}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var dump struct {
		VirtualServers []struct {
			Sched       string `json:"lvs_sched"`
			RealServers []struct {
				Addr     string `json:"addr"`
				Weight   int    `json:"weight"`
				Checkers []struct {
					Type        string `json:"type"`
					ConnectPort int    `json:"connect_port"`
				} `json:"checkers"`
			} `json:"real_servers"`
		} `json:"virtual_servers"`
	}
	if err := json.Unmarshal(out.Bytes(), &dump); err != nil {
		t.Fatalf("dump is not JSON: %v\n%s", err, out.String())
	}
	vs := dump.VirtualServers
	if len(vs) != 1 || vs[0].Sched != "rr" || len(vs[0].RealServers) != 1 {
		t.Fatalf("dump: %+v", dump)
	}
	rs := vs[0].RealServers[0]
	if rs.Addr != "198.51.100.1" || rs.Weight != 3 || len(rs.Checkers) != 1 || rs.Checkers[0].Type != "TCP_CHECK" || rs.Checkers[0].ConnectPort != 8080 {
		t.Fatalf("dump real server: %+v", rs)
	}
}

func TestVersionAndHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run("lvsd", []string{"-v"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "lvsd ") {
		t.Fatalf("-v: exit %d, %q", code, out.String())
	}
	out.Reset()
	if code := run("lvsd", []string{"-h"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "--config-test[=FILE]") {
		t.Fatalf("-h: exit %d, %q", code, out.String())
	}
}

// TestSignum compares --signum with keepalived 2.2.7's answers on this
// machine (keepalived --signum=NAME): the number and exit 0, or "Unknown
// sigfunc NAME" and exit 1. With keepalived installed (LVSD_INTEGRATION),
// its own output is the reference; the table below is what it printed.
func TestSignum(t *testing.T) {
	want := map[string]string{"STOP": "15\n", "RELOAD": "1\n", "DATA": "10\n", "STATS": "12\n",
		"STATS_CLEAR": "63\n", "JSON": "36\n"}
	names := []string{"STOP", "RELOAD", "DATA", "STATS", "STATS_CLEAR", "JSON", "reload", "RELOA", "RELOADX", "TDATA", "STATS_"}
	keepalived := ""
	if os.Getenv("LVSD_INTEGRATION") != "" {
		var err error
		if keepalived, err = exec.LookPath("keepalived"); err != nil {
			t.Fatal("LVSD_INTEGRATION is set but keepalived is not installed")
		}
	}
	for _, name := range names {
		for _, args := range [][]string{{"--signum=" + name}, {"--signum", name}} {
			var out, errb bytes.Buffer
			code := run("lvsd", args, &out, &errb)
			w, known := want[name]
			wantCode, wantErr := 0, ""
			if !known {
				wantCode, wantErr = 1, "Unknown sigfunc "+name+"\n"
			}
			if code != wantCode || out.String() != w || errb.String() != wantErr {
				t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d, %q, %q", args, code, out.String(), errb.String(), wantCode, w, wantErr)
			}
			if keepalived == "" {
				continue
			}
			cmd := exec.Command(keepalived, args...)
			var kout, kerr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &kout, &kerr
			kc := exitCode(cmd.Run())
			if kc != code || kout.String() != out.String() || kerr.String() != errb.String() {
				t.Errorf("%q: lvsd exit %d %q %q, keepalived exit %d %q %q", args, code, out.String(), errb.String(), kc, kout.String(), kerr.String())
			}
		}
	}
	var out, errb bytes.Buffer
	if code := run("lvsd", []string{"--signum="}, &out, &errb); code != 1 || out.Len() != 0 {
		t.Errorf("--signum=: exit %d, stdout %q", code, out.String())
	}
}
