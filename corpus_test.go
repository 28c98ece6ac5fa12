package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/lvsd/lvsd/conf"
)

// integration skips unless LVSD_INTEGRATION is set; when it is, a missing
// prerequisite is a failure, never a skip.
func integration(t *testing.T, tools ...string) {
	t.Helper()
	if os.Getenv("LVSD_INTEGRATION") == "" {
		t.Skip("set LVSD_INTEGRATION=1 to run (needs root, iproute2, keepalived)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("LVSD_INTEGRATION is set but this test needs root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("LVSD_INTEGRATION is set but %s is not installed", tool)
		}
	}
}

func buildLvsd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "lvsd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// netnsWithInterfaces makes a network namespace holding a veth device for
// each name (the host kernel has no dummy driver).
func netnsWithInterfaces(t *testing.T, name string, ifaces []string) {
	t.Helper()
	exec.Command("ip", "netns", "del", name).Run()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	for i, ifn := range ifaces {
		peer := fmt.Sprintf("lvsdpeer%d", i)
		if out, err := exec.Command("ip", "-n", name, "link", "add", ifn, "type", "veth", "peer", "name", peer).CombinedOutput(); err != nil {
			t.Fatalf("veth %s: %v %s", ifn, err, out)
		}
		exec.Command("ip", "-n", name, "link", "set", ifn, "up").Run()
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func verdict(code int) string {
	switch code {
	case 2:
		return "refuses (missing parameter)"
	case 0, 5, 6:
		return "would run"
	case 4:
		return "cannot run"
	}
	return fmt.Sprintf("exit %d?", code)
}

// TestCorpusVerdictMatchesKeepalived runs keepalived -t and lvsd -t on every
// file of ../shared/corpus, in a namespace holding the interfaces the file
// names, and requires the same verdict ("would run": 0, 5, 6; "cannot run": 4;
// "refuses": 2, a keyword missing its parameter), and on a generated file for
// each keyword keepalived refuses without its parameter (see
// missingParameterFiles).
// Then, without the interfaces, lvsd must say "cannot run" for every file with
// a VRRP instance, which is what keepalived's daemon does (its -t says 5).
func TestCorpusVerdictMatchesKeepalived(t *testing.T) {
	integration(t, "ip", "keepalived")
	lvsd := buildLvsd(t)
	files, _ := filepath.Glob(filepath.Join("..", "shared", "corpus", "*", "*"))
	if len(files) == 0 {
		t.Fatal("no corpus under ../shared/corpus")
	}
	for _, g := range missingParameterFiles(t) {
		t.Run("generated/"+filepath.Base(g), func(t *testing.T) {
			kout, kerr := exec.Command("keepalived", "-t", "-l", "-f", g).CombinedOutput()
			lout, lerr := exec.Command(lvsd, "-t", "-f", g).CombinedOutput()
			kc, lc := exitCode(kerr), exitCode(lerr)
			if kc != 2 || lc != 2 || !strings.Contains(string(kout), "is missing a parameter after keyword") ||
				!strings.Contains(string(lout), "missing a parameter after keyword") {
				t.Errorf("want both to refuse (exit 2): keepalived %d, lvsd %d\nkeepalived:\n%s\nlvsd:\n%s", kc, lc, kout, lout)
			}
		})
	}
	for i, f := range files {
		abs, _ := filepath.Abs(f)
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			cfg, _ := conf.Load(abs, conf.Options{})
			var ifaces []string
			for n := range cfg.Interfaces() {
				ifaces = append(ifaces, n)
			}
			sort.Strings(ifaces)
			ns := fmt.Sprintf("lvsdcorp%d", i)
			netnsWithInterfaces(t, ns, ifaces)
			kout, kerr := exec.Command("ip", "netns", "exec", ns, "keepalived", "-t", "-l", "-f", abs).CombinedOutput()
			lout, lerr := exec.Command("ip", "netns", "exec", ns, lvsd, "-t", "-f", abs).CombinedOutput()
			kc, lc := exitCode(kerr), exitCode(lerr)
			t.Logf("interfaces %v: keepalived -t %d (%s), lvsd -t %d (%s)", ifaces, kc, verdict(kc), lc, verdict(lc))
			if verdict(kc) != verdict(lc) {
				t.Errorf("verdicts differ: keepalived %d, lvsd %d\nkeepalived:\n%s\nlvsd:\n%s", kc, lc, kout, lout)
			}
			if len(cfg.Instances) > 0 && len(ifaces) > 0 {
				bare := ns + "b"
				netnsWithInterfaces(t, bare, nil)
				out, err := exec.Command("ip", "netns", "exec", bare, lvsd, "-t", "-f", abs).CombinedOutput()
				if c := exitCode(err); c != exitConfig || !strings.Contains(string(out), "does not exist") {
					t.Errorf("without interfaces: lvsd -t exit %d, want %d with 'does not exist':\n%s", c, exitConfig, out)
				}
			}
		})
	}
}

// missingParameterFiles writes, for each keyword of lvsd's keyword table that
// keepalived refuses without its parameter, a file giving it bare in a block
// of its section (conf's TestMissingParameterMatchesKeepalived tries every
// block; one is enough for the verdict).
func missingParameterFiles(t *testing.T) []string {
	inst := "vrrp_instance VI {\n interface lo\n virtual_router_id 1\n%s\n}\n"
	vs := "virtual_server 192.0.2.10 80 {\n protocol TCP\n%s\n}\n"
	rs := strings.Replace(vs, "%s", " real_server 192.0.2.20 80 {\n%s\n }", 1)
	checker := func(kind string) string { return strings.Replace(rs, "%s", "  "+kind+" {\n%s\n  }", 1) }
	contexts := map[string]string{
		"top":                  "%s\n",
		"global_defs":          "global_defs {\n%s\n}\n",
		"vrrp_script":          "vrrp_script s {\n script /bin/true\n%s\n}\n",
		"track_file":           "track_file t {\n file /tmp/x\n%s\n}\n",
		"vrrp_track_process":   "vrrp_track_process p {\n process sleep\n%s\n}\n",
		"vrrp_sync_group":      strings.Replace(inst, "%s", "", 1) + "vrrp_sync_group G {\n group {\n  VI\n }\n%s\n}\n",
		"vrrp_instance":        inst,
		"notify":               inst,
		"authentication":       strings.Replace(inst, "%s", " authentication {\n%s\n }", 1),
		"virtual_server_group": "virtual_server_group g {\n%s\n}\n",
		"virtual_server":       vs,
		"timers":               vs,
		"real_server":          rs,
		"checker":              checker("TCP_CHECK"),
		"connection":           checker("TCP_CHECK"),
		"MISC_CHECK":           strings.Replace(checker("MISC_CHECK"), "%s", "   misc_path /bin/true\n%s", 1),
		"url":                  strings.Replace(checker("HTTP_GET"), "%s", "   url {\n    path /\n%s\n   }", 1),
	}
	dir := t.TempDir()
	var files []string
	for _, k := range conf.KeywordTable() {
		if !k.NeedsParameter || k.Section == "EXPECT_CHECK" {
			continue
		}
		ctx, ok := contexts[k.Section]
		if !ok {
			ctx = checker(k.Section) // a checker's own section
		}
		f := filepath.Join(dir, k.Section+"-"+k.Keyword+".conf")
		if err := os.WriteFile(f, []byte(strings.Replace(ctx, "%s", "  "+k.Keyword, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if len(files) < 100 {
		t.Fatalf("only %d keywords need a parameter?", len(files))
	}
	return files
}
