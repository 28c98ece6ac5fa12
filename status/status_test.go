package status

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/healthcheck"
	"github.com/lvsd/lvsd/ipvs"
	"github.com/lvsd/lvsd/vrrp"
	"github.com/lvsd/lvsd/vrrp/advert"
)

const testConf = `
vrrp_script chk_gw {
  script "/usr/local/bin/check-gw --quiet"
  init_fail
}
vrrp_instance VI_WEB {
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  virtual_ipaddress {
    192.0.2.100/24
    192.0.2.101 dev eth1
  }
}
vrrp_instance VI_DB {
  interface eth1
  virtual_router_id 52
  priority 100
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
    HTTP_GET {
      url {
        path /health
      }
    }
  }
}
`

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func dst(a string, port uint16, w int) *ipvs.Destination {
	return &ipvs.Destination{DestKey: ipvs.DestKey{Addr: addr(a), Port: port}, Fwd: ipvs.Route, Weight: w}
}

// testSources returns fixed sources; every call of VRRP counts one more
// advert received by VI_DB (so that a refreshed page differs).
func testSources(t testing.TB) (Sources, *atomic.Uint64) {
	cfg, diags := conf.Parse("keepalived.conf", testConf, conf.Options{})
	if conf.MaxLevel(diags) >= conf.Error {
		t.Fatalf("config: %v", diags)
	}
	web, db := &vrrp.Stats{}, &vrrp.Stats{}
	web.AdvertSent.Store(120)
	web.BecomeMaster.Store(1)
	web.Drops[advert.DropTTL].Store(2)
	web.Drops[advert.DropLength].Store(1)
	web.Drops[advert.DropTooShort].Store(1)
	var calls atomic.Uint64
	svc := ipvs.ServiceKey{Family: ipvs.INET, Proto: ipvs.TCP, Addr: addr("192.0.2.100"), Port: 80}
	foreign := ipvs.ServiceKey{Family: ipvs.INET, Proto: ipvs.UDP, Addr: addr("203.0.113.5"), Port: 53}
	snap := &ipvs.Snapshot{
		Time: t0, Fresh: true,
		Services: []ipvs.ServiceStatus{
			{Key: svc, VS: "TCP/192.0.2.100:80", Owned: true, InSync: true,
				Desired: &ipvs.Service{ServiceKey: svc, Scheduler: "wrr"}, Kernel: &ipvs.Service{ServiceKey: svc, Scheduler: "wrr"},
				Stats: ipvs.Stats{Connections: 1000},
				Dests: []ipvs.DestStatus{
					{Key: dst("192.0.2.21", 80, 0).DestKey, RS: netip.MustParseAddrPort("192.0.2.21:80"), Healthy: true, Owned: true, InSync: true,
						Desired: dst("192.0.2.21", 80, 10), Kernel: dst("192.0.2.21", 80, 10), ActiveConns: 3, InactiveConns: 4},
				}},
			{Key: foreign, Kernel: &ipvs.Service{ServiceKey: foreign, Scheduler: "sh"}},
		},
		VirtualServers: []ipvs.VSStatus{{VS: "TCP/192.0.2.100:80", QuorumUp: true, WeightSum: 10, Quorum: 1,
			RealServers: []ipvs.RSStatus{{RS: netip.MustParseAddrPort("192.0.2.21:80"), Up: true, Weight: 10, DynamicWeight: -1},
				{RS: netip.MustParseAddrPort("192.0.2.22:80"), Up: false, Weight: 20, DynamicWeight: -1}}}},
		Counters: ipvs.Counters{Reconciles: 7, DriftRepairs: 1},
	}
	health := []healthcheck.RealServerStatus{
		{VS: "TCP/192.0.2.100:80", RS: netip.MustParseAddrPort("192.0.2.21:80"), Up: true, Weight: -1, Transitions: 1,
			Checkers: []healthcheck.CheckerStatus{{Type: "TCP_CHECK", Up: true, LastOK: true, LastDuration: 2 * time.Millisecond, Checks: 10}}},
		{VS: "TCP/192.0.2.100:80", RS: netip.MustParseAddrPort("192.0.2.22:80"), Up: false, Weight: -1, Transitions: 2, Reason: "HTTP status 503",
			Checkers: []healthcheck.CheckerStatus{{Type: "HTTP_GET", Up: false, LastOK: false, LastReason: "HTTP status 503", Checks: 10, Failures: 3}}},
	}
	dm := NewDaemon("1.2.3", "go1.26.8", "/etc/keepalived/keepalived.conf", "lb1", t0)
	return Sources{
		Daemon:     dm,
		Config:     func() *conf.Config { return cfg },
		VRRPConfig: func() *conf.Config { return cfg },
		VRRP: func() []vrrp.InstanceStatus {
			db.AdvertRcvd.Store(1000 + calls.Add(1))
			return []vrrp.InstanceStatus{
				{Name: "VI_WEB", State: vrrp.StateMaster, Priority: 150, MasterAddr: addr("192.0.2.1"), Stats: web},
				{Name: "VI_DB", State: vrrp.StateBackup, Priority: 100, MasterAddr: addr("192.0.2.2"), Stats: db},
			}
		},
		Scripts: func() []Script { return ConfigScripts(cfg) },
		Health:  func() []healthcheck.RealServerStatus { return health },
		IPVS:    func() *ipvs.Snapshot { return snap },
	}, &calls
}

func TestBuild(t *testing.T) {
	src, _ := testSources(t)
	st := Build(src)
	if len(st.Instances) != 2 {
		t.Fatalf("instances: %+v", st.Instances)
	}
	web, db := st.Instances[0], st.Instances[1]
	if web.Name != "VI_WEB" || web.State != "MASTER" || web.StateCode != 2 || web.Priority != 150 || web.MasterAddr != "192.0.2.1" ||
		web.Interface != "eth0" || web.VRID != 51 || web.Stats.AdvertSent != 120 || web.Stats.Drop(advert.DropTTL) != 2 {
		t.Errorf("VI_WEB: %+v", web)
	}
	if got := web.VIPs; len(got) != 2 || got[0] != (VIP{"192.0.2.100/24", "eth0"}) || got[1] != (VIP{"192.0.2.101", "eth1"}) {
		t.Errorf("VI_WEB VIPs: %+v", got)
	}
	if db.State != "BACKUP" || db.StateCode != 1 || db.Stats.AdvertRcvd != 1001 || len(db.Stats.Drops) != len(advert.DropReasons()) {
		t.Errorf("VI_DB: %+v", db)
	}
	if len(st.Scripts) != 1 || st.Scripts[0].Good || st.Scripts[0].Command != "/usr/local/bin/check-gw --quiet" {
		t.Errorf("scripts: %+v", st.Scripts)
	}
	if !st.IPVS.Running || !st.IPVS.Fresh || st.IPVS.Counters.Reconciles != 7 {
		t.Errorf("ipvs: %+v", st.IPVS)
	}
	if len(st.VirtualServers) != 1 {
		t.Fatalf("virtual servers: %+v", st.VirtualServers)
	}
	vs := st.VirtualServers[0]
	if vs.Key != "TCP/192.0.2.100:80" || vs.Name != "192.0.2.100:80" || !vs.InSync || vs.QuorumUp == nil || !*vs.QuorumUp || len(vs.Services) != 1 {
		t.Errorf("vs: %+v", vs)
	}
	d := vs.Services[0].Dests[0]
	if d.RS != "192.0.2.21:80" || *d.DesiredWeight != 10 || *d.KernelWeight != 10 || d.ActiveConns != 3 || d.Forward != "DR" && d.Forward != ipvs.Route.String() {
		t.Errorf("dest: %+v", d)
	}
	r1, r2 := vs.RealServers[0], vs.RealServers[1]
	if !r1.Up || !r1.HealthKnown || r1.Weight != 10 || r1.EffectiveWeight != 10 || len(r1.Checkers) != 1 || r1.Checkers[0].LastDuration != 0.002 {
		t.Errorf("rs1: %+v", r1)
	}
	if r2.Up || r2.Reason != "HTTP status 503" || r2.Transitions != 2 || r2.Checkers[0].Failures != 3 {
		t.Errorf("rs2: %+v", r2)
	}
	if len(st.OtherServices) != 1 || st.OtherServices[0].Name != "UDP 203.0.113.5:53" || st.OtherServices[0].Owned {
		t.Errorf("other services: %+v", st.OtherServices)
	}
}

// Before the engine publishes anything the configured instances show INIT.
func TestBuildBeforeStart(t *testing.T) {
	src, _ := testSources(t)
	src.VRRP = func() []vrrp.InstanceStatus { return nil }
	src.IPVS, src.Health = nil, nil
	src.Daemon.SetIPVSUnavailable("IPVS is not available: no ip_vs module")
	st := Build(src)
	if len(st.Instances) != 2 || st.Instances[0].State != "INIT" || st.Instances[0].StateCode != 0 || st.Instances[0].Priority != 150 {
		t.Errorf("instances: %+v", st.Instances)
	}
	if st.IPVS.Running || st.IPVS.Error != "IPVS is not available: no ip_vs module" {
		t.Errorf("ipvs: %+v", st.IPVS)
	}
	rs := st.VirtualServers[0].RealServers
	if rs[0].HealthKnown || !rs[0].Up || rs[0].EffectiveWeight != -1 {
		t.Errorf("real servers: %+v", rs)
	}
}

// The stats dump has keepalived's layout, line for line, then lvsd's drops.
func TestWriteStats(t *testing.T) {
	src, _ := testSources(t)
	var b bytes.Buffer
	if err := WriteStats(&b, Build(src)); err != nil {
		t.Fatal(err)
	}
	want := `VRRP Instance: VI_WEB
  Advertisements:
    Received: 0
    Sent: 120
  Became master: 1
  Released master: 0
  Packet Errors:
    Length: 2
    TTL: 2
    Invalid Type: 0
    Advertisement Interval: 0
    Address List: 0
  Authentication Errors:
    Invalid Type: 0
    Type Mismatch: 0
    Failure: 0
  Priority Zero:
    Received: 0
    Sent: 0
  Dropped (lvsd):
`
	for _, r := range advert.DropReasons() {
		n := "0"
		switch r {
		case advert.DropTTL:
			n = "2"
		case advert.DropLength, advert.DropTooShort:
			n = "1"
		}
		want += "    " + r.String() + ": " + n + "\n"
	}
	got := b.String()
	if !strings.HasPrefix(got, want) {
		t.Errorf("stats dump:\n%s\nwant prefix:\n%s", got, want)
	}
	if !strings.Contains(got, "VRRP Instance: VI_DB\n  Advertisements:\n    Received: 1001\n") {
		t.Errorf("VI_DB missing:\n%s", got)
	}
}

func TestWriteData(t *testing.T) {
	src, _ := testSources(t)
	var b bytes.Buffer
	if err := WriteData(&b, Build(src)); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{
		"------< VRRP Topology >------\n VRRP Instance = VI_WEB\n   VRRP Version = 2\n   State = MASTER\n",
		"   Interface = eth0\n",
		"   Virtual Router ID = 51\n   Priority = 150\n   Effective priority = 150\n   Advert interval = 1000 milli-sec\n",
		"   Virtual IP (2):\n     192.0.2.100/24 dev eth0 scope global set\n     192.0.2.101 dev eth1 scope global set\n",
		" VRRP Instance = VI_DB\n", "   State = BACKUP\n", "     198.51.100.1 dev eth1 scope global\n",
		"------< VRRP Scripts >------\n VRRP Script = chk_gw\n   Command = '/usr/local/bin/check-gw --quiet'\n   Status = BAD\n",
		"------< LVS Topology >------\n IPVS = running\n VS = 192.0.2.100:80\n",
		"   RS = 192.0.2.22:80\n     weight = 20\n     alive = no\n     HTTP_GET = down, last check failed: HTTP status 503\n",
		"   Service = TCP 192.0.2.100:80 (in sync)\n     -> 192.0.2.21:80 weight 10 (kernel 10) in sync active 3 inactive 4\n",
		" Other service = UDP 203.0.113.5:53 (not lvsd's)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("data dump lacks %q\n--- dump:\n%s", want, got)
		}
	}
}

func get(t *testing.T, h http.Handler, path string) (*http.Response, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestStatusJSON(t *testing.T) {
	src, _ := testSources(t)
	resp, body := get(t, Handler(src, nil), "/status")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var st struct {
		Host      string `json:"host"`
		Instances []struct {
			Name, State string
			MasterAddr  string `json:"master_addr"`
			Priority    int
		} `json:"instances"`
		VirtualServers []struct {
			Key      string
			Services []struct {
				Dests []struct {
					DesiredWeight *int `json:"desired_weight"`
					KernelWeight  *int `json:"kernel_weight"`
				}
			}
			RealServers []struct {
				Addr string
				Up   bool
			} `json:"real_servers"`
		} `json:"virtual_servers"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Host != "lb1" || len(st.Instances) != 2 || st.Instances[0].State != "MASTER" || st.Instances[0].MasterAddr != "192.0.2.1" ||
		st.Instances[1].Priority != 100 {
		t.Errorf("instances: %+v", st)
	}
	vs := st.VirtualServers[0]
	if vs.Key != "TCP/192.0.2.100:80" || *vs.Services[0].Dests[0].KernelWeight != 10 || !vs.RealServers[0].Up || vs.RealServers[1].Up {
		t.Errorf("virtual servers: %+v", st.VirtualServers)
	}
	if _, body := get(t, Handler(src, nil), "/nothing"); !strings.Contains(body, "404") {
		t.Errorf("unknown path: %q", body)
	}
}

func TestPage(t *testing.T) {
	src, _ := testSources(t)
	resp, body := get(t, Handler(src, nil), "/")
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	for _, want := range []string{
		"<title>lvsd on lb1</title>",
		`<tr data-instance="VI_WEB" data-state="MASTER">`,
		`<span class="st master">MASTER</span>`,
		`<tr data-instance="VI_DB" data-state="BACKUP">`,
		`<td class="num adv-in">1001</td>`,
		`<tr data-rs="192.0.2.21:80" data-health="up">`,
		`<tr data-rs="192.0.2.22:80" data-health="down">`,
		"HTTP_GET failed: HTTP status 503",
		"UDP 203.0.113.5:53",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// The CSP allows exactly the page's inline script, and nothing external
	// is loaded.
	csp := resp.Header.Get("Content-Security-Policy")
	m := regexp.MustCompile(`(?s)<script>(.*)</script>`).FindStringSubmatch(body)
	if m == nil || !strings.Contains(csp, "'sha256-"+scriptHash(m[1])+"'") {
		t.Errorf("CSP %q does not allow the inline script", csp)
	}
	if regexp.MustCompile(`(src|href)="(https?:)?//`).MatchString(body) {
		t.Errorf("page references external resources")
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		59 * time.Second: "0m 59s",
		3*time.Hour + 4*time.Minute + 5*time.Second: "3h 4m 5s",
		50*time.Hour + 30*time.Minute:               "2d 2h 30m",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
}

// With use_vmac the instance names its VMAC, and its VIPs go on it.
func TestBuildVMAC(t *testing.T) {
	src, _ := testSources(t)
	c, diags := conf.Parse("v.conf", strings.Replace(testConf, "  virtual_router_id 52\n", "  virtual_router_id 52\n  use_vmac\n", 1), conf.Options{})
	if conf.MaxLevel(diags) >= conf.Error {
		t.Fatal(diags)
	}
	src.VRRPConfig = func() *conf.Config { return c }
	st := Build(src)
	web, db := st.Instances[0], st.Instances[1]
	if web.VMAC != "" || db.VMAC != "vrrp.52" || db.Interface != "eth1" || db.VIPs[0] != (VIP{"198.51.100.1", "vrrp.52"}) {
		t.Errorf("VI_WEB %q, VI_DB %q on %s, VIPs %+v", web.VMAC, db.VMAC, db.Interface, db.VIPs)
	}
}
