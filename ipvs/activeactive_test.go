package ipvs

import (
	"fmt"
	"sync"
	"testing"
)

// TestReconcilerQuorumStates: QuorumStates gets every virtual server's
// quorum once the table is programmed (not before), then after each
// quorum change and reload, and not for a health event that leaves
// quorum as it was.
func TestReconcilerQuorumStates(t *testing.T) {
	var mu sync.Mutex
	var got []string
	opts := Options{QuorumStates: func(m map[string]bool) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, fmt.Sprint(m))
	}}
	take := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := got
		got = nil
		return out
	}
	h := newHarness(t, parse(t, twoServers), nil, opts)
	vs := "TCP/192.0.2.1:80"
	h.r.SetHealth(*ev(vs, "10.0.0.1:80", false, -1)) // before Run: part of the first programming
	if s := take(); len(s) != 0 {
		t.Fatalf("told before the start: %v", s)
	}
	h.start()
	h.r.Snapshot()
	if s := take(); len(s) != 1 || s[0] != "map[FWM/1:true TCP/192.0.2.1:80:true]" {
		t.Fatalf("at start: %v", s)
	}
	h.r.SetHealth(*ev(vs, "10.0.0.1:80", true, -1)) // quorum stays up
	h.r.Snapshot()
	if s := take(); len(s) != 0 {
		t.Fatalf("no quorum change, told %v", s)
	}
	h.r.SetHealth(*ev(vs, "10.0.0.1:80", false, -1))
	h.r.SetHealth(*ev(vs, "10.0.0.2:80", false, -1))
	h.r.Snapshot()
	if s := take(); len(s) != 1 || s[0] != "map[FWM/1:true TCP/192.0.2.1:80:false]" {
		t.Fatalf("quorum lost: %v", s)
	}
	h.r.Apply(parse(t, twoServers))
	h.r.Snapshot()
	if s := take(); len(s) != 1 || s[0] != "map[FWM/1:true TCP/192.0.2.1:80:false]" {
		t.Fatalf("reload: %v", s)
	}
}

// TestReconcilerSyncDaemonBothRoles: lvs_sync_daemon without an instance
// (active-active directors) runs the master and the backup daemon at once,
// with the configured id, whatever VRRP says.
func TestReconcilerSyncDaemonBothRoles(t *testing.T) {
	h := newHarness(t, parse(t, "global_defs {\n\tlvs_sync_daemon eth1 id 7\n}\n"), nil, Options{})
	h.start()
	h.wantMutations("start-sync master eth1 id 7", "start-sync backup eth1 id 7")
	h.r.SetVRRPState("VI_1", true)
	h.r.Snapshot()
	h.wantMutations()
	h.stop()
	h.wantMutations("stop-sync master", "stop-sync backup")
}

// TestReconcilerActiveActiveSysctls: with a bgp block announcing virtual
// servers, the reconciler sets sloppy_tcp and sloppy_sctp, and backup_only
// 0 with the sync daemon in both roles, before the table is used; a reload
// with ipvs_sysctls off puts back the values lvsd found; the others
// (conn_reuse_mode, expire_nodest_conn) are not touched.
func TestReconcilerActiveActiveSysctls(t *testing.T) {
	text := func(extra string) string {
		return "global_defs {\n\tlvs_sync_daemon eth1 id 7\n}\n" + `virtual_server 203.0.113.10 80 {
  lb_algo mh
  lb_kind DR
  protocol TCP
  real_server 192.0.2.11 80 {
  }
}
bgp {
  router_id 192.0.2.2
  local_as 65001
` + extra + `  neighbor 192.0.2.1 {
    remote_as 65000
  }
  announce {
    203.0.113.10
  }
}
`
	}
	k := newFakeKernel()
	k.sysctls["backup_only"] = "1"
	k.sysctls["conn_reuse_mode"] = "2"
	h := newHarness(t, parse(t, text("")), k, Options{})
	want := func(what string, m map[string]string) {
		t.Helper()
		k.mu.Lock()
		defer k.mu.Unlock()
		if fmt.Sprint(k.sysctls) != fmt.Sprint(m) {
			t.Errorf("%s: sysctls %v, want %v", what, k.sysctls, m)
		}
	}
	h.start()
	want("start", map[string]string{"sloppy_tcp": "1", "sloppy_sctp": "1", "backup_only": "0", "conn_reuse_mode": "2", "expire_nodest_conn": "0"})
	h.r.Apply(parse(t, text("  ipvs_sysctls off\n")))
	h.r.Snapshot()
	want("ipvs_sysctls off", map[string]string{"sloppy_tcp": "0", "sloppy_sctp": "0", "backup_only": "1", "conn_reuse_mode": "2", "expire_nodest_conn": "0"})
	h.r.Apply(parse(t, text("")))
	h.r.Snapshot()
	want("on again", map[string]string{"sloppy_tcp": "1", "sloppy_sctp": "1", "backup_only": "0", "conn_reuse_mode": "2", "expire_nodest_conn": "0"})
	h.stop()
	want("stopped: left set", map[string]string{"sloppy_tcp": "1", "sloppy_sctp": "1", "backup_only": "0", "conn_reuse_mode": "2", "expire_nodest_conn": "0"})
}
