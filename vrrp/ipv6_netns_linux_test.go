package vrrp

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// addr6Line returns the "ip -6 -o addr" line of addr (with its length) on
// dev in ns, or "".
func addr6Line(t *testing.T, ns, dev, prefix string) string {
	out := ipCmd(t, "-n", ns, "-6", "-o", "addr", "show", "dev", dev)
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, " inet6 "+prefix+" ") {
			return l
		}
	}
	return ""
}

var linkEtherRE = regexp.MustCompile(`link/ether ([0-9a-f:]{17})`)

func linkMAC(t *testing.T, ns, dev string) net.HardwareAddr {
	t.Helper()
	m := linkEtherRE.FindStringSubmatch(ipCmd(t, "-n", ns, "link", "show", "dev", dev))
	if m == nil {
		t.Fatalf("no MAC for %s in %s", dev, ns)
	}
	mac, err := net.ParseMAC(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return mac
}

// nasFor returns the neighbour advertisements sent from mac for target,
// checking each is what keepalived sends: to 33:33:00:00:00:01 and
// ff02::1 from the target itself, hop limit 255, override flag only (the
// interfaces do not forward), the target link-layer address option with
// mac, and a valid checksum.
func nasFor(t *testing.T, nas []naFrame, mac net.HardwareAddr, target netip.Addr) int {
	t.Helper()
	n := 0
	for _, f := range nas {
		if f.ethSrc.String() != mac.String() || f.target != target {
			continue
		}
		if f.ethDst.String() != "33:33:00:00:00:01" || f.dst != allNodes || f.src != target || f.hopLimit != 255 ||
			f.flags != 0x20 || f.tlla.String() != mac.String() || !f.checksumOK {
			t.Fatalf("neighbour advertisement for %v: %+v", target, f)
		}
		n++
	}
	return n
}

// Two lvsd directors run an IPv4 instance carrying IPv6 addresses in
// virtual_ipaddress_excluded, as dual-stack keepalived setups do. The
// master holds them (nodad; the /128 deprecated, as keepalived adds them)
// and announces them with unsolicited neighbour advertisements,
// garp_master_repeat times at takeover and again after garp_master_delay;
// the backup does not hold them. On SIGTERM the master releases them and
// the backup takes them over and announces them; when the first director
// comes back with its higher priority and preempts, the other, now BACKUP,
// removes them.
func TestLvsdIPv6ExcludedVIPs(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	capA := startCapture(t, n.br, "va")
	capB := startCapture(t, n.br, "vb")
	macA, macB := linkMAC(t, n.a, "eth0"), linkMAC(t, n.b, "eth0")
	const p64, p128 = "2001:db8::10/64", "2001:db8::11/128"
	vip64, vip128 := netip.MustParseAddr("2001:db8::10"), netip.MustParseAddr("2001:db8::11")
	extra := "  virtual_ipaddress_excluded {\n    2001:db8::10/64\n    2001:db8::11\n  }\n"
	a := startLvsd(t, n.a, "A", lvsdConf(150, extra))
	b := startLvsd(t, n.b, "B", lvsdConf(100, extra))
	a.waitState(t, "VI_1", "MASTER", 6*time.Second)
	b.waitState(t, "VI_1", "BACKUP", time.Second)
	waitFor(t, time.Second, "IPv6 VIPs on A", func() bool {
		return addr6Line(t, n.a, "eth0", p64) != "" && addr6Line(t, n.a, "eth0", p128) != ""
	})
	l64, l128 := addr6Line(t, n.a, "eth0", p64), addr6Line(t, n.a, "eth0", p128)
	if !strings.Contains(l64, "nodad") || strings.Contains(l64, "deprecated") || strings.Contains(l64, "tentative") ||
		!strings.Contains(l128, "nodad") || !strings.Contains(l128, "deprecated") {
		t.Fatalf("flags of the IPv6 VIPs on A:\n%s\n%s", l64, l128)
	}
	if addr6Line(t, n.b, "eth0", p64) != "" || addr6Line(t, n.b, "eth0", p128) != "" {
		t.Fatalf("IPv6 VIP on the backup:\n%s", ipCmd(t, "-n", n.b, "-6", "addr", "show", "dev", "eth0"))
	}
	time.Sleep(3500 * time.Millisecond) // past garp_master_delay 2
	nas := capA.neighbourAdverts()
	// garp_master_repeat 5, twice (vrrp_garp_master_delay 2), per address.
	if c64, c128 := nasFor(t, nas, macA, vip64), nasFor(t, nas, macA, vip128); c64 != 10 || c128 != 10 {
		t.Fatalf("neighbour advertisements from A: %d for %v, %d for %v; want 10 each", c64, vip64, c128, vip128)
	}
	if c := nasFor(t, nas, macB, vip64) + nasFor(t, nas, macB, vip128); c != 0 {
		t.Fatalf("the backup sent %d neighbour advertisements", c)
	}

	a.signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(5 * time.Second):
		t.Fatal("lvsd A did not exit on SIGTERM")
	}
	if addr6Line(t, n.a, "eth0", p64) != "" || addr6Line(t, n.a, "eth0", p128) != "" {
		t.Fatalf("IPv6 VIP left on the stopped master:\n%s", ipCmd(t, "-n", n.a, "-6", "addr", "show", "dev", "eth0"))
	}
	b.waitState(t, "VI_1", "MASTER", 3*time.Second)
	waitFor(t, time.Second, "IPv6 VIPs on B", func() bool {
		return addr6Line(t, n.b, "eth0", p64) != "" && addr6Line(t, n.b, "eth0", p128) != ""
	})
	waitFor(t, time.Second, "B's neighbour advertisements", func() bool {
		nas := capB.neighbourAdverts()
		return nasFor(t, nas, macB, vip64) >= 5 && nasFor(t, nas, macB, vip128) >= 5
	})

	a2 := startLvsd(t, n.a, "A2", lvsdConf(150, extra))
	a2.waitState(t, "VI_1", "MASTER", 6*time.Second)
	b.waitState(t, "VI_1", "BACKUP", 2*time.Second)
	waitFor(t, time.Second, "IPv6 VIPs back on A only", func() bool {
		return addr6Line(t, n.a, "eth0", p64) != "" && addr6Line(t, n.a, "eth0", p128) != "" &&
			addr6Line(t, n.b, "eth0", p64) == "" && addr6Line(t, n.b, "eth0", p128) == ""
	})
	t.Logf("A: %s", strings.TrimSpace(addr6Line(t, n.a, "eth0", p128)))
}

// lvsd -t gives keepalived -t's exit code on dual-stack instances: 0 for
// IPv6 addresses in virtual_ipaddress_excluded of an IPv4 instance, 5 for
// an IPv6 address in its virtual_ipaddress (dropped with an error).
func TestLvsdConfigTestIPv6(t *testing.T) {
	requireIntegration(t)
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Fatal("LVSD_INTEGRATION is set but keepalived is not installed")
	}
	n := newTestNet(t)
	bin := lvsdBinary(t)
	for _, tc := range []struct {
		name, extra string
		vips        []string
		want        int
	}{
		{"excluded", "  virtual_ipaddress_excluded {\n    2001:db8::10/64\n    2001:db8::11\n  }\n", nil, 0},
		{"mixed", "", []string{"192.0.2.100/24", "2001:db8::10/64"}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cf := filepath.Join(t.TempDir(), "k.conf")
			if err := os.WriteFile(cf, []byte(lvsdConf(100, tc.extra, tc.vips...)), 0o600); err != nil {
				t.Fatal(err)
			}
			code := func(argv ...string) (int, string) {
				out, err := exec.Command("ip", append([]string{"netns", "exec", n.a}, argv...)...).CombinedOutput()
				if ee, ok := err.(*exec.ExitError); ok {
					return ee.ExitCode(), string(out)
				} else if err != nil {
					t.Fatal(err)
				}
				return 0, string(out)
			}
			kc, kout := code("keepalived", "-t", "-l", "-f", cf)
			lc, lout := code(bin, "-t", "-f", cf)
			if kc != tc.want || lc != tc.want {
				t.Fatalf("keepalived -t %d, lvsd -t %d; want %d\nkeepalived:\n%s\nlvsd:\n%s", kc, lc, tc.want, kout, lout)
			}
		})
	}
}
