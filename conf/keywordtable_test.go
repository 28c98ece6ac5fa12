package conf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// keywordContexts are, for each section of keywordTable, the blocks a
// keyword of it is given in: a file with %s where the statement goes.
// Shared sections are tried in every block they are part of.
func keywordContexts() map[string][]string {
	inst := "vrrp_instance VI {\n interface lo\n virtual_router_id 1\n%s\n}\n"
	vs := "virtual_server 192.0.2.10 80 {\n%s\n}\n"
	rs := strings.Replace(vs, "%s", " real_server 192.0.2.20 80 {\n%s\n }", 1)
	checker := func(kind, first string) string {
		return strings.Replace(rs, "%s", "  "+kind+" {\n"+first+"%s\n  }", 1)
	}
	sync := strings.Replace(inst, "%s", "", 1) + "vrrp_sync_group G {\n group {\n  VI\n }\n%s\n}\n"
	kinds := []string{"TCP_CHECK", "HTTP_GET", "SSL_GET", "SMTP_CHECK", "DNS_CHECK", "UDP_CHECK", "PING_CHECK", "EXPECT_CHECK"}
	c := map[string][]string{
		"top":                  {"%s\n"},
		"global_defs":          {"global_defs {\n%s\n}\n"},
		"vrrp_script":          {"vrrp_script s {\n script /bin/true\n%s\n}\n"},
		"track_file":           {"track_file t {\n file /tmp/x\n%s\n}\n", "vrrp_track_file t {\n file /tmp/x\n%s\n}\n"},
		"vrrp_track_process":   {"vrrp_track_process p {\n process sleep\n%s\n}\n"},
		"vrrp_sync_group":      {sync},
		"vrrp_instance":        {inst},
		"notify":               {inst, sync},
		"authentication":       {strings.Replace(inst, "%s", " authentication {\n%s\n }", 1)},
		"ipaddress":            {strings.Replace(inst, "%s", " virtual_ipaddress {\n  192.0.2.1/32 %s\n }", 1)},
		"virtual_server_group": {"virtual_server_group g {\n%s\n}\n"},
		"virtual_server":       {vs},
		"timers":               {vs, rs},
		"real_server":          {rs},
		"checker":              {checker("MISC_CHECK", "   misc_path /bin/true\n")},
		"connection":           {strings.Replace(checker("SMTP_CHECK", ""), "%s", "   host {\n%s\n   }", 1)},
		"MISC_CHECK":           {checker("MISC_CHECK", "   misc_path /bin/true\n")},
		"url":                  {strings.Replace(checker("HTTP_GET", ""), "%s", "   url {\n    path /\n%s\n   }", 1)},
		"bgp":                  {"bgp {\n%s\n}\n"},
		"bgp_neighbor":         {"bgp {\n neighbor 192.0.2.1 {\n%s\n }\n}\n"},
	}
	c["FILE_CHECK"] = []string{"track_file t {\n file /tmp/x\n}\n" + checker("FILE_CHECK", "   track_file t\n")}
	for _, k := range kinds {
		c["checker"] = append(c["checker"], checker(k, ""))
		if k != "PING_CHECK" {
			c["connection"] = append(c["connection"], checker(k, ""))
		}
		c["timers"] = append(c["timers"], checker(k, ""))
		if _, ok := keywordTable[k]; ok {
			c[k] = []string{checker(k, "")}
		}
	}
	return c
}

// overridden: in the checker block of ctx, a shared section's keyword kw
// has the status the checker's own section gives it.
func overridden(sec, kw, ctx string) bool {
	if sec != "timers" && sec != "checker" && sec != "connection" {
		return false
	}
	for _, k := range checkerKinds {
		if k.name != sec && strings.Contains(ctx, k.name+" {") {
			_, own := keywordTable[k.name][kw]
			return own
		}
	}
	return false
}

// testFunctions returns the names of the test functions of the module
// (every *_test.go from the module's root).
func testFunctions(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	re := regexp.MustCompile(`(?m)^func (Test\w+)\(`)
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range re.FindAllSubmatch(b, -1) {
				names[string(m[1])] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestKeywordTable walks keywordTable: a keyword acted on names an existing
// test and is known to every block of its section (never "unknown"); a
// keyword not acted on gives its notice with its reason; a keyword marked
// arg is fatal without its parameter (and only those are).
func TestKeywordTable(t *testing.T) {
	tests := testFunctions(t)
	contexts := keywordContexts()
	for sec, kws := range keywordTable {
		ctxs := contexts[sec]
		if len(ctxs) == 0 {
			t.Errorf("section %s: no context to try its keywords in", sec)
			continue
		}
		for kw, info := range kws {
			if (info.test == "") == (info.notice == "") {
				t.Errorf("%s %s: want either a test or a notice, have %+v", sec, kw, info)
			}
			if info.test != "" && !tests[info.test] {
				t.Errorf("%s %s: names %s, which is no test function of the module", sec, kw, info.test)
			}
			for _, ctx := range ctxs {
				if overridden(sec, kw, ctx) {
					continue
				}
				_, diags := Parse("k.conf", strings.Replace(ctx, "%s", "  "+kw+" 1", 1), Options{ConfigID: "x"})
				noticed := false
				for _, d := range diags {
					if d.Msg == "unknown keyword '"+kw+"'" {
						t.Errorf("%s %s: unknown in\n%s", sec, kw, ctx)
					}
					if d.Level == Notice && d.Keyword == kw && d.Msg == "parsed, "+info.notice {
						noticed = true
					}
				}
				if info.notice != "" && !noticed {
					t.Errorf("%s %s: no notice 'parsed, %s' in\n%s\n%v", sec, kw, info.notice, ctx, diagStrings(diags))
				}
				_, diags = Parse("k.conf", strings.Replace(ctx, "%s", "  "+kw, 1), Options{ConfigID: "x"})
				missing := false
				for _, d := range diags {
					if d.MissingParameter && d.Keyword == kw && d.Level == Fatal && d.Pos.Line > 0 {
						missing = true
					}
				}
				if missing != info.arg {
					t.Errorf("%s %s without a parameter: missing-parameter fatal %v, want %v\n%v", sec, kw, missing, info.arg, diagStrings(diags))
				}
			}
		}
	}
}

// TestMissingParameterMatchesKeepalived runs keepalived 2.2.7 -t on every
// keyword of the table without its parameter, in each of its blocks, and
// requires that keepalived refuses it ("missing a parameter after keyword",
// exit 2) exactly when lvsd does.
func TestMissingParameterMatchesKeepalived(t *testing.T) {
	if os.Getenv("LVSD_INTEGRATION") == "" {
		t.Skip("set LVSD_INTEGRATION=1 to compare with keepalived")
	}
	keepalived, err := exec.LookPath("keepalived")
	if err != nil {
		t.Fatal("LVSD_INTEGRATION is set but keepalived is not installed")
	}
	dir := t.TempDir()
	contexts := keywordContexts()
	n := 0
	for sec, kws := range keywordTable {
		for kw := range kws {
			for _, ctx := range contexts[sec] {
				if overridden(sec, kw, ctx) {
					continue
				}
				if sec == "EXPECT_CHECK" || strings.Contains(ctx, "EXPECT_CHECK") || strings.HasPrefix(sec, "bgp") {
					continue // lvsd's own checker and bgp block
				}
				n++
				path := filepath.Join(dir, "k.conf")
				text := strings.Replace(ctx, "%s", "  "+kw, 1)
				if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command(keepalived, "-t", "-l", "-f", path)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				err := cmd.Run()
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				}
				krefuses := strings.Contains(out.String(), "is missing a parameter after keyword `"+kw+"`")
				if krefuses && code != 2 {
					t.Errorf("%s %s: keepalived said missing parameter but exited %d", sec, kw, code)
				}
				_, diags := Load(path, Options{ConfigID: "x"})
				if lrefuses := MissingParameter(diags); lrefuses != krefuses {
					t.Errorf("%s %s without a parameter: keepalived refuses %v, lvsd %v\n%s\nkeepalived: %s\nlvsd: %v", sec, kw, krefuses, lrefuses, text, out.String(), diagStrings(diags))
				}
			}
		}
	}
	t.Logf("%d files compared", n)
}

// TestKeywordEffects shows what the keywords no other test gives do to the
// Config (the subsystems read these fields: vrrp/config.go, ipvs,
// healthcheck).
func TestKeywordEffects(t *testing.T) {
	cfg, diags := Parse("k.conf", `global_defs {
  lvs_id lb7
  vrrp_gna_interval 0.25
  vrrp_check_unicast_src
  lvs_flush_on_stop VS
}
vrrp_instance VI {
  interface lo
  virtual_router_id 1
  lvs_sync_daemon_interface lo
  dont_track_primary
  garp_lower_prio_delay 3
  garp_master_refresh_repeat 4
}
virtual_server 192.0.2.10 80 {
  lvs_sched mh
  protocol TCP
  lvs_method DR
  mh-fallback
  real_server 192.0.2.20 80 {
    TCP_CHECK {
      log_all_failures
      bind_port 1234
    }
  }
}
`, Options{ConfigID: "x"})
	for _, d := range diags {
		if d.Level > Warning {
			t.Errorf("%v", d)
		}
	}
	g := cfg.Global
	if g.RouterID != "lb7" || g.VRRPGnaInterval != 250*time.Millisecond || !g.VRRPCheckUnicastSrc || g.LVSFlushOnStop != "vs" {
		t.Errorf("global_defs: router_id %q, gna interval %v, check_unicast_src %v, flush on stop %q", g.RouterID, g.VRRPGnaInterval, g.VRRPCheckUnicastSrc, g.LVSFlushOnStop)
	}
	if s := g.LVSSyncDaemon; s == nil || s.Interface != "lo" || s.Instance != "VI" {
		t.Errorf("lvs_sync_daemon_interface: %+v", s)
	}
	in := cfg.Instances[0]
	if !in.DontTrackPrimary || in.GARP.LowerPrioDelay != 3*time.Second || in.GARP.MasterRefreshRepeat != 4 || in.GARP.GNAInterval != 250*time.Millisecond {
		t.Errorf("instance: dont_track_primary %v, GARP %+v", in.DontTrackPrimary, in.GARP)
	}
	vs := cfg.VirtualServers[0]
	if len(vs.SchedFlags) != 1 || vs.SchedFlags[0] != "mh-fallback" {
		t.Errorf("sched flags %v", vs.SchedFlags)
	}
	c := vs.RealServers[0].Checkers[0]
	if !c.LogAllFailures || c.BindPort != 1234 {
		t.Errorf("checker: log_all_failures %v, bind_port %d", c.LogAllFailures, c.BindPort)
	}
}
