// Package packaging holds lvsd's Debian packaging (deb/, built by
// make deb), the systemd unit and the man pages; its tests build the
// package, run lintian on it and install, start, reload and purge it in a
// clean Debian root.
package packaging

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lvsd/lvsd/integration/lab"
	"github.com/lvsd/lvsd/internal/netnstest"
)

func integration(t *testing.T, tools ...string) {
	t.Helper()
	if os.Getenv("LVSD_INTEGRATION") == "" {
		t.Skip("set LVSD_INTEGRATION=1 to run (needs root, dpkg-deb, lintian, mmdebstrap)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("LVSD_INTEGRATION is set but this test needs root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("LVSD_INTEGRATION is set but %s is not installed (scripts/deps.sh)", tool)
		}
	}
}

func run(t *testing.T, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// chroot runs a command in root with Debian's PATH.
func chroot(t *testing.T, root string, args ...string) string {
	t.Helper()
	return run(t, 60*time.Second, "chroot", append([]string{root, "/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}, args...)...)
}

var (
	debOnce sync.Once
	debPath string
	debErr  error
)

// buildDeb runs packaging/deb/build.sh once per test binary.
func buildDeb(t *testing.T) (path, version string) {
	t.Helper()
	debOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lvsd-deb-")
		if err != nil {
			debErr = err
			return
		}
		start := time.Now()
		out, err := exec.Command("./deb/build.sh", dir).CombinedOutput()
		if err != nil {
			debErr = fmt.Errorf("deb/build.sh: %v\n%s", err, out)
			return
		}
		debPath = strings.TrimSpace(string(out[bytes.LastIndexByte(bytes.TrimSpace(out), '\n')+1:]))
		fmt.Fprintf(os.Stderr, "packaging: built %s in %v\n", filepath.Base(debPath), time.Since(start).Round(time.Millisecond))
	})
	if debErr != nil {
		t.Fatal(debErr)
	}
	m := regexp.MustCompile(`^lvsd_([^_]+)_[a-z0-9]+\.deb$`).FindStringSubmatch(filepath.Base(debPath))
	if m == nil {
		t.Fatalf("package name %q", debPath)
	}
	return debPath, m[1]
}

func TestMain(m *testing.M) {
	code := m.Run()
	if debPath != "" {
		os.RemoveAll(filepath.Dir(debPath))
	}
	os.Exit(code)
}

// TestDebLintian: lintian reports no error (warnings and notes are
// printed), and the package has what an operator needs, in its places.
func TestDebLintian(t *testing.T) {
	integration(t, "dpkg-deb", "lintian", "git")
	deb, version := buildDeb(t)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "lintian", "--fail-on", "error", "--pedantic", deb).CombinedOutput()
	t.Logf("lintian (%v):\n%s", time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Errorf("lintian: %v", err)
	}
	if regexp.MustCompile(`(?m)^E: `).Match(out) {
		t.Errorf("lintian reports errors")
	}

	info := run(t, time.Minute, "dpkg-deb", "-f", deb, "Package", "Version", "Depends", "Conflicts", "Replaces", "Breaks", "Provides")
	for _, want := range []string{"Package: lvsd\n", "Version: " + version + "\n", "Depends: procps\n"} {
		if !strings.Contains(info, want) {
			t.Errorf("control fields %q: missing %q", info, want)
		}
	}
	// Installable beside keepalived: no relation that would remove it.
	for _, f := range []string{"Conflicts", "Replaces", "Breaks", "Provides"} {
		if strings.Contains(info, f+":") {
			t.Errorf("the package declares %s: %q", f, info)
		}
	}
	contents := run(t, time.Minute, "dpkg-deb", "-c", deb)
	for _, want := range []string{
		"-rwxr-xr-x root/root", " ./usr/sbin/lvsd\n", " ./lib/systemd/system/lvsd.service\n", " ./lib/systemd/system/lvsd-realserver.service\n", " ./etc/default/lvsd\n",
		" ./usr/share/man/man8/lvsd.8.gz\n", " ./usr/share/man/man5/lvsd.conf.5.gz\n",
		" ./usr/share/doc/lvsd/README.Debian\n", " ./usr/share/doc/lvsd/copyright\n", " ./usr/share/doc/lvsd/changelog.gz\n",
		" ./usr/share/doc/lvsd/migrating-from-keepalived.md.gz\n",
	} {
		if !strings.Contains(contents, want) {
			t.Errorf("package contents: missing %q in\n%s", want, contents)
		}
	}
	if strings.Contains(contents, "./etc/keepalived") {
		t.Errorf("the package ships files under /etc/keepalived:\n%s", contents)
	}
	if c := run(t, time.Minute, "dpkg-deb", "-I", deb, "conffiles"); c != "/etc/default/lvsd\n" {
		t.Errorf("conffiles %q", c)
	}
	// No file keepalived's package ships (dpkg would refuse to install
	// the two together).
	if kl, err := exec.Command("dpkg-query", "-L", "keepalived").Output(); err == nil {
		ours := map[string]bool{}
		for _, l := range strings.Split(contents, "\n") {
			if f := strings.Fields(l); len(f) >= 6 && !strings.HasPrefix(f[0], "d") {
				ours[strings.TrimPrefix(f[5], ".")] = true
			}
		}
		for _, p := range strings.Split(string(kl), "\n") {
			if ours[p] {
				t.Errorf("keepalived's package also ships %s", p)
			}
		}
	}
}

// The base root: Debian bookworm minbase from the mirror, with procps (the
// package's only dependency, for the unit's /bin/kill), cached as a
// tarball beside the lab's images.
const (
	rootSuite   = "bookworm"
	rootMirror  = "http://deb.debian.org/debian"
	rootInclude = "procps"
	rootFormat  = "lvsd-debroot-v1"
)

func baseRoot(t *testing.T) string {
	t.Helper()
	cache, err := lab.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{rootFormat, rootSuite, rootMirror, rootInclude, runtime.GOARCH}, "\n")))
	dir := filepath.Join(cache, "debian-root")
	tarball := filepath.Join(dir, rootSuite+"-minbase-"+hex.EncodeToString(sum[:6])+".tar.zst")
	if _, err := os.Stat(tarball); err == nil {
		t.Logf("base root: %s (cached)", tarball)
		return tarball
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := tarball + ".tmp.tar.zst"
	start := time.Now()
	run(t, 10*time.Minute, "mmdebstrap", "--variant=minbase", "--quiet", "--include="+rootInclude, rootSuite, tmp, rootMirror)
	if err := os.Rename(tmp, tarball); err != nil {
		t.Fatal(err)
	}
	t.Logf("base root: %s built by mmdebstrap in %v", tarball, time.Since(start).Round(time.Millisecond))
	return tarball
}

// entry is what a snapshot keeps of a file: type, mode, owner, and the
// content's hash or the link's target. Times are left out.
type entry string

func snapshot(t *testing.T, root string) map[string]entry {
	t.Helper()
	m := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		if rel == "/proc" && d.IsDir() {
			m[rel] = "dir"
			return filepath.SkipDir
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			e += " -> " + target
		case fi.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			e += " " + hex.EncodeToString(h.Sum(nil)[:8])
		}
		m[rel] = entry(e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// dpkgBookkeeping are the files dpkg itself rewrites on every install and
// purge (its database and log); they say that something happened, not
// that something was left.
var dpkgBookkeeping = regexp.MustCompile(`^/var/lib/dpkg/(status|status-old|triggers/Unincorp|triggers/Lock|lock|lock-frontend)$|^/var/log/dpkg\.log$`)

// unit reads the installed unit's Exec lines and environment file.
type unit struct{ execStart, execReload, envFile string }

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var u unit
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "ExecStart":
			u.execStart = v
		case "ExecReload":
			u.execReload = v
		case "EnvironmentFile":
			u.envFile = strings.TrimPrefix(v, "-")
		}
	}
	if u.execStart == "" || u.execReload == "" || u.envFile == "" {
		t.Fatalf("%s: ExecStart, ExecReload or EnvironmentFile missing: %+v", path, u)
	}
	return u
}

// nsGet fetches url from inside namespace ns.
func nsGet(ns, url string) (string, error) {
	c := netnstest.HTTPClient(ns, 3*time.Second)
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func waitUntil(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

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

const debConf = `vrrp_instance VI_1 {
  state MASTER
  interface eth0
  virtual_router_id 61
  priority 150
  advert_int 1
  virtual_ipaddress {
%s  }
}
`

func vips(addrs ...string) string {
	var b strings.Builder
	for _, a := range addrs {
		b.WriteString("    " + a + "\n")
	}
	return b.String()
}

// TestDebInstallStartReloadPurge installs the package with dpkg in a
// clean Debian root, runs lvsd there as its unit would (the unit's
// ExecStart with its EnvironmentFile, in a network namespace), reloads it
// with the unit's ExecReload, stops it, and purges the package: the root
// must then be what it was, file for file, but for dpkg's own database —
// and the operator's keepalived.conf, which the package never touches.
func TestDebInstallStartReloadPurge(t *testing.T) {
	integration(t, "dpkg-deb", "mmdebstrap", "git", "ip", "chroot", "unshare", "tar", "zstd")
	deb, version := buildDeb(t)
	tarball := baseRoot(t)
	start := time.Now()
	root := t.TempDir()
	run(t, 2*time.Minute, "tar", "--zstd", "-xf", tarball, "-C", root)
	t.Logf("root extracted in %v", time.Since(start).Round(time.Millisecond))
	before := snapshot(t, root)

	// Install.
	data, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "tmp", "lvsd.deb"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	chroot(t, root, "dpkg", "-i", "/tmp/lvsd.deb")
	os.Remove(filepath.Join(root, "tmp", "lvsd.deb"))
	if got := chroot(t, root, "dpkg-query", "-W", "-f", "${Status} ${Version}", "lvsd"); got != "install ok installed "+version {
		t.Fatalf("dpkg-query: %q", got)
	}
	if got := chroot(t, root, "lvsd", "-v"); !strings.HasPrefix(got, "lvsd "+version+" ") {
		t.Errorf("lvsd -v: %q, want the package version %s", got, version)
	}
	for _, p := range []string{"/etc/keepalived", "/etc/systemd/system/multi-user.target.wants/lvsd.service"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("the installation created %s", p)
		}
	}
	// The man pages are readable where man looks for them.
	man := run(t, time.Minute, "man", "--warnings", "-l", filepath.Join(root, "usr/share/man/man5/lvsd.conf.5.gz"))
	if !strings.Contains(man, "LEXICAL STRUCTURE") {
		t.Errorf("lvsd.conf(5) as installed:\n%s", man)
	}

	// The operator's configuration and options.
	confPath := filepath.Join(root, "etc/keepalived/keepalived.conf")
	if err := os.MkdirAll(filepath.Dir(confPath), 0o755); err != nil {
		t.Fatal(err)
	}
	conf1 := fmt.Sprintf(debConf, vips("192.0.2.100/24"))
	if err := os.WriteFile(confPath, []byte(conf1), 0o644); err != nil {
		t.Fatal(err)
	}
	u := readUnit(t, filepath.Join(root, "lib/systemd/system/lvsd.service"))
	defaults, err := os.ReadFile(filepath.Join(root, u.envFile))
	if err != nil {
		t.Fatal(err)
	}
	defaults = regexp.MustCompile(`(?m)^LVSD_OPTIONS=.*$`).ReplaceAll(defaults, []byte(`LVSD_OPTIONS="--metrics-listen 127.0.0.1:9166"`))
	if err := os.WriteFile(filepath.Join(root, u.envFile), defaults, 0o644); err != nil {
		t.Fatal(err)
	}

	// Start, as the unit would: its environment file, its ExecStart.
	ns := fmt.Sprintf("lvsddeb%d", os.Getpid()%100000)
	run(t, 30*time.Second, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	for _, c := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "eth0", "type", "veth", "peer", "name", "eth1"},
		{"addr", "add", "192.0.2.1/24", "dev", "eth0"},
		{"link", "set", "eth0", "up"},
		{"link", "set", "eth1", "up"},
	} {
		run(t, 30*time.Second, "ip", append([]string{"-n", ns}, c...)...)
	}
	// systemd makes the unit's RuntimeDirectory (where the control socket
	// goes) before ExecStart and removes it when the unit stops: so does
	// the test.
	unitText, err := os.ReadFile(filepath.Join(root, "lib/systemd/system/lvsd.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unitText), "\nRuntimeDirectory=lvsd\n") {
		t.Fatal("the unit has no RuntimeDirectory=lvsd (the control socket's directory)")
	}
	runtimeDir := filepath.Join(root, "run/lvsd")
	if err := os.MkdirAll(runtimeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("set -a && . %s && set +a && exec %s", u.envFile, u.execStart)
	out := &lockedBuffer{}
	// A mount namespace of its own with /proc mounted in the root: gone
	// with the process.
	cmd := exec.Command("ip", "netns", "exec", ns, "unshare", "--mount-proc="+filepath.Join(root, "proc"), "--propagation", "private",
		"chroot", root, "/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "/bin/sh", "-c", script)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("lvsd output:\n%s", out.String())
		}
	})
	pid := strconv.Itoa(cmd.Process.Pid) // every wrapper execs: lvsd's pid
	metrics := func() string { s, _ := nsGet(ns, "http://127.0.0.1:9166/metrics"); return s }
	hasVIP := func(a string) bool {
		o, _ := exec.Command("ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "eth0").Output()
		return strings.Contains(string(o), " "+a+" ")
	}
	waitUntil(t, 15*time.Second, "MASTER with its VIP, metrics on the address of /etc/default/lvsd", func() bool {
		return hasVIP("192.0.2.100/24") && strings.Contains(metrics(), `keepalived_vrrp_state{iname="VI_1",intf="eth0",ip_address="192.0.2.100/24",vrid="61"} 2`)
	})
	if m := metrics(); !strings.Contains(m, `lvsd_build_info{goversion="`) || !strings.Contains(m, `version="`+version+`"} 1`) {
		t.Errorf("lvsd_build_info does not carry the package version %s", version)
	}
	if exe, err := os.Readlink("/proc/" + pid + "/exe"); err != nil || exe != filepath.Join(root, "usr/sbin/lvsd") {
		t.Errorf("pid %s runs %q (%v), want the installed /usr/sbin/lvsd", pid, exe, err)
	}

	// Reload, as the unit would: ExecReload with $MAINPID.
	conf2 := fmt.Sprintf(debConf, vips("192.0.2.100/24", "192.0.2.101/24"))
	if err := os.WriteFile(confPath, []byte(conf2), 0o644); err != nil {
		t.Fatal(err)
	}
	chroot(t, root, "/bin/sh", "-c", strings.ReplaceAll(u.execReload, "$MAINPID", pid))
	waitUntil(t, 10*time.Second, "the reload's second VIP and its counter", func() bool {
		return hasVIP("192.0.2.101/24") && strings.Contains(metrics(), `lvsd_config_reloads_total{result="success"} 1`)
	})
	if !hasVIP("192.0.2.100/24") {
		t.Errorf("the first VIP went away on reload")
	}

	// Stop (systemd sends SIGTERM): the VIPs are released.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("lvsd exited: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("lvsd did not stop within 15s of SIGTERM")
	}
	if hasVIP("192.0.2.100/24") || hasVIP("192.0.2.101/24") {
		t.Errorf("VIPs left after stop")
	}
	if err := os.RemoveAll(runtimeDir); err != nil {
		t.Fatal(err)
	}

	// "systemctl enable lvsd" (no systemd in the root: the link it makes).
	wants := filepath.Join(root, "etc/systemd/system/multi-user.target.wants")
	var made []string
	for d := wants; d != filepath.Join(root, "etc"); d = filepath.Dir(d) {
		if _, err := os.Stat(d); err != nil {
			made = append(made, d)
		}
	}
	if err := os.MkdirAll(wants, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/lib/systemd/system/lvsd.service", filepath.Join(wants, "lvsd.service")); err != nil {
		t.Fatal(err)
	}

	// Purge.
	chroot(t, root, "dpkg", "--purge", "lvsd")
	if got, _ := exec.Command("chroot", root, "dpkg-query", "-W", "-f", "${Status}", "lvsd").Output(); len(got) > 0 && !strings.Contains(string(got), "not-installed") {
		t.Errorf("after purge: dpkg-query says %q", got)
	}
	if _, err := os.Lstat(filepath.Join(wants, "lvsd.service")); err == nil {
		t.Errorf("purge left the enablement link")
	}
	if got, err := os.ReadFile(confPath); err != nil || string(got) != conf2 {
		t.Errorf("purge changed the operator's keepalived.conf: %q, %v", got, err)
	}
	// What the test made itself (the configuration, the directories
	// systemctl would have made) goes; then nothing may differ.
	if err := os.Remove(confPath); err != nil {
		t.Fatal(err)
	}
	made = append(made, filepath.Dir(confPath))
	for _, d := range made {
		if err := os.Remove(d); err != nil {
			t.Errorf("%v (something was left in it)", err)
		}
	}
	after := snapshot(t, root)
	var diffs []string
	for p, e := range after {
		if b, ok := before[p]; !ok && !dpkgBookkeeping.MatchString(p) {
			diffs = append(diffs, "left behind: "+p+" "+string(e))
		} else if b != e && !dpkgBookkeeping.MatchString(p) && !strings.HasPrefix(string(e), "d") {
			diffs = append(diffs, "changed: "+p+" "+string(b)+" -> "+string(e))
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			diffs = append(diffs, "removed: "+p)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("the root differs after purge:\n%s", strings.Join(diffs, "\n"))
	}
	t.Logf("install, start, reload, stop, purge and compare: %v", time.Since(start).Round(time.Millisecond))
}
