package vrrp

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const filterConf = `global_defs {
  vrrp_strict
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  priority 100
  virtual_ipaddress {
    %s/24
  }
  virtual_ipaddress_excluded {
    2001:db8::50/64
  }
}
vrrp_instance VI_2 {
  interface eth0
  virtual_router_id 2
  priority 100
  version 3
  accept
  virtual_ipaddress {
    192.0.2.200/24
  }
}
`

// filterLog is the filter calls and the address changes, in order.
func filterLog(h *engineHarness) string {
	var got []string
	for _, l := range h.k.take() {
		if strings.HasPrefix(l, "filter ") || strings.HasPrefix(l, "add ") || strings.HasPrefix(l, "del ") {
			got = append(got, l)
		}
	}
	return strings.Join(got, " | ")
}

// The no_accept VIPs reach the filter before they are added as MASTER and
// leave it after they are removed (also by a reload); an accept
// instance's never do.
func TestFilterOrder(t *testing.T) {
	var hp atomic.Pointer[engineHarness] // nil until the harness is made (the first calls: BACKUP at start)
	h := newEngineHarnessOpts(t, fmt.Sprintf(filterConf, "192.0.2.100"), nil, func(o *EngineOptions) {
		o.Filter = func(instance string, vips []VIP) {
			var s []string
			for _, v := range vips {
				s = append(s, v.Addr.String()+"@"+v.Dev)
			}
			if h := hp.Load(); h != nil {
				h.k.rec("filter %s [%s]", instance, strings.Join(s, " "))
			}
		}
	})
	hp.Store(h)
	h.advance(5 * time.Second)
	s := filterLog(h)
	want := "filter VI_1 [192.0.2.100/24@eth0 2001:db8::50/64@eth0] | add 192.0.2.100/24 | add 2001:db8::50/64"
	if !strings.Contains(s, want) || !strings.Contains(s, "filter VI_2 []") || strings.Contains(s, "filter VI_2 [1") {
		t.Fatalf("as MASTER: %s", s)
	}

	// A reload moves the VIP: the old one stays dropped until it is gone.
	if err := h.e.Apply(confText(t, fmt.Sprintf(filterConf, "192.0.2.101"))); err != nil {
		t.Fatal(err)
	}
	h.e.flush()
	s = filterLog(h)
	want = "filter VI_1 [192.0.2.101/24@eth0 2001:db8::50/64@eth0 192.0.2.100/24@eth0] | del 192.0.2.100/24 | add 192.0.2.101/24 | filter VI_1 [192.0.2.101/24@eth0 2001:db8::50/64@eth0]"
	if !strings.Contains(s, want) {
		t.Fatalf("reload: %s\nwant %s", s, want)
	}

	h.stop()
	var got []string
	for _, l := range strings.Split(filterLog(h), " | ") {
		if strings.Contains(l, "VI_1") || strings.HasPrefix(l, "del 192.0.2.101") {
			got = append(got, l)
		}
	}
	if s := strings.Join(got, " | "); s != "del 192.0.2.101/24 | filter VI_1 []" {
		t.Fatalf("on stop: %s", s)
	}
}
