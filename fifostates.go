package main

import (
	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/notify"
	"github.com/lvsd/lvsd/vrrp"
)

// writeStatesOnReload is fifo_write_vrrp_states_on_reload, as keepalived
// 2.2.7 does it once a reload is applied: to the VRRP notify FIFOs, a GROUP
// line for every sync group (in the file's order, with its state), then an
// INSTANCE line for every instance not MASTER (keepalived 2.2.7 writes none
// for its masters), with its state and priority.
func (d *daemon) writeStatesOnReload(cfg *conf.Config) {
	if d.vrrp == nil || !cfg.Global.FIFOWriteVRRPStatesOnReload {
		return
	}
	inst := map[string]vrrp.InstanceStatus{}
	for _, s := range d.vrrp.Status() {
		inst[s.Name] = s
	}
	groups := d.vrrp.GroupStates()
	for _, g := range cfg.SyncGroups {
		st, ok := groups[g.Name]
		if !ok && len(g.Group) == 1 {
			// A group of one runs as its instance.
			var s vrrp.InstanceStatus
			s, ok = inst[g.Group[0]]
			st = s.State
		}
		if ok {
			d.fifos.WriteVRRP(notify.VRRPLine(notify.Event{Group: true, Name: g.Name, State: st.String()}))
		}
	}
	for _, in := range cfg.Instances {
		if s, ok := inst[in.Name]; ok && s.State != vrrp.StateMaster {
			d.fifos.WriteVRRP(notify.VRRPLine(notify.Event{Name: in.Name, State: s.State.String(), Priority: int(s.Priority)}))
		}
	}
}
