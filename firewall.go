package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/firewall"
	"github.com/lvsd/lvsd/vrrp"
)

// usesFirewall: an instance of cfg drops its VIPs' traffic while MASTER
// (no_accept, or vrrp_strict without accept; the address owner accepts),
// or has a VMAC, as keepalived decides to program nftables.
func usesFirewall(cfg *conf.Config) bool {
	for _, in := range cfg.Instances {
		if in.UseVMAC || (!in.Accept && in.Priority < 255) {
			return true
		}
	}
	return false
}

// newFirewall builds the nftables owner of cfg's table; a stale table
// (kill -9) is deleted when it starts if cfg uses it.
func newFirewall(cfg *conf.Config, log *slog.Logger) *firewall.Firewall {
	if usesFirewall(cfg) {
		log.Info("use_vmac or no_accept/strict specified: using nftables", "table", cfg.Global.NFTablesTable)
	}
	return firewall.New(firewall.NewNFT(nftOptions(cfg)), usesFirewall(cfg), log)
}

// nftOptions are the table's settings in cfg.
func nftOptions(cfg *conf.Config) firewall.Options {
	g := cfg.Global
	return firewall.Options{Table: g.NFTablesTable, Priority: int32(g.NFTablesPriority), Counters: g.NFTablesCounters}
}

// checkFirewallReload logs the nftables settings a reload changes: they
// are those of the start.
func (d *daemon) checkFirewallReload(cfg *conf.Config) {
	if d.fw != nil && d.fwOpts != nftOptions(cfg) {
		d.log.Warn("nftables, nftables_priority and nftables_counters apply at the next start", "subsystem", "firewall")
	}
}

// vipFilter hands the VRRP engine's no_accept VIPs to fw, a link-local
// IPv6 one with the index of its interface.
func vipFilter(fw *firewall.Firewall, log *slog.Logger) func(string, []vrrp.VIP) {
	return func(instance string, vips []vrrp.VIP) {
		addrs := make([]firewall.Addr, 0, len(vips))
		for _, v := range vips {
			a := firewall.Addr{IP: v.Addr.Addr()}
			if a.IP.Is6() && a.IP.IsLinkLocalUnicast() {
				if ifi, err := net.InterfaceByName(v.Dev); err == nil {
					a.Ifindex = ifi.Index
				}
			}
			addrs = append(addrs, a)
		}
		if err := fw.SetVIPs(instance, addrs); err != nil {
			log.Error("("+instance+") setting firewall drop rule", "instance", instance, "err", err)
		}
	}
}

// vmacHook hands fw the macvlan VMACs the VRRP engine makes and removes
// (keepalived's vmac_map: the IGMP/MLD reports of a VMAC copied to its
// base). A VMAC made again (deleted by someone else) has a new index: the
// old pair is removed first.
func vmacHook(fw *firewall.Firewall, log *slog.Logger) func(vrrp.VMACSpec, bool) {
	var mu sync.Mutex
	set := map[string]firewall.VMAC{} // by name, what fw has
	return func(v vrrp.VMACSpec, up bool) {
		if v.IPvlan {
			return // keepalived maps macvlans only
		}
		mu.Lock()
		defer mu.Unlock()
		old, had := set[v.Name]
		var cur firewall.VMAC
		if up {
			ifi, err1 := net.InterfaceByName(v.Name)
			base, err2 := net.InterfaceByName(v.Base)
			if err := errors.Join(err1, err2); err != nil {
				log.Error("VMAC not in the firewall's vmac_map", "vmac", v.Name, "err", err)
				return
			}
			cur = firewall.VMAC{Index: ifi.Index, Base: base.Index, IPv6: v.IPv6}
			if had && old == cur {
				return
			}
		}
		if had {
			if err := fw.SetVMAC(old, false); err != nil {
				log.Error("removing a VMAC from the firewall's vmac_map", "vmac", v.Name, "err", err)
			}
			delete(set, v.Name)
		}
		if up {
			if err := fw.SetVMAC(cur, true); err != nil {
				log.Error("adding a VMAC to the firewall's vmac_map", "vmac", v.Name, "err", err)
				return
			}
			set[v.Name] = cur
		}
	}
}

// runFirewall runs fw until stop is closed (after the VRRP engine stopped:
// its last VIPs are gone), then it deletes its table.
func (d *daemon) runFirewall(stop <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-stop; cancel() }()
	d.goRun(ctx, "firewall", d.fw.Run)
}
