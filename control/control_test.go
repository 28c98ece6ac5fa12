package control

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func startServer(t *testing.T, cmds Commands, group int) (string, *Server) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run", "ctl")
	ln, err := Listen(path, group)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(cmds, Options{Group: group, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return path, s
}

// TestCommands: every command reaches its function with its arguments and
// the answer comes back.
func TestCommands(t *testing.T) {
	var got []string
	cmds := Commands{
		Status: func() any { return map[string]int{"instances": 2} },
		IPVS: func(args []string) (string, error) {
			if len(args) > 0 && args[0] == "-X" {
				return "", errors.New("unknown option -X")
			}
			return "IP Virtual Server version 1.2.1 (size=4096)\n" + strings.Join(args, " "), nil
		},
		Drain: func(vs, rs string, on bool) error {
			got = append(got, "drain "+vs+" "+rs+" "+map[bool]string{true: "on", false: "off"}[on])
			if rs == "bad" {
				return errors.New("no real server bad")
			}
			return nil
		},
		Failover: func(in string, on bool, d time.Duration) error {
			got = append(got, "failover "+in+" "+map[bool]string{true: "on", false: "off"}[on]+" "+d.String())
			return nil
		},
		Reload: func() ReloadResult {
			return ReloadResult{Err: errors.New("new errors"), Diagnostics: []string{"a.conf:3: error: x"}}
		},
	}
	path, s := startServer(t, cmds, -1)
	call := caller(t, path)
	if r := call(Request{Command: CmdStatus}); !r.OK || string(r.Data) != `{"instances":2}` {
		t.Errorf("status: %+v", r)
	}
	if r := call(Request{Command: CmdIPVS, Args: []string{"-Ln", "--stats"}}); !r.OK || !strings.HasSuffix(r.Output, "-Ln --stats") {
		t.Errorf("ipvs: %+v", r)
	}
	if r := call(Request{Command: CmdIPVS, Args: []string{"-X"}}); r.OK || r.Error != "unknown option -X" {
		t.Errorf("ipvs -X: %+v", r)
	}
	if r := call(Request{Command: CmdDrain, VS: "TCP/192.0.2.1:80", RS: "10.0.0.1:80"}); !r.OK {
		t.Errorf("drain: %+v", r)
	}
	if r := call(Request{Command: CmdEnable, VS: "v", RS: "bad"}); r.OK || r.Error != "no real server bad" {
		t.Errorf("enable bad: %+v", r)
	}
	if r := call(Request{Command: CmdDrain, VS: "v"}); r.OK {
		t.Errorf("drain without a real server: %+v", r)
	}
	if r := call(Request{Command: CmdFailover, Instance: "VI_1", Timeout: time.Minute}); !r.OK {
		t.Errorf("failover: %+v", r)
	}
	if r := call(Request{Command: CmdFailover, Instance: "VI_1", Clear: true}); !r.OK {
		t.Errorf("failover --clear: %+v", r)
	}
	if r := call(Request{Command: CmdFailover}); r.OK {
		t.Errorf("failover without instance: %+v", r)
	}
	if r := call(Request{Command: CmdReload}); r.OK || r.Error != "new errors" || len(r.Diagnostics) != 1 {
		t.Errorf("reload: %+v", r)
	}
	if r := call(Request{Command: "frobnicate"}); r.OK || !strings.Contains(r.Error, "unknown command") {
		t.Errorf("unknown: %+v", r)
	}
	want := "drain TCP/192.0.2.1:80 10.0.0.1:80 on;drain v bad off;failover VI_1 on 1m0s;failover VI_1 off 0s"
	if strings.Join(got, ";") != want {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, ";"), want)
	}
	if s.Requests.Load() != 11 || s.Errors.Load() != 6 {
		t.Errorf("requests %d errors %d", s.Requests.Load(), s.Errors.Load())
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o660 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket mode: %v %v", fi.Mode(), err)
	}
}

// TestProtocolErrors: a wrong version, bad JSON, a line too long, a nil
// command function and a panicking one get an answer, not a crash.
func TestProtocolErrors(t *testing.T) {
	path, _ := startServer(t, Commands{Drain: func(string, string, bool) error { panic("boom") }}, -1)
	raw := func(line string) string {
		t.Helper()
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, line)
		b, _ := io.ReadAll(c)
		return string(b)
	}
	for line, want := range map[string]string{
		`{"version":2,"command":"status"}` + "\n": "protocol version 2, the daemon speaks 1",
		"not json\n": "bad request",
		`{"version":1,"command":"status"}` + "\n":                               "status does not run in this process",
		`{"version":1,"command":"drain","vs":"a","rs":"b"}` + "\n":              "internal error: boom",
		`{"version":1,"command":"ipvs"}` + "\n":                                 "IPVS does not run in this process",
		`{"version":1,"command":"` + strings.Repeat("x", MaxLine) + `"}` + "\n": "bad request",
	} {
		if got := raw(line); !strings.Contains(got, want) || !strings.HasPrefix(got, `{"version":1,`) {
			t.Errorf("%.40q: %q, want %q", line, got, want)
		}
	}
	// The server still answers.
	if r, err := Call(path, Request{Command: CmdReload}, 5*time.Second); err != nil || r.OK {
		t.Errorf("after errors: %+v %v", r, err)
	}
}

// TestListenRefusesLiveSocket: a second daemon does not steal the socket
// of a running one, but replaces a stale one.
func TestListenRefusesLiveSocket(t *testing.T) {
	path, _ := startServer(t, Commands{}, -1)
	if _, err := Listen(path, -1); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Errorf("second Listen: %v", err)
	}
	stale := filepath.Join(t.TempDir(), "ctl")
	ln, err := Listen(stale, -1)
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	ln, err = Listen(stale, -1)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	ln.Close()
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := Listen(file, -1); err == nil {
		t.Error("Listen over a regular file")
	}
}

func TestAuthorized(t *testing.T) {
	for _, c := range []struct {
		p     Peer
		group int
		want  bool
	}{
		{Peer{UID: 0}, -1, true},
		{Peer{UID: 1000, GID: 1000}, -1, false},
		{Peer{UID: 1000, GID: 1000}, 1000, true},
		{Peer{UID: 1000, GID: 100, Groups: []int{4, 27}}, 27, true},
		{Peer{UID: 1000, GID: 100, Groups: []int{4, 27}}, 28, false},
	} {
		if got := Authorized(c.p, c.group); got != c.want {
			t.Errorf("Authorized(%+v, %d) = %v", c.p, c.group, got)
		}
	}
	if g, err := LookupGroup("root"); err != nil || g != 0 {
		t.Errorf("LookupGroup(root) = %d, %v", g, err)
	}
	if g, err := LookupGroup(""); err != nil || g != -1 {
		t.Errorf("LookupGroup('') = %d, %v", g, err)
	}
	if _, err := LookupGroup("no-such-group-lvsd"); err == nil {
		t.Error("unknown group accepted")
	}
}

// TestPeerCredentials: the server sees this process's uid and pid.
func TestPeerCredentials(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "s"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := net.Dial("unix", filepath.Join(dir, "s"))
		if err == nil {
			time.Sleep(100 * time.Millisecond)
			c.Close()
		}
	}()
	c, err := ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := PeerOf(c)
	if err != nil || p.UID != os.Getuid() || p.PID != os.Getpid() || p.GID != os.Getgid() {
		t.Errorf("peer %+v, %v; want uid %d pid %d", p, err, os.Getuid(), os.Getpid())
	}
}
