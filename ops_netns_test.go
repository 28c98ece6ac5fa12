package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"github.com/lvsd/lvsd/internal/netnstest"
	"github.com/lvsd/lvsd/vrrp/advert"
)

// Network-namespace tests of the built binary: two directors on a bridge,
// observed only through what operators see (/metrics, the dumps, the
// interface addresses). They run with LVSD_INTEGRATION=1 as root.

// inNetns runs fn on a thread in the named namespace. Sockets fn creates
// stay in that namespace.
func inNetns(name string, fn func() error) error { return netnstest.Do(name, fn) }

// nsClient is an HTTP client whose connections are made in namespace ns.
func nsClient(ns string) *http.Client { return netnstest.HTTPClient(ns, 5*time.Second) }

func runCmd(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var opsNetSeq struct {
	sync.Mutex
	n int
}

// opsNet is: namespaces a, b, c, each with eth0 (192.0.2.1, .2, .3/24)
// linked by a veth to bridge br0 in namespace br (ports va, vb, vc).
type opsNet struct{ a, b, c, br string }

func newOpsNet(t *testing.T) *opsNet {
	t.Helper()
	opsNetSeq.Lock()
	opsNetSeq.n++
	p := fmt.Sprintf("lvsdo%d-%d", os.Getpid()%100000, opsNetSeq.n)
	opsNetSeq.Unlock()
	n := &opsNet{a: p + "a", b: p + "b", c: p + "c", br: p + "br"}
	for _, ns := range []string{n.a, n.b, n.c, n.br} {
		runCmd(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	runCmd(t, "ip", "-n", n.br, "link", "add", "br0", "type", "bridge")
	runCmd(t, "ip", "-n", n.br, "link", "set", "br0", "up")
	for _, x := range []struct{ ns, port, addr string }{{n.a, "va", "192.0.2.1/24"}, {n.b, "vb", "192.0.2.2/24"}, {n.c, "vc", "192.0.2.3/24"}} {
		runCmd(t, "ip", "-n", n.br, "link", "add", x.port, "type", "veth", "peer", "name", "eth0", "netns", x.ns)
		runCmd(t, "ip", "-n", n.br, "link", "set", x.port, "master", "br0", "up")
		runCmd(t, "ip", "-n", x.ns, "addr", "add", x.addr, "dev", "eth0")
		runCmd(t, "ip", "-n", x.ns, "link", "set", "eth0", "up")
		runCmd(t, "ip", "-n", x.ns, "link", "set", "lo", "up")
	}
	return n
}

func hasAddr(t *testing.T, ns, addr string) bool {
	return strings.Contains(runCmd(t, "ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "eth0"), " "+addr+" ")
}

const vrrpConf = `global_defs {
  router_id %s
}
vrrp_script chk_ok {
  script /bin/true
  interval 1
}
vrrp_script chk_bad {
  script /bin/false
  interval 1
  weight -10
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority %d
  advert_int 1
  virtual_ipaddress {
    192.0.2.100/24
  }
  track_script {
    chk_ok
    chk_bad
  }
}
`

// director is one lvsd process in a namespace.
type director struct {
	name, ns, dumps string
	conf            string // the configuration file
	cmd             *exec.Cmd
	out             *lockedBuffer
	client          *http.Client
	exited          chan struct{}
}

const metricsURL = "http://127.0.0.1:9165/metrics"

// startDirector runs bin in ns with a one-instance configuration; prefix
// is put before bin (setpriv …) when not empty. Files are created readable
// by everyone (the binary may run as nobody).
func startDirector(t *testing.T, bin, ns, name string, prio int, prefix ...string) *director {
	t.Helper()
	return startDirectorArgs(t, bin, ns, name, prio, nil, prefix...)
}

// startDirectorArgs is startDirector with more arguments for lvsd (after
// the default ones: a later --metrics-listen wins).
func startDirectorArgs(t *testing.T, bin, ns, name string, prio int, extra []string, prefix ...string) *director {
	t.Helper()
	return startDirectorConf(t, bin, ns, name, fmt.Sprintf(vrrpConf, name, prio), extra, prefix...)
}

// startDirectorConf runs bin in ns with the configuration text.
func startDirectorConf(t *testing.T, bin, ns, name, text string, extra []string, prefix ...string) *director {
	t.Helper()
	dir, err := os.MkdirTemp("", "lvsd-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &director{name: name, ns: ns, conf: cfg, dumps: filepath.Join(dir, "dumps"), out: &lockedBuffer{}, client: nsClient(ns), exited: make(chan struct{})}
	if err := os.Mkdir(d.dumps, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d.dumps, 0o777); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"netns", "exec", ns}, prefix...)
	args = append(args, bin, "--dont-fork", "--log-console", "-f", cfg, "--metrics-listen", "127.0.0.1:9165")
	args = append(args, extra...)
	d.cmd = exec.Command("ip", args...)
	d.cmd.Env = append(os.Environ(), "LVSD_DUMP_DIR="+d.dumps)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		d.kill(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(10 * time.Second):
			d.kill(syscall.SIGKILL)
			<-d.exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, d.out.String())
		}
	})
	return d
}

// kill signals lvsd (ip netns exec execs it: same pid).
func (d *director) kill(s syscall.Signal) { _ = d.cmd.Process.Signal(s) }

func (d *director) metrics(t *testing.T) []sample {
	t.Helper()
	ss, err := scrape(t, d.client, metricsURL)
	if err != nil {
		t.Fatalf("%s: %v\n%s", d.name, err, d.out.String())
	}
	return ss
}

func (d *director) value(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, ok := find(d.metrics(t), name, labels...)
	if !ok {
		t.Fatalf("%s: no single series %s%v", d.name, name, labels)
	}
	return v
}

// state is keepalived_vrrp_state of VI_1, -1 while unavailable.
func (d *director) state(t *testing.T) float64 {
	ss, err := scrape(t, d.client, metricsURL)
	if err != nil {
		return -1
	}
	v, ok := find(ss, "keepalived_vrrp_state", "iname", "VI_1", "intf", "eth0", "vrid", "51", "ip_address", "192.0.2.100/24")
	if !ok {
		return -1
	}
	return v
}

// advertCounter counts, on a bridge port, the VRRP adverts from one source
// with TTL 255, with their arrival times.
type advertCounter struct {
	mu    sync.Mutex
	times []time.Time
}

func (c *advertCounter) between(from, to time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, at := range c.times {
		if !at.Before(from) && !at.After(to) {
			n++
		}
	}
	return n
}

func countAdverts(t *testing.T, ns, port string, src netip.Addr) *advertCounter {
	t.Helper()
	return countAdvertsVRID(t, ns, port, src, 0)
}

// countAdvertsVRID counts the adverts of one VRID (0: any).
func countAdvertsVRID(t *testing.T, ns, port string, src netip.Addr, vrid int) *advertCounter {
	t.Helper()
	var conn *packet.Conn
	if err := inNetns(ns, func() error {
		ifi, err := net.InterfaceByName(port)
		if err != nil {
			return err
		}
		conn, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	c := &advertCounter{}
	stop, done := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(stop); <-done; conn.Close() })
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			n, _, err := conn.ReadFrom(buf)
			if err != nil || n < 14 || binary.BigEndian.Uint16(buf[12:14]) != 0x0800 {
				continue
			}
			payload, info, err := advert.SplitIPv4(buf[14:n])
			if err != nil || info.Src != src || info.TTL != advert.TTL {
				continue
			}
			if a, drop := advert.Decode(payload, info); drop != advert.DropNone || (vrid != 0 && int(a.VRID) != vrid) {
				continue
			}
			c.mu.Lock()
			c.times = append(c.times, time.Now())
			c.mu.Unlock()
		}
	}()
	return c
}

// sendVRRP sends count VRRPv2 adverts for VRID 51 from namespace ns to
// 224.0.0.18 with the given IP TTL.
func sendVRRP(t *testing.T, ns string, src netip.Addr, ttl, count int) {
	t.Helper()
	adv := &advert.Advert{Version: 2, Type: advert.TypeAdvertisement, VRID: 51, Priority: 50, Interval: time.Second,
		Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.100")}}
	payload, err := adv.Marshal(src, advert.MulticastGroup)
	if err != nil {
		t.Fatal(err)
	}
	if err := inNetns(ns, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, advert.IPProtocol)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, "eth0"); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, ttl); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0); err != nil {
			return err
		}
		to := &unix.SockaddrInet4{Addr: advert.MulticastGroup.As4()}
		for range count {
			if err := unix.Sendto(fd, payload, 0, to); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestNetnsMetricsFailover: two lvsd on a bridge, VRRP instance VI_1 on
// each (priorities 150 and 100). Through /metrics: the gauge says 2 on one
// and 1 on the other; the backup's received-adverts counter follows the
// adverts seen on the wire; a TTL-254 advert from a third namespace counts
// as keepalived_ip_ttl_errors_total; after SIGKILL of the master the
// survivor's gauge says 2 and it holds the VIP. The dumps show the same.
func TestNetnsMetricsFailover(t *testing.T) {
	integration(t, "ip")
	bin := buildLvsd(t)
	n := newOpsNet(t)
	adverts := countAdverts(t, n.br, "vb", netip.MustParseAddr("192.0.2.1"))
	a := startDirector(t, bin, n.a, "lb-a", 150)
	b := startDirector(t, bin, n.b, "lb-b", 100)

	waitUntil(t, 15*time.Second, "MASTER (2) on lb-a and BACKUP (1) on lb-b", func() bool {
		return a.state(t) == 2 && b.state(t) == 1
	})
	if !hasAddr(t, n.a, "192.0.2.100/24") || hasAddr(t, n.b, "192.0.2.100/24") {
		t.Fatalf("VIP: a %q, b %q", runCmd(t, "ip", "-n", n.a, "-4", "-o", "addr"), runCmd(t, "ip", "-n", n.b, "-4", "-o", "addr"))
	}
	if v := a.value(t, "keepalived_become_master_total", "iname", "VI_1", "state", "MASTER"); v != 1 {
		t.Errorf("lb-a become_master = %v, want 1", v)
	}
	// The vrrp_scripts run: chk_bad fails and takes 10 off the priority.
	waitUntil(t, 5*time.Second, "chk_bad's verdict on lb-b", func() bool {
		return b.value(t, "lvsd_vrrp_priority", "iname", "VI_1") == 90
	})
	for _, x := range []struct {
		name   string
		status float64
	}{{"chk_ok", 1}, {"chk_bad", 0}} {
		if v := b.value(t, "keepalived_script_status", "name", x.name); v != x.status {
			t.Errorf("lb-b keepalived_script_status{name=%s} = %v, want %v", x.name, v, x.status)
		}
	}
	if v := b.value(t, "lvsd_vrrp_script_runs_total", "name", "chk_bad", "result", "failure"); v < 1 {
		t.Errorf("chk_bad failures = %v", v)
	}
	if v := b.value(t, "lvsd_vrrp_script_runs_total", "name", "chk_ok", "result", "success"); v < 1 {
		t.Errorf("chk_ok successes = %v", v)
	}

	// Adverts received by the backup vs adverts seen on its bridge port.
	t0 := time.Now()
	rx0 := b.value(t, "keepalived_advertisements_received_total", "iname", "VI_1", "intf", "eth0", "vrid", "51", "state", "BACKUP")
	time.Sleep(6 * time.Second)
	rx1 := b.value(t, "keepalived_advertisements_received_total", "iname", "VI_1", "intf", "eth0", "vrid", "51", "state", "BACKUP")
	t1 := time.Now()
	seen := adverts.between(t0, t1)
	got := int(rx1 - rx0)
	t.Logf("backup counted %d adverts in %v; %d seen on the wire", got, t1.Sub(t0).Round(time.Millisecond), seen)
	if seen < 4 || got < seen-2 || got > seen+2 {
		t.Errorf("keepalived_advertisements_received_total grew by %d, %d adverts were seen on the wire (±2)", got, seen)
	}
	sent := a.value(t, "keepalived_advertisements_sent_total", "iname", "VI_1", "state", "MASTER")
	if sent < rx1 {
		t.Errorf("master sent %v adverts, backup received %v", sent, rx1)
	}

	// A TTL-254 advert (not from the local link) is dropped and counted.
	ttlA0 := a.value(t, "keepalived_ip_ttl_errors_total", "iname", "VI_1")
	ttlB0 := b.value(t, "keepalived_ip_ttl_errors_total", "iname", "VI_1")
	rxB := b.value(t, "keepalived_advertisements_received_total", "iname", "VI_1")
	sendVRRP(t, n.c, netip.MustParseAddr("192.0.2.3"), 254, 3)
	waitUntil(t, 5*time.Second, "the TTL errors on lb-b", func() bool {
		return b.value(t, "keepalived_ip_ttl_errors_total", "iname", "VI_1") == ttlB0+3
	})
	if v := a.value(t, "keepalived_ip_ttl_errors_total", "iname", "VI_1"); v != ttlA0+3 {
		t.Errorf("lb-a ip_ttl_errors %v -> %v, want +3", ttlA0, v)
	}
	if v := b.value(t, "lvsd_vrrp_drops_total", "iname", "VI_1", "reason", "ttl"); v != ttlB0+3 {
		t.Errorf("lb-b lvsd_vrrp_drops_total{reason=ttl} = %v, want %v", v, ttlB0+3)
	}
	// The same packet with TTL 255 is a valid advert (priority 50: ignored
	// by the backup's state machine but counted as received).
	sendVRRP(t, n.c, netip.MustParseAddr("192.0.2.3"), 255, 1)
	waitUntil(t, 5*time.Second, "the TTL-255 advert counted as received", func() bool {
		return b.value(t, "keepalived_advertisements_received_total", "iname", "VI_1") >= rxB+1
	})
	if v := b.value(t, "keepalived_ip_ttl_errors_total", "iname", "VI_1"); v != ttlB0+3 {
		t.Errorf("a TTL-255 advert counted as a TTL error: %v", v)
	}

	// The dumps say what the metrics say.
	b.kill(syscall.SIGUSR2)
	a.kill(syscall.SIGUSR1)
	waitUntil(t, 5*time.Second, "lb-b's stats dump", func() bool {
		s, _ := os.ReadFile(filepath.Join(b.dumps, "keepalived.stats"))
		return strings.Contains(string(s), "VRRP Instance: VI_1\n") && strings.Contains(string(s), fmt.Sprintf("    TTL: %d\n", int(ttlB0)+3))
	})
	waitUntil(t, 5*time.Second, "lb-a's data dump", func() bool {
		s, _ := os.ReadFile(filepath.Join(a.dumps, "keepalived.data"))
		return strings.Contains(string(s), " VRRP Instance = VI_1\n   VRRP Version = 2\n   State = MASTER\n") &&
			strings.Contains(string(s), "     192.0.2.100/24 dev eth0 scope global set\n")
	})

	// Kill the master: the survivor's gauge flips to MASTER.
	killed := time.Now()
	a.kill(syscall.SIGKILL)
	waitUntil(t, 10*time.Second, "lb-b MASTER after lb-a was killed", func() bool { return b.state(t) == 2 })
	t.Logf("lb-b reports MASTER %v after SIGKILL of lb-a", time.Since(killed).Round(time.Millisecond))
	waitUntil(t, 5*time.Second, "the VIP on lb-b", func() bool { return hasAddr(t, n.b, "192.0.2.100/24") })
	if v := b.value(t, "keepalived_become_master_total", "iname", "VI_1", "state", "MASTER"); v != 1 {
		t.Errorf("lb-b become_master = %v, want 1", v)
	}
	if v := b.value(t, "lvsd_vrrp_priority", "iname", "VI_1"); v != 90 {
		t.Errorf("lb-b priority %v", v)
	}
}

// TestNetnsLeastPrivilege runs lvsd as nobody with only CAP_NET_ADMIN and
// CAP_NET_RAW (ambient, bounding set reduced to them) in a namespace with
// a VRRP instance: it must become MASTER, add the VIP and say so on
// /metrics; its capabilities must be exactly those two.
func TestNetnsLeastPrivilege(t *testing.T) {
	integration(t, "ip", "setpriv")
	src := buildLvsd(t)
	// nobody must be able to execute it: a world-readable copy.
	dir, err := os.MkdirTemp("", "lvsd-bin-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "lvsd")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	n := newOpsNet(t)
	d := startDirector(t, bin, n.a, "lb-nobody", 150,
		"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
		"--inh-caps=-all,+net_admin,+net_raw", "--ambient-caps=-all,+net_admin,+net_raw", "--bounding-set=-all,+net_admin,+net_raw")

	waitUntil(t, 15*time.Second, "MASTER as nobody", func() bool { return d.state(t) == 2 })
	waitUntil(t, 5*time.Second, "the VIP", func() bool { return hasAddr(t, n.a, "192.0.2.100/24") })
	if v := d.value(t, "keepalived_advertisements_sent_total", "iname", "VI_1", "state", "MASTER"); v < 1 {
		t.Errorf("no advert sent (%v)", v)
	}
	if v := d.value(t, "lvsd_vrrp_send_errors_total", "iname", "VI_1"); v != 0 {
		t.Errorf("send errors: %v", v)
	}
	if v := d.value(t, "lvsd_vrrp_address_errors_total", "iname", "VI_1"); v != 0 {
		t.Errorf("address errors: %v", v)
	}

	// The process is nobody, with exactly the two capabilities.
	pid := d.cmd.Process.Pid
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%016x", uint64(1)<<unix.CAP_NET_ADMIN|uint64(1)<<unix.CAP_NET_RAW)
	fields := map[string]string{}
	for _, line := range strings.Split(string(st), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	if !strings.HasPrefix(fields["Uid"], "65534\t65534\t65534") {
		t.Errorf("Uid: %q, want nobody (65534)", fields["Uid"])
	}
	for _, k := range []string{"CapEff", "CapPrm", "CapBnd", "CapAmb"} {
		if fields[k] != want {
			t.Errorf("%s = %s, want %s (CAP_NET_ADMIN and CAP_NET_RAW)", k, fields[k], want)
		}
	}

	// A graceful stop releases the VIP.
	d.kill(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("lvsd did not stop")
	}
	if hasAddr(t, n.a, "192.0.2.100/24") {
		t.Errorf("VIP still present after stop")
	}
}

// TestNetnsMetricsNotOnVIP: lvsd listening on every address (:9165) of a
// director holding VIP 192.0.2.100 as MASTER. From another namespace on the
// bridge, the director's own address answers /metrics; the VIP, on the
// same port, is closed at accept and counted in lvsd_http_refused_total.
func TestNetnsMetricsNotOnVIP(t *testing.T) {
	integration(t, "ip")
	bin := buildLvsd(t)
	n := newOpsNet(t)
	a := startDirectorArgs(t, bin, n.a, "lb-a", 150, []string{"--metrics-listen", ":9165"})
	waitUntil(t, 15*time.Second, "MASTER with the VIP", func() bool {
		return a.state(t) == 2 && hasAddr(t, n.a, "192.0.2.100/24")
	})
	c := nsClient(n.c)
	ss, err := scrape(t, c, "http://192.0.2.1:9165/metrics")
	if err != nil {
		t.Fatalf("the director's own address: %v", err)
	}
	if v, ok := find(ss, "lvsd_http_refused_total", "reason", "managed_address"); !ok || v != 0 {
		t.Fatalf("refused before: %v %v", v, ok)
	}
	for range 3 {
		if _, err := scrape(t, c, "http://192.0.2.100:9165/metrics"); err == nil {
			t.Fatalf("the VIP answered /metrics")
		}
	}
	if v := mustValue(t, c, "http://192.0.2.1:9165/metrics", "lvsd_http_refused_total", "reason", "managed_address"); v != 3 {
		t.Errorf("lvsd_http_refused_total = %v after 3 connections to the VIP, want 3", v)
	}
	// VRRP is untouched: still MASTER.
	if v := a.value(t, "keepalived_vrrp_state", "iname", "VI_1"); v != 2 {
		t.Errorf("state %v", v)
	}
}
