package ipvs

import (
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Reader is what a Snapshot reads the kernel's table through
// (Options.Reader): the listings of Kernel, without the means to change
// anything.
type Reader interface {
	// Services lists every service of the table with its counters.
	Services() ([]ServiceInfo, error)
	// Destinations lists the destinations of a service with their counters.
	Destinations(ServiceKey) ([]DestInfo, error)
}

// Snapshot is the reconciler's state for status pages and metrics: desired
// vs kernel per service and destination, with the kernel's counters.
type Snapshot struct {
	Time time.Time `json:"time"`
	// Fresh: the kernel was read for this snapshot. Otherwise (the
	// reconciler is not running) Kernel fields are lvsd's last picture of
	// the kernel and the traffic counters those of the last read.
	Fresh       bool   `json:"fresh"`
	KernelError string `json:"kernel_error,omitempty"`
	// Services lists desired, owned and foreign services, sorted.
	Services       []ServiceStatus `json:"services"`
	VirtualServers []VSStatus      `json:"virtual_servers"`
	SyncDaemons    []SyncDaemon    `json:"sync_daemons,omitempty"`
	Counters       Counters        `json:"counters"`
}

// ServiceStatus is one kernel service: what lvsd wants and what the kernel has.
type ServiceStatus struct {
	Key ServiceKey `json:"key"`
	// VS is the conf key of the virtual server that wants it ("" when none).
	VS      string   `json:"vs,omitempty"`
	Desired *Service `json:"desired,omitempty"`
	Kernel  *Service `json:"kernel,omitempty"`
	// Owned: lvsd created or adopted it (and removes it on stop).
	Owned bool `json:"owned"`
	// InSync: wanted, present with the wanted attributes and destinations.
	InSync bool         `json:"in_sync"`
	Stats  Stats        `json:"stats"`
	Dests  []DestStatus `json:"dests,omitempty"`
}

// DestStatus is one destination of a service.
type DestStatus struct {
	Key DestKey `json:"key"`
	// RS is the real_server (or sorry_server) behind it; zero when foreign.
	RS            netip.AddrPort `json:"rs,omitempty"`
	Sorry         bool           `json:"sorry,omitempty"`
	Healthy       bool           `json:"healthy"`
	Desired       *Destination   `json:"desired,omitempty"`
	Kernel        *Destination   `json:"kernel,omitempty"`
	Owned         bool           `json:"owned"`
	InSync        bool           `json:"in_sync"`
	ActiveConns   uint32         `json:"active_conns"`
	InactiveConns uint32         `json:"inactive_conns"`
	PersistConns  uint32         `json:"persist_conns"`
	Stats         Stats          `json:"stats"`
}

// VSStatus is the health and quorum state of a virtual server.
type VSStatus struct {
	VS          string       `json:"vs"`
	Name        string       `json:"name"`
	QuorumUp    bool         `json:"quorum_up"`
	WeightSum   int          `json:"weight_sum"`
	Quorum      int          `json:"quorum"`
	Hysteresis  int          `json:"hysteresis"`
	SorryActive bool         `json:"sorry_active"`
	Services    []ServiceKey `json:"services"`
	RealServers []RSStatus   `json:"real_servers"`
}

// RSStatus is the health of a real server.
type RSStatus struct {
	RS netip.AddrPort `json:"rs"`
	Up bool           `json:"up"`
	// Weight is the effective weight; DynamicWeight the misc_dynamic one (-1: none).
	Weight        int `json:"weight"`
	DynamicWeight int `json:"dynamic_weight"`
	// Drained: set to weight 0 by the operator (Reconciler.SetDrain).
	Drained bool `json:"drained,omitempty"`
}

// Snapshot returns the current state. While Run runs, pending inputs are
// applied first and the kernel is read for fresh counters (so a Snapshot
// after Apply or SetHealth reflects them). With Options.Reader the kernel
// is read in the caller's goroutine, so that a scrape of thousands of
// destinations never holds up the reconciliation. When Run does not run it
// reports lvsd's picture without reading the kernel.
func (r *Reconciler) Snapshot() *Snapshot {
	r.mu.Lock()
	running, done := r.running, r.done
	r.mu.Unlock()
	if running {
		reply := make(chan *view, 1)
		select {
		case r.viewReq <- reply:
			v := <-reply
			if v.fresh {
				return v.snapshot() // read by the Run loop (no Reader)
			}
			t, st, err := r.reads.read(r.opts, v.counters.Mutations())
			if err != nil {
				v.kernelError = err.Error()
			} else {
				v.kernel, v.kstats, v.fresh = t, st, true
			}
			return v.snapshot()
		case <-done:
		}
	}
	r.state.Lock()
	defer r.state.Unlock()
	return r.view(false).snapshot()
}

// readCache is the last read through Options.Reader, shared by the
// Snapshots that follow within Options.ReadEvery (snapshots only read it).
// Its lock also makes concurrent Snapshots wait for one read.
type readCache struct {
	mu        sync.Mutex
	at        time.Time
	mutations uint64 // the reconciler's when read
	t         Table
	st        kernelStats
	reads     uint64 // made, for tests
}

func (c *readCache) read(o Options, mutations uint64) (Table, kernelStats, error) {
	every := o.ReadEvery
	if every == 0 {
		every = DefaultReadEvery
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t != nil && c.mutations == mutations && every > 0 && time.Since(c.at) < every {
		return c.t, c.st, nil
	}
	t, st, err := readTable(o.Reader, func(ServiceKey) bool { return true })
	c.reads++
	if err != nil {
		c.t = nil
		return nil, kernelStats{}, err
	}
	c.at, c.mutations, c.t, c.st = time.Now(), mutations, t, st
	return t, st, nil
}

// view is what a Snapshot needs of the reconciler's state, taken at one
// moment by the goroutine that owns the state: copies of the maps that
// change in place (the desired table's services and destinations are never
// modified in place once built: a change replaces them).
type view struct {
	time        time.Time
	counters    Counters
	desired     *Desired
	owned       Ownership
	kernel      Table
	kstats      kernelStats
	fresh       bool
	kernelError string
	vss         []VSStatus
	sync        []SyncDaemon
}

// view captures the state; with read it also reads the kernel (through the
// reconciler's Kernel, from its goroutine). r.state is held.
func (r *Reconciler) view(read bool) *view {
	r.ensureDesired()
	v := &view{time: time.Now(), kernel: r.kernel, kstats: r.kstats}
	if read {
		t, st, err := r.read(func(ServiceKey) bool { return true })
		if err != nil {
			r.c.Errors++
			v.kernelError = err.Error()
		} else {
			v.kernel, v.kstats, v.fresh = t, st, true
		}
	}
	v.counters = r.c
	v.desired = &Desired{Table: maps.Clone(r.desired.Table), Origin: maps.Clone(r.desired.Origin),
		DestOrigin: maps.Clone(r.desired.DestOrigin), VS: maps.Clone(r.desired.VS)}
	v.owned = r.owned.Clone()
	for i, vs := range r.cfg.VirtualServers {
		key := r.vsKeys[i]
		h := r.health[key]
		if h == nil || r.vsIndex[key] != vs {
			continue
		}
		vst := VSStatus{VS: key, Name: vs.String(), QuorumUp: h.QuorumUp, WeightSum: WeightSum(vs, h),
			Quorum: vs.Quorum, Hysteresis: vs.Hysteresis, SorryActive: vs.SorryServer != nil && !h.QuorumUp,
			Services: r.desired.VS[key]}
		for _, rs := range vs.RealServers {
			st := h.rs(rs)
			vst.RealServers = append(vst.RealServers, RSStatus{RS: rs.AddrPort(), Up: st.Up, Weight: EffectiveWeight(rs, st), DynamicWeight: st.Weight, Drained: st.Drained})
		}
		v.vss = append(v.vss, vst)
	}
	for _, st := range syncStates {
		if d, ok := r.syncStarted[st]; ok {
			v.sync = append(v.sync, d)
		}
	}
	return v
}

// snapshot builds the Snapshot of a view. The view's kernel picture is not
// shared with the reconciler when it was read for the view; otherwise the
// caller holds r.state.
func (v *view) snapshot() *Snapshot {
	s := &Snapshot{Time: v.time, Counters: v.counters, Fresh: v.fresh, KernelError: v.kernelError,
		VirtualServers: v.vss, SyncDaemons: v.sync}
	kt, ks := v.kernel, v.kstats
	all := sortedKeys(ServiceKey.cmp, v.desired.Table, kt)
	if len(all) > 0 {
		s.Services = make([]ServiceStatus, 0, len(all))
	}
	for _, k := range all {
		ds, ks2 := v.desired.Table[k], kt[k]
		ss := ServiceStatus{Key: k, VS: v.desired.Origin[k], Owned: v.owned.OwnsService(k), Stats: ks.svc[k]}
		if ds != nil {
			sv := ds.Service
			ss.Desired = &sv
		}
		if ks2 != nil {
			sv := ks2.Service
			ss.Kernel = &sv
		}
		inSync := ds != nil && ks2 != nil && ds.Service.sameAttrs(ks2.Service)
		var dd0, kd0 map[DestKey]Destination
		if ds != nil {
			dd0 = ds.Dests
		}
		if ks2 != nil {
			kd0 = ks2.Dests
		}
		dl := sortedKeys(DestKey.cmp, dd0, kd0)
		if len(dl) > 0 {
			ss.Dests = make([]DestStatus, 0, len(dl))
		}
		for _, dk := range dl {
			st := DestStatus{Key: dk, Owned: v.owned.OwnsDest(k, dk)}
			var dd, kd *Destination
			if ds != nil {
				if d, ok := ds.Dests[dk]; ok {
					dd = &d
					o := v.desired.DestOrigin[k][dk]
					st.RS, st.Sorry, st.Healthy = o.RS, o.Sorry, o.Up
				}
			}
			if ks2 != nil {
				if d, ok := ks2.Dests[dk]; ok {
					kd = &d
				}
			}
			if info, ok := ks.dest[k][dk]; ok {
				st.ActiveConns, st.InactiveConns, st.PersistConns, st.Stats = info.ActiveConns, info.InactiveConns, info.PersistConns, info.Stats
			}
			st.Desired, st.Kernel = dd, kd
			st.InSync = dd != nil && kd != nil && dd.sameAttrs(*kd)
			if dd != nil && !st.InSync {
				inSync = false
			}
			if dd == nil && kd != nil && st.Owned {
				inSync = false
			}
			ss.Dests = append(ss.Dests, st)
		}
		ss.InSync = inSync
		s.Services = append(s.Services, ss)
	}
	return s
}

// sortedKeys returns the keys of the maps, each once, sorted by cmp.
func sortedKeys[K comparable, V any](cmp func(a, b K) int, maps ...map[K]V) []K {
	n := 0
	for _, m := range maps {
		n += len(m)
	}
	seen := make(map[K]bool, n)
	out := make([]K, 0, n)
	for _, m := range maps {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	slices.SortFunc(out, cmp)
	return out
}
