package metrics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/healthcheck"
	"github.com/lvsd/lvsd/ipvs"
	"github.com/lvsd/lvsd/status"
)

// memKernel is an in-memory ipvs.Kernel with the kernel's "already so"
// errors; every destination reports 4 active and 2 inactive connections.
type memKernel struct {
	mu sync.Mutex
	t  ipvs.Table
}

func (k *memKernel) Services() ([]ipvs.ServiceInfo, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []ipvs.ServiceInfo
	for _, key := range k.t.Keys() {
		out = append(out, ipvs.ServiceInfo{Service: k.t[key].Service, Stats: ipvs.Stats{Connections: 42, PacketsIn: 420}})
	}
	return out, nil
}

func (k *memKernel) Destinations(key ipvs.ServiceKey) ([]ipvs.DestInfo, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.t[key]
	if s == nil {
		return nil, syscall.ESRCH
	}
	var out []ipvs.DestInfo
	for _, dk := range s.DestKeys() {
		out = append(out, ipvs.DestInfo{Destination: s.Dests[dk], ActiveConns: 4, InactiveConns: 2, Stats: ipvs.Stats{Connections: 21}})
	}
	return out, nil
}

func (k *memKernel) CreateService(s ipvs.Service) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.t[s.ServiceKey] != nil {
		return syscall.EEXIST
	}
	k.t[s.ServiceKey] = &ipvs.TableService{Service: s, Dests: map[ipvs.DestKey]ipvs.Destination{}}
	return nil
}

func (k *memKernel) UpdateService(s ipvs.Service) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.t[s.ServiceKey] == nil {
		return syscall.ESRCH
	}
	k.t[s.ServiceKey].Service = s
	return nil
}

func (k *memKernel) RemoveService(key ipvs.ServiceKey) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.t[key] == nil {
		return syscall.ESRCH
	}
	delete(k.t, key)
	return nil
}

func (k *memKernel) CreateDestination(key ipvs.ServiceKey, d ipvs.Destination) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.t[key]
	if s == nil {
		return syscall.ESRCH
	}
	if _, ok := s.Dests[d.DestKey]; ok {
		return syscall.EEXIST
	}
	s.Dests[d.DestKey] = d
	return nil
}

func (k *memKernel) UpdateDestination(key ipvs.ServiceKey, d ipvs.Destination) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.t[key]
	if s == nil {
		return syscall.ESRCH
	}
	if _, ok := s.Dests[d.DestKey]; !ok {
		return syscall.ENOENT
	}
	s.Dests[d.DestKey] = d
	return nil
}

func (k *memKernel) RemoveDestination(key ipvs.ServiceKey, d ipvs.DestKey) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.t[key]
	if s == nil {
		return syscall.ESRCH
	}
	if _, ok := s.Dests[d]; !ok {
		return syscall.ENOENT
	}
	delete(s.Dests, d)
	return nil
}

func (k *memKernel) Timeouts() (ipvs.Timeouts, error)               { return ipvs.Timeouts{}, nil }
func (k *memKernel) SetTimeouts(ipvs.Timeouts) error                { return nil }
func (k *memKernel) SyncDaemons() ([]ipvs.SyncDaemon, error)        { return nil, nil }
func (k *memKernel) StartSyncDaemon(ipvs.SyncDaemon) error          { return nil }
func (k *memKernel) StopSyncDaemon(ipvs.SyncState) error            { return nil }
func (k *memKernel) Flush() error                                   { k.mu.Lock(); k.t = ipvs.Table{}; k.mu.Unlock(); return nil }
func (k *memKernel) Close() error                                   { return nil }
func (k *memKernel) removeDest(key ipvs.ServiceKey, d ipvs.DestKey) { _ = k.RemoveDestination(key, d) }

// TestLiveSubsystems runs the real health-check scheduler (TCP_CHECK
// against a loopback listener and a closed port) and the real IPVS
// reconciler (over an in-memory kernel), wired as the daemon wires them,
// and checks what the Collector reports from their snapshots: health, the
// check histogram, desired vs kernel weights, operations and a drift repair.
func TestLiveSubsystems(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	upPort := ln.Addr().(*net.TCPAddr).Port

	cfg, diags := conf.Parse("live.conf", fmt.Sprintf(`virtual_server 192.0.2.100 80 {
  delay_loop 1
  lb_algo wrr
  lb_kind NAT
  protocol TCP
  real_server 127.0.0.1 %d {
    weight 7
    TCP_CHECK {
      connect_timeout 1
      retry 0
    }
  }
  real_server 127.0.0.1 %d {
    weight 3
    TCP_CHECK {
      connect_timeout 1
      retry 0
    }
  }
}
`, upPort, downPort), conf.Options{})
	if conf.MaxLevel(diags) >= conf.Error {
		t.Fatalf("config: %v", diags)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	checks := NewChecks()
	kern := &memKernel{t: ipvs.Table{}}
	rec := ipvs.New(cfg, kern, ipvs.Options{Logger: quiet, RepairInterval: 200 * time.Millisecond})
	hc := healthcheck.New(cfg, healthcheck.Options{Logger: quiet, Observe: checks.Observe})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Add(3)
	go func() { defer wg.Done(); _ = rec.Run(ctx) }()
	go func() { defer wg.Done(); _ = hc.Run(ctx) }()
	go func() {
		defer wg.Done()
		for ev := range hc.Events() {
			rec.SetHealth(ipvs.HealthEvent{VS: ev.VS, RS: ev.RS, Up: ev.Up, Weight: ev.Weight})
		}
	}()

	src := status.Sources{
		Daemon: status.NewDaemon("t", "go", "live.conf", "h", time.Now()),
		Config: func() *conf.Config { return cfg }, Health: hc.Snapshot, IPVS: rec.Snapshot,
	}
	c := New(src, checks)
	vs := `virtual_server="TCP/192.0.2.100:80"`
	up := fmt.Sprintf(`real_server="127.0.0.1:%d",%s`, upPort, vs)
	down := fmt.Sprintf(`real_server="127.0.0.1:%d",%s`, downPort, vs)
	be := func(port int) string {
		return fmt.Sprintf(`{local_address="192.0.2.100",local_mark="",local_port="80",proto="TCP",remote_address="127.0.0.1",remote_port="%d"}`, port)
	}
	var got map[string]float64
	deadline := time.Now().Add(10 * time.Second)
	for {
		got = gather(t, c)
		if got[`lvsd_real_server_up{`+down+`}`] == 0 && got[`lvsd_real_server_up{`+up+`}`] == 1 &&
			got[`lvsd_real_server_transitions_total{`+down+`}`] == 1 && got["node_ipvs_backend_weight"+be(upPort)] == 7 &&
			got[`lvsd_healthcheck_checks_total{result="success",type="TCP_CHECK"}`] >= 1 {
			if _, still := got["node_ipvs_backend_weight"+be(downPort)]; !still {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the down server never left IPVS; metrics:\n%s", dumpMap(got))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for k, want := range map[string]float64{
		"lvsd_ipvs_up": 1,
		`lvsd_ipvs_operations_total{op="service_create"}`:                                                            1,
		`lvsd_ipvs_operations_total{op="dest_create"}`:                                                               2,
		`lvsd_ipvs_operations_total{op="dest_remove"}`:                                                               1,
		`lvsd_ipvs_errors_total`:                                                                                     0,
		`lvsd_virtual_server_quorum_up{` + vs + `}`:                                                                  1,
		`lvsd_real_server_transitions_total{` + up + `}`:                                                             0,
		`lvsd_real_server_weight{` + up + `}`:                                                                        7,
		"node_ipvs_backend_connections_active" + be(upPort):                                                          4,
		"node_ipvs_backend_connections_inactive" + be(upPort):                                                        2,
		"lvsd_ipvs_backend_desired_weight" + be(upPort):                                                              7,
		"lvsd_ipvs_backend_in_sync" + be(upPort):                                                                     1,
		"lvsd_ipvs_backend_connections_total" + be(upPort):                                                           21,
		`lvsd_ipvs_service_connections_total{local_address="192.0.2.100",local_mark="",local_port="80",proto="TCP"}`: 42,
		`lvsd_ipvs_service_in_sync{local_address="192.0.2.100",local_mark="",local_port="80",proto="TCP"}`:           1,
	} {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", k, v, ok, want)
		}
	}
	if got[`lvsd_healthcheck_checks_total{result="failure",type="TCP_CHECK"}`] < 1 ||
		got[`lvsd_healthcheck_checks_total{result="success",type="TCP_CHECK"}`] < 1 ||
		got[`lvsd_healthcheck_duration_seconds_count{type="TCP_CHECK"}`] < 2 {
		t.Errorf("check metrics:\n%s", dumpMap(got))
	}

	// Remove the healthy destination behind lvsd's back: the periodic
	// repair puts it back and counts it.
	key := ipvs.ServiceKey{Family: ipvs.INET, Proto: ipvs.TCP, Addr: cfg.VirtualServers[0].Addr, Port: 80}
	kern.removeDest(key, ipvs.DestKey{Addr: cfg.VirtualServers[0].RealServers[0].Addr, Port: uint16(upPort)})
	deadline = time.Now().Add(10 * time.Second)
	for {
		got = gather(t, c)
		if got["lvsd_ipvs_drift_repairs_total"] >= 1 && got["node_ipvs_backend_weight"+be(upPort)] == 7 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no drift repair; metrics:\n%s", dumpMap(got))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func dumpMap(m map[string]float64) string {
	var b strings.Builder
	for k, v := range m {
		if !strings.Contains(k, "_bucket") {
			fmt.Fprintf(&b, "%s %v\n", k, v)
		}
	}
	return b.String()
}
