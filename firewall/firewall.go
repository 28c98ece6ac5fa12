// Package firewall owns the nftables table that keepalived calls
// "keepalived" (global_defs nftables NAME): while a no_accept instance
// (vrrp_strict without accept, or no_accept) is MASTER, traffic to and from
// its addresses is dropped, as RFC 3768 wants of a router that does not own
// them. The layout is keepalived 2.2.7's, object for object and in its
// order of creation, so that `nft list ruleset` reads the same on an lvsd
// director as on a keepalived one:
//
//	table ip keepalived {
//		map vmac_map { type iface_index : iface_index }   (use_vmac only)
//		set vips { type ipv4_addr }
//		chain out { type filter hook output priority filter - 1; policy accept;
//			ip protocol igmp meta oifkind "macvlan" dup to ip daddr device oif map @vmac_map drop   (use_vmac only)
//			ip saddr @vips drop }
//		chain in { type filter hook input priority filter - 1; policy accept;
//			ip daddr @vips drop }
//	}
//
// and for IPv6 the same with a neighbor-discovery set (neighbour
// solicitations and advertisements are always let through) and a set
// vips_link_local of (address, interface index) for link-local VIPs; with
// use_vmac, its vmac_map and vmac_set and rules duplicating MLD reports to
// the base interface and dropping router solicitations on a VMAC.
//
// Like keepalived, the table of a family is created when the first
// address of that family is to be dropped (an instance becoming MASTER),
// the VIPs are added to the set before the addresses are configured and
// removed after, the table stays (with its set emptied) when the instances
// go BACKUP, and it is deleted when the daemon stops. Unlike keepalived,
// which replaces a stale table (left by kill -9) only when it next creates
// one, lvsd deletes it at start.
//
// One goroutine (Run) owns the desired and the programmed state; SetVIPs
// and SetVMAC hand it a change and wait until it is in the kernel. Every
// change is one netlink batch: the kernel applies it whole or not at all.
package firewall

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/lvsd/lvsd/internal/owner"
)

// Family is the table's address family.
type Family uint8

// The two families keepalived programs.
const (
	IPv4 Family = iota
	IPv6
)

func (f Family) String() string {
	if f == IPv6 {
		return "ip6"
	}
	return "ip"
}

// Addr is one address whose traffic is dropped. Ifindex is the interface
// of a link-local IPv6 address (its set is keyed by address and
// interface); 0 otherwise.
type Addr struct {
	IP      netip.Addr
	Ifindex int
}

func (a Addr) linkLocal() bool { return a.IP.Is6() && a.IP.IsLinkLocalUnicast() }

func (a Addr) family() Family {
	if a.IP.Is4() || a.IP.Is4In6() {
		return IPv4
	}
	return IPv6
}

// Options are keepalived's nftables keywords of global_defs.
type Options struct {
	// Table is the table's name (nftables NAME); default "keepalived".
	Table string
	// Priority of the chains (nftables_priority); keepalived's default is
	// -1, "filter - 1".
	Priority int32
	// Counters (nftables_counters): a counter on every rule.
	Counters bool
	// NetNS is a file descriptor of the network namespace to program; 0:
	// the process's (tests use another).
	NetNS int
}

// DefaultTable is keepalived's table name.
const DefaultTable = "keepalived"

// OpKind is one kind of change of the table.
type OpKind uint8

// The changes the firewall makes.
const (
	DelTable OpKind = iota // the family's table, if present
	AddTable
	AddChain // Name: "in", "out", "in_link_local", "out_link_local"
	AddSet   // Name: "vips", "neighbor-discovery", "vips_link_local", "vmac_map", "vmac_set"
	AddRule  // Name: one of the rule names below
	AddElems // Name: the set; Elems
	DelElems
)

// The rules, named for the set they look up and their chain.
const (
	RuleInVIPs      = "in vips"
	RuleOutVIPs     = "out vips"
	RuleInND        = "in neighbor-discovery"
	RuleOutND       = "out neighbor-discovery"
	RuleInLLGoto    = "in goto in_link_local"
	RuleOutLLGoto   = "out goto out_link_local"
	RuleInLL        = "in_link_local vips_link_local"
	RuleOutLL       = "out_link_local vips_link_local"
	RuleOutVMACIGMP = "out vmac_map"           // IPv4: IGMP reports
	RuleOutVMACMLD  = "out vmac_map mld"       // IPv6: MLDv2 reports
	RuleOutVMACRS   = "out vmac_set nd-router" // IPv6: router solicitations
)

// Elem is a set element: an address (with its interface in
// vips_link_local), or a VMAC (Key) and its base interface (Data) in
// vmac_map, or a VMAC alone in the ip6 table's vmac_set (Data 0).
type Elem struct {
	Addr      Addr
	Key, Data int  // vmac_map, vmac_set
	V6        bool // Key: of the ip6 table
}

// Op is one change; a batch of them is applied at once.
type Op struct {
	Kind   OpKind
	Family Family
	Name   string
	Elems  []Elem
}

func (o Op) String() string {
	kinds := [...]string{"del table", "add table", "add chain", "add set", "add rule", "add elems", "del elems"}
	s := kinds[o.Kind] + " " + o.Family.String()
	if o.Name != "" {
		s += " " + o.Name
	}
	for _, e := range o.Elems {
		if e.Key != 0 && e.Data == 0 {
			s += fmt.Sprintf(" %d", e.Key)
		} else if e.Key != 0 {
			s += fmt.Sprintf(" %d:%d", e.Key, e.Data)
		} else if e.Addr.Ifindex != 0 {
			s += fmt.Sprintf(" %s.%d", e.Addr.IP, e.Addr.Ifindex)
		} else {
			s += " " + e.Addr.IP.String()
		}
	}
	return s
}

// Kernel applies a batch of changes atomically (the table's name, the
// chains' priority and the counters are its own settings).
type Kernel interface {
	Apply(ops []Op) error
}

// built is what exists of one family's table.
type built struct {
	table, base, linkLocal, vmac bool // the table with its out chain; the parts of tableParts
}

type req struct {
	instance string
	addrs    []Addr // nil: none
	vmac     *vmacReq
	done     chan error
}

type vmacReq struct {
	vmac VMAC
	on   bool
}

// VMAC is a macvlan interface of use_vmac (Index) over its base interface
// (Base), of an IPv6 instance or an IPv4 one.
type VMAC struct {
	Index, Base int
	IPv6        bool
}

// Firewall is the owner of the table; its methods are safe for concurrent
// use once Run runs.
type Firewall struct {
	k    Kernel
	log  *slog.Logger
	reqs chan req
	done chan struct{}
	// clean: delete stale tables at start (a configuration needing them).
	clean bool
}

// New returns a Firewall programming k. clean: a table of that name left
// by an earlier run is deleted when Run starts (the configuration uses the
// firewall).
func New(k Kernel, clean bool, log *slog.Logger) *Firewall {
	if log == nil {
		log = slog.Default()
	}
	return &Firewall{k: k, log: log, reqs: make(chan req), done: make(chan struct{}), clean: clean}
}

var errStopped = errors.New("firewall: stopped")

// SetVIPs sets the addresses dropped for instance (nil: none) and waits
// until the kernel has them. After Run returned it does nothing.
func (f *Firewall) SetVIPs(instance string, addrs []Addr) error {
	return f.send(req{instance: instance, addrs: slices.Clone(addrs)})
}

// SetVMAC records that the VMAC interface runs, or no longer does (on
// false). keepalived keeps such pairs in the map vmac_map (of the family's
// table), for the rule duplicating the IGMP (MLD) reports sent on a VMAC
// to its base interface, and IPv6 VMACs in vmac_set, whose router
// solicitations are dropped. As keepalived, the table is made then, before
// any VIP is dropped.
// The wiring calls it as the VRRP engine makes and removes VMACs.
func (f *Firewall) SetVMAC(v VMAC, on bool) error {
	return f.send(req{vmac: &vmacReq{vmac: v, on: on}})
}

func (f *Firewall) send(r req) error {
	r.done = make(chan error, 1)
	return owner.Call(f.reqs, r, r.done, f.done, errStopped)
}

// state is owned by Run.
type state struct {
	k     Kernel
	log   *slog.Logger
	inst  map[string][]Addr
	vmacs map[VMAC]bool
	built [2]built
	have  map[Elem]bool // programmed elements (Addr or VMAC)
}

// Run owns the table until ctx is done or Close; then it deletes the
// tables it made, and returns.
func (f *Firewall) Run(ctx context.Context) error {
	defer close(f.done)
	s := &state{k: f.k, log: f.log, inst: map[string][]Addr{}, vmacs: map[VMAC]bool{}, have: map[Elem]bool{}}
	if f.clean {
		if err := s.k.Apply([]Op{{Kind: DelTable, Family: IPv4}, {Kind: DelTable, Family: IPv6}}); err != nil {
			f.log.Warn("nftables: removing a table left by an earlier run", "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			s.teardown()
			return nil
		case r := <-f.reqs:
			if r.vmac != nil {
				if r.vmac.on {
					s.vmacs[r.vmac.vmac] = true
				} else {
					delete(s.vmacs, r.vmac.vmac)
				}
			} else {
				// keepalived's log lines, when the instance's drop starts and ends.
				if had := len(s.inst[r.instance]) > 0; had && len(r.addrs) == 0 {
					delete(s.inst, r.instance)
					f.log.Info("("+r.instance+") removing firewall drop rule", "instance", r.instance)
				} else if len(r.addrs) > 0 {
					s.inst[r.instance] = r.addrs
					if !had {
						f.log.Info("("+r.instance+") setting firewall drop rule", "instance", r.instance)
					}
				}
			}
			r.done <- s.reconcile()
		}
	}
}

// teardown deletes the tables made.
func (s *state) teardown() {
	var ops []Op
	for fam, b := range s.built {
		if b.table {
			ops = append(ops, Op{Kind: DelTable, Family: Family(fam)})
		}
	}
	if len(ops) > 0 {
		if err := s.k.Apply(ops); err != nil {
			s.log.Error("nftables: removing the table", "err", err)
		}
	}
}

// desired is every element that should be in the sets.
func (s *state) desired() map[Elem]bool {
	want := map[Elem]bool{}
	for _, addrs := range s.inst {
		for _, a := range addrs {
			if !a.linkLocal() {
				a.Ifindex = 0
			} else if a.Ifindex == 0 {
				continue // an interface not (yet) known: keepalived cannot key it either
			}
			want[Elem{Addr: a}] = true
		}
	}
	for v := range s.vmacs {
		want[Elem{Key: v.Index, Data: v.Base, V6: v.IPv6}] = true
		if v.IPv6 {
			want[Elem{Key: v.Index, V6: true}] = true
		}
	}
	return want
}

func (e Elem) family() Family {
	if e.Key != 0 && e.V6 {
		return IPv6
	} else if e.Key != 0 {
		return IPv4
	}
	return e.Addr.family()
}

func (e Elem) set() string {
	switch {
	case e.Key != 0 && e.Data == 0:
		return "vmac_set"
	case e.Key != 0:
		return "vmac_map"
	case e.Addr.linkLocal():
		return "vips_link_local"
	}
	return "vips"
}

// opName is an operation of tableParts.
type opName struct {
	kind OpKind
	name string
}

// tableParts are, by family, the operations that build each part of the
// table after the table and its out chain, in keepalived's order: the VMAC
// sets and rules, the VIP sets and chains, the link-local VIPs.
var tableParts = [2]struct{ vmac, base, linkLocal []opName }{
	IPv4: {
		vmac:      []opName{{AddSet, "vmac_map"}, {AddRule, RuleOutVMACIGMP}},
		base:      []opName{{AddChain, "in"}, {AddSet, "vips"}, {AddRule, RuleInVIPs}, {AddRule, RuleOutVIPs}},
		linkLocal: []opName{{AddSet, "vips_link_local"}, {AddRule, RuleInLL}, {AddRule, RuleOutLL}},
	},
	IPv6: {
		vmac: []opName{{AddSet, "vmac_map"}, {AddSet, "vmac_set"}, {AddRule, RuleOutVMACMLD}, {AddRule, RuleOutVMACRS}},
		base: []opName{{AddChain, "in"}, {AddChain, "in_link_local"}, {AddChain, "out_link_local"}, {AddSet, "vips"},
			{AddSet, "neighbor-discovery"}, {AddRule, RuleInND}, {AddRule, RuleInLLGoto}, {AddRule, RuleOutND}, {AddRule, RuleOutLLGoto},
			{AddRule, RuleInVIPs}, {AddRule, RuleOutVIPs}},
		linkLocal: []opName{{AddSet, "vips_link_local"}, {AddRule, RuleInLL}, {AddRule, RuleOutLL}},
	},
}

// structure returns the operations creating what elems need of family
// fam's table, in keepalived's order, and marks them built.
func (s *state) structure(fam Family, elems []Elem) []Op {
	b := &s.built[fam]
	var ops []Op
	needVMAC, needBase, needLL := false, false, false
	for _, e := range elems {
		switch e.set() {
		case "vmac_map", "vmac_set":
			needVMAC = true
		case "vips_link_local":
			needBase, needLL = true, true
		default:
			needBase = true
		}
	}
	part := func(need bool, done *bool, kinds ...opName) {
		if need && !*done {
			for _, k := range kinds {
				ops = append(ops, Op{Kind: k.kind, Family: fam, Name: k.name})
			}
			*done = true
		}
	}
	p := &tableParts[fam]
	part(needVMAC || needBase, &b.table, opName{AddTable, ""}, opName{AddChain, "out"})
	part(needVMAC, &b.vmac, p.vmac...)
	part(needBase, &b.base, p.base...)
	part(needLL, &b.linkLocal, p.linkLocal...)
	return ops
}

// reconcile brings the kernel to the desired elements in one batch.
func (s *state) reconcile() error {
	want := s.desired()
	var adds, dels [2]map[string][]Elem
	for fam := range adds {
		adds[fam], dels[fam] = map[string][]Elem{}, map[string][]Elem{}
	}
	for e := range want {
		if !s.have[e] {
			adds[e.family()][e.set()] = append(adds[e.family()][e.set()], e)
		}
	}
	for e := range s.have {
		if !want[e] {
			dels[e.family()][e.set()] = append(dels[e.family()][e.set()], e)
		}
	}
	saved := s.built
	var ops []Op
	for fam := range adds {
		var all []Elem
		for _, es := range adds[fam] {
			all = append(all, es...)
		}
		ops = append(ops, s.structure(Family(fam), all)...)
		for _, k := range []OpKind{DelElems, AddElems} {
			m := adds[fam]
			if k == DelElems {
				m = dels[fam]
			}
			for _, set := range sortedKeys(m) {
				es := m[set]
				sortElems(es)
				ops = append(ops, Op{Kind: k, Family: Family(fam), Name: set, Elems: es})
			}
		}
	}
	if len(ops) == 0 {
		return nil
	}
	if err := s.k.Apply(ops); err != nil {
		s.built = saved
		return fmt.Errorf("nftables: %w", err)
	}
	s.have = want
	return nil
}

func sortedKeys(m map[string][]Elem) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortElems(es []Elem) {
	slices.SortFunc(es, func(a, b Elem) int {
		if c := a.Addr.IP.Compare(b.Addr.IP); c != 0 {
			return c
		}
		if a.Addr.Ifindex != b.Addr.Ifindex {
			return a.Addr.Ifindex - b.Addr.Ifindex
		}
		if a.Key != b.Key {
			return a.Key - b.Key
		}
		return a.Data - b.Data
	})
}

// Describe is the ops, one a line (tests and debug logs).
func Describe(ops []Op) string {
	var b strings.Builder
	for _, o := range ops {
		b.WriteString(o.String())
		b.WriteByte('\n')
	}
	return b.String()
}
