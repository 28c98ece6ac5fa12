package vrrp

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
)

// keepalived's rise/fall: the first result counts at once; then <fall>
// consecutive failures to go down and <rise> consecutive successes to come
// back.
func TestScriptStateRiseFall(t *testing.T) {
	for _, tc := range []struct {
		rise, fall int
		initFail   bool
		runs       string // s = success, f = failure
		reports    string // after each run: '-' nothing, 'U' up, 'D' down
	}{
		{1, 1, false, "sffss", "UD-U-"},
		{2, 3, false, "sfffsss", "U--D-U-"},
		{2, 3, false, "fssfs", "D-U--"},
		{2, 2, false, "sfsff", "U---D"}, // a success resets the fall count
		{3, 1, true, "sss", "--U"},      // init_fail: rise successes needed
		{3, 1, true, "fss", "---"},
		{1, 1, true, "f", "-"}, // already down: nothing new to tell
	} {
		st := NewScriptState(tc.rise, tc.fall, tc.initFail)
		var got strings.Builder
		for _, r := range tc.runs {
			report, up := st.Record(r == 's')
			switch {
			case !report:
				got.WriteByte('-')
			case up:
				got.WriteByte('U')
			default:
				got.WriteByte('D')
			}
		}
		if got.String() != tc.reports {
			t.Errorf("rise %d fall %d init_fail %v runs %s: reports %s, want %s", tc.rise, tc.fall, tc.initFail, tc.runs, got.String(), tc.reports)
		}
	}
}

// The real command runner: exit status, timeout (the whole process group
// is killed) and the user switch.
func TestScriptCommandExec(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	for d := filepath.Dir(dir); d != "/"; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			_ = os.Chmod(d, fi.Mode().Perm()|0o005)
			restore := fi.Mode().Perm()
			t.Cleanup(func() { _ = os.Chmod(d, restore) })
		}
	}
	out := filepath.Join(dir, "uid")
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := write("ok.sh", fmt.Sprintf("id -u > %s\nexit 0\n", out))
	bad := write("bad.sh", "exit 3\n")
	hang := write("hang.sh", "sleep 30 &\nwait\n")
	g := &conf.Global{}
	run := func(args []string, user string, timeout time.Duration) (bool, string, time.Duration) {
		start := time.Now()
		okk, detail := CommandExec(ScriptConfig{Name: "t", Args: args, User: user}, g)(context.Background(), timeout)
		return okk, detail, time.Since(start)
	}
	if r, d, _ := run([]string{ok}, "", time.Second); !r {
		t.Fatalf("ok.sh: %s", d)
	}
	if r, d, _ := run([]string{bad}, "", time.Second); r || d != "exited with status 3" {
		t.Fatalf("bad.sh: %v %s", r, d)
	}
	if r, d, took := run([]string{hang}, "", 200*time.Millisecond); r || d != "timed out" || took > 3*time.Second {
		t.Fatalf("hang.sh: %v %s after %v", r, d, took)
	}
	if r, _, _ := run([]string{ok}, "no-such-user-lvsd", time.Second); r {
		t.Fatal("ran as an unknown user")
	}
	if os.Geteuid() != 0 {
		return
	}
	os.Remove(out)
	g.ScriptUser = "nobody"
	if r, d, _ := run([]string{ok}, "", time.Second); !r {
		t.Fatalf("ok.sh as script_user nobody: %s", d)
	}
	if b, _ := os.ReadFile(out); strings.TrimSpace(string(b)) != "65534" {
		t.Fatalf("ran as uid %q, want nobody (65534)", b)
	}
	os.Remove(out)
	if r, d, _ := run([]string{ok}, "root", time.Second); !r {
		t.Fatalf("ok.sh as root: %s", d)
	}
	if b, _ := os.ReadFile(out); strings.TrimSpace(string(b)) != "0" {
		t.Fatalf("the script's own user is not preferred to script_user: uid %q", b)
	}
}
