package ipvs

import (
	"net/netip"
	"sort"
	"time"
)

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
}

// Snapshot returns the current state. While Run runs, pending inputs are
// applied first and the kernel is read for fresh counters (so a Snapshot
// after Apply or SetHealth reflects them). Otherwise it reports lvsd's
// picture without reading the kernel.
func (r *Reconciler) Snapshot() *Snapshot {
	r.mu.Lock()
	running, done := r.running, r.done
	r.mu.Unlock()
	if running {
		reply := make(chan *Snapshot, 1)
		select {
		case r.snapReq <- reply:
			return <-reply
		case <-done:
		}
	}
	r.state.Lock()
	defer r.state.Unlock()
	return r.snapshot(false)
}

// snapshot builds a Snapshot; fresh reads the kernel.
func (r *Reconciler) snapshot(fresh bool) *Snapshot {
	r.ensureDesired()
	s := &Snapshot{Time: time.Now(), Counters: r.c}
	kt, ks := r.kernel, r.kstats
	if fresh {
		t, st, err := r.read(func(ServiceKey) bool { return true })
		if err != nil {
			r.c.Errors++
			s.KernelError = err.Error()
		} else {
			kt, ks = t, st
			s.Fresh = true
		}
	}
	keys := map[ServiceKey]bool{}
	for k := range r.desired.Table {
		keys[k] = true
	}
	for k := range kt {
		keys[k] = true
	}
	all := make(Table, len(keys))
	for k := range keys {
		all[k] = nil
	}
	for _, k := range all.Keys() {
		ds, ks2 := r.desired.Table[k], kt[k]
		ss := ServiceStatus{Key: k, VS: r.desired.Origin[k], Owned: r.owned.OwnsService(k), Stats: ks.svc[k]}
		if ds != nil {
			v := ds.Service
			ss.Desired = &v
		}
		if ks2 != nil {
			v := ks2.Service
			ss.Kernel = &v
		}
		inSync := ds != nil && ks2 != nil && ds.Service.sameAttrs(ks2.Service)
		dkeys := map[DestKey]bool{}
		if ds != nil {
			for dk := range ds.Dests {
				dkeys[dk] = true
			}
		}
		if ks2 != nil {
			for dk := range ks2.Dests {
				dkeys[dk] = true
			}
		}
		dl := make([]DestKey, 0, len(dkeys))
		for dk := range dkeys {
			dl = append(dl, dk)
		}
		sort.Slice(dl, func(i, j int) bool { return dl[i].less(dl[j]) })
		for _, dk := range dl {
			st := DestStatus{Key: dk, Owned: r.owned.OwnsDest(k, dk)}
			var dd, kd *Destination
			if ds != nil {
				if d, ok := ds.Dests[dk]; ok {
					dd = &d
					o := r.desired.DestOrigin[k][dk]
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
	for _, vs := range r.cfg.VirtualServers {
		key := vs.Key()
		h := r.health[key]
		if h == nil || r.vsIndex[key] != vs {
			continue
		}
		v := VSStatus{VS: key, Name: vs.String(), QuorumUp: h.QuorumUp, WeightSum: WeightSum(vs, h),
			Quorum: vs.Quorum, Hysteresis: vs.Hysteresis, SorryActive: vs.SorryServer != nil && !h.QuorumUp,
			Services: r.desired.VS[key]}
		for _, rs := range vs.RealServers {
			st := h.rs(rs)
			v.RealServers = append(v.RealServers, RSStatus{RS: rs.AddrPort(), Up: st.Up, Weight: EffectiveWeight(rs, st), DynamicWeight: st.Weight})
		}
		s.VirtualServers = append(s.VirtualServers, v)
	}
	for _, st := range []SyncState{SyncMaster, SyncBackup} {
		if d, ok := r.syncStarted[st]; ok {
			s.SyncDaemons = append(s.SyncDaemons, d)
		}
	}
	return s
}
