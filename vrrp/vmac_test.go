package vrrp

import (
	"strings"
	"testing"
)

// fakeVMACs records the engine's VMAC calls in the fake kernel's log.
type fakeVMACs struct {
	k    *fakeKernel
	left []string
}

func (f *fakeVMACs) Ensure(v VMACSpec) error {
	f.k.rec("vmac ensure %s on %s %v ll=%v", v.Name, v.Base, v.MAC, v.LinkLocal)
	return nil
}
func (f *fakeVMACs) Remove(v VMACSpec) error      { f.k.rec("vmac remove %s", v.Name); return nil }
func (f *fakeVMACs) Leftovers() ([]string, error) { return f.left, nil }

const vmacEngineConf = `vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 61
  use_vmac
  virtual_ipaddress {
    192.0.2.100/24
  }
}
vrrp_instance VI_6 {
  interface eth0
  virtual_router_id 62
  use_vmac v6
  virtual_ipaddress {
    2001:db8::1/64
  }
}
`

func vmacCalls(log []string) string {
	var out []string
	for _, l := range log {
		if strings.HasPrefix(l, "vmac ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The engine's VMACs: leftovers it does not want removed at start, made
// in configuration order (an IPv6 one with the base's link-local address),
// kept by a reload that keeps them, removed by one that drops them, made
// again by the safety net when missing, removed on stop.
func TestEngineVMACs(t *testing.T) {
	var fv *fakeVMACs
	h := newEngineHarnessOpts(t, vmacEngineConf, nil, func(o *EngineOptions) {
		fv = &fakeVMACs{k: o.Kernel.(*fakeKernel), left: []string{"vrrp.9", "vrrp.61"}}
		o.VMACs = fv
	})
	want := "vmac remove vrrp.9\nvmac ensure vrrp.61 on eth0 00:00:5e:00:01:3d ll=invalid IP\nvmac ensure v6 on eth0 00:00:5e:00:02:3e ll=fe80::1"
	if got := vmacCalls(h.k.take()); got != want {
		t.Fatalf("at start:\n%s\nwant:\n%s", got, want)
	}
	if err := h.e.Apply(confText(t, vmacEngineConf)); err != nil {
		t.Fatal(err)
	}
	if got := vmacCalls(h.k.take()); got != "" {
		t.Fatalf("a reload that changes nothing: %s", got)
	}
	if err := h.e.Apply(confText(t, strings.Replace(vmacEngineConf, "  use_vmac v6\n", "", 1))); err != nil {
		t.Fatal(err)
	}
	if got := vmacCalls(h.k.take()); got != "vmac remove v6" {
		t.Fatalf("a reload dropping use_vmac: %s", got)
	}
	if err := h.e.checkOnce(); err != nil { // the fake lists eth0 only
		t.Fatal(err)
	}
	if got := vmacCalls(h.k.take()); got != "vmac ensure vrrp.61 on eth0 00:00:5e:00:01:3d ll=invalid IP" || h.e.Repairs()["vmac"] != 1 {
		t.Fatalf("safety net: %s, repairs %v", got, h.e.Repairs())
	}
	st := h.e.Status()
	h.stop()
	if got := vmacCalls(h.k.take()); got != "vmac remove vrrp.61" {
		t.Fatalf("on stop: %s (%d instances)", got, len(st))
	}
}
