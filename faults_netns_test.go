package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvsd/lvsd/vrrp/advert"
)

// Named faults (issue 12, docs/RELIABILITY.md) on the built binary in
// network namespaces, observed as an operator would: adverts on the wire,
// addresses, /metrics.

// gaps returns how many adverts were seen in [from, to] and the longest
// gap between two of them (from and to count as ends).
func (c *advertCounter) gaps(from, to time.Time) (n int, longest time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	last := from
	for _, at := range c.times {
		if at.Before(from) || at.After(to) {
			continue
		}
		n++
		longest = max(longest, at.Sub(last))
		last = at
	}
	return n, max(longest, to.Sub(last))
}

// assertAdvertsOnTime checks that adverts every interval were seen in
// [from, to]: none missing, no gap over interval plus margin.
func assertAdvertsOnTime(t *testing.T, c *advertCounter, from, to time.Time, interval, margin time.Duration) {
	t.Helper()
	n, longest := c.gaps(from, to)
	want := int(to.Sub(from) / interval)
	t.Logf("%d adverts in %v (interval %v), longest gap %v", n, to.Sub(from).Round(time.Millisecond), interval, longest.Round(time.Microsecond))
	if n < want-1 || longest > interval+margin {
		t.Errorf("adverts late or missing: %d in %v, want %d; longest gap %v (> %v)", n, to.Sub(from), want, longest, interval+margin)
	}
}

// silentSMTP listens on 127.0.0.1 in ns and accepts connections without
// ever answering; it returns the port.
func silentSMTP(t *testing.T, ns string) int {
	t.Helper()
	var l net.Listener
	if err := inNetns(ns, func() error {
		var err error
		l, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().(*net.TCPAddr).Port
}

const notifyFaultConf = `global_defs {
  router_id lb-a
  notification_email {
    ops@example.com
  }
  notification_email_from lvsd@example.com
  smtp_server 127.0.0.1 %[1]d
  smtp_connect_timeout 30
  smtp_alert
}
vrrp_track_file flip {
  file %[2]s/flip
  weight 0
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  virtual_ipaddress {
    192.0.2.100/24
  }
  notify_master %[2]s/hang.sh
  notify %[2]s/loud.sh
}
vrrp_instance VI_2 {
  state BACKUP
  interface eth0
  virtual_router_id 52
  priority 100
  advert_int 1
  virtual_ipaddress {
    192.0.2.101/24
  }
  track_file {
    flip
  }
  notify_backup %[2]s/hang.sh
  notify_fault %[2]s/hang.sh
}
`

// TestNetnsFaultNotifyAndMail: lvsd MASTER of VI_1, whose notify_master
// hangs (sleep 3600) and whose notify writes 16 MB to its standard output;
// the mail server accepts and never answers. VI_2, on the same notifier
// and mailer, is flipped between FAULT and BACKUP by its track_file 500
// times each way (about 1,000 transitions, each a hanging script and a
// mail). Throughout, VI_1's adverts are on the wire every second, VI_1
// stays MASTER with its VIP; VI_2 ends in the state its file says; the
// scripts and mails beyond the bounded queues are dropped and counted.
func TestNetnsFaultNotifyAndMail(t *testing.T) {
	integration(t, "ip")
	bin := buildLvsd(t)
	n := newOpsNet(t)
	dir, err := os.MkdirTemp("", "lvsd-notify-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	loudDone := filepath.Join(dir, "loud.done")
	for name, body := range map[string]string{
		"hang.sh": "#!/bin/sh\nexec sleep 3600\n",
		"loud.sh": "#!/bin/sh\nhead -c 16000000 /dev/zero\necho \"$*\" >> " + loudDone + "\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	flip := filepath.Join(dir, "flip")
	if err := os.WriteFile(flip, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := silentSMTP(t, n.a)
	adverts := countAdvertsVRID(t, n.br, "va", netip.MustParseAddr("192.0.2.1"), 51)
	a := startDirectorConf(t, bin, n.a, "lb-a", fmt.Sprintf(notifyFaultConf, port, dir), nil)
	waitUntil(t, 15*time.Second, "VI_1 MASTER with its VIP", func() bool {
		return a.state(t) == 2 && hasAddr(t, n.a, "192.0.2.100/24")
	})
	waitUntil(t, 10*time.Second, "the loud notify script's end", func() bool {
		_, err := os.Stat(loudDone)
		return err == nil
	})

	// The storm: 1,000 writes of the tracked file, alternating.
	from := time.Now()
	for i := range 1000 {
		v := "1\n"
		if i%2 == 1 {
			v = "0\n"
		}
		if err := os.WriteFile(flip, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	// Ends with 1: VI_2 in FAULT.
	if err := os.WriteFile(flip, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "VI_2 FAULT", func() bool {
		v, ok := find(a.metrics(t), "keepalived_vrrp_state", "iname", "VI_2")
		return ok && v == 3
	})
	time.Sleep(2 * time.Second) // two more adverts' worth after the storm
	to := time.Now()
	assertAdvertsOnTime(t, adverts, from, to, time.Second, 300*time.Millisecond)

	ss := a.metrics(t)
	get := func(name string, labels ...string) float64 {
		v, ok := find(ss, name, labels...)
		if !ok {
			t.Fatalf("no %s%v", name, labels)
		}
		return v
	}
	if v := get("keepalived_vrrp_state", "iname", "VI_1"); v != 2 {
		t.Errorf("VI_1 state %v after the storm, want MASTER (2)", v)
	}
	if v := get("keepalived_become_master_total", "iname", "VI_1"); v != 1 {
		t.Errorf("VI_1 became MASTER %v times, want 1", v)
	}
	if !hasAddr(t, n.a, "192.0.2.100/24") {
		t.Errorf("VI_1's VIP lost")
	}
	run := get("lvsd_notify_scripts_total", "notifier", "vrrp", "result", "run")
	dropped := get("lvsd_notify_scripts_total", "notifier", "vrrp", "result", "dropped")
	mDropped := get("lvsd_notify_mails_total", "notifier", "vrrp", "result", "dropped")
	mSent := get("lvsd_notify_mails_total", "notifier", "vrrp", "result", "sent")
	t.Logf("notify scripts: %v run, %v dropped; mails: %v dropped, %v sent", run, dropped, mDropped, mSent)
	// VI_2's transitions: each queues one hanging script behind the first.
	if dropped < 200 || run > 10 {
		t.Errorf("scripts: %v run, %v dropped; want the queue behind the hung script bounded (256) and the rest dropped", run, dropped)
	}
	if mDropped < 200 || mSent != 0 {
		t.Errorf("mails: %v dropped, %v sent; want the queue behind the silent server bounded and the rest dropped", mDropped, mSent)
	}
}

// reloadConf is vrrpConf (lb-a, priority 150) with, when extra, a second
// VIP.
func reloadConf(extra bool) string {
	c := fmt.Sprintf(vrrpConf, "lb-a", 150)
	if extra {
		c = strings.Replace(c, "    192.0.2.100/24\n", "    192.0.2.100/24\n    192.0.2.102/24\n", 1)
	}
	return c
}

// replaceFile writes text next to path and renames it over path, as an
// editor or a configuration manager does.
func replaceFile(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// udpProbe is traffic to a VIP: an echo server bound to ip in namespace
// server (the reply leaves from the VIP), and a client in namespace client sending a datagram
// to ip every 10ms, count times. wait returns how many were sent and how
// many came back within 1s.
func udpProbe(t *testing.T, server, client, ip string, count int) (wait func() (sent, received int)) {
	t.Helper()
	var srv, cl *net.UDPConn
	if err := inNetns(server, func() error {
		var err error
		srv, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	port := srv.LocalAddr().(*net.UDPAddr).Port
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := srv.ReadFromUDP(buf)
			if err != nil {
				return
			}
			_, _ = srv.WriteToUDP(buf[:n], from)
		}
	}()
	if err := inNetns(client, func() error {
		var err error
		cl, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(ip), Port: port})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(); cl.Close() })
	var recv int
	got := make(chan struct{})
	go func() {
		defer close(got)
		seen := map[string]bool{}
		buf := make([]byte, 64)
		for {
			_ = cl.SetReadDeadline(time.Now().Add(time.Duration(count)*10*time.Millisecond + 5*time.Second))
			n, err := cl.Read(buf)
			if err != nil {
				return
			}
			if k := string(buf[:n]); !seen[k] {
				seen[k] = true
				recv++
				if recv == count {
					return
				}
			}
		}
	}()
	sent := 0
	sending := make(chan struct{})
	go func() {
		defer close(sending)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := range count {
			<-tick.C
			if _, err := cl.Write([]byte(strconv.Itoa(i))); err == nil {
				sent++
			}
		}
	}()
	return func() (int, int) {
		<-sending
		select {
		case <-got:
		case <-time.After(time.Second):
			cl.Close()
			<-got
		}
		return sent, recv
	}
}

// TestNetnsFaultReloads: lvsd MASTER of VI_1. (1) A configuration with an
// error (a VRID out of range) is rejected: the log and /status name the
// file and line, lvsd_config_reloads_total{result="failure"} counts it, the
// running configuration stays (VIP, MASTER). (2) A partly written file
// (the configuration cut in the middle of its vrrp_instance block): the
// same. (3) 100 reloads, each racing a new file renamed over the
// configuration (one with a second VIP, one without, in turn), while a
// datagram goes to the VIP and back every 10ms and /metrics scraped: every reload succeeds,
// no VRRP transition, no datagram lost, adverts on time, the reloads take
// bounded time; at the end the VIPs are those of the last file.
func TestNetnsFaultReloads(t *testing.T) {
	integration(t, "ip")
	bin := buildLvsd(t)
	n := newOpsNet(t)
	adverts := countAdvertsVRID(t, n.br, "va", netip.MustParseAddr("192.0.2.1"), 51)
	a := startDirectorConf(t, bin, n.a, "lb-a", reloadConf(false), nil)
	waitUntil(t, 15*time.Second, "MASTER with the VIP", func() bool {
		return a.state(t) == 2 && hasAddr(t, n.a, "192.0.2.100/24")
	})
	reloads := func(result string) float64 { return a.value(t, "lvsd_config_reloads_total", "result", result) }
	hup := func() { a.kill(syscall.SIGHUP) }

	// (1) An error at a known line.
	good := reloadConf(false)
	bad := good + "vrrp_instance VI_9 {\n  interface eth0\n  virtual_router_id 300\n  priority 50\n}\n"
	badLine := strings.Count(good, "\n") + 3
	replaceFile(t, a.conf, bad)
	hup()
	waitUntil(t, 5*time.Second, "the rejected reload", func() bool { return reloads("failure") == 1 })
	where := fmt.Sprintf("%s:%d:", a.conf, badLine)
	if !strings.Contains(a.out.String(), "reload rejected") || !strings.Contains(a.out.String(), where) {
		t.Errorf("the log does not name %s for the rejected reload", where)
	}
	code, body, err := get(a.client, "http://127.0.0.1:9165/status", "", "")
	if err != nil || code != 200 || !strings.Contains(body, where) {
		t.Errorf("/status does not name %s: %d %v", where, code, err)
	}
	if v := a.value(t, "lvsd_config_last_reload_successful"); v != 0 {
		t.Errorf("last_reload_successful %v", v)
	}

	// (2) A partly written file: cut inside the vrrp_instance block.
	cut := good[:strings.Index(good, "  virtual_ipaddress {")]
	if err := os.WriteFile(a.conf, []byte(cut), 0o644); err != nil {
		t.Fatal(err)
	}
	hup()
	waitUntil(t, 5*time.Second, "the partly written file rejected", func() bool { return reloads("failure") == 2 })
	if a.state(t) != 2 || !hasAddr(t, n.a, "192.0.2.100/24") {
		t.Fatalf("a rejected reload changed the running configuration: state %v", a.state(t))
	}

	// (3) 100 reloads racing renames, under ping and scrapes.
	replaceFile(t, a.conf, good)
	const total = 100
	wait := udpProbe(t, n.a, n.c, "192.0.2.100", 300)
	stop := make(chan struct{})
	scraped := make(chan int)
	go func() {
		k := 0
		for {
			select {
			case <-stop:
				scraped <- k
				return
			default:
			}
			if _, err := scrape(t, a.client, metricsURL); err == nil {
				k++
			}
		}
	}()
	from := time.Now()
	ok0 := reloads("success")
	for i := range total {
		hup()
		replaceFile(t, a.conf, reloadConf(i%2 == 0)) // races the reload
		deadline := time.Now().Add(5 * time.Second)
		for reloads("success") < ok0+float64(i+1) {
			if time.Now().After(deadline) {
				t.Fatalf("reload %d not done in 5s (success %v, failure %v)", i, reloads("success"), reloads("failure"))
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	took := time.Since(from)
	// The last file has no second VIP (i = 99): one more reload to be
	// sure the last rename was read.
	hup()
	waitUntil(t, 5*time.Second, "the last reload", func() bool { return reloads("success") == ok0+total+1 })
	close(stop)
	k := <-scraped
	sent, recv := wait()
	time.Sleep(time.Second)
	to := time.Now()
	t.Logf("%d reloads in %v (%v each) with %d scrapes ; datagrams to the VIP %d sent, %d echoed", total, took.Round(time.Millisecond), (took / total).Round(time.Microsecond), k, sent, recv)
	if took > 30*time.Second {
		t.Errorf("%d reloads took %v", total, took)
	}
	if f := reloads("failure"); f != 2 {
		t.Errorf("reload failures %v, want 2 (the bad file and the partial one): a rename was read half-way", f)
	}
	if sent == 0 || recv != sent {
		t.Errorf("datagrams to the VIP: %d sent, %d received: the VIP was not held", sent, recv)
	}
	assertAdvertsOnTime(t, adverts, from, to, time.Second, 300*time.Millisecond)
	if v := a.value(t, "keepalived_become_master_total", "iname", "VI_1"); v != 1 {
		t.Errorf("become_master %v, want 1: a transition during the reloads", v)
	}
	if v := a.value(t, "keepalived_release_master_total", "iname", "VI_1"); v != 0 {
		t.Errorf("release_master %v, want 0", v)
	}
	if !hasAddr(t, n.a, "192.0.2.100/24") || hasAddr(t, n.a, "192.0.2.102/24") {
		t.Errorf("VIPs do not match the last configuration: %s", runCmd(t, "ip", "-n", n.a, "-4", "-o", "addr", "show", "dev", "eth0"))
	}
}

const floodConf = `global_defs {
  router_id lb-a
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  authentication {
    auth_type PASS
    auth_pass secret
  }
  virtual_ipaddress {
    192.0.2.100/24
  }
}
`

// cpuTicks is the user+system CPU time of pid, in clock ticks (USER_HZ,
// 100 per second on Linux).
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // after "pid (comm) "
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k
}

// TestNetnsFaultBadAdvertFlood: lvsd MASTER of VI_1 (auth PASS) while a
// third namespace sends 10,000 bad adverts a second for 3 seconds, all
// with priority 255 (any one accepted would take the mastership away):
// a wrong checksum, an IP TTL of 1, an unknown VRID, a wrong password, in
// equal shares. The MASTER stays MASTER with its VIP and its adverts stay
// on time; each kind is counted under its reason; lvsd's CPU time during
// the flood is measured and bounded.
func TestNetnsFaultBadAdvertFlood(t *testing.T) {
	integration(t, "ip")
	bin := buildLvsd(t)
	n := newOpsNet(t)
	adverts := countAdvertsVRID(t, n.br, "va", netip.MustParseAddr("192.0.2.1"), 51)
	a := startDirectorConf(t, bin, n.a, "lb-a", floodConf, nil)
	waitUntil(t, 15*time.Second, "MASTER with the VIP", func() bool {
		return a.state(t) == 2 && hasAddr(t, n.a, "192.0.2.100/24")
	})
	src := netip.MustParseAddr("192.0.2.3")
	mk := func(vrid uint8, pass string, corrupt bool) []byte {
		adv := &advert.Advert{Version: 2, Type: advert.TypeAdvertisement, VRID: vrid, Priority: 255, Interval: time.Second,
			AuthType: advert.AuthPass, AuthData: advert.Password(pass), Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.100")}}
		b, err := adv.Marshal(src, advert.MulticastGroup)
		if err != nil {
			t.Fatal(err)
		}
		if corrupt {
			b[6] ^= 0xff
		}
		return b
	}
	kinds := []struct {
		name    string
		payload []byte
		ttl     int
	}{
		{"checksum", mk(51, "secret", true), 255},
		{"ttl", mk(51, "secret", false), 1},
		{"unknown_vrid", mk(99, "secret", false), 255},
		{"auth_failure", mk(51, "wrong", false), 255},
	}
	var fds []int
	if err := inNetns(n.c, func() error {
		for _, k := range kinds {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, advert.IPProtocol)
			if err != nil {
				return err
			}
			fds = append(fds, fd)
			if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, "eth0"); err != nil {
				return err
			}
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, k.ttl); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	drops := func() []float64 {
		ss := a.metrics(t)
		var out []float64
		for _, k := range kinds {
			name, labels := "lvsd_vrrp_drops_total", []string{"iname", "VI_1", "reason", k.name}
			if k.name == "unknown_vrid" {
				name, labels = "lvsd_vrrp_unrouted_drops_total", []string{"reason", k.name}
			}
			v, ok := find(ss, name, labels...)
			if !ok {
				t.Fatalf("no %s%v", name, labels)
			}
			out = append(out, v)
		}
		return out
	}
	before := drops()
	pid := a.cmd.Process.Pid
	cpu0 := cpuTicks(t, pid)
	from := time.Now()
	to := &unix.SockaddrInet4{Addr: advert.MulticastGroup.As4()}
	sent := make([]int, len(kinds))
	tick := time.NewTicker(10 * time.Millisecond)
	for range 300 { // 3s of 10ms ticks, 100 packets each: 10,000/s
		<-tick.C
		for range 25 {
			for i, k := range kinds {
				if err := unix.Sendto(fds[i], k.payload, 0, to); err == nil {
					sent[i]++
				}
			}
		}
	}
	tick.Stop()
	flood := time.Since(from)
	time.Sleep(500 * time.Millisecond) // let lvsd drain its socket
	cpu := time.Duration(cpuTicks(t, pid)-cpu0) * 10 * time.Millisecond
	elapsed := time.Since(from)
	time.Sleep(1500 * time.Millisecond)
	assertAdvertsOnTime(t, adverts, from, time.Now(), time.Second, 300*time.Millisecond)
	after := drops()
	total := 0
	for _, s := range sent {
		total += s
	}
	t.Logf("sent %d bad adverts in %v (%.0f/s); lvsd used %v of CPU in %v (%.0f%% of one core)",
		total, flood.Round(time.Millisecond), float64(total)/flood.Seconds(), cpu, elapsed.Round(time.Millisecond), 100*cpu.Seconds()/elapsed.Seconds())
	for i, k := range kinds {
		got := after[i] - before[i]
		t.Logf("%s: sent %d, counted %v", k.name, sent[i], got)
		// The kernel may drop a few from a full socket buffer on this
		// loaded machine; lvsd must count the rest, never more.
		if got > float64(sent[i]) || got < 0.9*float64(sent[i]) {
			t.Errorf("%s: sent %d, counted %v", k.name, sent[i], got)
		}
	}
	if total < 25000 {
		t.Errorf("only %d packets sent", total)
	}
	if a.state(t) != 2 || !hasAddr(t, n.a, "192.0.2.100/24") {
		t.Errorf("lost MASTER or its VIP during the flood")
	}
	if v := a.value(t, "keepalived_become_master_total", "iname", "VI_1"); v != 1 {
		t.Errorf("become_master %v, want 1", v)
	}
	if v := a.value(t, "keepalived_advertisements_received_total", "iname", "VI_1"); v != 0 {
		t.Errorf("%v bad adverts accepted", v)
	}
	// A bound with room for a loaded 2-core machine: half a core.
	if frac := cpu.Seconds() / elapsed.Seconds(); frac > 0.5 {
		t.Errorf("lvsd used %.0f%% of a core during the flood", 100*frac)
	}
}
