package firewall

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// fakeKernel records the batches.
type fakeKernel struct {
	mu      sync.Mutex
	batches []string
	fail    error
}

func (k *fakeKernel) Apply(ops []Op) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		return k.fail
	}
	k.batches = append(k.batches, Describe(ops))
	return nil
}

func (k *fakeKernel) take() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	b := k.batches
	k.batches = nil
	return b
}

func run(t *testing.T, clean bool) (*Firewall, *fakeKernel, func()) {
	k := &fakeKernel{}
	f := New(k, clean, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = f.Run(ctx); close(done) }()
	return f, k, func() { cancel(); <-done }
}

func addrs(ss ...string) []Addr {
	var out []Addr
	for _, s := range ss {
		ip, idx, _ := strings.Cut(s, "%")
		a := Addr{IP: netip.MustParseAddr(ip)}
		if idx != "" {
			a.Ifindex = int(idx[0] - '0')
		}
		out = append(out, a)
	}
	return out
}

func expectBatches(t *testing.T, k *fakeKernel, want ...string) {
	t.Helper()
	got := k.take()
	if len(got) != len(want) {
		t.Fatalf("batches:\n%s\nwant:\n%s", strings.Join(got, "--\n"), strings.Join(want, "--\n"))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("batch %d:\n%s\nwant:\n%s", i, got[i], want[i])
		}
	}
}

// The objects come in keepalived's order of creation (nft lists them by
// handle), the table of a family when its first address comes, and the
// sets follow the instances.
func TestFirewallOrderAndState(t *testing.T) {
	f, k, stop := run(t, true)
	if err := f.SetVIPs("VI_1", addrs("192.0.2.101", "192.0.2.100")); err != nil {
		t.Fatal(err)
	}
	expectBatches(t, k,
		"del table ip\ndel table ip6\n",
		"add table ip\nadd chain ip out\nadd chain ip in\nadd set ip vips\nadd rule ip in vips\nadd rule ip out vips\nadd elems ip vips 192.0.2.100 192.0.2.101\n")
	// An IPv6 instance: its table; the link-local set when a link-local
	// address comes.
	if err := f.SetVIPs("VI_6", addrs("2001:db8::100")); err != nil {
		t.Fatal(err)
	}
	if err := f.SetVIPs("VI_6", addrs("2001:db8::100", "fe80::100%3")); err != nil {
		t.Fatal(err)
	}
	expectBatches(t, k,
		"add table ip6\nadd chain ip6 out\nadd chain ip6 in\nadd chain ip6 in_link_local\nadd chain ip6 out_link_local\nadd set ip6 vips\nadd set ip6 neighbor-discovery\n"+
			"add rule ip6 in neighbor-discovery\nadd rule ip6 in goto in_link_local\nadd rule ip6 out neighbor-discovery\nadd rule ip6 out goto out_link_local\n"+
			"add rule ip6 in vips\nadd rule ip6 out vips\nadd elems ip6 vips 2001:db8::100\n",
		"add set ip6 vips_link_local\nadd rule ip6 in_link_local vips_link_local\nadd rule ip6 out_link_local vips_link_local\nadd elems ip6 vips_link_local fe80::100.3\n")
	// BACKUP: the elements go, the tables stay; the same again is no change.
	for range 2 {
		if err := f.SetVIPs("VI_1", nil); err != nil {
			t.Fatal(err)
		}
	}
	expectBatches(t, k, "del elems ip vips 192.0.2.100 192.0.2.101\n")
	// An address two instances share stays while one has it.
	_ = f.SetVIPs("VI_1", addrs("2001:db8::100"))
	_ = f.SetVIPs("VI_6", nil)
	expectBatches(t, k, "del elems ip6 vips_link_local fe80::100.3\n")
	stop()
	expectBatches(t, k, "del table ip\ndel table ip6\n")
	if err := f.SetVIPs("VI_1", addrs("192.0.2.1")); !errors.Is(err, errStopped) {
		t.Errorf("SetVIPs after Run: %v", err)
	}
}

// With a VMAC known first, keepalived makes the out chain and vmac_map,
// then the rest at MASTER.
func TestFirewallVMACFirst(t *testing.T) {
	f, k, stop := run(t, false)
	defer stop()
	if err := f.SetVMAC(VMAC{Index: 4, Base: 3}, true); err != nil {
		t.Fatal(err)
	}
	_ = f.SetVIPs("VI_1", addrs("192.0.2.100"))
	expectBatches(t, k,
		"add table ip\nadd chain ip out\nadd set ip vmac_map\nadd rule ip out vmac_map\nadd elems ip vmac_map 4:3\n",
		"add chain ip in\nadd set ip vips\nadd rule ip in vips\nadd rule ip out vips\nadd elems ip vips 192.0.2.100\n")
}

// A failed batch changes nothing: the next change makes it all again.
func TestFirewallFailedBatch(t *testing.T) {
	f, k, stop := run(t, false)
	defer stop()
	k.fail = errors.New("boom")
	if err := f.SetVIPs("VI_1", addrs("192.0.2.100")); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("error %v", err)
	}
	k.fail = nil
	_ = f.SetVIPs("VI_1", addrs("192.0.2.100"))
	expectBatches(t, k, "add table ip\nadd chain ip out\nadd chain ip in\nadd set ip vips\nadd rule ip in vips\nadd rule ip out vips\nadd elems ip vips 192.0.2.100\n")
	// A link-local address of an unknown interface is left out.
	_ = f.SetVIPs("VI_6", addrs("fe80::1"))
	expectBatches(t, k)
}

// An IPv6 VMAC: vmac_map and vmac_set in the ip6 table, with their MLD and
// router-solicitation rules.
func TestFirewallVMAC6(t *testing.T) {
	f, k, stop := run(t, false)
	defer stop()
	if err := f.SetVMAC(VMAC{Index: 5, Base: 3, IPv6: true}, true); err != nil {
		t.Fatal(err)
	}
	expectBatches(t, k, "add table ip6\nadd chain ip6 out\nadd set ip6 vmac_map\nadd set ip6 vmac_set\nadd rule ip6 out vmac_map mld\nadd rule ip6 out vmac_set nd-router\n"+
		"add elems ip6 vmac_map 5:3\nadd elems ip6 vmac_set 5\n")
	_ = f.SetVMAC(VMAC{Index: 5, Base: 3, IPv6: true}, false)
	expectBatches(t, k, "del elems ip6 vmac_map 5:3\ndel elems ip6 vmac_set 5\n")
}
