package metrics

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"net/netip"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/healthcheck"
	"github.com/lvsd/lvsd/ipvs"
	"github.com/lvsd/lvsd/status"
	"github.com/lvsd/lvsd/vrrp"
	"github.com/lvsd/lvsd/vrrp/advert"
)

const testConf = `
vrrp_script chk_a {
  script "/bin/true"
  interval 2
}
vrrp_script chk_b {
  script "/bin/false"
  init_fail
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  priority 150
  virtual_ipaddress {
    192.0.2.100/24
    192.0.2.101 dev eth1
  }
  track_script {
    chk_a
  }
}
vrrp_instance VI_2 {
  interface eth1
  virtual_router_id 52
  priority 100
  garp_master_delay 2
  virtual_ipaddress {
    198.51.100.1
  }
}
virtual_server 192.0.2.100 80 {
    protocol TCP
  lb_algo wrr
  lb_kind DR
  protocol TCP
  real_server 192.0.2.21 80 {
    weight 10
    TCP_CHECK {
      connect_timeout 3
    }
  }
  real_server 192.0.2.22 80 {
    weight 20
    TCP_CHECK {
      connect_timeout 3
    }
  }
}
virtual_server fwmark 7 {
  lb_algo rr
  lb_kind NAT
  real_server 192.0.2.31 8080 {
    weight 1
  }
}
`

var (
	started = time.Unix(1700000000, 0)
	svcWeb  = ipvs.ServiceKey{Family: ipvs.INET, Proto: ipvs.TCP, Addr: netip.MustParseAddr("192.0.2.100"), Port: 80}
	svcFWM  = ipvs.ServiceKey{Family: ipvs.INET, Fwmark: 7}
	svcDNS  = ipvs.ServiceKey{Family: ipvs.INET, Proto: ipvs.UDP, Addr: netip.MustParseAddr("203.0.113.5"), Port: 53}
)

func dest(addr string, port uint16, w int) *ipvs.Destination {
	return &ipvs.Destination{DestKey: ipvs.DestKey{Addr: netip.MustParseAddr(addr), Port: port}, Fwd: ipvs.Route, Weight: w}
}

// fakeSources returns sources with known values, as the subsystems would
// publish them.
func fakeSources(t *testing.T) (status.Sources, *status.Daemon) {
	t.Helper()
	cfg, diags := conf.Parse("test.conf", testConf, conf.Options{})
	if conf.MaxLevel(diags) >= conf.Error {
		t.Fatalf("config: %v", diags)
	}
	s1, s2 := &vrrp.Stats{}, &vrrp.Stats{}
	s1.AdvertRcvd.Store(11)
	s1.AdvertSent.Store(12)
	s1.BecomeMaster.Store(2)
	s1.ReleaseMaster.Store(1)
	s1.AddrListErr.Store(3)
	s1.PriZeroRcvd.Store(4)
	s1.PriZeroSent.Store(5)
	s1.SendErrors.Store(6)
	s1.AddrErrors.Store(7)
	s1.GARPSent.Store(8)
	s1.VIPRestored.Store(9)
	s1.OwnPackets.Store(10)
	for i, r := range advert.DropReasons() {
		s1.Drops[r].Store(uint64(100 + i)) // too_short 100, length 101, ttl 102, ...
	}
	s2.AdvertRcvd.Store(42)
	instances := []vrrp.InstanceStatus{
		{Name: "VI_1", State: vrrp.StateMaster, Priority: 160, MasterAddr: netip.MustParseAddr("192.0.2.1"), Stats: s1},
		{Name: "VI_2", State: vrrp.StateBackup, Priority: 100, MasterAddr: netip.MustParseAddr("192.0.2.2"), Stats: s2},
	}
	snap := &ipvs.Snapshot{
		Time: started, Fresh: true,
		Services: []ipvs.ServiceStatus{
			{
				Key: svcWeb, VS: "TCP/192.0.2.100:80", Owned: true, InSync: false,
				Desired: &ipvs.Service{ServiceKey: svcWeb, Scheduler: "wrr"}, Kernel: &ipvs.Service{ServiceKey: svcWeb, Scheduler: "wrr"},
				Stats: ipvs.Stats{Connections: 1000, PacketsIn: 2000, PacketsOut: 3000, BytesIn: 4000, BytesOut: 5000},
				Dests: []ipvs.DestStatus{
					{Key: dest("192.0.2.21", 80, 0).DestKey, RS: netip.MustParseAddrPort("192.0.2.21:80"), Healthy: true, Owned: true, InSync: true,
						Desired: dest("192.0.2.21", 80, 10), Kernel: dest("192.0.2.21", 80, 10), ActiveConns: 3, InactiveConns: 4,
						Stats: ipvs.Stats{Connections: 600, PacketsIn: 1200, PacketsOut: 1300, BytesIn: 1400, BytesOut: 1500}},
					// down, still in the kernel: to be removed
					{Key: dest("192.0.2.22", 80, 0).DestKey, Owned: true, Kernel: dest("192.0.2.22", 80, 20), ActiveConns: 1, InactiveConns: 2,
						Stats: ipvs.Stats{Connections: 400}},
				},
			},
			{
				Key: svcFWM, VS: "FWM/7", Owned: true, InSync: true,
				Desired: &ipvs.Service{ServiceKey: svcFWM, Scheduler: "rr"}, Kernel: &ipvs.Service{ServiceKey: svcFWM, Scheduler: "rr"},
				Stats: ipvs.Stats{Connections: 7},
				Dests: []ipvs.DestStatus{{Key: dest("192.0.2.31", 8080, 0).DestKey, RS: netip.MustParseAddrPort("192.0.2.31:8080"), Healthy: true, Owned: true, InSync: true,
					Desired: dest("192.0.2.31", 8080, 1), Kernel: dest("192.0.2.31", 8080, 1), ActiveConns: 5}},
			},
			{
				Key: svcDNS, Kernel: &ipvs.Service{ServiceKey: svcDNS, Scheduler: "sh"}, Stats: ipvs.Stats{Connections: 9},
				Dests: []ipvs.DestStatus{{Key: dest("203.0.113.6", 53, 0).DestKey, Kernel: dest("203.0.113.6", 53, 3)}},
			},
		},
		VirtualServers: []ipvs.VSStatus{
			{VS: "TCP/192.0.2.100:80", QuorumUp: true, WeightSum: 10, Quorum: 1, Services: []ipvs.ServiceKey{svcWeb},
				RealServers: []ipvs.RSStatus{{RS: netip.MustParseAddrPort("192.0.2.21:80"), Up: true, Weight: 10, DynamicWeight: -1},
					{RS: netip.MustParseAddrPort("192.0.2.22:80"), Up: false, Weight: 20, DynamicWeight: -1}}},
			{VS: "FWM/7", QuorumUp: false, WeightSum: 1, Quorum: 1, SorryActive: true, Services: []ipvs.ServiceKey{svcFWM},
				RealServers: []ipvs.RSStatus{{RS: netip.MustParseAddrPort("192.0.2.31:8080"), Up: true, Weight: 1, DynamicWeight: -1, Drained: true}}},
		},
		Counters: ipvs.Counters{ServicesCreated: 2, ServicesUpdated: 3, ServicesRemoved: 4, DestsCreated: 5, DestsUpdated: 6, DestsRemoved: 7,
			Errors: 8, DriftRepairs: 9, Reconciles: 10, HealthEvents: 11, QuorumChanges: 12},
	}
	health := []healthcheck.RealServerStatus{
		{VS: "TCP/192.0.2.100:80", RS: netip.MustParseAddrPort("192.0.2.21:80"), Up: true, Weight: -1, Transitions: 1,
			Checkers: []healthcheck.CheckerStatus{{Type: "TCP_CHECK", Up: true, LastOK: true, Checks: 30}}},
		{VS: "TCP/192.0.2.100:80", RS: netip.MustParseAddrPort("192.0.2.22:80"), Up: false, Weight: -1, Transitions: 3, Reason: "connection refused",
			Checkers: []healthcheck.CheckerStatus{{Type: "TCP_CHECK", Up: false, LastOK: false, LastReason: "connection refused", Checks: 30, Failures: 4}}},
	}
	// chk_a ran three times (ok, failed, ok); chk_b never ran.
	scripts := status.NewScriptRecorder()
	results := []bool{true, false, true}
	exec := scripts.ScriptExec(func(vrrp.ScriptConfig, *conf.Global) vrrp.ScriptExec {
		return func(context.Context, time.Duration) (bool, string) {
			ok := results[0]
			results = results[1:]
			return ok, ""
		}
	})(vrrp.ScriptConfig{Name: "chk_a", Rise: 1, Fall: 1}, &cfg.Global)
	for range 3 {
		exec(context.Background(), time.Second)
	}
	dm := status.NewDaemon("1.2.3", "go1.26.8", "/etc/keepalived/keepalived.conf", "lb1", started)
	dm.RecordReload(started.Add(10*time.Second), nil)
	dm.RecordReload(started.Add(20*time.Second), fmt.Errorf("bad"))
	return status.Sources{
		Daemon:     dm,
		Config:     func() *conf.Config { return cfg },
		VRRPConfig: func() *conf.Config { return cfg },
		VRRP:       func() []vrrp.InstanceStatus { return instances },
		Scripts:    func() []status.Script { return scripts.Scripts(cfg) },
		Health:     func() []healthcheck.RealServerStatus { return health },
		IPVS:       func() *ipvs.Snapshot { return snap },
		Resyncs:    func() map[string]uint64 { return map[string]uint64{"vrrp_address": 3, "vrrp_link": 1, "localaddr": 2} },
		Repairs: func() map[string]uint64 {
			return map[string]uint64{"vip": 4, "route": 0, "link": 5, "socket": 6, "source": 7}
		},
	}, dm
}

// gather collects c through a pedantic registry (which checks every metric
// against its description) and flattens the result to
// name{label="value",...} -> value; histograms give _bucket, _sum, _count.
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	return flatten(t, mfs)
}

// flatten is gather's flattening of metric families.
func flatten(t *testing.T, mfs []*dto.MetricFamily) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	put := func(name string, labels []*dto.LabelPair, v float64, extra ...string) {
		var ls []string
		for _, l := range labels {
			ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
		}
		ls = append(ls, extra...)
		sort.Strings(ls)
		key := name
		if len(ls) > 0 {
			key += "{" + strings.Join(ls, ",") + "}"
		}
		if _, dup := out[key]; dup {
			t.Errorf("duplicate series %s", key)
		}
		out[key] = v
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetType() {
			case dto.MetricType_GAUGE:
				put(mf.GetName(), m.GetLabel(), m.GetGauge().GetValue())
			case dto.MetricType_COUNTER:
				put(mf.GetName(), m.GetLabel(), m.GetCounter().GetValue())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				put(mf.GetName()+"_count", m.GetLabel(), float64(h.GetSampleCount()))
				put(mf.GetName()+"_sum", m.GetLabel(), h.GetSampleSum())
				for _, b := range h.GetBucket() {
					put(mf.GetName()+"_bucket", m.GetLabel(), float64(b.GetCumulativeCount()), fmt.Sprintf("le=%q", fmt.Sprint(b.GetUpperBound())))
				}
			default:
				t.Errorf("%s: unexpected type %v", mf.GetName(), mf.GetType())
			}
		}
	}
	return out
}

func TestCollector(t *testing.T) {
	src, _ := fakeSources(t)
	checks := NewChecks()
	c := New(src, checks)
	checks.Observe(healthcheck.Observation{Type: "TCP_CHECK", Duration: 2 * time.Millisecond, OK: true})
	checks.Observe(healthcheck.Observation{Type: "TCP_CHECK", Duration: 3 * time.Second, OK: false})
	checks.Observe(healthcheck.Observation{Type: "HTTP_GET", Duration: 40 * time.Millisecond, OK: true})
	got := gather(t, c)

	want := map[string]float64{
		`keepalived_up`: 1,
		`lvsd_build_info{goversion="go1.26.8",version="1.2.3"}`:                                               1,
		`lvsd_start_time_seconds`:                                                                             1700000000,
		`lvsd_config_reloads_total{result="success"}`:                                                         1,
		`lvsd_config_reloads_total{result="failure"}`:                                                         1,
		`lvsd_config_last_reload_timestamp_seconds`:                                                           1700000020,
		`lvsd_config_last_reload_success_timestamp_seconds`:                                                   1700000010,
		`lvsd_config_last_reload_successful`:                                                                  0,
		`keepalived_script_status{name="chk_a"}`:                                                              1,
		`lvsd_vrrp_script_runs_total{name="chk_a",result="success"}`:                                          2,
		`lvsd_vrrp_script_runs_total{name="chk_a",result="failure"}`:                                          1,
		`lvsd_vrrp_script_runs_total{name="chk_b",result="success"}`:                                          0,
		`lvsd_vrrp_script_runs_total{name="chk_b",result="failure"}`:                                          0,
		`keepalived_script_status{name="chk_b"}`:                                                              0,
		`lvsd_ipvs_up`:                                                                                        1,
		`lvsd_ipvs_reconciles_total`:                                                                          10,
		`lvsd_ipvs_operations_total{op="service_create"}`:                                                     2,
		`lvsd_ipvs_operations_total{op="service_update"}`:                                                     3,
		`lvsd_ipvs_operations_total{op="service_remove"}`:                                                     4,
		`lvsd_ipvs_operations_total{op="dest_create"}`:                                                        5,
		`lvsd_ipvs_operations_total{op="dest_update"}`:                                                        6,
		`lvsd_ipvs_operations_total{op="dest_remove"}`:                                                        7,
		`lvsd_ipvs_errors_total`:                                                                              8,
		`lvsd_ipvs_drift_repairs_total`:                                                                       9,
		`lvsd_ipvs_health_events_total`:                                                                       11,
		`lvsd_ipvs_quorum_changes_total`:                                                                      12,
		`lvsd_virtual_server_quorum_up{virtual_server="TCP/192.0.2.100:80"}`:                                  1,
		`lvsd_virtual_server_quorum_up{virtual_server="FWM/7"}`:                                               0,
		`lvsd_virtual_server_sorry_server_active{virtual_server="TCP/192.0.2.100:80"}`:                        0,
		`lvsd_virtual_server_sorry_server_active{virtual_server="FWM/7"}`:                                     1,
		`lvsd_real_server_up{real_server="192.0.2.21:80",virtual_server="TCP/192.0.2.100:80"}`:                1,
		`lvsd_real_server_up{real_server="192.0.2.22:80",virtual_server="TCP/192.0.2.100:80"}`:                0,
		`lvsd_real_server_up{real_server="192.0.2.31:8080",virtual_server="FWM/7"}`:                           1,
		`lvsd_real_server_transitions_total{real_server="192.0.2.21:80",virtual_server="TCP/192.0.2.100:80"}`: 1,
		`lvsd_real_server_transitions_total{real_server="192.0.2.22:80",virtual_server="TCP/192.0.2.100:80"}`: 3,
		`lvsd_real_server_weight{real_server="192.0.2.21:80",virtual_server="TCP/192.0.2.100:80"}`:            10,
		`lvsd_real_server_weight{real_server="192.0.2.22:80",virtual_server="TCP/192.0.2.100:80"}`:            20,
		`lvsd_real_server_weight{real_server="192.0.2.31:8080",virtual_server="FWM/7"}`:                       1,
		`lvsd_real_server_drained{real_server="192.0.2.21:80",virtual_server="TCP/192.0.2.100:80"}`:           0,
		`lvsd_real_server_drained{real_server="192.0.2.22:80",virtual_server="TCP/192.0.2.100:80"}`:           0,
		`lvsd_real_server_drained{real_server="192.0.2.31:8080",virtual_server="FWM/7"}`:                      1,

		`lvsd_netlink_resyncs_total{watch="vrrp_address"}`: 3,
		`lvsd_netlink_resyncs_total{watch="vrrp_link"}`:    1,
		`lvsd_netlink_resyncs_total{watch="localaddr"}`:    2,
		`lvsd_vrrp_repairs_total{what="vip"}`:              4,
		`lvsd_vrrp_repairs_total{what="route"}`:            0,
		`lvsd_vrrp_repairs_total{what="link"}`:             5,
		`lvsd_vrrp_repairs_total{what="socket"}`:           6,
		`lvsd_vrrp_repairs_total{what="source"}`:           7,

		`lvsd_healthcheck_checks_total{result="success",type="TCP_CHECK"}`: 1,
		`lvsd_healthcheck_checks_total{result="failure",type="TCP_CHECK"}`: 1,
		`lvsd_healthcheck_checks_total{result="success",type="HTTP_GET"}`:  1,
		`lvsd_healthcheck_duration_seconds_count{type="TCP_CHECK"}`:        2,
		`lvsd_healthcheck_duration_seconds_sum{type="TCP_CHECK"}`:          3.002,
		`lvsd_healthcheck_duration_seconds_count{type="HTTP_GET"}`:         1,
		`lvsd_healthcheck_duration_seconds_sum{type="HTTP_GET"}`:           0.04,
	}
	for _, b := range CheckDurationBuckets {
		le := fmt.Sprint(b)
		tcp, http := 0.0, 0.0
		if b >= 0.002 {
			tcp++
		}
		if b >= 3 {
			tcp++
		}
		if b >= 0.04 {
			http++
		}
		want[`lvsd_healthcheck_duration_seconds_bucket{le="`+le+`",type="TCP_CHECK"}`] = tcp
		want[`lvsd_healthcheck_duration_seconds_bucket{le="`+le+`",type="HTTP_GET"}`] = http
	}

	// VRRP: keepalived-exporter's names and labels.
	vi1 := `{iname="VI_1",intf="eth0",state="MASTER",vrid="51"}`
	vi2 := `{iname="VI_2",intf="eth1",state="BACKUP",vrid="52"}`
	drop := func(r advert.DropReason) float64 {
		for i, x := range advert.DropReasons() {
			if x == r {
				return float64(100 + i)
			}
		}
		t.Fatalf("no reason %v", r)
		return 0
	}
	for name, v := range map[string][2]float64{
		"keepalived_advertisements_received_total":        {11, 42},
		"keepalived_advertisements_sent_total":            {12, 0},
		"keepalived_become_master_total":                  {2, 0},
		"keepalived_release_master_total":                 {1, 0},
		"keepalived_packet_length_errors_total":           {drop(advert.DropTooShort) + drop(advert.DropLength), 0},
		"keepalived_advertisements_interval_errors_total": {drop(advert.DropInterval), 0},
		"keepalived_ip_ttl_errors_total":                  {drop(advert.DropTTL), 0},
		"keepalived_invalid_type_received_total":          {drop(advert.DropType), 0},
		"keepalived_address_list_errors_total":            {3, 0},
		"keepalived_authentication_invalid_total":         {0, 0},
		"keepalived_authentication_mismatch_total":        {drop(advert.DropAuthType), 0},
		"keepalived_authentication_failure_total":         {drop(advert.DropAuthFailure), 0},
		"keepalived_priority_zero_received_total":         {4, 0},
		"keepalived_priority_zero_sent_total":             {5, 0},
		"keepalived_gratuitous_arp_delay_total":           {5, 2},
	} {
		want[name+vi1], want[name+vi2] = v[0], v[1]
	}
	want[`keepalived_vrrp_state{iname="VI_1",intf="eth0",ip_address="192.0.2.100/24",vrid="51"}`] = 2
	want[`keepalived_vrrp_state{iname="VI_1",intf="eth1",ip_address="192.0.2.101",vrid="51"}`] = 2
	want[`keepalived_vrrp_state{iname="VI_2",intf="eth1",ip_address="198.51.100.1",vrid="52"}`] = 1
	for _, r := range advert.DropReasons() {
		want[`lvsd_vrrp_drops_total{iname="VI_1",reason="`+r.String()+`"}`] = drop(r)
		want[`lvsd_vrrp_drops_total{iname="VI_2",reason="`+r.String()+`"}`] = 0
	}
	for name, v := range map[string][2]float64{
		"lvsd_vrrp_priority":                  {160, 100},
		"lvsd_vrrp_send_errors_total":         {6, 0},
		"lvsd_vrrp_address_errors_total":      {7, 0},
		"lvsd_vrrp_gratuitous_arp_sent_total": {8, 0},
		"lvsd_vrrp_vip_restored_total":        {9, 0},
		"lvsd_vrrp_own_packets_total":         {10, 0},
	} {
		want[name+`{iname="VI_1"}`], want[name+`{iname="VI_2"}`] = v[0], v[1]
	}

	// IPVS services: node_exporter's labels.
	web := `local_address="192.0.2.100",local_mark="",local_port="80",proto="TCP"`
	fwm := `local_address="",local_mark="00000007",local_port="0",proto="FWM"`
	dns := `local_address="203.0.113.5",local_mark="",local_port="53",proto="UDP"`
	for name, v := range map[string][3]float64{
		"lvsd_ipvs_service_connections_total":      {1000, 7, 9},
		"lvsd_ipvs_service_incoming_packets_total": {2000, 0, 0},
		"lvsd_ipvs_service_outgoing_packets_total": {3000, 0, 0},
		"lvsd_ipvs_service_incoming_bytes_total":   {4000, 0, 0},
		"lvsd_ipvs_service_outgoing_bytes_total":   {5000, 0, 0},
	} {
		want[name+"{"+web+"}"], want[name+"{"+fwm+"}"], want[name+"{"+dns+"}"] = v[0], v[1], v[2]
	}
	want[`lvsd_ipvs_service_in_sync{`+web+`}`] = 0
	want[`lvsd_ipvs_service_in_sync{`+fwm+`}`] = 1

	be := func(local, remote string, port string) string {
		return local + `,remote_address="` + remote + `",remote_port="` + port + `"`
	}
	be21, be22 := be(web, "192.0.2.21", "80"), be(web, "192.0.2.22", "80")
	be31, be6 := be(fwm, "192.0.2.31", "8080"), be(dns, "203.0.113.6", "53")
	sortLabels := func(s string) string {
		parts := strings.Split(s, ",")
		sort.Strings(parts)
		return "{" + strings.Join(parts, ",") + "}"
	}
	want[`lvsd_ipvs_service_info`+sortLabels(web+`,owned="true",scheduler="wrr",virtual_server="TCP/192.0.2.100:80"`)] = 1
	want[`lvsd_ipvs_service_info`+sortLabels(fwm+`,owned="true",scheduler="rr",virtual_server="FWM/7"`)] = 1
	want[`lvsd_ipvs_service_info`+sortLabels(dns+`,owned="false",scheduler="sh",virtual_server=""`)] = 1
	for _, x := range []struct {
		labels                                          string
		active, inactive, weight, conns, pi, po, bi, bo float64
	}{
		{be21, 3, 4, 10, 600, 1200, 1300, 1400, 1500},
		{be22, 1, 2, 20, 400, 0, 0, 0, 0},
		{be31, 5, 0, 1, 0, 0, 0, 0, 0},
		{be6, 0, 0, 3, 0, 0, 0, 0, 0},
	} {
		l := sortLabels(x.labels)
		want["node_ipvs_backend_connections_active"+l] = x.active
		want["node_ipvs_backend_connections_inactive"+l] = x.inactive
		want["node_ipvs_backend_weight"+l] = x.weight
		want["lvsd_ipvs_backend_connections_total"+l] = x.conns
		want["lvsd_ipvs_backend_incoming_packets_total"+l] = x.pi
		want["lvsd_ipvs_backend_outgoing_packets_total"+l] = x.po
		want["lvsd_ipvs_backend_incoming_bytes_total"+l] = x.bi
		want["lvsd_ipvs_backend_outgoing_bytes_total"+l] = x.bo
	}
	want["lvsd_ipvs_backend_desired_weight"+sortLabels(be21)] = 10
	want["lvsd_ipvs_backend_in_sync"+sortLabels(be21)] = 1
	want["lvsd_ipvs_backend_desired_weight"+sortLabels(be31)] = 1
	want["lvsd_ipvs_backend_in_sync"+sortLabels(be31)] = 1

	for k, v := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("missing %s (want %v)", k, v)
		case !near(g, v):
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s = %v", k, v)
		}
	}
}

func near(a, b float64) bool {
	d := a - b
	return d < 1e-9 && d > -1e-9
}

// TestCollectorNoSubsystems: with nothing running the daemon metrics are
// still there, and an unavailable IPVS says so.
func TestCollectorNoSubsystems(t *testing.T) {
	cfg, _ := conf.Parse("t.conf", "virtual_server 192.0.2.1 80 {\nprotocol TCP\n real_server 192.0.2.2 80 {\n }\n}\n", conf.Options{})
	dm := status.NewDaemon("v", "go", "f", "h", started)
	dm.SetIPVSUnavailable("no IPVS in this kernel")
	got := gather(t, New(status.Sources{Daemon: dm, Config: func() *conf.Config { return cfg }}, nil))
	want := map[string]float64{
		"keepalived_up": 1, `lvsd_build_info{goversion="go",version="v"}`: 1, "lvsd_start_time_seconds": 1700000000,
		`lvsd_config_reloads_total{result="success"}`: 0, `lvsd_config_reloads_total{result="failure"}`: 0,
		"lvsd_config_last_reload_timestamp_seconds": 0, "lvsd_config_last_reload_success_timestamp_seconds": 1700000000,
		"lvsd_config_last_reload_successful": 1, "lvsd_ipvs_up": 0,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

// TestHandler scrapes the HTTP handler in the text format.
func TestHandler(t *testing.T) {
	src, _ := fakeSources(t)
	srv := httptest.NewServer(Handler(New(src, nil)))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range []string{
		`keepalived_vrrp_state{iname="VI_1",intf="eth0",ip_address="192.0.2.100/24",vrid="51"} 2`,
		`keepalived_advertisements_received_total{iname="VI_2",intf="eth1",state="BACKUP",vrid="52"} 42`,
		`lvsd_build_info{goversion="go1.26.8",version="1.2.3"} 1`,
		"# TYPE keepalived_ip_ttl_errors_total counter",
		"# TYPE node_ipvs_backend_weight gauge",
		"go_goroutines ",
		"process_start_time_seconds ",
	} {
		if !strings.Contains(string(body), line) {
			t.Errorf("scrape lacks %q", line)
		}
	}
}

// TestDocumented: docs/lvsd.md lists every metric the Collector describes.
func TestDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/lvsd.md")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *prometheus.Desc, 200)
	New(status.Sources{}, nil).Describe(ch)
	close(ch)
	re := regexp.MustCompile(`fqName: "([^"]+)"`)
	n := 0
	for d := range ch {
		m := re.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no name in %s", d)
		}
		n++
		if !strings.Contains(string(doc), "| `"+m[1]+"` |") {
			t.Errorf("docs/lvsd.md does not list %s", m[1])
		}
	}
	if n < 60 {
		t.Errorf("only %d metrics described", n)
	}
}
