package integration_test

// DR and TUN end to end on the lab VM, the real servers set up only by
// `lvsd realserver` (issue 15): one lvsd director (MASTER of both VIPs),
// two real servers and a client on one LAN (br-lan, 192.0.2.0/24).
//
//   - The DR virtual server is the CommuniGate guide's layout: VIPs on lo,
//     arp_ignore=1, arp_announce=2, persistence 15 s.
//   - The TUN virtual server (ipip) has no persistence: rr spreads the
//     client's connections over both real servers.
//
// rs1's lvsd realserver reads the director's keepalived.conf, rs2's a file
// of its own with a real_server_vips block.
//
// Asserted: before lvsd realserver, a VIP on a real server's lo is answered
// to ARP (two MACs: the problem); with it, only the director's MAC answers;
// every request through either VIP is answered, by the real servers
// directly: the director's IPVS counters see the inbound half only
// (OutPkts 0) while the real servers served every request.
//
// The same boot then runs realserver_pair_test.go's scenarios: drain with
// an established connection, and the DR pair's failover with and without
// lvs_sync_daemon, with lvsd and with keepalived.

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lvsd/lvsd/integration/lab"
)

const (
	rsLabDRVIP  = "192.0.2.100"
	rsLabTUNVIP = "192.0.2.101"
	rsLabReqs   = 40
)

const rsLabDirector = `global_defs {
  router_id dirA
}
vrrp_instance VI_1 {
  state MASTER
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  virtual_ipaddress {
    192.0.2.100/24
    192.0.2.101/24
  }
}
virtual_server 192.0.2.100 80 {
  delay_loop 1
  lb_algo rr
  lb_kind DR
  persistence_timeout 15
  protocol TCP
  real_server 192.0.2.11 80 {
    TCP_CHECK {
      connect_timeout 1
    }
  }
  real_server 192.0.2.12 80 {
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
virtual_server 192.0.2.101 80 {
  delay_loop 1
  lb_algo rr
  lb_kind TUN
  protocol TCP
  real_server 192.0.2.11 80 {
    TCP_CHECK {
      connect_timeout 1
    }
  }
  real_server 192.0.2.12 80 {
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
`

const rsLabScript = `
DR=192.0.2.100
TUN=192.0.2.101
bridge_add br-lan || exit 10
ns_add client && ns_link client eth0 br-lan 192.0.2.1/24 || exit 10
ns_add dirA && ns_link dirA eth0 br-lan 192.0.2.2/24 || exit 10
for r in rs1:11 rs2:12; do
	ns_add "${r%%:*}" && ns_link "${r%%:*}" eth0 br-lan "192.0.2.${r#*:}/24" || exit 10
done
rs_start rs1 || exit 11
rs_start rs2 || exit 11
mac() { cat "/sys/class/net/$1/address"; }
ip netns exec dirA cat /sys/class/net/eth0/address > "$LAB_RESULTS/dirA-mac.txt"
ip netns exec rs1 cat /sys/class/net/eth0/address > "$LAB_RESULTS/rs1-mac.txt"
# arp_macs TAG VIP: the MACs that answer ARP for VIP on the LAN (busybox
# arping from the client, 3 requests).
arp_macs() {
	ip netns exec client busybox arping -c 3 -w 4 -I eth0 "$2" > "$LAB_RESULTS/$1-arping.txt" 2>&1
	true
}

say "=== baseline: a VIP on rs1's lo, default sysctls"
ip -n rs1 addr add "$DR/32" dev lo
arp_macs baseline "$DR"
ip -n rs1 addr del "$DR/32" dev lo

say "=== director and lvsd realserver: rs1 with the director's keepalived.conf, rs2 with its real_server_vips"
director_start dirA lvsd /lab/files/keepalived.conf || exit 12
for r in rs1:keepalived.conf rs2:rs2-vips.conf; do
	f=${r#*:} r=${r%%:*}
	/usr/bin/ip netns exec "$r" lvsd realserver -f "/lab/files/$f" --arp-interface eth0 \
		--state "$LAB_RUN/$r-state.json" > "$LAB_RESULTS/$r-realserver.log" 2>&1 &
	echo $! > "$LAB_RUN/$r-realserver.pid"
done
on_lo() { ip -n "$1" -o addr show dev lo | grep -q " $DR/32 "; }
on_tun() { ip -n "$1" -o addr show dev tunl0 | grep -q " $TUN/32 "; }
both_set() { on_lo rs1 && on_lo rs2 && on_tun rs1 && on_tun rs2; }
dir_ready() { ipvs_has dirA 192.0.2.11:80 && ipvs_has dirA 192.0.2.12:80 && ip -n dirA -o addr show dev eth0 | grep -q " $TUN/24 "; }
ok=yes
wait_until 30 "rs1 and rs2 hold the DR VIP on lo and the TUN VIP on tunl0" both_set || ok=no
wait_until 60 "dirA holds the VIPs and lists both real servers" dir_ready || ok=no
[ "$ok" = yes ] || exit 20
sleep 2
for r in rs1 rs2; do
	{
		ip -n "$r" -o addr show
		for k in all/arp_ignore all/arp_announce lo/arp_ignore lo/arp_announce eth0/arp_ignore eth0/arp_announce tunl0/rp_filter; do
			echo "sysctl $k $(ip netns exec "$r" cat /proc/sys/net/ipv4/conf/$k)"
		done
	} > "$LAB_RESULTS/$r-setup.txt" 2>&1
done
arp_macs dr "$DR"
arp_macs tun "$TUN"
ipvs dirA > "$LAB_RESULTS/ipvs.txt" 2>&1
ip netns exec dirA ipvsadm -Ln --stats > "$LAB_RESULTS/stats-before.txt" 2>&1

say "=== $REQS requests through each VIP"
ip netns exec client labhelper get -url "http://$DR/" -n "$REQS" -timeout 3s > "$LAB_RESULTS/dr-client.json"
say "DR: $(report_line "$LAB_RESULTS/dr-client.json")"
ip netns exec client labhelper get -url "http://$TUN/" -n "$REQS" -timeout 3s > "$LAB_RESULTS/tun-client.json"
say "TUN: $(report_line "$LAB_RESULTS/tun-client.json")"
# The kernel folds its per-CPU counters into the ones it reports every 2 s.
sleep 3
ip netns exec dirA ipvsadm -Ln --stats > "$LAB_RESULTS/stats-after.txt" 2>&1
ip -n rs1 -s -o link show tunl0 > "$LAB_RESULTS/rs1-tunl0.txt" 2>&1

` + rsLabDrainScript + rsLabPairScript + `
say "=== stop: lvsd realserver removes its set-up"
for r in rs1 rs2; do kill "$(cat "$LAB_RUN/$r-realserver.pid")"; done
for r in rs1 rs2; do wait "$(cat "$LAB_RUN/$r-realserver.pid")"; echo "exit $?" >> "$LAB_RESULTS/$r-realserver.log"; done
for r in rs1 rs2; do
	{
		ip -n "$r" -o addr show
		echo "sysctl all/arp_ignore $(ip netns exec "$r" cat /proc/sys/net/ipv4/conf/all/arp_ignore)"
	} > "$LAB_RESULTS/$r-after.txt" 2>&1
done
say "=== done"
exit 0
`

var arpReply = regexp.MustCompile(`(?i)reply from [0-9.]+ \[([0-9a-f:]{17})\]`)

// arpMACs are the distinct MACs in a busybox arping output.
func arpMACs(out string) []string {
	seen := map[string]bool{}
	for _, m := range arpReply.FindAllStringSubmatch(out, -1) {
		seen[strings.ToLower(m[1])] = true
	}
	var macs []string
	for m := range seen {
		macs = append(macs, m)
	}
	sort.Strings(macs)
	return macs
}

// ipvsStatsOf returns the InPkts and OutPkts of the service vs ("TCP
// 192.0.2.100:80") in `ipvsadm -Ln --stats`.
func ipvsStatsOf(text, vs string) (in, out int64, ok bool) {
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) >= 7 && f[0]+" "+f[1] == vs {
			in, _ = strconv.ParseInt(f[3], 10, 64)
			out, _ = strconv.ParseInt(f[4], 10, 64)
			return in, out, true
		}
	}
	return 0, 0, false
}

func TestRealserverLab(t *testing.T) {
	im := needLab(t)
	files := rsLabPairFiles()
	files["keepalived.conf"] = []byte(rsLabDirector)
	files["rs2-vips.conf"] = []byte("real_server_vips {\n  " + rsLabDRVIP + "\n  " + rsLabTUNVIP + " tun\n}\n")
	res := runLab(t, im, lab.Scenario{
		Name:     "realserver-dr-tun",
		Script:   labShell + fmt.Sprintf("REQS=%d\nCONNS=%d\n", rsLabReqs, rsLabConns) + rsLabScript,
		Files:    files,
		WithLVSD: true,
		Timeout:  10 * time.Minute,
	}, "waits.txt", "single-dirA.log", "rs1-realserver.log", "rs1-setup.txt", "ipvs.txt", "stats-after.txt", "dr-arping.txt",
		"drain-ipvs.txt", "drain-hold.err", "lvsd-sync-dirB.log", "lvsd-sync-vrrp.txt", "keepalived-sync-dirB.log", "keepalived-sync-vrrp.txt", "lvsd-nosync-vrrp.txt", "lvsd-nosync-tcp-rs1.txt")
	keepResults(t, res, "realserver")
	if res.ExitCode != 0 {
		t.Fatalf("scenario exit status %d (10 topology, 11 real servers, 12 lvsd, 20 not set up)", res.ExitCode)
	}
	dirMAC := strings.TrimSpace(res.File("dirA-mac.txt"))
	rs1MAC := strings.TrimSpace(res.File("rs1-mac.txt"))

	// The problem: without lvsd realserver, rs1 answers ARP for a VIP on
	// its lo (the director is not started yet), and would take the
	// VIP's traffic from the director.
	if got := arpMACs(res.File("baseline-arping.txt")); !slices.Contains(got, rs1MAC) {
		t.Errorf("baseline: ARP answers for the VIP from %v, want rs1's %s (the problem lvsd realserver solves)", got, rs1MAC)
	}
	// With it: one MAC, the director's, for each VIP.
	for _, tag := range []string{"dr", "tun"} {
		if got := arpMACs(res.File(tag + "-arping.txt")); len(got) != 1 || got[0] != dirMAC {
			t.Errorf("%s VIP: ARP answers from %v, want only the director's %s", tag, got, dirMAC)
		}
	}
	// The CommuniGate layout on each real server.
	for _, rs := range []string{"rs1", "rs2"} {
		setup := res.File(rs + "-setup.txt")
		for _, want := range []string{"lo    inet " + rsLabDRVIP + "/32", "tunl0    inet " + rsLabTUNVIP + "/32",
			"sysctl all/arp_ignore 1", "sysctl all/arp_announce 2", "sysctl lo/arp_ignore 1", "sysctl lo/arp_announce 2",
			"sysctl eth0/arp_ignore 1", "sysctl eth0/arp_announce 2", "sysctl tunl0/rp_filter 0"} {
			if !strings.Contains(setup, want) {
				t.Errorf("%s: no %q in its set-up:\n%s", rs, want, setup)
			}
		}
		after := res.File(rs + "-after.txt")
		if strings.Contains(after, rsLabDRVIP) || strings.Contains(after, rsLabTUNVIP) || !strings.Contains(after, "sysctl all/arp_ignore 0") {
			t.Errorf("%s after stop: VIPs or sysctls left:\n%s", rs, after)
		}
		if !strings.Contains(res.File(rs+"-realserver.log"), "exit 0") {
			t.Errorf("%s: lvsd realserver did not exit 0 on SIGTERM", rs)
		}
	}
	// TUN: rs1 received the requests encapsulated (tunl0 decapsulated them).
	if m := regexp.MustCompile(`RX:\s+bytes\s+packets[^\\]*\\\s+\d+\s+(\d+)`).FindStringSubmatch(res.File("rs1-tunl0.txt")); m == nil || m[1] == "0" {
		t.Errorf("rs1's tunl0 received no packet: %s", res.File("rs1-tunl0.txt"))
	}
	ipvsTab := res.File("ipvs.txt")
	if !regexp.MustCompile(`TCP\s+`+rsLabDRVIP+`:80 rr persistent 15`).MatchString(ipvsTab) ||
		!regexp.MustCompile(`-> 192\.0\.2\.11:80\s+Route`).MatchString(ipvsTab) ||
		!regexp.MustCompile(`-> 192\.0\.2\.12:80\s+Tunnel`).MatchString(ipvsTab) {
		t.Errorf("director's table is not DR persistent 15 + TUN:\n%s", ipvsTab)
	}

	// Traffic: every request answered by a real server.
	for _, x := range []struct{ tag, vip string }{{"dr", rsLabDRVIP}, {"tun", rsLabTUNVIP}} {
		var rep lab.ClientReport
		if err := json.Unmarshal([]byte(res.File(x.tag+"-client.json")), &rep); err != nil {
			t.Fatalf("%s client report: %v", x.tag, err)
		}
		if rep.Requests != rsLabReqs || rep.Failed != 0 || rep.Answers["rs1"]+rep.Answers["rs2"] != rsLabReqs {
			t.Errorf("%s: %d requests, %d failed, answers %v, want all %d answered by rs1/rs2 (errors %q)", x.tag, rep.Requests, rep.Failed, rep.Answers, rsLabReqs, rep.Errors)
		}
		switch x.tag {
		case "dr": // persistence: the one client stays on one real server
			if rep.Answers["rs1"] != rsLabReqs && rep.Answers["rs2"] != rsLabReqs {
				t.Errorf("DR with persistence 15: answers %v, want one real server for the one client", rep.Answers)
			}
		case "tun": // rr: both
			if rep.Answers["rs1"] == 0 || rep.Answers["rs2"] == 0 {
				t.Errorf("TUN rr: answers %v, want both real servers", rep.Answers)
			}
		}
		// The director forwards the inbound half only: its counters
		// grow by the requests' packets, and nothing comes back through it.
		in0, out0, ok0 := ipvsStatsOf(res.File("stats-before.txt"), "TCP "+x.vip+":80")
		in1, out1, ok1 := ipvsStatsOf(res.File("stats-after.txt"), "TCP "+x.vip+":80")
		if !ok0 || !ok1 {
			t.Errorf("%s: no stats for %s", x.tag, x.vip)
			continue
		}
		// Each request is at least 3 packets in (SYN, ACK+data, FIN/ACK).
		if in1-in0 < 3*rsLabReqs || out1 != 0 || out0 != 0 {
			t.Errorf("%s: director InPkts +%d (want >= %d), OutPkts %d -> %d (want 0: replies go from the real servers to the client)", x.tag, in1-in0, 3*rsLabReqs, out0, out1)
		}
		t.Logf("%s %s: %d requests answered %v; director InPkts +%d, OutPkts %d", x.tag, x.vip, rep.Requests, rep.Answers, in1-in0, out1)
	}

	// §3: drain with an established connection; §4: the pair's failover.
	t.Run("drain", func(t *testing.T) { checkDrainDR(t, res) })
	for _, r := range rsLabPairRuns {
		t.Run(r.tag, func(t *testing.T) { checkPairFailover(t, res, r.tag, r.sync) })
	}
}
