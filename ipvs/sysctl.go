package ipvs

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lvsd/lvsd/conf"
)

// The IPVS sysctls (/proc/sys/net/ipv4/vs, per network namespace) that
// active-active directors need, set by the reconciler when the bgp block
// announces virtual servers (bgp ipvs_sysctls off leaves them alone):
//
//   - sloppy_tcp 1, sloppy_sctp 1: a director creates the connection
//     entry on any packet of a flow, not only on its SYN (SCTP INIT). When
//     the routers rehash a flow onto another director (one failed, one
//     came back), its packets arrive mid-flow; with mh (and mh-port) the
//     new director picks the same real server, and the flow goes on even
//     when the sync daemon had not yet sent that connection.
//   - backup_only 0, when the sync daemon runs in both roles: with
//     backup_only 1 the kernel stops forwarding while a backup sync daemon
//     runs, so every director would stop.
//
// conn_reuse_mode and expire_nodest_conn are left as they are: they
// concern a real server's removal and port reuse, the same with one
// director or several.
//
// A value dropped from the configuration (a reload without the bgp block,
// ipvs_sysctls off) goes back to what the kernel had when lvsd first set
// it, as lvs_timeouts do. On stop they are left set: the table is released
// on a clean stop, and after kill -9 the kernel still forwards, with them.

// SysctlKernel is a Kernel that reads and writes IPVS sysctls (NewKernel's
// does, in the process's network namespace). name is a file of
// /proc/sys/net/ipv4/vs.
type SysctlKernel interface {
	Sysctl(name string) (string, error)
	SetSysctl(name, value string) error
}

// WantedSysctls returns the IPVS sysctls cfg needs set (name → value).
func WantedSysctls(cfg *conf.Config) map[string]string {
	b := cfg.BGP
	if b == nil || !b.IPVSSysctls || len(b.Announce) == 0 {
		return nil
	}
	want := map[string]string{"sloppy_tcp": "1", "sloppy_sctp": "1"}
	if s := cfg.Global.LVSSyncDaemon; s != nil && s.Instance == "" {
		want["backup_only"] = "0"
	}
	return want
}

// applySysctls sets the wanted sysctls that differ, and puts back the
// original value of those no longer wanted.
func (r *Reconciler) applySysctls() {
	sk, ok := r.k.(SysctlKernel)
	if !ok {
		return
	}
	want := WantedSysctls(r.cfg)
	if r.origSysctls == nil {
		r.origSysctls = map[string]string{}
	}
	names := make([]string, 0, len(want)+len(r.origSysctls))
	for n := range want {
		names = append(names, n)
	}
	for n := range r.origSysctls {
		if _, ok := want[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		cur, err := sk.Sysctl(n)
		if err != nil {
			r.kernelError("read sysctl "+n, err)
			continue
		}
		w, wanted := want[n]
		if !wanted {
			w = r.origSysctls[n]
		}
		if _, seen := r.origSysctls[n]; !seen && wanted {
			r.origSysctls[n] = cur
		}
		if cur == w {
			if !wanted {
				delete(r.origSysctls, n)
			}
			continue
		}
		if err := sk.SetSysctl(n, w); err != nil {
			r.kernelError("set sysctl "+n, err)
			continue
		}
		if wanted {
			r.log.Info("ipvs: sysctl set for active-active directors", "sysctl", "net.ipv4.vs."+n, "value", w, "was", cur)
		} else {
			r.log.Info("ipvs: sysctl restored", "sysctl", "net.ipv4.vs."+n, "value", w)
			delete(r.origSysctls, n)
		}
	}
}

// procSysctls reads and writes /proc/sys/net/ipv4/vs.
type procSysctls struct{ root string }

func (p procSysctls) path(name string) string {
	return filepath.Join(p.root, filepath.Base(name))
}

func (p procSysctls) Sysctl(name string) (string, error) {
	b, err := os.ReadFile(p.path(name))
	return strings.TrimSpace(string(b)), err
}

func (p procSysctls) SetSysctl(name, value string) error {
	return os.WriteFile(p.path(name), []byte(value+"\n"), 0o644)
}
