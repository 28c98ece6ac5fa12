package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// keepalived's JSON dump (SIGJSON, keepalived.json in TMPDIR) compared
// field by field with lvsd's for the same configuration and state: VI_1
// MASTER (authentication, notify scripts, a tracked script and interface,
// VIPs with options, an excluded VIP), VI_2 in FAULT (its tracked file).
// VI_1 also has virtual_routes and virtual_rules (keepalived's vroutes and
// vrules) and a vrrp_track_process (keepalived 2.2.7 writes no
// track_process: the field came in 2.2.8; nor does lvsd).
// With vrrp_startup_delay 2 both take VI_1 no earlier than the delay plus
// the Master_Down_Interval, within a second of each other.
const jsonCompareConf = `global_defs {
  router_id json
  vrrp_startup_delay 2
  vrrp_garp_master_refresh 60
}
vrrp_script chk {
  script "/bin/true 1"
  interval 1
  weight 5
}
track_file down {
  file {{SHARED}}/down
  weight 0
}
vrrp_track_process ka {
  process nosuchproc
  weight 2
}
` + kaVI1 + `  preempt_delay 2
  garp_master_delay 3
  garp_master_repeat 2
  smtp_alert
  authentication {
    auth_type PASS
    auth_pass longsecret
  }
  notify_master "/bin/echo master"
  notify /bin/true
  virtual_ipaddress {
    192.0.2.100/24
    192.0.2.101/24 brd 192.0.2.255 label eth0:1
    192.0.2.102 scope host
  }
  virtual_ipaddress_excluded {
    198.51.100.1/32
  }
  track_script {
    chk
  }
  track_interface {
    eth0
  }
  track_process {
    ka
  }
  virtual_routes {
    198.51.100.0/24 via 192.0.2.9 dev eth0
    src 192.0.2.100 203.0.113.0/24 dev eth0 table 100 metric 5
    blackhole 203.0.113.128/25
    2001:db8:5::/64 dev eth0 table 101 no_track
    203.0.113.64/26 via 192.0.2.9
    203.0.113.16/28 dev eth0 scope link
    198.51.100.128/25 via 192.0.2.9 dev eth0 onlink protocol 5 no_track
    unreachable 2001:db8:9::/64
    default via 192.0.2.9 table 7
  }
  virtual_rules {
    from 192.0.2.100 table 200 priority 200
    to 198.51.100.7 fwmark 7/0xff iif eth0 table 201
    not from 203.0.113.0/24 oif eth0 goto 300 priority 202
    from 2001:db8:2::1 table 202 priority 203 no_track
    to 2001:db8:3::/64 suppress_prefixlength 0 lookup main priority 204
    from all fwmark 5 priority 205 blackhole
    from 192.0.2.0/24 priority 206 unreachable protocol 4 no_track
    from all priority 207 nop
  }
}
vrrp_instance VI_2 {
  state BACKUP
  interface eth0
  virtual_router_id 52
  priority 90
  advert_int 2
  nopreempt
  virtual_ipaddress {
    192.0.2.110/24
  }
  track_file {
    down
  }
}
`

func TestNetnsJSONDumpMatchesKeepalived(t *testing.T) {
	bin, shared := kaCompare(t, map[string]string{"down": "1\n"})
	ka := newKASide(t, "keepalived", shared, jsonCompareConf)
	lv := newKASide(t, "lvsd", shared, jsonCompareConf)
	started := time.Now()
	startBoth(t, ka, lv, bin)
	both := []*kaSide{ka, lv}
	master := map[string]time.Duration{}
	waitUntil(t, 20*time.Second, "VI_1 MASTER with its VIPs on both", func() bool {
		for _, s := range both {
			if _, ok := master[s.name]; !ok && strings.Contains(runCmd(t, "ip", "-n", s.ns, "-4", "-o", "addr", "show", "dev", "eth0"), " 192.0.2.102/32 ") {
				master[s.name] = time.Since(started)
			}
		}
		return len(master) == 2
	})
	// delay 2s + MDI 3s + (256-105)/256 s.
	t.Logf("VI_1 MASTER after %v (keepalived), %v (lvsd)", master["keepalived"], master["lvsd"])
	for name, d := range master {
		if d < 5400*time.Millisecond {
			t.Errorf("%s: VI_1 MASTER after %v, before vrrp_startup_delay 2s + Master_Down_Interval 3.6s", name, d)
		}
	}
	if d := master["keepalived"] - master["lvsd"]; d > time.Second || d < -time.Second {
		t.Errorf("VI_1 MASTER after %v with keepalived, %v with lvsd: more than 1s apart", master["keepalived"], master["lvsd"])
	}
	time.Sleep(time.Second) // the first adverts and the tracked script's first run
	dumps := map[string][]map[string]map[string]any{}
	for _, s := range both {
		p := filepath.Join(s.dir, "keepalived.json")
		_ = os.Remove(p)
		_ = s.cmd.Process.Signal(syscall.Signal(36)) // keepalived's SIGJSON (SIGRTMIN+2)
		waitUntil(t, 10*time.Second, s.name+": keepalived.json", func() bool {
			b, err := os.ReadFile(p)
			return err == nil && json.Valid(b)
		})
		b, _ := os.ReadFile(p)
		var v []map[string]map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v\n%s", s.name, err, b)
		}
		if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
			t.Errorf("%s: keepalived.json mode %v", s.name, st.Mode().Perm())
		}
		dumps[s.name] = v
	}
	t.Logf("keepalived's: %v", dumps["keepalived"])
	k, l := dumps["keepalived"], dumps["lvsd"]
	if len(k) != 2 || len(l) != len(k) {
		t.Fatalf("instances: keepalived %d, lvsd %d", len(k), len(l))
	}
	for i := range k {
		for _, obj := range []string{"data", "stats"} {
			kf, lf := k[i][obj], l[i][obj]
			var keys []string
			for key := range kf {
				keys = append(keys, key)
			}
			for key := range lf {
				if _, ok := kf[key]; !ok {
					keys = append(keys, key)
				}
			}
			sort.Strings(keys)
			for _, key := range keys {
				kv, kok := kf[key]
				lv, lok := lf[key]
				switch {
				case !kok || !lok:
					t.Errorf("instance %d %s.%s: keepalived has %v (%v), lvsd %v (%v)", i, obj, key, kok, kv, lok, lv)
				case key == "last_transition":
					// When each entered its state: both set, within 3s.
					kt, lt := kv.(float64), lv.(float64)
					if kt == 0 || lt == 0 || kt-lt > 3 || lt-kt > 3 {
						t.Errorf("instance %d last_transition: keepalived %f, lvsd %f", i, kt, lt)
					}
				case key == "advert_sent":
					// Sent since each became MASTER: within one advert.
					if d := kv.(float64) - lv.(float64); d > 1 || d < -1 {
						t.Errorf("instance %d advert_sent: keepalived %v, lvsd %v", i, kv, lv)
					}
				case !reflect.DeepEqual(kv, lv):
					t.Errorf("instance %d %s.%s: keepalived %s, lvsd %s", i, obj, key, js(kv), js(lv))
				}
			}
		}
	}
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return fmt.Sprint(string(b))
}
