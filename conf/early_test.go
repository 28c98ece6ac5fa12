package conf

import (
	"encoding/json"
	"os"
	"testing"
)

// parseWhole is parseText building the whole tree at the end, as before
// virtual_server blocks were built early (the reference).
func parseWhole(name, text string, opt Options) (*Config, []Diag) {
	opt = opt.withDefaults()
	d := &diagList{}
	tb := newTreeBuilder(d)
	lx := newLexer(opt.ConfigID, d, tb.line)
	lx.inGlobalDefs = tb.inGlobalDefs
	lx.fsRead, lx.glob = noFile, noGlob
	lx.files = []string{name}
	lx.lexText(text, name)
	cfg := build(tb.finish(), d, nil)
	cfg.Files = lx.files
	validate(cfg, d, opt)
	return cfg, d.list
}

// TestEarlyBuildIsWholeBuild: building virtual_server blocks as they close
// gives the configuration and the diagnostics, in the same order, of
// building the whole tree at the end, on the corpus and on blocks in error
// around global_defs.
func TestEarlyBuildIsWholeBuild(t *testing.T) {
	texts := map[string]string{
		"tricky": `virtual_server 192.0.2.1 80 {
    lb_algo nosuch
    bogus_keyword 1
    real_server 198.51.100.1 80 {
        TCP_CHECK {
            connect_timeout x
        }
    }
}
global_defs {
    router_id r
    unknown_global 1
}
virtual_server
virtual_server 192.0.2.1 80 {
    real_server 198.51.100.1 80 {
    }
}
virtual_server 192.0.2.2 81
{
    real_server 198.51.100.2 81 {
        weight 2
    }
} }
{
vrrp_instance V { interface eth0
  virtual_router_id 1 priority 100 }
virtual_server 192.0.2.3 82 { real_server 198.51.100.3 82 { weight 1 } }
virtual_server 192.0.2.4 83 {
    real_server 198.51.100.4 83 {
`,
	}
	for _, file := range corpusFiles(t) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		texts[file] = string(b)
	}
	opt := Options{ConfigID: "t", InterfaceExists: func(string) bool { return true }}
	for name, text := range texts {
		c1, d1 := parseText("t.conf", text, opt, maxExpanded, true)
		c2, d2 := parseWhole("t.conf", text, opt)
		j1, _ := json.Marshal(struct {
			C *Config
			D []Diag
		}{c1, d1})
		j2, _ := json.Marshal(struct {
			C *Config
			D []Diag
		}{c2, d2})
		if string(j1) != string(j2) {
			t.Errorf("%s: the early build differs:\nearly %s\nwhole %s", name, j1, j2)
		}
		if name == "tricky" && (len(d1) < 6 || len(c1.VirtualServers) < 2) {
			t.Errorf("tricky: %d diagnostics, %d virtual servers: %v", len(d1), len(c1.VirtualServers), d1)
		}
	}
}
