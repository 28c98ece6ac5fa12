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
	case 0, 5, 6:
		return "would run"
	case 4:
		return "cannot run"
	}
	return fmt.Sprintf("exit %d?", code)
}

// TestCorpusVerdictMatchesKeepalived runs keepalived -t and lvsd -t on every
// file of ../shared/corpus, in a namespace holding the interfaces the file
// names, and requires the same verdict ("would run": 0, 5, 6; "cannot run": 4).
// Then, without the interfaces, lvsd must say "cannot run" for every file with
// a VRRP instance, which is what keepalived's daemon does (its -t says 5).
func TestCorpusVerdictMatchesKeepalived(t *testing.T) {
	integration(t, "ip", "keepalived")
	lvsd := buildLvsd(t)
	files, _ := filepath.Glob(filepath.Join("..", "shared", "corpus", "*", "*"))
	if len(files) == 0 {
		t.Fatal("no corpus under ../shared/corpus")
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
