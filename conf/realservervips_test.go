package conf

import (
	"net/netip"
	"strings"
	"testing"
)

// real_server_vips: lvsd realserver's list of VIPs, a line each with its
// kind; bad lines are errors at their line and left out.
func TestRealServerVIPs(t *testing.T) {
	cfg := parseClean(t, "real_server_vips {\n 192.0.2.100\n 192.0.2.101 tun\n 192.0.2.102 GRE\n 2001:db8::1 dr\n 2001:db8::2 ipip\n}\n")
	want := []RealServerVIP{
		{Addr: netip.MustParseAddr("192.0.2.100"), Kind: "dr"},
		{Addr: netip.MustParseAddr("192.0.2.101"), Kind: "ipip"},
		{Addr: netip.MustParseAddr("192.0.2.102"), Kind: "gre"},
		{Addr: netip.MustParseAddr("2001:db8::1"), Kind: "dr"},
		{Addr: netip.MustParseAddr("2001:db8::2"), Kind: "ipip"},
	}
	if len(cfg.RealServerVIPs) != len(want) {
		t.Fatalf("got %+v", cfg.RealServerVIPs)
	}
	for i, v := range cfg.RealServerVIPs {
		if v.Addr != want[i].Addr || v.Kind != want[i].Kind || v.Pos.Line != i+2 {
			t.Errorf("line %d: %+v, want %+v", i+2, v, want[i])
		}
	}

	cfg, diags := Parse("rs.conf", "real_server_vips {\n 192.0.2.300\n 192.0.2.1 nat\n 192.0.2.2 dr extra\n 192.0.2.3\n}\nreal_server_vips\n", Options{ConfigID: "x"})
	got := strings.Join(diagStrings(diags), "\n")
	for _, w := range []string{"rs.conf:2:", "rs.conf:3:", `unknown kind "nat"`, "rs.conf:4:", "rs.conf:7:"} {
		if !strings.Contains(got, w) {
			t.Errorf("diagnostics lack %q:\n%s", w, got)
		}
	}
	if len(cfg.RealServerVIPs) != 1 || cfg.RealServerVIPs[0].Addr != netip.MustParseAddr("192.0.2.3") {
		t.Errorf("after the bad lines: %+v, want 192.0.2.3 only", cfg.RealServerVIPs)
	}
	if MaxLevel(diags) >= Fatal {
		t.Errorf("a bad real_server_vips line is fatal: %s", got)
	}
}
