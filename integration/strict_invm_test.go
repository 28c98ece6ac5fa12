package integration_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvsd/lvsd/integration/lab"
)

// strictVIP is the VRRP address of TestIPVSInVMStrict (on dirA's eth0, in
// the client's subnet; lab.VIP stays as the other tests have it).
const strictVIP = "192.0.2.101"

func strictLabConf(accept bool) string {
	inst := ""
	if accept {
		// keepalived resets accept on VRRPv2 under vrrp_strict; VRRPv3 keeps it.
		inst = "  version 3\n  accept\n"
	}
	return fmt.Sprintf(`global_defs {
  vrrp_strict
}
vrrp_instance VI_S {
  interface eth0
  virtual_router_id 77
  priority 100
  advert_int 1
%s  virtual_ipaddress {
    %s/24
  }
}
virtual_server %[2]s 80 {
  protocol TCP
  lvs_sched rr
  lvs_method NAT
  real_server %s 80 {
    weight 1
  }
  real_server %s 80 {
    weight 1
  }
}
`, inst, strictVIP, lab.RealServerIP(1), lab.RealServerIP(2))
}

// TestIPVSInVMStrict shows keepalived's known pitfall of vrrp_strict with
// LVS, on lvsd and on keepalived 2.2.7 alike: the MASTER drops the
// traffic to its VIPs (its nftables input chain runs before IPVS), so a
// virtual server on a VRRP address serves nothing; with accept (VRRPv3)
// the same virtual server serves the client (lvsd; that keepalived drops
// nothing then either is TestNetnsFirewallLikeKeepalived's).
func TestIPVSInVMStrict(t *testing.T) {
	vmKernel(t)
	if os.Getenv("LVSD_IPVS_TOPOLOGY") == "" {
		t.Skip("needs the lab topology (client, dirA, rs1, rs2)")
	}
	for _, c := range []struct {
		daemon string
		accept bool
	}{{"lvsd", false}, {"keepalived", false}, {"lvsd", true}} {
		name := c.daemon
		if c.accept {
			name += "/accept"
		}
		t.Run(name, func(t *testing.T) {
			stop := startStrictDaemon(t, c.daemon, strictLabConf(c.accept))
			defer stop()
			n := 3 // each dropped request waits its 1 s timeout
			if c.accept {
				n = 6
			}
			rep := strictGet(t, n)
			if c.accept && (rep.Failed != 0 || rep.Answers["rs1"] == 0 || rep.Answers["rs2"] == 0) {
				t.Errorf("%s, vrrp_strict with accept: %+v", c.daemon, rep)
			}
			if !c.accept && (rep.Failed != rep.Requests || len(rep.Answers) != 0) {
				t.Errorf("%s, vrrp_strict: the VIP served %+v, keepalived drops it", c.daemon, rep)
			}
		})
	}
}

// startStrictDaemon runs lvsd or keepalived on text in dirA and waits
// until it is MASTER (the VIP on eth0) and the virtual server is in the
// table; stop ends it and waits until the VIP is gone.
func startStrictDaemon(t *testing.T, daemon, text string) (stop func()) {
	t.Helper()
	dir := t.TempDir()
	cf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(cf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	if daemon == "lvsd" {
		cmd = exec.Command("/usr/sbin/lvsd", "--dont-fork", "--log-console", "-f", cf, "--metrics-listen", "127.0.0.1:9167")
	} else {
		cmd = exec.Command("keepalived", "-n", "-l", "-f", cf, "-p", filepath.Join(dir, "k.pid"),
			"-r", filepath.Join(dir, "v.pid"), "-c", filepath.Join(dir, "c.pid"))
	}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	hasVIP := func() bool {
		out, _ := exec.Command("ip", "-4", "-o", "addr", "show", "dev", "eth0").Output()
		return strings.Contains(string(out), " "+strictVIP+"/24 ")
	}
	stop = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if hasVIP() {
			t.Errorf("%s left %s on eth0", daemon, strictVIP)
		}
		if t.Failed() {
			t.Logf("%s:\n%s", daemon, logs.String())
		}
	}
	for deadline := time.Now().Add(30 * time.Second); !(hasVIP() && strings.Contains(ipvsadmOut(t, "-Ln"), strictVIP+":80")); {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("%s: not MASTER with the virtual server after 30 s:\n%s", daemon, ipvsadmOut(t, "-Ln"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // the gratuitous ARPs reach the client
	return stop
}

// strictGet sends n requests from the client namespace to the VIP.
func strictGet(t *testing.T, n int) lab.ClientReport {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", "client", "labhelper", "get",
		"-url", "http://"+strictVIP+"/", "-n", fmt.Sprint(n), "-timeout", "1s").Output()
	if err != nil {
		t.Fatalf("client: %v: %s", err, out)
	}
	var rep lab.ClientReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("client report %q: %v", out, err)
	}
	return rep
}
