package ipvs

import "fmt"

// OpKind is the kind of a kernel mutation.
type OpKind int

// Operation kinds, in the order Diff emits them: services are created or
// edited first, then destinations are added and edited before any is
// removed (make before break), and services are removed last.
const (
	OpCreateService OpKind = iota
	OpUpdateService
	OpCreateDest
	OpUpdateDest
	OpRemoveDest
	OpRemoveService
	numOpKinds
)

var opNames = [...]string{"create-service", "update-service", "create-dest", "update-dest", "remove-dest", "remove-service"}

func (k OpKind) String() string {
	if k >= 0 && int(k) < len(opNames) {
		return opNames[k]
	}
	return fmt.Sprintf("op%d", int(k))
}

// Op is one kernel mutation. Service is complete for service creation and
// edit; for the others only its key matters. Dest is set for destination ops
// (only its key matters for removal).
type Op struct {
	Kind    OpKind
	Service Service
	Dest    Destination
}

func (o Op) String() string {
	switch o.Kind {
	case OpCreateService, OpUpdateService:
		return o.Kind.String() + " " + o.Service.String()
	case OpRemoveService:
		return o.Kind.String() + " " + o.Service.ServiceKey.String()
	case OpRemoveDest:
		return o.Kind.String() + " " + o.Service.ServiceKey.String() + " -> " + o.Dest.DestKey.String()
	}
	return o.Kind.String() + " " + o.Service.ServiceKey.String() + " -> " + o.Dest.String()
}

// Ownership is the set of kernel entries lvsd created or adopted. Entries
// outside it are never edited or removed, only entries that the desired table
// names are created, edited or adopted.
type Ownership struct {
	Services map[ServiceKey]bool
	Dests    map[ServiceKey]map[DestKey]bool
}

// NewOwnership returns an empty ownership set.
func NewOwnership() Ownership {
	return Ownership{Services: map[ServiceKey]bool{}, Dests: map[ServiceKey]map[DestKey]bool{}}
}

// OwnsService reports whether lvsd owns a service.
func (o Ownership) OwnsService(k ServiceKey) bool { return o.Services[k] }

// OwnsDest reports whether lvsd owns a destination.
func (o Ownership) OwnsDest(k ServiceKey, d DestKey) bool { return o.Dests[k][d] }

func (o Ownership) addService(k ServiceKey) { o.Services[k] = true }

func (o Ownership) removeService(k ServiceKey) {
	delete(o.Services, k)
	delete(o.Dests, k)
}

func (o Ownership) addDest(k ServiceKey, d DestKey) {
	m := o.Dests[k]
	if m == nil {
		m = map[DestKey]bool{}
		o.Dests[k] = m
	}
	m[d] = true
}

func (o Ownership) removeDest(k ServiceKey, d DestKey) {
	if m := o.Dests[k]; m != nil {
		delete(m, d)
		if len(m) == 0 {
			delete(o.Dests, k)
		}
	}
}

// Clone returns a deep copy.
func (o Ownership) Clone() Ownership {
	c := NewOwnership()
	for k := range o.Services {
		c.Services[k] = true
	}
	for k, m := range o.Dests {
		for d := range m {
			c.addDest(k, d)
		}
	}
	return c
}

// Diff returns the minimal list of operations that turn the kernel table into
// the desired one, respecting ownership:
//
//   - a desired service or destination missing from the kernel is created;
//   - one present with other attributes is edited in place (scheduler, flags,
//     persistence, granularity, weight, forwarding, thresholds, tunnel) — never
//     removed and re-created, so its connections and counters survive;
//   - an owned service or destination the desired table no longer names is
//     removed (a removed service takes its destinations with it);
//   - anything else in the kernel is left alone.
//
// Identical tables give no operation. The result is deterministic: by kind
// (see OpKind), then by service and destination key.
func Diff(desired, kernel Table, owned Ownership) []Op {
	all := make(Table, len(desired)+len(kernel))
	for k := range desired {
		all[k] = nil
	}
	for k := range kernel {
		all[k] = nil
	}
	return diffKeys(desired, kernel, owned, all.Keys())
}

// diffKeys is Diff restricted to the services keys (sorted) name.
func diffKeys(desired, kernel Table, owned Ownership, keys []ServiceKey) []Op {
	var by [numOpKinds][]Op
	add := func(op Op) { by[op.Kind] = append(by[op.Kind], op) }
	for _, k := range keys {
		ds, want := desired[k]
		ks, have := kernel[k]
		switch {
		case !want && !have:
		case !want:
			if owned.OwnsService(k) {
				add(Op{Kind: OpRemoveService, Service: ks.Service})
			}
		case !have:
			add(Op{Kind: OpCreateService, Service: ds.Service})
			for _, dk := range ds.DestKeys() {
				add(Op{Kind: OpCreateDest, Service: ds.Service, Dest: ds.Dests[dk]})
			}
		default:
			if !ds.Service.sameAttrs(ks.Service) {
				add(Op{Kind: OpUpdateService, Service: ds.Service})
			}
			if sameDests(ds, ks) {
				continue // the common case of a reload or repair: nothing to sort
			}
			for _, dk := range ds.DestKeys() {
				dd := ds.Dests[dk]
				kd, ok := ks.Dests[dk]
				switch {
				case !ok:
					add(Op{Kind: OpCreateDest, Service: ds.Service, Dest: dd})
				case !dd.sameAttrs(kd):
					add(Op{Kind: OpUpdateDest, Service: ds.Service, Dest: dd})
				}
			}
			for _, dk := range ks.DestKeys() {
				if _, want := ds.Dests[dk]; !want && owned.OwnsDest(k, dk) {
					add(Op{Kind: OpRemoveDest, Service: ds.Service, Dest: ks.Dests[dk]})
				}
			}
		}
	}
	n := 0
	for _, l := range by {
		n += len(l)
	}
	if n == 0 {
		return nil
	}
	ops := make([]Op, 0, n)
	for _, l := range by {
		ops = append(ops, l...)
	}
	return ops
}

// sameDests reports whether two services have the same destinations with
// the same attributes.
func sameDests(a, b *TableService) bool {
	if len(a.Dests) != len(b.Dests) {
		return false
	}
	for k, d := range a.Dests {
		if o, ok := b.Dests[k]; !ok || !d.sameAttrs(o) {
			return false
		}
	}
	return true
}

// applyOp records a successful operation in a table (the reconciler's
// picture of the kernel) and in the ownership set.
func applyOp(t Table, owned Ownership, op Op) {
	k := op.Service.ServiceKey
	switch op.Kind {
	case OpCreateService:
		t[k] = &TableService{Service: op.Service, Dests: map[DestKey]Destination{}}
		owned.addService(k)
	case OpUpdateService:
		if s := t[k]; s != nil {
			s.Service = op.Service
		}
		owned.addService(k)
	case OpRemoveService:
		delete(t, k)
		owned.removeService(k)
	case OpCreateDest, OpUpdateDest:
		s := t[k]
		if s == nil {
			s = &TableService{Service: op.Service, Dests: map[DestKey]Destination{}}
			t[k] = s
		}
		s.Dests[op.Dest.DestKey] = op.Dest
		owned.addDest(k, op.Dest.DestKey)
	case OpRemoveDest:
		if s := t[k]; s != nil {
			delete(s.Dests, op.Dest.DestKey)
		}
		owned.removeDest(k, op.Dest.DestKey)
	}
}

// adopt marks as owned every desired entry already present in the kernel:
// the configuration names them, so lvsd manages them from now on.
func adopt(desired, kernel Table, owned Ownership) {
	for k, ds := range desired {
		ks, ok := kernel[k]
		if !ok {
			continue
		}
		owned.addService(k)
		for dk := range ds.Dests {
			if _, ok := ks.Dests[dk]; ok {
				owned.addDest(k, dk)
			}
		}
	}
}
