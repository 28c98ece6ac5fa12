package execscript

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
)

// script writes an executable shell script (all are written before any
// runs in the test: writing an executable while another goroutine forks can
// make exec fail with ETXTBSY, so these tests do not run in parallel).
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// readPid waits for a pid file written by a script.
func readPid(t *testing.T, p string) int {
	t.Helper()
	for i := 0; i < 200; i++ {
		if b, err := os.ReadFile(p); err == nil && strings.HasSuffix(string(b), "\n") {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no pid in %s", p)
	return 0
}

// alive reports whether pid runs (a zombie waiting for its reaper does not).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// gone waits a little for pid to die: signals are asynchronous.
func gone(pid int) bool {
	for i := 0; i < 100 && alive(pid); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	return !alive(pid)
}

// A script that ignores SIGTERM and leaves a child behind is killed with
// its whole process group: SIGTERM at the timeout, SIGKILL after the grace.
func TestTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	pidf := filepath.Join(dir, "child.pid")
	p := script(t, dir, "hang.sh", "trap '' TERM\nsleep 60 &\necho $! > \"$1\"\nwait")
	c := &Command{Args: []string{p, pidf}, KillGrace: 300 * time.Millisecond}
	start := time.Now()
	r := c.Run(context.Background(), 200*time.Millisecond)
	took := time.Since(start)
	t.Logf("timed-out script: %v after %v", r, took)
	if !r.TimedOut || r.Canceled || r.OK() || r.Code != -1 || r.Signal != syscall.SIGKILL || r.String() != "timed out" {
		t.Fatalf("result %+v, want a timeout ended by SIGKILL", r)
	}
	if took < 500*time.Millisecond || took > 3*time.Second {
		t.Fatalf("took %v, want timeout+grace", took)
	}
	if r.Duration < 500*time.Millisecond || r.Duration > took {
		t.Fatalf("Duration %v, took %v", r.Duration, took)
	}
	if pid := readPid(t, pidf); !gone(pid) {
		t.Fatalf("child %d of the timed-out script still runs", pid)
	}
}

// A script that exits on SIGTERM is not waited for until the grace ends;
// its child that ignores SIGTERM is killed all the same, and a status of
// its own on SIGTERM is still a timeout.
func TestTimeoutTermThenStragglers(t *testing.T) {
	dir := t.TempDir()
	pidf := filepath.Join(dir, "child.pid")
	p := script(t, dir, "term.sh", "(trap '' TERM; sleep 60) &\necho $! > \"$1\"\ntrap 'exit 0' TERM\nwhile :; do sleep 0.05; done")
	c := &Command{Args: []string{p, pidf}, KillGrace: 5 * time.Second}
	start := time.Now()
	r := c.Run(context.Background(), 200*time.Millisecond)
	took := time.Since(start)
	if !r.TimedOut || r.OK() || r.Code != -1 {
		t.Fatalf("result %+v, want a timeout", r)
	}
	if took > 2*time.Second {
		t.Fatalf("took %v: waited for the grace although the script exited on SIGTERM", took)
	}
	if pid := readPid(t, pidf); !gone(pid) {
		t.Fatalf("child %d (ignoring SIGTERM) survived its group's kill", pid)
	}
}

// When the context ends the process group is killed at once; a context
// that has already ended starts nothing.
func TestContextEndKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	pidf := filepath.Join(dir, "child.pid")
	mark := filepath.Join(dir, "ran")
	p := script(t, dir, "hang.sh", "sleep 60 &\necho $! > \"$1\"\nwait")
	touch := script(t, dir, "touch.sh", "touch \"$1\"")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	r := (&Command{Args: []string{p, pidf}}).Run(ctx, time.Minute)
	took := time.Since(start)
	if !r.Canceled || r.TimedOut || r.OK() || r.Code != -1 || r.String() != "cancelled" {
		t.Fatalf("result %+v, want cancelled", r)
	}
	if took > 2*time.Second {
		t.Fatalf("took %v after the context ended", took)
	}
	if pid := readPid(t, pidf); !gone(pid) {
		t.Fatalf("child %d still runs after the context ended", pid)
	}
	r = (&Command{Args: []string{touch, mark}}).Run(ctx, time.Second)
	if !r.Canceled || r.OK() {
		t.Fatalf("with an ended context: %+v", r)
	}
	if _, err := os.Stat(mark); err == nil {
		t.Fatal("started with an ended context")
	}
}

// A script that exits by itself is done at once although a child it
// started still runs (nothing is piped to wait on), and that child is left
// alone: a notify script may start a daemon (keepalived does not kill it
// either).
func TestChildOutlivesScript(t *testing.T) {
	dir := t.TempDir()
	pidf := filepath.Join(dir, "child.pid")
	p := script(t, dir, "bg.sh", "sleep 30 &\necho $! > \"$1\"\nexit 0")
	start := time.Now()
	r := (&Command{Args: []string{p, pidf}}).Run(context.Background(), 10*time.Second)
	took := time.Since(start)
	pid := readPid(t, pidf)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if !r.OK() || r.Code != 0 || r.String() != "exited with status 0" {
		t.Fatalf("result %+v", r)
	}
	if took > 2*time.Second {
		t.Fatalf("took %v: waited for the script's child", took)
	}
	time.Sleep(100 * time.Millisecond)
	if !alive(pid) {
		t.Fatalf("the child %d of a script that exited by itself was killed", pid)
	}
	if pgid, err := syscall.Getpgid(pid); err != nil || pgid == syscall.Getpgrp() {
		t.Fatalf("the script's child is in lvsd's process group (%d, %v)", pgid, err)
	}
}

func TestExitStatusAndSignal(t *testing.T) {
	for _, code := range []int{0, 1, 2, 3, 255} {
		r := (&Command{Args: []string{"/bin/sh", "-c", fmt.Sprintf("exit %d", code)}}).Run(context.Background(), 5*time.Second)
		if r.OK() != (code == 0) || r.Code != code || r.TimedOut || r.Canceled || r.Err != nil || r.Signal != 0 {
			t.Fatalf("exit %d: %+v", code, r)
		}
		if want := fmt.Sprintf("exited with status %d", code); r.String() != want {
			t.Fatalf("exit %d: %q, want %q", code, r.String(), want)
		}
	}
	r := (&Command{Args: []string{"/bin/sh", "-c", "kill -9 $$"}}).Run(context.Background(), 5*time.Second)
	if r.OK() || r.Code != -1 || r.Signal != syscall.SIGKILL || r.TimedOut || r.String() != "killed by signal 9 (killed)" {
		t.Fatalf("killed by a signal: %+v %q", r, r.String())
	}
	// No timeout at all.
	if r := (&Command{Args: []string{"/bin/sh", "-c", "sleep 0.1"}}).Run(context.Background(), 0); !r.OK() {
		t.Fatalf("without a timeout: %+v", r)
	}
}

// Extra arguments follow the configured ones, without a shell.
func TestArguments(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	p := script(t, dir, "args.sh", "printf '%s|' \"$@\" > \""+out+"\"")
	r := (&Command{Args: []string{p, "a b", "$HOME"}}).Run(context.Background(), 5*time.Second, "INSTANCE", "VI 1", "*")
	if !r.OK() {
		t.Fatalf("%+v", r)
	}
	if b, _ := os.ReadFile(out); string(b) != "a b|$HOME|INSTANCE|VI 1|*|" {
		t.Fatalf("arguments %q", b)
	}
}

func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{filepath.Join(dir, "missing")}, {"lvsd-no-such-command-in-path"}, {noexec}} {
		r := (&Command{Args: args}).Run(context.Background(), time.Second)
		if r.OK() || r.Err == nil || r.Code != -1 || r.String() != r.Err.Error() {
			t.Fatalf("%v: %+v", args, r)
		}
		if _, err := (&Command{Args: args}).Start(); err == nil {
			t.Fatalf("%v: started", args)
		}
	}
	if _, err := (&Command{}).Start(); err == nil {
		t.Fatal("empty command started")
	}
}

// The timeout counts from the start, not from Wait.
func TestWaitTimeoutFromStart(t *testing.T) {
	p, err := (&Command{Args: []string{"/bin/sh", "-c", "sleep 30"}}).Start()
	if err != nil {
		t.Fatal(err)
	}
	if p.Pid() <= 0 {
		t.Fatalf("pid %d", p.Pid())
	}
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	r := p.Wait(context.Background(), 200*time.Millisecond)
	if !r.TimedOut || time.Since(start) > time.Second {
		t.Fatalf("%+v after %v", r, time.Since(start))
	}
}

func TestUnknownUserAndGroup(t *testing.T) {
	for _, tc := range []struct{ user, group, want string }{
		{"no-such-user-lvsd", "", `unknown user "no-such-user-lvsd"`},
		{"4000000000", "", `unknown user "4000000000"`},
		{"root", "no-such-group-lvsd", `unknown group "no-such-group-lvsd"`},
		{"root", "4000000000", `unknown group "4000000000"`},
	} {
		_, err := Credential(tc.user, tc.group)
		var le *LookupError
		if err == nil || err.Error() != tc.want || !errors.As(err, &le) {
			t.Errorf("Credential(%q, %q): %v, want %s", tc.user, tc.group, err, tc.want)
		}
		_, err = Resolve(&conf.Script{Args: []string{"/bin/true"}, User: tc.user, Group: tc.group}, nil)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Resolve as %q/%q: %v, want %s", tc.user, tc.group, err, tc.want)
		}
	}
	var uu user.UnknownUserError
	if _, err := Credential("no-such-user-lvsd", ""); !errors.As(err, &uu) {
		t.Errorf("%v does not unwrap to user.UnknownUserError", err)
	}
	// From global_defs too.
	if _, err := Resolve(&conf.Script{Args: []string{"/bin/true"}}, &conf.Global{ScriptUser: "no-such-user-lvsd"}); err == nil {
		t.Error("an unknown script_user resolved")
	}
	if _, err := Resolve(&conf.Script{}, nil); err == nil {
		t.Error("an empty command resolved")
	}
	if _, err := Resolve(nil, nil); err == nil {
		t.Error("no command resolved")
	}
}

// Who we already are needs no credential, by name or by number.
func TestCredentialSelf(t *testing.T) {
	me, err := user.LookupId(strconv.Itoa(os.Geteuid()))
	if err != nil {
		t.Skip(err)
	}
	if os.Getegid() != mustAtoi(t, me.Gid) {
		t.Skip("running with another group than the user's primary one")
	}
	for _, name := range []string{me.Username, me.Uid} {
		if cred, err := Credential(name, ""); err != nil || cred != nil {
			t.Fatalf("Credential(%q): %+v %v, want nil", name, cred, err)
		}
		if cred, err := Credential(name, me.Gid); err != nil || cred != nil {
			t.Fatalf("Credential(%q, %q): %+v %v, want nil", name, me.Gid, cred, err)
		}
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	v, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Resolve's order: the script's user, else script_user, else
// keepalived_script when it exists, else lvsd's own.
func TestResolveOrder(t *testing.T) {
	g := &conf.Global{ScriptUser: "nobody"}
	c, err := Resolve(&conf.Script{Args: []string{"/bin/true", "x"}}, g)
	if err != nil {
		t.Fatal(err)
	}
	if c.User != "nobody" || strings.Join(c.Args, " ") != "/bin/true x" {
		t.Fatalf("script_user: %+v", c)
	}
	if c, err = Resolve(&conf.Script{Args: []string{"/bin/true"}, User: "root"}, g); err != nil || c.User != "root" {
		t.Fatalf("own user before script_user: %+v %v", c, err)
	}
	c, err = Resolve(&conf.Script{Args: []string{"/bin/true"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, kerr := user.Lookup(DefaultUser); kerr == nil {
		if c.User != DefaultUser {
			t.Fatalf("%s exists but the script runs as %q", DefaultUser, c.User)
		}
	} else if c.User != "" || c.Cred != nil {
		t.Fatalf("no user configured: %+v", c)
	}
	// The configured arguments are copied.
	s := &conf.Script{Args: []string{"/bin/true"}}
	c, _ = Resolve(s, nil)
	s.Args[0] = "/bin/false"
	if c.Args[0] != "/bin/true" {
		t.Fatal("Command shares the configuration's arguments")
	}
}

// As root a script runs as nobody with nobody's groups only, by name or by
// number, and with a group of its own.
func TestRunAsNobody(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	// nobody, also in group root, must reach the script and write the output.
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o055 != 0o055 {
			restore := fi.Mode().Perm()
			if err := os.Chmod(d, restore|0o055); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.Chmod(d, restore) })
		}
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	p := script(t, dir, "id.sh", "echo $(id -u) $(id -g) $(sed -n 's/^Groups://p' /proc/$$/status) > \"$1\"")
	groups, err := nobody.GroupIds()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ user, group, want string }{
		{"nobody", "", nobody.Uid + " " + nobody.Gid + " " + strings.Join(groups, " ")},
		{nobody.Uid, "", nobody.Uid + " " + nobody.Gid + " " + strings.Join(groups, " ")},
		{"nobody", "0", nobody.Uid + " 0 " + strings.Join(groups, " ")},
		{"root", "", "0 0 " + ownGroups(t)},
	} {
		out := filepath.Join(dir, "out-"+tc.user+"-"+tc.group)
		c, err := Resolve(&conf.Script{Args: []string{p, out}, User: tc.user, Group: tc.group}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r := c.Run(context.Background(), 5*time.Second); !r.OK() {
			t.Fatalf("as %s/%s: %v", tc.user, tc.group, r)
		}
		b, _ := os.ReadFile(out)
		if got, want := strings.Join(strings.Fields(string(b)), " "), strings.Join(strings.Fields(tc.want), " "); got != want {
			t.Fatalf("as %s/%s: uid gid groups %q, want %q", tc.user, tc.group, got, want)
		}
	}
	// The group is killed across the user switch.
	pidf := filepath.Join(dir, "child.pid")
	hang := script(t, dir, "hang.sh", "sleep 60 &\necho $! > \"$1\"\nwait")
	c, err := Resolve(&conf.Script{Args: []string{hang, pidf}, User: "nobody"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Run(context.Background(), 200*time.Millisecond); !r.TimedOut {
		t.Fatalf("%+v", r)
	}
	if pid := readPid(t, pidf); !gone(pid) {
		t.Fatalf("child %d of a script run as nobody survived", pid)
	}
}

// ownGroups are this process's supplementary groups.
func ownGroups(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "Groups:"); ok {
			return strings.Join(strings.Fields(rest), " ")
		}
	}
	t.Fatal("no Groups in /proc/self/status")
	return ""
}
