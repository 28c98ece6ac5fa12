package conf

import "testing"

func TestVirtualServerSource(t *testing.T) {
	src := func(text string) (vs, group uint64) {
		t.Helper()
		cfg, _ := Parse("t.conf", text, Options{ConfigID: "t"})
		if len(cfg.VirtualServers) != 1 || len(cfg.VSGroups) != 1 {
			t.Fatalf("parsed %d virtual servers, %d groups", len(cfg.VirtualServers), len(cfg.VSGroups))
		}
		return cfg.VirtualServers[0].Source, cfg.VSGroups[0].Source
	}
	base := "virtual_server_group g {\n 192.0.2.1 80\n}\nvirtual_server 192.0.2.9 80 {\n protocol TCP\n real_server 10.0.0.1 80 {\n  weight 2\n }\n}\n"
	vs, g := src(base)
	if vs == 0 || g == 0 {
		t.Fatal("no Source")
	}
	// Moved, re-indented, commented, written through a definition: the same.
	same := "# moved down\n\n$W=2\nvirtual_server_group g {\n\t192.0.2.1   80   # here\n}\nvirtual_server 192.0.2.9 80 {\n\tprotocol TCP\n\treal_server 10.0.0.1 80 {\n\t\tweight $W\n\t}\n}\n"
	if v2, g2 := src(same); v2 != vs || g2 != g {
		t.Errorf("the same blocks written differently have another Source")
	}
	for _, other := range []string{
		"virtual_server_group g {\n 192.0.2.1 80\n}\nvirtual_server 192.0.2.9 80 {\n protocol TCP\n real_server 10.0.0.1 80 {\n  weight 3\n }\n}\n",
		"virtual_server_group g {\n 192.0.2.1 80\n}\nvirtual_server 192.0.2.9 80 {\n protocol TCP\n real_server 10.0.0.1 80 {\n  weight 2\n  inhibit_on_failure\n }\n}\n",
		"virtual_server_group g {\n 192.0.2.1 80\n}\nvirtual_server 192.0.2.9 80 {\n protocol TCP\n real_server 10.0.0.1 80 {\n  weight \"2\"\n }\n}\n",
	} {
		if v2, _ := src(other); v2 == vs {
			t.Errorf("a changed virtual server kept its Source:\n%s", other)
		}
	}
	if _, g2 := src("virtual_server_group g {\n 192.0.2.1 81\n}\nvirtual_server 192.0.2.9 80 {\n protocol TCP\n real_server 10.0.0.1 80 {\n  weight 2\n }\n}\n"); g2 == g {
		t.Error("a changed group kept its Source")
	}
}
