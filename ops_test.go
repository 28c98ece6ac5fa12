package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// --- helpers shared by the operations tests

// sample is one line of a Prometheus text exposition.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

var sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$`)
var labelRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

func parseExposition(t *testing.T, r io.Reader) []sample {
	t.Helper()
	var out []sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := sampleRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unparsable metrics line %q", line)
		}
		v, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		s := sample{name: m[1], labels: map[string]string{}, value: v}
		for _, l := range labelRE.FindAllStringSubmatch(m[3], -1) {
			s.labels[l[1]] = l[2]
		}
		out = append(out, s)
	}
	return out
}

// find returns the value of the one series of name whose labels include
// want ("k", "v" pairs); ok is false when there is none.
func find(ss []sample, name string, want ...string) (float64, bool) {
	var hits []sample
	for _, s := range ss {
		if s.name != name {
			continue
		}
		match := true
		for i := 0; i+1 < len(want); i += 2 {
			if s.labels[want[i]] != want[i+1] {
				match = false
			}
		}
		if match {
			hits = append(hits, s)
		}
	}
	if len(hits) != 1 {
		return 0, false
	}
	return hits[0].value, true
}

func scrape(t *testing.T, client *http.Client, url string) ([]sample, error) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return parseExposition(t, bytes.NewReader(b)), nil
}

// mustValue scrapes and returns one series' value.
func mustValue(t *testing.T, client *http.Client, url, name string, labels ...string) float64 {
	t.Helper()
	ss, err := scrape(t, client, url)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := find(ss, name, labels...)
	if !ok {
		t.Fatalf("%s: no single series %s%v", url, name, labels)
	}
	return v
}

// waitUntil polls ok every 100ms for at most d.
func waitUntil(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if ok() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// lvsdProc is the built binary run in the foreground by a test.
type lvsdProc struct {
	cmd    *exec.Cmd
	out    *lockedBuffer // its stdout and stderr
	exited chan error    // Wait's answer (put back by a test that reads it early)
}

// startLvsdProc runs bin with args, env added to the test's environment.
// It is killed when the test ends, and its output logged if the test
// failed.
func startLvsdProc(t *testing.T, bin string, env []string, args ...string) *lvsdProc {
	t.Helper()
	p := &lvsdProc{cmd: exec.Command(bin, args...), out: &lockedBuffer{}, exited: make(chan error, 1)}
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		err := <-p.exited
		p.exited <- err
		if t.Failed() {
			t.Logf("lvsd output:\n%s", p.out.String())
		}
	})
	return p
}

// lockedBuffer collects a process's output for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// --- systemd notifications, reloads and dumps, on the built binary

// TestNotifyReloadDump runs lvsd as systemd would (Type=notify, a
// NOTIFY_SOCKET) and checks the notification sequence around a good and a
// bad reload and a stop, the reload counters on /metrics, and the SIGUSR1/
// SIGUSR2 dumps (0600, never through a symbolic link), and that keepalived's
// other signals (JSON, STATS_CLEAR) do not stop it.
func TestNotifyReloadDump(t *testing.T) {
	bin := buildLvsd(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	nconn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nconn.Close()
	msgs := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := nconn.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func(what string) string {
		t.Helper()
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatalf("notify socket closed waiting for %s", what)
			}
			return m
		case <-time.After(10 * time.Second):
			t.Fatalf("no notification (waiting for %s)", what)
		}
		return ""
	}

	cfgPath := filepath.Join(dir, "keepalived.conf")
	good := "global_defs {\n  router_id notify-test\n}\n"
	if err := os.WriteFile(cfgPath, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	dumps := filepath.Join(dir, "dumps")
	if err := os.Mkdir(dumps, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := freeLoopbackAddr(t)
	p := startLvsdProc(t, bin, []string{"NOTIFY_SOCKET=" + sock, "LVSD_DUMP_DIR=" + dumps}, "--dont-fork", "--log-console", "-f", cfgPath, "--metrics-listen", addr)
	cmd, out, exited := p.cmd, p.out, p.exited
	signal := func(s syscall.Signal) {
		if err := cmd.Process.Signal(s); err != nil {
			t.Fatal(err)
		}
	}

	if m := next("READY"); m != "READY=1\nSTATUS=running" {
		t.Fatalf("first notification %q, want READY=1", m)
	}
	url := "http://" + addr + "/metrics"
	client := &http.Client{Timeout: 5 * time.Second}
	if v := mustValue(t, client, url, "lvsd_config_reloads_total", "result", "success"); v != 0 {
		t.Errorf("reloads before any: %v", v)
	}
	start := mustValue(t, client, url, "lvsd_config_last_reload_success_timestamp_seconds")

	// A good reload: RELOADING=1 with our monotonic clock, then READY=1.
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	before := ts.Nano() / 1000
	signal(syscall.SIGHUP)
	m := next("RELOADING")
	var usec int64
	if _, err := fmt.Sscanf(m, "RELOADING=1\nMONOTONIC_USEC=%d", &usec); err != nil {
		t.Fatalf("reload notification %q: %v", m, err)
	}
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	if usec < before || usec > ts.Nano()/1000 {
		t.Errorf("MONOTONIC_USEC=%d not within [%d, %d]", usec, before, ts.Nano()/1000)
	}
	if m := next("READY after reload"); m != "READY=1\nSTATUS=running" {
		t.Errorf("after reload: %q", m)
	}
	ss, err := scrape(t, client, url)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, l, v string
		want       float64
	}{
		{"lvsd_config_reloads_total", "result", "success", 1},
		{"lvsd_config_reloads_total", "result", "failure", 0},
		{"lvsd_config_last_reload_successful", "", "", 1},
		{"keepalived_up", "", "", 1},
	} {
		if v, ok := find(ss, c.name, c.l, c.v); !ok || v != c.want {
			t.Errorf("after a good reload %s{%s=%q} = %v (found %v), want %v", c.name, c.l, c.v, v, ok, c.want)
		}
	}
	lastOK, _ := find(ss, "lvsd_config_last_reload_success_timestamp_seconds")
	lastTry, _ := find(ss, "lvsd_config_last_reload_timestamp_seconds")
	if lastOK <= start || lastTry != lastOK || lastOK > float64(time.Now().Unix()+1) {
		t.Errorf("timestamps: start %v, last success %v, last attempt %v", start, lastOK, lastTry)
	}

	// A bad reload (the file is gone: it cannot run): rejected, still READY.
	if err := os.Rename(cfgPath, cfgPath+".away"); err != nil {
		t.Fatal(err)
	}
	signal(syscall.SIGHUP)
	if m := next("RELOADING (bad)"); !strings.HasPrefix(m, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("bad reload: %q", m)
	}
	if m := next("READY after bad reload"); !strings.HasPrefix(m, "READY=1\nSTATUS=running; the last reload was rejected") {
		t.Errorf("after bad reload: %q", m)
	}
	ss, err = scrape(t, client, url)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := find(ss, "lvsd_config_reloads_total", "result", "failure"); v != 1 {
		t.Errorf("failures = %v, want 1", v)
	}
	if v, _ := find(ss, "lvsd_config_reloads_total", "result", "success"); v != 1 {
		t.Errorf("successes = %v, want 1", v)
	}
	if v, _ := find(ss, "lvsd_config_last_reload_successful"); v != 0 {
		t.Errorf("last_reload_successful = %v, want 0", v)
	}
	if v, _ := find(ss, "lvsd_config_last_reload_success_timestamp_seconds"); v != lastOK {
		t.Errorf("a failed reload moved the success timestamp: %v -> %v", lastOK, v)
	}

	// SIGUSR1 / SIGUSR2: keepalived's dump files, mode 0600.
	signal(syscall.SIGUSR1)
	signal(syscall.SIGUSR2)
	for _, f := range []string{"keepalived.data", "keepalived.stats"} {
		p := filepath.Join(dumps, f)
		waitUntil(t, 5*time.Second, f, func() bool { _, err := os.Stat(p); return err == nil })
		fi, _ := os.Lstat(p)
		if fi.Mode().Perm() != 0o600 || !fi.Mode().IsRegular() {
			t.Errorf("%s: mode %v, want a regular file 0600", f, fi.Mode())
		}
	}
	waitUntil(t, 5*time.Second, "data dump content", func() bool {
		b, _ := os.ReadFile(filepath.Join(dumps, "keepalived.data"))
		return bytes.Contains(b, []byte("------< VRRP Topology >------\n")) && bytes.Contains(b, []byte("Reloads = 1 succeeded, 1 failed"))
	})

	// A symbolic link planted at the dump's path is refused; its target
	// keeps its content.
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dumps, "keepalived.stats"))
	if err := os.Symlink(victim, filepath.Join(dumps, "keepalived.stats")); err != nil {
		t.Fatal(err)
	}
	signal(syscall.SIGUSR2)
	waitUntil(t, 5*time.Second, "the refusal in the log", func() bool {
		return strings.Contains(out.String(), "refusing to write the dump file") && strings.Contains(out.String(), "symbolic link")
	})
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("the symlink's target was written: %q", b)
	}

	// keepalived's SIGJSON without VRRP instances writes nothing, as
	// keepalived; SIGSTATS_CLEAR (lvsd --signum=STATS_CLEAR) is logged and
	// ignored: lvsd goes on running.
	signal(sigJSON)
	signal(sigStatsClear)
	waitUntil(t, 5*time.Second, "the two signals in the log", func() bool {
		return strings.Count(out.String(), "signal not supported by lvsd; ignored") == 1 &&
			strings.Contains(out.String(), "no VRRP instance: no JSON dump")
	})
	if _, err := os.Stat(filepath.Join(dumps, "keepalived.json")); err == nil {
		t.Errorf("a JSON dump without VRRP instances")
	}
	select {
	case err := <-exited:
		t.Fatalf("lvsd stopped on keepalived's JSON or STATS_CLEAR signal: %v", err)
		exited <- err
	default:
	}

	// Stop: STOPPING=1, exit 0.
	signal(syscall.SIGTERM)
	if m := next("STOPPING"); m != "STOPPING=1" {
		t.Errorf("stop notification %q", m)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit: %v", err)
		}
		exited <- err
	case <-time.After(10 * time.Second):
		t.Fatal("lvsd did not stop")
	}
}

// --- the systemd unit

// TestSystemdUnit checks packaging/lvsd.service with systemd-analyze verify
// (on a copy whose ExecStart is the built binary) and asserts that it has
// no warning at all, that its promises hold (Type=notify, the two
// capabilities, the sandbox), and that systemd rates its exposure low.
func TestSystemdUnit(t *testing.T) {
	integration(t, "systemd-analyze")
	bin := buildLvsd(t)
	unit, err := os.ReadFile("packaging/lvsd.service")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for _, line := range strings.Split(string(unit), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = append(keys[k], v)
		}
	}
	for k, want := range map[string]string{
		"Type":                    "notify",
		"ExecStart":               "/usr/sbin/lvsd --dont-fork --log-console $LVSD_OPTIONS",
		"ExecReload":              "/usr/sbin/lvsd ctl reload",
		"EnvironmentFile":         "-/etc/default/lvsd",
		"CapabilityBoundingSet":   "CAP_NET_ADMIN CAP_NET_RAW",
		"AmbientCapabilities":     "CAP_NET_ADMIN CAP_NET_RAW",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"PrivateTmp":              "no",
		"ProtectHome":             "yes",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET",
		"ReadWritePaths":          "/tmp",
	} {
		if got := keys[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}

	dir := t.TempDir()
	verify := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "systemd-analyze", "verify", p).CombinedOutput()
		if err != nil {
			return fmt.Sprintf("%v: %s", err, out)
		}
		return string(out)
	}
	ours := strings.ReplaceAll(string(unit), "/usr/sbin/lvsd", bin)
	if out := verify("lvsd.service", ours); out != "" {
		t.Errorf("systemd-analyze verify: %s", out)
	}
	// The check is sensitive: a misspelt key, a bad value and a missing
	// binary all show.
	for _, bad := range [][2]string{
		{"ProtectSystem=strict", "ProtectSistem=strict"},
		{"Type=notify", "Type=notifyy"},
		{bin, "/nonexistent/lvsd"},
	} {
		if out := verify("bad.service", strings.ReplaceAll(ours, bad[0], bad[1])); out == "" {
			t.Errorf("systemd-analyze verify accepts %q", bad[1])
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "systemd-analyze", "security", "--offline=yes", filepath.Join(dir, "lvsd.service")).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for lvsd\.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	if lvl, _ := strconv.ParseFloat(string(m[1]), 64); lvl > 3.5 {
		t.Errorf("exposure level %v, want at most 3.5 (OK)\n%s", lvl, out)
	} else {
		t.Logf("systemd-analyze security: exposure %v", lvl)
	}
}
