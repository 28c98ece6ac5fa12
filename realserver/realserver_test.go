package realserver

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/lvsd/lvsd/conf"
)

// fakeKernel is a kernel in memory: links with addresses, tunnel devices
// that appear when asked for, sysctls.
type fakeKernel struct {
	addrs   map[string][]netip.Prefix
	up      map[string]bool
	sysctls map[string]string
	calls   int // mutations
	lists   int // Addrs calls
}

func newFake() *fakeKernel {
	k := &fakeKernel{addrs: map[string][]netip.Prefix{"lo": {netip.MustParsePrefix("127.0.0.1/8")}, "eth0": nil},
		up: map[string]bool{"lo": true, "eth0": true}, sysctls: map[string]string{}}
	for _, ifc := range []string{"all", "default", "lo", "eth0"} {
		k.addSysctls(ifc)
	}
	k.sysctls["ipv4/conf/all/rp_filter"] = "1"
	return k
}

func (k *fakeKernel) addSysctls(ifc string) {
	for _, s := range []string{"arp_ignore", "arp_announce", "rp_filter"} {
		k.sysctls["ipv4/conf/"+ifc+"/"+s] = "0"
	}
}

func (k *fakeKernel) Addrs(l string) ([]netip.Prefix, error) {
	k.lists++
	if a, ok := k.addrs[l]; ok {
		return slices.Clone(a), nil
	}
	return nil, nil
}

func (k *fakeKernel) AddAddr(l string, p netip.Prefix) error {
	if _, ok := k.addrs[l]; !ok {
		return fmt.Errorf("no interface %s", l)
	}
	k.calls++
	k.addrs[l] = append(k.addrs[l], p)
	return nil
}

func (k *fakeKernel) DelAddr(l string, p netip.Prefix) error {
	i := slices.Index(k.addrs[l], p)
	if i < 0 {
		return fmt.Errorf("no address %v on %s", p, l)
	}
	k.calls++
	k.addrs[l] = slices.Delete(k.addrs[l], i, i+1)
	return nil
}

func (k *fakeKernel) TunnelUp(l string) (bool, error) {
	if _, ok := k.addrs[l]; !ok {
		k.addrs[l] = nil
		k.addSysctls(l)
	}
	if k.up[l] {
		return false, nil
	}
	k.calls++
	k.up[l] = true
	return true, nil
}

func (k *fakeKernel) TunnelDown(l string) error { k.calls++; k.up[l] = false; return nil }

func (k *fakeKernel) Sysctl(key string) (string, error) {
	v, ok := k.sysctls[key]
	if !ok {
		return "", fmt.Errorf("%s: %w", key, errNoSuchKey)
	}
	return v, nil
}

func (k *fakeKernel) SetSysctl(key, v string) error {
	if _, ok := k.sysctls[key]; !ok {
		return fmt.Errorf("%s: %w", key, errNoSuchKey)
	}
	k.calls++
	k.sysctls[key] = v
	return nil
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range s {
		out = append(out, netip.MustParsePrefix(a))
	}
	return out
}

func TestReconcileDR(t *testing.T) {
	k := newFake()
	var saved Saved
	spec := Spec{DR: addrs("192.0.2.10", "2001:db8::10"), ARPInterfaces: []string{"eth0"}}
	changes, err := Reconcile(k, spec, &saved)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := k.addrs["lo"], prefixes("127.0.0.1/8", "192.0.2.10/32", "2001:db8::10/128"); !reflect.DeepEqual(got, want) {
		t.Errorf("lo = %v, want %v", got, want)
	}
	for _, ifc := range []string{"all", "lo", "eth0"} {
		if k.sysctls["ipv4/conf/"+ifc+"/arp_ignore"] != "1" || k.sysctls["ipv4/conf/"+ifc+"/arp_announce"] != "2" {
			t.Errorf("%s: arp_ignore=%s arp_announce=%s, want 1 and 2", ifc,
				k.sysctls["ipv4/conf/"+ifc+"/arp_ignore"], k.sysctls["ipv4/conf/"+ifc+"/arp_announce"])
		}
	}
	if k.sysctls["ipv4/conf/default/arp_ignore"] != "0" {
		t.Error("default's arp_ignore changed; nothing asked for it")
	}
	if len(changes) != 8 {
		t.Errorf("%d changes, want 2 addresses + 6 sysctls: %v", len(changes), changes)
	}
	// Idempotent: nothing to do the second time, no mutation.
	calls := k.calls
	if changes, err := Reconcile(k, spec, &saved); err != nil || len(changes) != 0 || k.calls != calls {
		t.Errorf("second reconcile: %v %v, %d mutations", changes, err, k.calls-calls)
	}
	// Drift: a VIP deleted and a sysctl reset by hand are repaired.
	_ = k.DelAddr("lo", netip.MustParsePrefix("192.0.2.10/32"))
	k.sysctls["ipv4/conf/lo/arp_ignore"] = "0"
	changes, err = Reconcile(k, spec, &saved)
	if err != nil || len(changes) != 2 {
		t.Errorf("repair: %v %v, want 2 changes", changes, err)
	}
	if !slices.Contains(k.addrs["lo"], netip.MustParsePrefix("192.0.2.10/32")) || k.sysctls["ipv4/conf/lo/arp_ignore"] != "1" {
		t.Error("drift not repaired")
	}
	// The value recorded to restore is the one before lvsd, not the one
	// an operator set in between.
	if saved.Sysctls["ipv4/conf/lo/arp_ignore"] != "0" {
		t.Errorf("saved lo arp_ignore = %q", saved.Sysctls["ipv4/conf/lo/arp_ignore"])
	}
	// Remove: every address and sysctl back.
	if _, err := Remove(k, &saved); err != nil {
		t.Fatal(err)
	}
	if got := k.addrs["lo"]; !reflect.DeepEqual(got, prefixes("127.0.0.1/8")) {
		t.Errorf("after remove lo = %v", got)
	}
	for key, v := range k.sysctls {
		if key == "ipv4/conf/all/rp_filter" {
			continue
		}
		if v != "0" {
			t.Errorf("after remove %s = %s", key, v)
		}
	}
	if len(saved.Addrs)+len(saved.Sysctls) != 0 {
		t.Errorf("saved after remove: %+v", saved)
	}
}

func TestReconcileKeepsWhatWasThere(t *testing.T) {
	// A VIP and a sysctl the operator had already set are used, not
	// recorded: removing leaves them as they were.
	k := newFake()
	k.addrs["lo"] = append(k.addrs["lo"], netip.MustParsePrefix("192.0.2.10/32"))
	k.sysctls["ipv4/conf/all/arp_ignore"] = "1"
	var saved Saved
	if _, err := Reconcile(k, Spec{DR: addrs("192.0.2.10")}, &saved); err != nil {
		t.Fatal(err)
	}
	if len(saved.Addrs) != 0 {
		t.Errorf("recorded %v, which lvsd did not add", saved.Addrs)
	}
	if _, err := Remove(k, &saved); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(k.addrs["lo"], netip.MustParsePrefix("192.0.2.10/32")) || k.sysctls["ipv4/conf/all/arp_ignore"] != "1" {
		t.Error("remove undid what lvsd had not done")
	}
}

func TestReconcileSpecChange(t *testing.T) {
	k := newFake()
	var saved Saved
	if _, err := Reconcile(k, Spec{DR: addrs("192.0.2.10", "192.0.2.11")}, &saved); err != nil {
		t.Fatal(err)
	}
	if _, err := Reconcile(k, Spec{DR: addrs("192.0.2.11", "192.0.2.12")}, &saved); err != nil {
		t.Fatal(err)
	}
	if got, want := k.addrs["lo"], prefixes("127.0.0.1/8", "192.0.2.11/32", "192.0.2.12/32"); !reflect.DeepEqual(got, want) {
		t.Errorf("lo = %v, want %v", got, want)
	}
	// An IPv6-only spec needs no ARP sysctls: they are restored.
	if _, err := Reconcile(k, Spec{DR: addrs("2001:db8::1")}, &saved); err != nil {
		t.Fatal(err)
	}
	if k.sysctls["ipv4/conf/all/arp_ignore"] != "0" {
		t.Error("arp_ignore kept for an IPv6-only real server")
	}
}

func TestReconcileTUN(t *testing.T) {
	k := newFake()
	var saved Saved
	spec := Spec{TUN: map[string][]netip.Addr{TunnelIPIP: addrs("192.0.2.20", "2001:db8::20"), TunnelGRE: addrs("192.0.2.21")}}
	if _, err := Reconcile(k, spec, &saved); err != nil {
		t.Fatal(err)
	}
	for dev, want := range map[string][]netip.Prefix{
		"tunl0": prefixes("192.0.2.20/32"), "ip6tnl0": prefixes("2001:db8::20/128"), "gre0": prefixes("192.0.2.21/32"),
	} {
		if !k.up[dev] || !reflect.DeepEqual(k.addrs[dev], want) {
			t.Errorf("%s: up %v, addresses %v, want %v", dev, k.up[dev], k.addrs[dev], want)
		}
	}
	if k.sysctls["ipv4/conf/tunl0/rp_filter"] != "0" || k.sysctls["ipv4/conf/all/rp_filter"] != "2" {
		t.Errorf("rp_filter tunl0=%s all=%s, want 0 and 2 (all strict overrides the device)",
			k.sysctls["ipv4/conf/tunl0/rp_filter"], k.sysctls["ipv4/conf/all/rp_filter"])
	}
	if _, err := Remove(k, &saved); err != nil {
		t.Fatal(err)
	}
	if k.up["tunl0"] || len(k.addrs["tunl0"]) != 0 || k.sysctls["ipv4/conf/all/rp_filter"] != "1" {
		t.Errorf("after remove: tunl0 up %v %v, all.rp_filter %s", k.up["tunl0"], k.addrs["tunl0"], k.sysctls["ipv4/conf/all/rp_filter"])
	}
	if _, err := Reconcile(k, Spec{TUN: map[string][]netip.Addr{"gue": addrs("192.0.2.1")}}, &saved); err == nil || !strings.Contains(err.Error(), "gue") {
		t.Errorf("gue: %v", err)
	}
}

func TestStateFileAdoptsAfterKill(t *testing.T) {
	// A run set things up and was killed: its state file holds the
	// originals. The next run changes nothing and still restores them.
	k := newFake()
	path := filepath.Join(t.TempDir(), "rs.json")
	var saved Saved
	spec := Spec{DR: addrs("192.0.2.10")}
	if _, err := Reconcile(k, spec, &saved); err != nil {
		t.Fatal(err)
	}
	if err := SaveState(path, saved); err != nil {
		t.Fatal(err)
	}
	next, err := LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if changes, err := Reconcile(k, spec, &next); err != nil || len(changes) != 0 {
		t.Fatalf("adopting: %v %v", changes, err)
	}
	if _, err := Remove(k, &next); err != nil {
		t.Fatal(err)
	}
	if err := SaveState(path, next); err != nil {
		t.Fatal(err)
	}
	if k.sysctls["ipv4/conf/all/arp_ignore"] != "0" || len(k.addrs["lo"]) != 1 {
		t.Errorf("not restored: %v %v", k.sysctls["ipv4/conf/all/arp_ignore"], k.addrs["lo"])
	}
	if _, err := LoadState(path); err != nil {
		t.Fatal(err)
	}
	if s, _ := LoadState(path); len(s.Addrs)+len(s.Sysctls) != 0 {
		t.Errorf("state file left with %+v", s)
	}
}

func TestFromConfig(t *testing.T) {
	text := `
virtual_server 192.0.2.10 80 {
    lb_kind DR
    real_server 198.51.100.1 80 { }
    real_server 198.51.100.2 80 { }
}
virtual_server 2001:db8::10 80 {
    lb_kind DR
    real_server 2001:db8:1::1 80 { }
}
virtual_server 192.0.2.20 80 {
    lb_kind TUN
    real_server 198.51.100.1 80 { }
}
virtual_server 192.0.2.21 80 {
    lvs_method TUN type gre
    real_server 198.51.100.1 80 { }
}
virtual_server 192.0.2.30 80 {
    lb_kind NAT
    real_server 198.51.100.1 80 { }
}
virtual_server 192.0.2.40 80 {
    lb_kind DR
    real_server 198.51.100.9 80 { }
}
virtual_server_group web {
    192.0.2.50-52 80
}
virtual_server group web {
    lb_kind DR
    real_server 198.51.100.1 80 { }
}
virtual_server fwmark 7 {
    lb_kind DR
    real_server 198.51.100.1 80 { }
}
`
	cfg, diags := conf.Parse("k.conf", text, conf.Options{})
	if conf.MaxLevel(diags) >= conf.Error {
		t.Fatalf("parse: %v", diags)
	}
	spec, notes := FromConfig(cfg, addrs("198.51.100.1", "2001:db8:1::1"))
	if want := addrs("192.0.2.10", "192.0.2.50", "192.0.2.51", "192.0.2.52", "2001:db8::10"); !reflect.DeepEqual(spec.DR, want) {
		t.Errorf("DR = %v, want %v", spec.DR, want)
	}
	if want := addrs("192.0.2.20"); !reflect.DeepEqual(spec.TUN[TunnelIPIP], want) {
		t.Errorf("ipip = %v, want %v", spec.TUN[TunnelIPIP], want)
	}
	if want := addrs("192.0.2.21"); !reflect.DeepEqual(spec.TUN[TunnelGRE], want) {
		t.Errorf("gre = %v, want %v", spec.TUN[TunnelGRE], want)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "k.conf:") || !strings.Contains(notes[0], "firewall mark") {
		t.Errorf("notes = %q, want one naming the fwmark virtual server at its file:line", notes)
	}
}

// Removing many VIPs lists each link's addresses once, and a VIP somebody
// removed already is not reported as removed again.
func TestReconcileRemovalListsOnce(t *testing.T) {
	k := newFake()
	var saved Saved
	if _, err := Reconcile(k, Spec{DR: addrs("192.0.2.10", "192.0.2.11", "192.0.2.12", "192.0.2.13")}, &saved); err != nil {
		t.Fatal(err)
	}
	if err := k.DelAddr("lo", netip.MustParsePrefix("192.0.2.12/32")); err != nil {
		t.Fatal(err)
	}
	k.lists = 0
	changes, err := Reconcile(k, Spec{}, &saved)
	if err != nil {
		t.Fatal(err)
	}
	var removed []string
	for _, c := range changes {
		if strings.HasPrefix(c.What, "removed ") {
			removed = append(removed, c.What)
		}
	}
	if want := []string{"removed 192.0.2.10/32 from lo", "removed 192.0.2.11/32 from lo", "removed 192.0.2.13/32 from lo"}; !reflect.DeepEqual(removed, want) {
		t.Errorf("removals %q, want %q", removed, want)
	}
	if k.lists != 1 {
		t.Errorf("lo listed %d times for 3 removals, want once", k.lists)
	}
	if got, want := k.addrs["lo"], prefixes("127.0.0.1/8"); !reflect.DeepEqual(got, want) {
		t.Errorf("lo = %v, want %v", got, want)
	}
}

// A real_server_vips block, in a file of its own or beside the
// directors' virtual servers, adds its VIPs as listed.
func TestFromConfigRealServerVIPs(t *testing.T) {
	text := `
real_server_vips {
    192.0.2.10
    192.0.2.20 tun
    192.0.2.21 gre
    2001:db8::10 dr
}
virtual_server 192.0.2.10 80 {
    lb_kind DR
    real_server 198.51.100.1 80 { }
}
`
	cfg, diags := conf.Parse("rs.conf", text, conf.Options{ConfigID: "x"})
	if conf.MaxLevel(diags) >= conf.Error {
		t.Fatalf("parse: %v", diags)
	}
	spec, _ := FromConfig(cfg, addrs("198.51.100.1"))
	if want := addrs("192.0.2.10", "2001:db8::10"); !reflect.DeepEqual(spec.DR, want) {
		t.Errorf("DR = %v, want %v", spec.DR, want)
	}
	if want := addrs("192.0.2.20"); !reflect.DeepEqual(spec.TUN[TunnelIPIP], want) {
		t.Errorf("ipip = %v, want %v", spec.TUN[TunnelIPIP], want)
	}
	if want := addrs("192.0.2.21"); !reflect.DeepEqual(spec.TUN[TunnelGRE], want) {
		t.Errorf("gre = %v, want %v", spec.TUN[TunnelGRE], want)
	}
	// Without any virtual server (a real server's own file): the list.
	cfg, _ = conf.Parse("rs.conf", "real_server_vips {\n 192.0.2.30\n}\n", conf.Options{ConfigID: "x"})
	if spec, _ := FromConfig(cfg, nil); !reflect.DeepEqual(spec.DR, addrs("192.0.2.30")) {
		t.Errorf("DR = %v, want 192.0.2.30", spec.DR)
	}
}

// journalKernel checks, at each change, that the state file already
// records it (intent first).
type journalKernel struct {
	*fakeKernel
	t      *testing.T
	path   string
	added  int
	set    int
	refuse netip.Prefix // AddAddr fails for it
}

func (k *journalKernel) AddAddr(l string, p netip.Prefix) error {
	s, err := LoadState(k.path)
	if err != nil || !slices.Contains(s.Addrs, LinkAddr{l, p}) {
		k.t.Errorf("adding %v to %s before the state file records it: %+v %v", p, l, s.Addrs, err)
	}
	k.added++
	if p == k.refuse {
		return fmt.Errorf("refused")
	}
	return k.fakeKernel.AddAddr(l, p)
}

func (k *journalKernel) SetSysctl(key, v string) error {
	s, err := LoadState(k.path)
	if _, ok := s.Sysctls[key]; err != nil || !ok {
		k.t.Errorf("setting %s before the state file records its value: %v %v", key, s.Sysctls, err)
	}
	k.set++
	return k.fakeKernel.SetSysctl(key, v)
}

func TestReconcileIntentFirst(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	k := &journalKernel{fakeKernel: newFake(), t: t, path: path}
	var saved Saved
	save := func(s Saved) error { return SaveState(path, s) }
	spec := Spec{DR: addrs("192.0.2.10", "2001:db8::10"), ARPInterfaces: []string{"eth0"}}
	if _, err := ReconcileIntent(k, spec, &saved, save); err != nil {
		t.Fatal(err)
	}
	if k.added != 2 || k.set != 6 {
		t.Errorf("%d addresses added, %d sysctls set; want 2 and 6", k.added, k.set)
	}
	// An address the kernel refuses is not left in the state.
	k.refuse = netip.MustParsePrefix("192.0.2.11/32")
	spec.DR = append(spec.DR, k.refuse.Addr())
	if _, err := ReconcileIntent(k, spec, &saved, save); err == nil || !strings.Contains(err.Error(), "192.0.2.11") {
		t.Errorf("refused address: err %v", err)
	}
	if k.added != 3 || len(saved.Addrs) != 2 || slices.Contains(saved.Addrs, LinkAddr{"lo", k.refuse}) {
		t.Errorf("after a refused add (%d adds): state %v", k.added, saved.Addrs)
	}
}
