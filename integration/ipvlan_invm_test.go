package integration_test

// In the lab VM (run by TestIPVSLab, see ipvs_invm_test.go; the host kernel
// has no ipvlan): use_ipvlan compared with keepalived 2.2.7 on the same
// configuration, each MASTER alone in a fresh namespace.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const ipvlanConf = `vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 81
  advert_int 1
  use_ipvlan
  virtual_ipaddress {
    192.0.2.181/24
  }
}
vrrp_instance VI_2 {
  interface eth0
  virtual_router_id 82
  advert_int 1
  use_ipvlan ipv82 192.0.2.82/24 private
  virtual_ipaddress {
    192.0.2.182/24
  }
}
`

// ipvlanState is what ns shows of the ipvlans and of the sysctls set on
// them and their base, link indexes and the base's MAC written out.
func ipvlanState(t *testing.T, ns string) string {
	t.Helper()
	run := func(args ...string) string {
		out, err := exec.Command("ip", append([]string{"-n", ns, "-o"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	mac := regexp.MustCompile(`link/ether (\S+)`).FindStringSubmatch(run("link", "show", "dev", "eth0"))[1]
	idx := regexp.MustCompile(`(?m)^\d+: |\\\s+valid_lft[^\n]*`)
	var b strings.Builder
	for _, dev := range []string{"eth0", "vrrp.81", "ipv82"} {
		if dev == "eth0" {
			b.WriteString(strings.Join(strings.Fields(idx.ReplaceAllString(run("-4", "addr", "show", "dev", dev), "")), " ") + "\n")
		} else {
			s := run("-d", "link", "show", "dev", dev) + run("addr", "show", "dev", dev)
			b.WriteString(strings.Join(strings.Fields(strings.ReplaceAll(idx.ReplaceAllString(s, ""), mac, "BASEMAC")), " ") + "\n")
		}
		for _, k := range []string{"ipv4/conf/%s/arp_ignore", "ipv4/conf/%s/arp_filter", "ipv4/conf/%s/accept_local", "ipv4/conf/%s/rp_filter", "ipv4/conf/%s/promote_secondaries", "ipv6/conf/%s/disable_ipv6"} {
			v, _ := exec.Command("ip", "netns", "exec", ns, "cat", "/proc/sys/net/"+fmt.Sprintf(k, dev)).Output()
			fmt.Fprintf(&b, "%s=%s ", fmt.Sprintf(k, dev), strings.TrimSpace(string(v)))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestIPVSInVMIPVlan(t *testing.T) {
	if os.Getenv(envInVM) == "" {
		t.Skipf("runs inside the lab VM (TestIPVSLab sets %s)", envInVM)
	}
	ns := "ipvlan-cmp"
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0"},
		{"-n", ns, "addr", "add", "192.0.2.1/24", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "link", "set", "peer0", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	dir := t.TempDir()
	cf := filepath.Join(dir, "k.conf")
	if err := os.WriteFile(cf, []byte(ipvlanConf), 0o644); err != nil {
		t.Fatal(err)
	}
	state := func(name string, ready func(string) bool, argv ...string) string {
		output, stop := startInNetns(t, ns, filepath.Join(dir, name+".out"), argv...)
		defer func() {
			stop()
			if t.Failed() {
				t.Logf("%s output:\n%s", name, output())
			}
		}()
		deadline := time.Now().Add(30 * time.Second)
		for !ready(output()) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: VI_1 not FAULT or VI_2 not MASTER after 30s", name)
			}
			time.Sleep(200 * time.Millisecond)
		}
		time.Sleep(time.Second)
		return ipvlanState(t, ns)
	}
	gone := func(who string) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			out, _ := exec.Command("ip", "-n", ns, "-o", "link").Output()
			if !strings.Contains(string(out), "vrrp.81") && !strings.Contains(string(out), "ipv82") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s left its ipvlans:\n%s", who, out)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// VI_1's ipvlan has no address: keepalived puts it in FAULT ("IPv4
	// ipvlan requires a source ip address to be configured"); VI_2 sends
	// from its ipvlan's address.
	k := state("keepalived", func(s string) bool {
		return strings.Contains(s, "(VI_1) IPv4 ipvlan requires a source ip address") && strings.Contains(s, "(VI_2) Entering MASTER STATE")
	}, "keepalived", "-n", "-l", "-D", "-P", "-f", cf, "-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "v.pid"))
	gone("keepalived")
	l := state("lvsd", func(s string) bool {
		return strings.Contains(s, "(VI_1) Entering FAULT STATE") && strings.Contains(s, "(VI_2) Entering MASTER STATE")
	}, "/usr/sbin/lvsd", "-P", "-n", "-l", "-f", cf, "-p", filepath.Join(dir, "l.pid"), "--metrics-listen", "")
	gone("lvsd")
	if k != l {
		t.Errorf("ipvlans differ\n--- keepalived:\n%s--- lvsd:\n%s", strings.ReplaceAll(k, "\\ ", "\n  "), strings.ReplaceAll(l, "\\ ", "\n  "))
	}
	if !strings.Contains(l, "ipvlan") || !strings.Contains(l, "inet 192.0.2.182/24 scope global secondary eth0") || strings.Contains(l, "192.0.2.181") {
		t.Errorf("lvsd's ipvlans:\n%s", l)
	}
	t.Logf("lvsd:\n%s", strings.ReplaceAll(l, "\\ ", "\n  "))
}
