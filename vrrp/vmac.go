package vrrp

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/lvsd/lvsd/conf"
)

// VMACSpec is the interface an instance's VIPs go on with use_vmac (a
// macvlan in private mode with the virtual router MAC) or use_ipvlan (an
// ipvlan in L2 mode with the base interface's MAC), as keepalived makes it.
type VMACSpec struct {
	Name string // vrrp.VRID unless named
	Base string // the instance's interface
	// MAC is 00:00:5e:00:01:VRID (00:00:5e:00:02:VRID for an IPv6
	// instance); nil for an ipvlan.
	MAC    net.HardwareAddr
	IPvlan bool
	// Mode of an ipvlan: bridge (the default), private or vepa.
	Mode string
	// Addr is the ipvlan's own address (use_ipvlan ADDRESS), if any.
	Addr netip.Prefix
	// IPv6 instance: the base's link-local address (LinkLocal, set by the
	// engine) is added to the VMAC, adverts are sent from it. An IPv4
	// instance has IPv6 disabled on the VMAC unless KeepIPv6 (it has IPv6
	// VIPs).
	IPv6      bool
	KeepIPv6  bool
	LinkLocal netip.Addr
}

// key compares two specs.
func (v VMACSpec) key() string {
	return fmt.Sprintf("%s|%s|%s|%v|%s|%v|%v|%v|%v", v.Name, v.Base, v.MAC, v.IPvlan, v.Mode, v.Addr, v.IPv6, v.KeepIPv6, v.LinkLocal)
}

// VMACLinks makes and removes the VMAC interfaces; the default is the
// real one (rtnetlink and the interfaces' sysctls), tests inject fakes.
type VMACLinks interface {
	// Ensure makes the interface as spec says: one of the name that
	// matches is kept, a macvlan or ipvlan that does not is replaced, any
	// other interface of the name is an error. It sets the sysctls
	// keepalived sets on the VMAC and its base, and brings the VMAC up.
	Ensure(spec VMACSpec) error
	// Remove deletes it and, with the last VMAC on its base, gives the
	// base its arp_ignore and arp_filter back.
	Remove(spec VMACSpec) error
	// Leftovers lists the macvlans carrying a virtual router MAC (those a
	// VRRP daemon killed with SIGKILL left behind).
	Leftovers() ([]string, error)
}

// vmacSpec returns the VMAC of an instance, or nil.
func vmacSpec(in *conf.VRRPInstance) *VMACSpec {
	name := in.VMACInterface()
	if name == "" {
		return nil
	}
	v := &VMACSpec{Name: name, Base: in.Interface, IPv6: in.IPv6()}
	if in.UseIPVLAN {
		v.IPvlan, v.Mode, v.Addr = true, in.IPVLANMode, in.IPVLANAddr
		if v.Mode == "" {
			v.Mode = "bridge"
		}
	} else {
		v.MAC = VirtualMAC(uint8(in.VRID), v.IPv6)
	}
	for _, a := range append(append([]conf.VIP(nil), in.VIPs...), in.ExcludedVIPs...) {
		if a.Prefix.Addr().Is6() && (a.Dev == "" || a.Dev == name) {
			v.KeepIPv6 = true
		}
	}
	return v
}

// VirtualMAC is the virtual router MAC of RFC 5798: 00:00:5e:00:01:VRID,
// 00:00:5e:00:02:VRID for IPv6.
func VirtualMAC(vrid uint8, ipv6 bool) net.HardwareAddr {
	fam := byte(1)
	if ipv6 {
		fam = 2
	}
	return net.HardwareAddr{0, 0, 0x5e, 0, fam, vrid}
}

// isVirtualMAC reports whether mac is a virtual router MAC.
func isVirtualMAC(mac net.HardwareAddr) bool {
	return len(mac) == 6 && mac[0] == 0 && mac[1] == 0 && mac[2] == 0x5e && mac[3] == 0 && (mac[4] == 1 || mac[4] == 2)
}

// srcInterface is the interface whose address is the source of the
// adverts: the base of a VMAC, else the instance's.
func (ic *instanceConfig) srcInterface() string {
	if ic.VMAC != nil {
		return ic.VMAC.Base
	}
	return ic.Interface
}

// sockInterface is the interface adverts are sent and received on: the
// VMAC, or its base with vmac_xmit_base.
func (ic *instanceConfig) sockInterface() string {
	if ic.VMAC != nil && ic.XmitBase {
		return ic.VMAC.Base
	}
	return ic.Interface
}

// garpInterface is the interface the gratuitous ARPs of the VIPs without
// dev leave from: the instance's, but the base of an ipvlan (which has the
// base's MAC), as keepalived.
func (ic *instanceConfig) garpInterface() string {
	if ic.VMAC != nil && ic.VMAC.IPvlan {
		return ic.VMAC.Base
	}
	return ic.Interface
}

// applyVMACs makes the VMACs of specs exist; on the first call it first
// removes the leftovers of an earlier run that no instance asks for.
func (st *engineState) applyVMACs(specs []runnerSpec) map[string]VMACSpec {
	e := st.e
	want := map[string]VMACSpec{}
	var order []string // as configured, as keepalived makes them
	for i := range specs {
		for j := range specs[i].Instances {
			ic := &specs[i].Instances[j]
			if ic.VMAC == nil {
				continue
			}
			v := *ic.VMAC
			if v.IPv6 {
				ll, err := e.k.PrimaryIPv6(v.Base)
				if err != nil {
					e.log.Warn("vrrp: VMAC: no link-local address on the base interface", "vmac", v.Name, "interface", v.Base, "err", err)
				}
				v.LinkLocal = ll
			}
			ic.VMAC = &v
			if _, dup := want[v.Name]; !dup {
				order = append(order, v.Name)
			}
			want[v.Name] = v
		}
	}
	if st.vmacs == nil {
		st.vmacs = map[string]VMACSpec{}
		left, err := e.vmacs.Leftovers()
		if err != nil {
			e.log.Warn("vrrp: VMAC: cannot list the interfaces", "err", err)
		}
		for _, name := range left {
			if _, ok := want[name]; ok {
				continue // reused (or replaced) by Ensure
			}
			if err := e.vmacs.Remove(VMACSpec{Name: name}); err != nil {
				e.log.Warn("vrrp: VMAC: cannot remove a leftover", "vmac", name, "err", err)
				continue
			}
			e.log.Info("vrrp: VMAC: removed a leftover of an earlier run", "vmac", name)
		}
	}
	for _, name := range order {
		v := want[name]
		if cur, ok := st.vmacs[name]; ok && cur.key() == v.key() {
			continue
		}
		if err := e.vmacs.Ensure(v); err != nil {
			e.log.Error("vrrp: VMAC: cannot make the interface", "vmac", name, "interface", v.Base, "err", err)
			continue
		}
		st.vmacs[name] = v
		e.log.Info("vrrp: VMAC ready", "vmac", name, "interface", v.Base, "mac", v.MAC.String())
		e.onVMAC(v, true)
	}
	e.mu.Lock()
	e.wantVMACs = want
	e.mu.Unlock()
	return want
}

// dropVMACs removes the VMACs no instance uses any more (all of them when
// want is nil).
func (st *engineState) dropVMACs(want map[string]VMACSpec) {
	for name, v := range st.vmacs {
		if _, ok := want[name]; ok {
			continue
		}
		if err := st.e.vmacs.Remove(v); err != nil {
			st.e.log.Warn("vrrp: VMAC: cannot remove", "vmac", name, "err", err)
		} else {
			st.e.log.Info("vrrp: VMAC removed", "vmac", name)
		}
		st.e.onVMAC(v, false)
		delete(st.vmacs, name)
	}
}

// checkVMACs makes again the VMACs missing from links (deleted by someone
// else); the safety net calls it.
func (e *Engine) checkVMACs(links map[string]LinkState) {
	e.mu.Lock()
	want := e.wantVMACs
	e.mu.Unlock()
	for name, v := range want {
		if _, ok := links[name]; ok {
			continue
		}
		if err := e.vmacs.Ensure(v); err != nil {
			e.log.Warn("vrrp: VMAC deleted; cannot make it again", "vmac", name, "err", err)
			continue
		}
		e.repairs.VMACs.Add(1)
		e.log.Warn("vrrp: VMAC deleted by someone else; made again", "vmac", name)
		e.onVMAC(v, true) // a new interface index
	}
}

// onVMAC tells EngineOptions.OnVMAC of a VMAC made or removed.
func (e *Engine) onVMAC(v VMACSpec, up bool) {
	if e.opts.OnVMAC != nil {
		e.opts.OnVMAC(v, up)
	}
}
