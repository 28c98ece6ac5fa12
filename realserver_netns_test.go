package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// realserverProc is one `lvsd realserver` daemon in a namespace.
type realserverProc struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan struct{}
}

func startRealserver(t *testing.T, bin, ns string, args ...string) *realserverProc {
	t.Helper()
	p := &realserverProc{out: &lockedBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", ns, bin, "realserver"}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("realserver output:\n%s", p.out.String())
		}
	})
	return p
}

func (p *realserverProc) stop(t *testing.T, s syscall.Signal) {
	t.Helper()
	_ = p.cmd.Process.Signal(s)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("lvsd realserver did not exit on %v", s)
	}
}

// waitFor polls cond every 50 ms until it holds or the time is up.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

func nsSysctl(t *testing.T, ns, key string) string {
	return strings.TrimSpace(runCmd(t, "ip", "netns", "exec", ns, "cat", "/proc/sys/net/"+key))
}

func loAddrs(t *testing.T, ns string) string {
	return runCmd(t, "ip", "-n", ns, "-o", "addr", "show", "dev", "lo")
}

// neighOf is the client's neighbour entry for addr ("" if none).
func neighOf(t *testing.T, ns, addr string) string {
	return strings.TrimSpace(runCmd(t, "ip", "-n", ns, "neigh", "show", addr, "dev", "eth0"))
}

// TestRealserverDR: `lvsd realserver` on a DR real server, on the wire. A
// client namespace c and the real server r share a link. The VIPs come
// from the directors' keepalived.conf (the virtual servers where r's
// address is a DR real server); r accepts packets for them (sent to its
// MAC, as a DR director forwards them) but never answers ARP for them;
// drift is repaired; a reload follows the file; after kill -9 a new run
// adopts the set-up and its stop restores everything.
func TestRealserverDR(t *testing.T) {
	if os.Getenv("LVSD_INTEGRATION") == "" {
		t.Skip("netns test: set LVSD_INTEGRATION=1 (needs root)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("LVSD_INTEGRATION is set but the test is not running as root")
	}
	bin := buildLvsd(t)
	p := fmt.Sprintf("lvsdrs%d", os.Getpid()%100000)
	c, r := p+"c", p+"r"
	for _, ns := range []string{c, r} {
		runCmd(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		runCmd(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	runCmd(t, "ip", "-n", c, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", r)
	runCmd(t, "ip", "-n", c, "addr", "add", "192.0.2.1/24", "dev", "eth0")
	runCmd(t, "ip", "-n", r, "addr", "add", "192.0.2.2/24", "dev", "eth0")
	runCmd(t, "ip", "-n", r, "addr", "add", "2001:db8:1::2/64", "dev", "eth0", "nodad")
	for _, ns := range []string{c, r} {
		runCmd(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	}
	// The client reaches the VIPs on its link, as a client beside a DR
	// director does (it asks ARP for them).
	runCmd(t, "ip", "-n", c, "route", "add", "203.0.113.0/24", "dev", "eth0")
	rmac := strings.Fields(runCmd(t, "ip", "-n", r, "-o", "link", "show", "eth0"))
	var mac string
	for i, f := range rmac {
		if f == "link/ether" {
			mac = rmac[i+1]
		}
	}
	// r answers TCP on every address (a service of the real server).
	var l net.Listener
	if err := inNetns(r, func() (err error) { l, err = net.Listen("tcp", ":8080"); return err }); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = conn.Write([]byte("rs\n"))
			conn.Close()
		}
	}()
	// ping is a TCP exchange with addr:8080 from the client.
	ping := func(addr string) bool {
		var got []byte
		err := inNetns(c, func() error {
			conn, err := net.DialTimeout("tcp", net.JoinHostPort(addr, "8080"), time.Second)
			if err != nil {
				return err
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(time.Second))
			got, err = io.ReadAll(conn)
			return err
		})
		return err == nil && string(got) == "rs\n"
	}

	// Without lvsd realserver, a VIP on lo is answered to ARP: the
	// problem the set-up solves (and proof that the check below can fail).
	runCmd(t, "ip", "-n", r, "addr", "add", "203.0.113.99/32", "dev", "lo")
	if !ping("203.0.113.99") || !strings.Contains(neighOf(t, c, "203.0.113.99"), mac) {
		t.Fatalf("baseline: with default sysctls r should answer ARP for a lo address: %q", neighOf(t, c, "203.0.113.99"))
	}
	runCmd(t, "ip", "-n", r, "addr", "del", "203.0.113.99/32", "dev", "lo")
	orig := nsSysctl(t, r, "ipv4/conf/all/arp_ignore")

	dir := t.TempDir()
	cfg := filepath.Join(dir, "keepalived.conf")
	state := filepath.Join(dir, "rs.json")
	writeConf := func(vips ...string) {
		var b strings.Builder
		for _, v := range vips {
			rs1, rs2 := "192.0.2.2", "192.0.2.3"
			if strings.Contains(v, ":") {
				rs1, rs2 = "2001:db8:1::2", "2001:db8:1::3"
			}
			fmt.Fprintf(&b, "virtual_server %s 80 {\n  lb_kind DR\n  real_server %s 80 { }\n  real_server %s 80 { }\n}\n", v, rs1, rs2)
		}
		// Not this host: its VIP is not taken.
		b.WriteString("virtual_server 203.0.113.50 80 {\n  lb_kind DR\n  real_server 192.0.2.3 80 { }\n}\n")
		if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeConf("203.0.113.10", "2001:db8::10")
	args := []string{"-f", cfg, "--state", state, "--arp-interface", "eth0", "--period", "300ms"}
	rs := startRealserver(t, bin, r, args...)
	if !waitFor(5*time.Second, func() bool {
		lo := loAddrs(t, r)
		return strings.Contains(lo, "203.0.113.10/32") && strings.Contains(lo, "2001:db8::10/128")
	}) {
		t.Fatalf("VIPs not on lo: %s", loAddrs(t, r))
	}
	if strings.Contains(loAddrs(t, r), "203.0.113.50") {
		t.Error("took the VIP of a virtual server this host is not a real server of")
	}
	for _, ifc := range []string{"all", "lo", "eth0"} {
		if ig, an := nsSysctl(t, r, "ipv4/conf/"+ifc+"/arp_ignore"), nsSysctl(t, r, "ipv4/conf/"+ifc+"/arp_announce"); ig != "1" || an != "2" {
			t.Errorf("%s: arp_ignore=%s arp_announce=%s, want 1 and 2", ifc, ig, an)
		}
	}
	// No ARP answer for the VIP: the client's neighbour entry never gets
	// r's MAC.
	runCmd(t, "ip", "-n", c, "neigh", "flush", "dev", "eth0")
	if ping("203.0.113.10") {
		t.Error("the client reached the VIP through ARP: r answered ARP for it")
	}
	if n := neighOf(t, c, "203.0.113.10"); strings.Contains(n, mac) {
		t.Errorf("r answered ARP for the VIP: %q", n)
	}
	// Packets for the VIP sent to r's MAC (what a DR director does) are
	// accepted and answered.
	runCmd(t, "ip", "-n", c, "neigh", "replace", "203.0.113.10", "lladdr", mac, "dev", "eth0", "nud", "permanent")
	if !ping("203.0.113.10") {
		t.Error("r does not answer packets for the VIP sent to its MAC")
	}

	// Drift: a VIP deleted by hand comes back (netlink event), a sysctl
	// reset by hand too (periodic check).
	runCmd(t, "ip", "-n", r, "addr", "del", "203.0.113.10/32", "dev", "lo")
	if !waitFor(2*time.Second, func() bool { return strings.Contains(loAddrs(t, r), "203.0.113.10/32") }) {
		t.Error("a VIP deleted by hand was not restored within 2 s")
	}
	runCmd(t, "ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=0")
	if !waitFor(2*time.Second, func() bool { return nsSysctl(t, r, "ipv4/conf/all/arp_ignore") == "1" }) {
		t.Error("arp_ignore reset by hand was not repaired within 2 s")
	}

	// Reload: the file names another VIP instead of the IPv6 one.
	writeConf("203.0.113.10", "203.0.113.11")
	_ = rs.cmd.Process.Signal(syscall.SIGHUP)
	if !waitFor(3*time.Second, func() bool {
		lo := loAddrs(t, r)
		return strings.Contains(lo, "203.0.113.11/32") && !strings.Contains(lo, "2001:db8::10")
	}) {
		t.Errorf("reload not applied: %s", loAddrs(t, r))
	}
	// The state file follows the kernel just after: kill -9 before it is
	// written would leave 203.0.113.11 unknown to the next run.
	if !waitFor(3*time.Second, func() bool {
		b, _ := os.ReadFile(state)
		return strings.Contains(string(b), "203.0.113.11/32") && !strings.Contains(string(b), "2001:db8::10")
	}) {
		b, _ := os.ReadFile(state)
		t.Errorf("state file not updated after the reload: %s", b)
	}

	// kill -9 leaves the set-up; a new run adopts it and its stop
	// restores the values from before the first run.
	rs.stop(t, syscall.SIGKILL)
	if !strings.Contains(loAddrs(t, r), "203.0.113.10/32") {
		t.Fatal("the VIP went with kill -9 (nothing ran to remove it)")
	}
	rs2 := startRealserver(t, bin, r, args...)
	if !waitFor(5*time.Second, func() bool { return strings.Contains(rs2.out.String(), "adopting") }) {
		t.Errorf("the second run did not adopt the set-up: %s", rs2.out.String())
	}
	rs2.stop(t, syscall.SIGTERM)
	if lo := loAddrs(t, r); strings.Contains(lo, "203.0.113.") {
		t.Errorf("VIPs left on lo after stop: %s", lo)
	}
	if got := nsSysctl(t, r, "ipv4/conf/all/arp_ignore"); got != orig {
		t.Errorf("all.arp_ignore = %s after stop, want %s as before", got, orig)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("state file left after stop: %v", err)
	}

	// One-shot: --apply then --remove.
	runCmd(t, "ip", "netns", "exec", r, bin, "realserver", "--vip", "203.0.113.12", "--state", state, "--apply")
	if !strings.Contains(loAddrs(t, r), "203.0.113.12/32") || nsSysctl(t, r, "ipv4/conf/lo/arp_ignore") != "1" {
		t.Errorf("--apply: %s", loAddrs(t, r))
	}
	runCmd(t, "ip", "netns", "exec", r, bin, "realserver", "--state", state, "--remove")
	if strings.Contains(loAddrs(t, r), "203.0.113.12") || nsSysctl(t, r, "ipv4/conf/lo/arp_ignore") != "0" {
		t.Errorf("--remove: %s lo.arp_ignore=%s", loAddrs(t, r), nsSysctl(t, r, "ipv4/conf/lo/arp_ignore"))
	}
}

// TestSystemdRealserverUnit checks packaging/lvsd-realserver.service with
// systemd-analyze verify (with ExecStart on the built binary): no warning,
// and the command line it runs is one `lvsd realserver` accepts.
func TestSystemdRealserverUnit(t *testing.T) {
	integration(t, "systemd-analyze")
	bin := buildLvsd(t)
	unit, err := os.ReadFile("packaging/lvsd-realserver.service")
	if err != nil {
		t.Fatal(err)
	}
	var exec0 string
	for _, line := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			exec0 = v
		}
	}
	if !strings.HasPrefix(exec0, "/usr/sbin/lvsd realserver ") {
		t.Fatalf("ExecStart=%q", exec0)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "lvsd-realserver.service")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(unit), "/usr/sbin/lvsd", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("systemd-analyze", "verify", p).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v: %s", err, out)
	}
	// The unit's options parse (-n prints the spec and exits).
	args := strings.Fields(strings.ReplaceAll(exec0, "$LVSD_REALSERVER_OPTIONS", "--vip 192.0.2.10 -n"))[1:]
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "dr [192.0.2.10]") {
		t.Errorf("%s %v: %v: %s", bin, args, err, out)
	}
}
