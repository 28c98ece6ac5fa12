package main

import (
	"testing"

	"github.com/lvsd/lvsd/conf"
)

// TestNewErrors: a reload is rejected for errors the running configuration
// did not have; errors it already had (compared without their line) and
// warnings do not block it.
func TestNewErrors(t *testing.T) {
	const base = "vrrp_instance VI_1 {\n interface lo\n virtual_router_id 51\n priority 100\n}\n"
	parse := func(text string) []conf.Diag {
		_, d := conf.Parse("k.conf", text, conf.Options{ConfigID: "t"})
		return d
	}
	badVRID := "vrrp_instance VI_2 {\n interface lo\n virtual_router_id 300\n}\n"
	cases := []struct {
		name          string
		running, next string
		want          int
	}{
		{"clean to clean", base, base + "\n", 0},
		{"clean to unclosed block (and so no real servers)", base, base + "virtual_server 192.0.2.1 80 {\n", 2},
		{"clean to bad VRID (and so no VRID)", base, base + badVRID, 2},
		{"old error kept, moved down", badVRID + base, base + "\n\n" + badVRID, 0},
		{"old error kept plus a new one", badVRID + base, badVRID + base + "vrrp_instance VI_3 {\n interface lo\n virtual_router_id 0\n}\n", 2},
		{"the same error twice where it was once", badVRID + base, badVRID + base + badVRID, 2},
		{"a new warning only", base, base + "global_defs {\n foo\n}\n", 0},
	}
	for _, c := range cases {
		got := newErrors(parse(c.running), parse(c.next))
		if len(got) != c.want {
			t.Errorf("%s: %d new errors %v, want %d", c.name, len(got), got, c.want)
		}
	}
}
