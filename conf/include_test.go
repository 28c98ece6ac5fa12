package conf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// includeCase is a main file's head (the includes and include_check
// settings) and what keepalived 2.2.7 -t makes of it: rc 6 when an include
// is a configuration error, 5 for a warning only, 0 when it is only logged.
type includeCase struct {
	head string
	rc   int
	// routerID is what the files read leave (the main file sets none).
	routerID string
	// want are diagnostics lvsd must give, as "LINE: level: keyword: msg"
	// with the file name left out (sub/ names the included file).
	want []string
}

// includeCases are what keepalived 2.2.7 does with each include variant on
// a missing file, a wildcard matching nothing, a brace expression with a
// missing alternative, a directory and a good glob, and with include_check
// (measured with keepalived -t; TestIncludeMatchesKeepalived re-measures).
func includeCases() []includeCase {
	return []includeCase{
		{head: "include missing.conf\n", rc: 0, want: []string{"1: warning: include: cannot read DIR/missing.conf: no such file"}},
		{head: "include empty/*.conf\n", rc: 0, want: []string{`1: warning: include: no file matches "empty/*.conf"`}},
		{head: "include d/{a,zz}.conf\n", rc: 0, routerID: "a", want: []string{`1: warning: include: some files of "d/{a,zz}.conf" are missing`}},
		{head: "include d/dir.conf\n", rc: 0, want: []string{"1: warning: include: DIR/d/dir.conf is a directory - skipping"}},
		{head: "include d/*.conf\n", rc: 0, routerID: "b", want: []string{"1: warning: include: DIR/d/dir.conf is a directory - skipping"}},
		{head: "include d/{b,a}.conf # comment\n", rc: 0, routerID: "a"},
		{head: "include d/a.conf d/b.conf\n", rc: 0, want: []string{"1: warning: include: cannot read DIR/d/a.conf d/b.conf: no such file"}},

		{head: "includer missing.conf\n", rc: 0, want: []string{"1: warning: includer: cannot read DIR/missing.conf: no such file"}},
		{head: "includer empty/*.conf\n", rc: 0},
		{head: "includer d/{a,zz}.conf\n", rc: 0, routerID: "a"},
		{head: "includer d/dir.conf\n", rc: 6, want: []string{"1: error: includer: DIR/d/dir.conf is a directory - skipping"}},
		{head: "includer d/*.conf\n", rc: 6, routerID: "b", want: []string{"1: error: includer: DIR/d/dir.conf is a directory - skipping"}},

		{head: "includem missing.conf\n", rc: 6, want: []string{"1: error: includem: cannot read DIR/missing.conf: no such file"}},
		{head: "includem empty/*.conf\n", rc: 0},
		{head: "includem d/{a,zz}.conf\n", rc: 0, routerID: "a"},
		{head: "includem d/{x,y}.conf\n", rc: 0},
		{head: "includem d/dir.conf\n", rc: 6},
		{head: "includem d/x*.conf\n", rc: 0},

		{head: "includew missing.conf\n", rc: 6},
		{head: "includew empty/*.conf\n", rc: 6, want: []string{`1: error: includew: no file matches "empty/*.conf"`}},
		{head: "includew d/{a,zz}.conf\n", rc: 0, routerID: "a"},
		{head: "includew d/{x,y}.conf\n", rc: 0},
		{head: "includew d/{a,x*}.conf\n", rc: 0, routerID: "a"},
		{head: "includew d/dir.conf\n", rc: 6},

		{head: "includeb missing.conf\n", rc: 0},
		{head: "includeb empty/*.conf\n", rc: 0},
		{head: "includeb d/{a,zz}.conf\n", rc: 6, routerID: "a", want: []string{`1: error: includeb: some files of "d/{a,zz}.conf" are missing`}},
		{head: "includeb d/{x,y}.conf\n", rc: 6, want: []string{`1: error: includeb: no file matches "d/{x,y}.conf"`}},
		{head: "includeb d/{a,x*}.conf\n", rc: 0, routerID: "a"},
		{head: "includeb d/dir.conf\n", rc: 6},

		{head: "includea missing.conf\n", rc: 6},
		{head: "includea empty/*.conf\n", rc: 6},
		{head: "includea d/{a,zz}.conf\n", rc: 6, routerID: "a"},
		{head: "includea d/dir.conf\n", rc: 6},
		{head: "includea d/{a,b}.conf\n", rc: 0, routerID: "b"},

		// include_check in global_defs governs the includes after it.
		{head: "global_defs {\n include_check\n}\ninclude missing.conf\n", rc: 6, want: []string{"4: error: include: cannot read DIR/missing.conf: no such file"}},
		{head: "global_defs {\n include_check match\n}\ninclude missing.conf\n", rc: 6},
		{head: "global_defs {\n include_check wildcard_match\n}\ninclude empty/*.conf\n", rc: 6},
		{head: "global_defs {\n include_check brace_match\n}\ninclude d/{a,zz}.conf\n", rc: 6, routerID: "a"},
		{head: "global_defs {\n include_check match\n}\nincludew empty/*.conf\n", rc: 6},
		{head: "global_defs {\n include_check -match\n}\ninclude missing.conf\n", rc: 0},
		{head: "global_defs {\n include_check match -match\n}\ninclude missing.conf\n", rc: 0},
		{head: "global_defs {\n include_check match -match\n}\ninclude d/dir.conf\n", rc: 6},
		{head: "global_defs {\n include_check +match -wildcard_match\n}\ninclude missing.conf\n", rc: 6},
		{head: "global_defs {\n include_check readable\n}\ninclude missing.conf\n", rc: 5,
			want: []string{"2: warning: include_check: unknown include_check type 'readable' - ignoring"}},
		{head: "include missing.conf\nglobal_defs {\n include_check\n}\n", rc: 0},
		// A file's own include_check ends with it; an included file's
		// includes are checked, and reported at its own line.
		{head: "include sub/set.conf\ninclude missing.conf\n", rc: 0},
		{head: "global_defs {\n include_check match\n}\ninclude sub/inc.conf\n", rc: 6,
			want: []string{"sub/inc.conf:1: error: include: cannot read DIR/missing.conf: no such file"}},
		// At the top level include_check is an unknown keyword, as in keepalived.
		{head: "include_check\ninclude missing.conf\n", rc: 5, want: []string{"1: warning: unknown keyword 'include_check'"}},
		{head: "includew\n", rc: 5, want: []string{"1: warning: unknown keyword 'includew'"}},
	}
}

// includeDir makes the files the include cases name.
func includeDir(t *testing.T) string {
	dir := writeFiles(t, map[string]string{
		"d/a.conf":     "global_defs {\n router_id a\n}\n",
		"d/b.conf":     "global_defs {\n router_id b\n}\n",
		"empty/.keep":  "",
		"sub/set.conf": "global_defs {\n include_check\n}\n",
		"sub/inc.conf": "include ../missing.conf\n",
	})
	if err := os.Mkdir(filepath.Join(dir, "d", "dir.conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

const includeTail = "vrrp_script chk {\n script /bin/true\n}\n"

// TestLexIncludeChecks: the include variants and include_check, case by
// case: which problems are errors (at the including file:line), which
// files are read, in which order.
func TestLexIncludeChecks(t *testing.T) {
	dir := includeDir(t)
	for _, c := range includeCases() {
		main := filepath.Join(dir, "main.conf")
		if err := os.WriteFile(main, []byte(c.head+includeTail), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, diags := Load(main, Options{ConfigID: "x"})
		hasErr := false
		var got []string
		for _, d := range diags {
			if d.Level >= Error {
				hasErr = true
			}
			s := strings.ReplaceAll(d.String(), dir, "DIR")
			s = strings.TrimPrefix(strings.TrimPrefix(s, "DIR/main.conf:"), "DIR/")
			got = append(got, s)
		}
		if hasErr != (c.rc == 6) {
			t.Errorf("%q: error %v, want %v (keepalived -t exits %d)\n%v", c.head, hasErr, c.rc == 6, c.rc, got)
		}
		for _, w := range c.want {
			if !contains(got, w) {
				t.Errorf("%q: no %q in\n%s", c.head, w, strings.Join(got, "\n"))
			}
		}
		want := c.routerID
		if want == "" {
			want = setGlobalDefaultsRouterID()
		}
		if cfg.Global.RouterID != want {
			t.Errorf("%q: router_id %q, want %q (the files read)", c.head, cfg.Global.RouterID, want)
		}
	}
}

func setGlobalDefaultsRouterID() string {
	var g Global
	setGlobalDefaults(&g)
	return g.RouterID
}

// TestIncludeMatchesKeepalived runs keepalived 2.2.7 -t on each include
// case's files and requires the exit code the case records (6 when an
// include is an error, which lvsd reports as an error; 5 for a warning).
func TestIncludeMatchesKeepalived(t *testing.T) {
	if os.Getenv("LVSD_INTEGRATION") == "" {
		t.Skip("set LVSD_INTEGRATION=1 to compare with keepalived")
	}
	keepalived, err := exec.LookPath("keepalived")
	if err != nil {
		t.Fatal("LVSD_INTEGRATION is set but keepalived is not installed")
	}
	dir := includeDir(t)
	for _, c := range includeCases() {
		main := filepath.Join(dir, "main.conf")
		if err := os.WriteFile(main, []byte(c.head+includeTail), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(keepalived, "-t", "-l", "-f", main)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		rc := 0
		if ee, ok := cmd.Run().(*exec.ExitError); ok {
			rc = ee.ExitCode()
		}
		if rc != c.rc {
			t.Errorf("%q: keepalived -t exits %d, the case says %d\n%s", c.head, rc, c.rc, out.String())
		}
	}
}
