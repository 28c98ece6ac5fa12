package main

// lvsd ctl against real lvsd processes in network namespaces (VRRP runs on
// the host; IPVS does not, so drain and ipvs are tested in the lab VM:
// integration/ipvs_ctl_invm_test.go).

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

	"github.com/lvsd/lvsd/status"
)

const ctlConf = `global_defs {
  router_id %s
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 52
  priority %d
  advert_int 1
  virtual_ipaddress {
    192.0.2.100/24
  }
}
`

// ctlDirector is an lvsd process with its control socket.
type ctlDirector struct {
	name, conf, socket string
	bin                string
	cmd                *exec.Cmd
	out                *lockedBuffer
	exited             chan struct{}
}

func startCtlDirector(t *testing.T, bin, ns, name string, prio int, extra ...string) *ctlDirector {
	t.Helper()
	dir, err := os.MkdirTemp("", "lvsd-ctl-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755) // the unauthorised client must reach the socket
	d := &ctlDirector{name: name, bin: bin, conf: filepath.Join(dir, "keepalived.conf"), socket: filepath.Join(dir, "run", "ctl"),
		out: &lockedBuffer{}, exited: make(chan struct{})}
	if err := os.WriteFile(d.conf, []byte(fmt.Sprintf(ctlConf, name, prio)), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"netns", "exec", ns, bin, "--dont-fork", "--log-console", "-f", d.conf, "--metrics-listen=", "--ctl-socket", d.socket}, extra...)
	d.cmd = exec.Command("ip", args...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(10 * time.Second):
			d.cmd.Process.Kill()
			<-d.exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, d.out.String())
		}
	})
	waitUntil(t, 10*time.Second, name+"'s control socket", func() bool {
		_, err := os.Stat(d.socket)
		return err == nil
	})
	return d
}

// ctl runs lvsd ctl on d's socket (prefix: setpriv …) and returns its
// stdout, stderr and exit code.
func (d *ctlDirector) ctl(t *testing.T, prefix []string, args ...string) (string, string, int) {
	t.Helper()
	argv := append(append(append([]string{}, prefix...), d.bin, "ctl", "--socket", d.socket), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("lvsd ctl %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func (d *ctlDirector) status(t *testing.T) *status.Status {
	t.Helper()
	out, errs, code := d.ctl(t, nil, "status", "--json")
	if code != 0 {
		t.Fatalf("%s: lvsd ctl status --json: exit %d: %s", d.name, code, errs)
	}
	var st status.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return &st
}

func (d *ctlDirector) instance(t *testing.T) status.Instance {
	t.Helper()
	st := d.status(t)
	if len(st.Instances) != 1 {
		t.Fatalf("%s: %d instances", d.name, len(st.Instances))
	}
	return st.Instances[0]
}

func (d *ctlDirector) state(t *testing.T) string { return d.instance(t).State }

// TestNetnsCtl: status (table and JSON), failover (until cleared and for a
// duration), reload (rejected with file:line, then accepted) through the
// control socket of real lvsd processes; every command refused for an
// unauthorised peer, allowed for the configured group.
func TestNetnsCtl(t *testing.T) {
	integration(t, "ip", "setpriv")
	bin := buildLvsd(t)
	if err := os.Chmod(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	n := newOpsNet(t)
	const ctlGID = 4242
	a := startCtlDirector(t, bin, n.a, "lb-a", 150, "--ctl-group", fmt.Sprint(ctlGID))
	b := startCtlDirector(t, bin, n.b, "lb-b", 100)
	waitUntil(t, 15*time.Second, "lb-a MASTER, lb-b BACKUP", func() bool { return a.state(t) == "MASTER" && b.state(t) == "BACKUP" })

	// The table: a header and one row per instance.
	out, _, code := a.ctl(t, nil, "status")
	if code != 0 || !strings.Contains(out, "INSTANCE") || !strings.Contains(strings.Join(strings.Fields(out), " "), "VI_1 MASTER 150 192.0.2.1 eth0 52") {
		t.Errorf("status table (exit %d):\n%s", code, out)
	}

	// failover: lb-a sends priority 0, releases the VIP, stays BACKUP
	// although it has the higher priority.
	if out, errs, code := a.ctl(t, nil, "failover", "VI_1"); code != 0 || !strings.Contains(out, "VI_1 failed over") {
		t.Fatalf("failover: exit %d %s %s", code, out, errs)
	}
	in := a.instance(t)
	if in.State != "BACKUP" || !in.FailedOver || !in.FailedOverUntil.IsZero() || in.Stats.PriZeroSent < 1 {
		t.Errorf("lb-a after failover: %+v", in)
	}
	waitUntil(t, 5*time.Second, "lb-b MASTER after lb-a's priority 0", func() bool { return b.state(t) == "MASTER" })
	if bi := b.instance(t); bi.Stats.PriZeroRcvd < 1 {
		t.Errorf("lb-b received no priority-0 advert: %+v", bi.Stats)
	}
	if hasAddr(t, n.a, "192.0.2.100/24") || !hasAddr(t, n.b, "192.0.2.100/24") {
		t.Errorf("VIP after failover: a %v, b %v", hasAddr(t, n.a, "192.0.2.100/24"), hasAddr(t, n.b, "192.0.2.100/24"))
	}
	out, _, _ = a.ctl(t, nil, "status")
	if !strings.Contains(out, "failed over") {
		t.Errorf("the table does not say failed over:\n%s", out)
	}
	// Longer than Master_Down_Interval (3.4 s): lb-a does not preempt.
	time.Sleep(4 * time.Second)
	if s := a.state(t); s != "BACKUP" || b.state(t) != "MASTER" {
		t.Errorf("lb-a preempted while failed over: %s", s)
	}
	// --clear: lb-a preempts again.
	if _, errs, code := a.ctl(t, nil, "failover", "--clear", "VI_1"); code != 0 {
		t.Fatalf("failover --clear: %d %s", code, errs)
	}
	waitUntil(t, 8*time.Second, "lb-a MASTER after --clear", func() bool { return a.state(t) == "MASTER" && b.state(t) == "BACKUP" })
	if a.instance(t).FailedOver {
		t.Error("still failed over after --clear")
	}
	// --for: back by itself.
	t0 := time.Now()
	if _, errs, code := a.ctl(t, nil, "failover", "VI_1", "--for", "2s"); code != 0 {
		t.Fatalf("failover --for: %d %s", code, errs)
	}
	if in := a.instance(t); in.State != "BACKUP" || in.FailedOverUntil.IsZero() {
		t.Errorf("lb-a failed over for 2s: %+v", in)
	}
	waitUntil(t, 12*time.Second, "lb-a MASTER again after its 2 s", func() bool { return a.state(t) == "MASTER" })
	if el := time.Since(t0); el < 2*time.Second {
		t.Errorf("lb-a back after %v, before its 2 s", el)
	}
	if _, errs, code := a.ctl(t, nil, "failover", "VI_9"); code != 1 || !strings.Contains(errs, `no VRRP instance or sync group "VI_9"`) {
		t.Errorf("failover of an unknown instance: %d %s", code, errs)
	}

	// reload: a configuration with a new error is rejected, every
	// diagnostic printed at file:line, exit 1; the running one stays.
	good := fmt.Sprintf(ctlConf, "lb-a", 150)
	bad := strings.Replace(good, "  advert_int 1\n", "  advert_int 1\n  priority banana\n", 1)
	os.WriteFile(a.conf, []byte(bad), 0o644)
	_, errs, code := a.ctl(t, nil, "reload")
	if code != 1 || !strings.Contains(errs, a.conf+":10:") || !strings.Contains(errs, "rejected") && !strings.Contains(errs, "new errors") {
		t.Errorf("bad reload: exit %d, stderr:\n%s", code, errs)
	}
	if st := a.status(t); st.Reloads.Failure != 1 || st.Instances[0].Priority != 150 {
		t.Errorf("after the rejected reload: reloads %+v, priority %d", st.Reloads, st.Instances[0].Priority)
	}
	os.WriteFile(a.conf, []byte(strings.Replace(good, "priority 150", "priority 140", 1)), 0o644)
	if out, errs, code := a.ctl(t, nil, "reload"); code != 0 || !strings.Contains(out, "configuration reloaded") {
		t.Errorf("good reload: exit %d %s %s", code, out, errs)
	}
	if st := a.status(t); st.Reloads.Success != 1 || st.Instances[0].Priority != 140 {
		t.Errorf("after the reload: reloads %+v, priority %d", st.Reloads, st.Instances[0].Priority)
	}

	// Unauthorised peers. lb-b's socket is root's only (mode 0660, group
	// root): nobody cannot even connect.
	nobody := []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}
	if _, errs, code := b.ctl(t, nobody, "status"); code != 3 || !strings.Contains(errs, "permission denied") {
		t.Errorf("nobody on a root-only socket: exit %d %s", code, errs)
	}
	// With the socket opened to everyone by mistake, SO_PEERCRED still
	// refuses every command, and nothing happens.
	os.Chmod(b.socket, 0o666)
	before := b.status(t)
	for _, args := range [][]string{{"status"}, {"ipvs", "-L", "-n"}, {"ipvs", "save"}, {"drain", "192.0.2.100:80", "10.0.0.1:80"},
		{"enable", "192.0.2.100:80", "10.0.0.1:80"}, {"failover", "VI_1"}, {"failover", "--clear", "VI_1"}, {"reload"}} {
		out, errs, code := b.ctl(t, nobody, args...)
		if code != 1 || !strings.Contains(errs, "permission denied: uid 65534 is neither root nor in the control group") || out != "" {
			t.Errorf("nobody: lvsd ctl %v: exit %d, out %q, err %q", args, code, out, errs)
		}
	}
	after := b.status(t)
	if after.Instances[0].State != before.Instances[0].State || after.Instances[0].FailedOver || after.Reloads != before.Reloads {
		t.Errorf("a refused command changed lb-b: %+v -> %+v", before.Instances[0], after.Instances[0])
	}
	if !strings.Contains(b.out.String(), "control socket: request refused") {
		t.Error("the refusals are not logged")
	}
	// lb-a's group may: uid 65534 with group 4242 reads the status; without
	// the group it cannot connect.
	member := []string{"setpriv", "--reuid=65534", "--regid=65534", fmt.Sprintf("--groups=%d", ctlGID)}
	if out, errs, code := a.ctl(t, member, "status"); code != 0 || !strings.Contains(out, "VI_1") {
		t.Errorf("a member of the control group: exit %d %s %s", code, out, errs)
	}
	if fi, err := os.Stat(a.socket); err != nil || fi.Sys().(*syscall.Stat_t).Gid != ctlGID || fi.Mode().Perm() != 0o660 {
		t.Errorf("lb-a's socket: %v %v", fi.Mode(), err)
	}
	if _, _, code := a.ctl(t, nobody, "status"); code == 0 {
		t.Error("nobody without the group reads lb-a's status")
	}
}
