package conf_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/internal/genconf"
)

// BenchmarkLoadLarge parses 10,000 virtual servers x 10 real servers with
// TCP_CHECK (about 660,000 lines), as lvsd -t does. `make bench` times the same
// file with lvsd -t and keepalived -t side by side.
func BenchmarkLoadLarge(b *testing.B) {
	path := filepath.Join(b.TempDir(), "big.conf")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := genconf.Write(f, 10000, 10); err != nil {
		b.Fatal(err)
	}
	f.Close()
	fi, _ := os.Stat(path)
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cfg, diags := conf.Load(path, conf.Options{ConfigID: "bench"})
		if len(cfg.VirtualServers) != 10000 || len(cfg.VirtualServers[9999].RealServers) != 10 {
			b.Fatalf("parsed %d virtual servers", len(cfg.VirtualServers))
		}
		if conf.MaxLevel(diags) > conf.Notice {
			b.Fatalf("unexpected diagnostics: %v", diags[0])
		}
	}
}

// TestGeneratedConfigParses keeps the benchmark's input honest in ordinary test runs.
func TestGeneratedConfigParses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "small.conf")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := genconf.Write(f, 30, 10); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cfg, diags := conf.Load(path, conf.Options{ConfigID: "bench"})
	if conf.MaxLevel(diags) > conf.Notice {
		t.Fatalf("diagnostics: %v", diags)
	}
	if len(cfg.VirtualServers) != 30 {
		t.Fatalf("got %d virtual servers, want 30", len(cfg.VirtualServers))
	}
	rs := cfg.VirtualServers[29].RealServers[9]
	if rs.Weight != 5 || rs.Port != 8009 || len(rs.Checkers) != 1 || rs.Checkers[0].ConnectPort != 8009 {
		t.Fatalf("last real server: %+v", rs)
	}
}
