package integration_test

// In the lab VM (run by TestIPVSLab, see ipvs_invm_test.go): lvsd's
// ipvsadm listings compared byte for byte with the real ipvsadm on the
// tables the other in-VM tests program, the saved rules restored by
// `ipvsadm -R` to an identical table, and `lvsd ctl` against a real lvsd
// daemon in dirA (ipvs, save, drain, enable, reload) with client traffic.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lvsd/lvsd/integration/lab"
	"github.com/lvsd/lvsd/ipvs"
	"github.com/lvsd/lvsd/status"
)

// vmCtlExtra adds what the other tables lack: thresholds, one-packet
// scheduling, SCTP, mh flags, an IPv6 persistent service with a prefix.
const vmCtlExtra = `virtual_server 10.1.3.1 80 {
	protocol TCP
	lvs_sched wlc
	real_server 10.2.3.1 80 {
		weight 3
		uthreshold 100
		lthreshold 10
	}
	real_server 10.2.3.2 80 {
		uthreshold 7
	}
}
virtual_server 10.1.3.2 53 {
	protocol UDP
	ops
	real_server 10.2.3.1 53 {
	}
}
virtual_server 10.1.3.3 3868 {
	protocol SCTP
	lvs_sched mh
	mh-fallback
	mh-port
	real_server 10.2.3.1 3868 {
	}
}
virtual_server 2001:db8:3::1 53 {
	protocol UDP
	lvs_sched sh
	sh-port
	persistence_timeout 60
	persistence_granularity 64
	real_server 2001:db8:4::1 53 {
	}
}
`

// ctlListingArgs are the listings compared with ipvsadm.
var ctlListingArgs = [][]string{
	{"-L", "-n"}, {"-Ln", "--stats"}, {"-Ln", "--rate"}, {"-Ln", "--stats", "--exact"}, {"-Ln", "--rate", "--exact"},
	{"-Ln", "--thresholds"}, {"-Ln", "--persistent-conn"}, {"-Ln", "--tun-info"}, {"-Ln", "--nosort"}, {"-S", "-n"},
	{"-L", "-n", "-c"}, {"-L", "-n", "-c", "--persistent-conn"},
}

func ipvsadmOut(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ipvsadm", args...).Output()
	if err != nil {
		t.Fatalf("ipvsadm %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// sameAsIPVSADM compares mine(args) with ipvsadm's output for args, a few
// times: counters, rates and connection timers move between two reads.
func sameAsIPVSADM(t *testing.T, args []string, mine func([]string) (string, error)) {
	t.Helper()
	var got, want string
	for i := 0; i < 6; i++ {
		var err error
		if got, err = mine(args); err != nil {
			t.Errorf("%s: %v", strings.Join(args, " "), err)
			return
		}
		if want = ipvsadmOut(t, args...); got == want || sameConnections(got, want) {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Errorf("ipvsadm %s differs:\n--- lvsd\n%s--- ipvsadm\n%s", strings.Join(args, " "), got, want)
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestIPVSInVMCtlListings: every listing of every table, byte for byte as
// ipvsadm prints it, one service at a time too; then the saved rules are
// restored with ipvsadm -R into a flushed table and give the same table.
func TestIPVSInVMCtlListings(t *testing.T) {
	k := vmKernel(t)
	ir := k.(ipvs.InfoReader)
	mine := func(args []string) (string, error) { return ipvs.Listing(ir, args) }
	for _, c := range []struct{ name, text string }{
		{"schedulers", vmSchedulers}, {"forwarding", vmForwarding}, {"persistence", vmPersistence}, {"extra", vmCtlExtra},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := vmParse(t, c.text)
			v := startVMRec(t, k, cfg, ipvs.Options{Logger: quietLog()})
			for _, args := range ctlListingArgs {
				sameAsIPVSADM(t, args, mine)
			}
			// One service at a time: -t/-u/--sctp-service/-f [-6].
			svcs, err := k.Services()
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range svcs {
				var sel []string
				switch {
				case s.Fwmark != 0:
					sel = []string{"-f", fmt.Sprint(s.Fwmark)}
					if s.Family == ipvs.INET6 {
						sel = append(sel, "-6")
					}
				default:
					opt := map[ipvs.Protocol]string{ipvs.TCP: "-t", ipvs.UDP: "-u", ipvs.SCTP: "--sctp-service"}[s.Proto]
					ap := s.Addr.String() + ":" + fmt.Sprint(s.Port)
					if s.Addr.Is6() {
						ap = "[" + s.Addr.String() + "]:" + fmt.Sprint(s.Port)
					}
					sel = []string{opt, ap}
				}
				sameAsIPVSADM(t, append([]string{"-L", "-n"}, sel...), mine)
				for _, o := range []string{"--stats", "--rate", "--thresholds", "--persistent-conn", "--tun-info"} {
					sameAsIPVSADM(t, append([]string{"-L", "-n", o}, sel...), mine)
				}
			}
			// What ipvsadm refuses, lvsd refuses.
			for _, args := range [][]string{{"-S", "-n", "-t", "10.9.9.9:80"}, {"-S", "-n", "--stats"}, {"-L", "-n", "-c", "-t", "10.9.9.9:80"}} {
				if err := exec.Command("ipvsadm", args...).Run(); err == nil {
					t.Errorf("ipvsadm %v accepted", args)
				}
				if out, err := mine(args); err == nil {
					t.Errorf("lvsd accepts %v: %q", args, out)
				}
			}
			before := map[string]string{}
			for _, a := range [][]string{{"-Ln"}, {"-Ln", "--tun-info"}, {"-Ln", "--persistent-conn"}, {"-S", "-n"}} {
				before[strings.Join(a, " ")] = ipvsadmOut(t, a...)
			}
			rules, err := mine([]string{"-S", "-n"})
			if err != nil {
				t.Fatal(err)
			}
			v.stop()
			if err := k.Flush(); err != nil {
				t.Fatal(err)
			}
			if out := ipvsadmOut(t, "-S", "-n"); out != "" {
				t.Fatalf("table not empty after flush: %s", out)
			}
			cmd := exec.Command("ipvsadm", "-R")
			cmd.Stdin = strings.NewReader(rules)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("ipvsadm -R: %v: %s\n%s", err, out, rules)
			}
			// ipvsadm -S saves no thresholds (neither does lvsd's save):
			// everything else is back.
			for a, want := range before {
				if got := ipvsadmOut(t, strings.Fields(a)...); got != want {
					t.Errorf("ipvsadm %s after ipvsadm -R of lvsd's rules:\n%s\nbefore:\n%s", a, got, want)
				}
			}
			if err := k.Flush(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestIPVSInVMCtl runs lvsd in dirA with a NAT service and drives it with
// lvsd ctl while the client sends traffic: the listings (with counters,
// rates and connections) equal ipvsadm's, drain takes a real server out of
// the traffic (weight 0 in the kernel, in status and metrics) and keeps it
// out across a reload, enable brings it back.
func TestIPVSInVMCtl(t *testing.T) {
	conf, sock, text := natWRRSetup(t)
	const bin = "/usr/sbin/lvsd"
	startVMLvsd(t, conf, sock)
	ctl := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append([]string{"ctl", "--socket", sock}, args...)...).Output()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), fmt.Errorf("%v: %s", err, ee.Stderr)
		}
		return string(out), err
	}
	vs, rs1, rs2 := lab.VIP+":80", lab.RealServerIP(1)+":80", lab.RealServerIP(2)+":80"
	for deadline := time.Now().Add(30 * time.Second); ; {
		if strings.Count(ipvsadmOut(t, "-Ln"), "Masq") == 2 {
			if _, err := ctl("status"); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("lvsd did not program the table:\n%s", ipvsadmOut(t, "-Ln"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	get := func(n int) lab.ClientReport { return clientGet(t, n) }
	if rep := get(40); rep.Failed != 0 || rep.Answers["rs1"] == 0 || rep.Answers["rs2"] == 0 {
		t.Errorf("before the drain: %+v", rep)
	}
	// Counters, rates and connections (in TIME_WAIT) as ipvsadm has them.
	viaCtl := func(args []string) (string, error) {
		if len(args) == 2 && args[0] == "-S" && args[1] == "-n" {
			return ctl("ipvs", "save")
		}
		return ctl(append([]string{"ipvs"}, args...)...)
	}
	for _, args := range append(ctlListingArgs, []string{"-L", "-n", "-t", vs}) {
		sameAsIPVSADM(t, args, viaCtl)
	}
	if out, err := ctl("ipvs", "-L", "-n", "-t", "192.0.2.254:80"); err == nil || out != "" {
		t.Errorf("a missing service: %q %v", out, err)
	}

	// drain: weight 0 in the kernel, no new connection reaches rs1.
	if out, err := ctl("drain", vs, rs1); err != nil || !strings.Contains(out, "drained") {
		t.Fatalf("drain: %q %v", out, err)
	}
	weights := func() string {
		var w []string
		for _, l := range strings.Split(ipvsadmOut(t, "-Ln"), "\n") {
			if f := strings.Fields(l); len(f) >= 4 && f[0] == "->" && f[2] == "Masq" {
				w = append(w, f[1]+"="+f[3])
			}
		}
		return strings.Join(w, " ")
	}
	if w := weights(); w != rs1+"=0 "+rs2+"=3" {
		t.Errorf("weights after drain: %s", w)
	}
	if rep := get(40); rep.Failed != 0 || rep.Answers["rs1"] != 0 || rep.Answers["rs2"] != 40 {
		t.Errorf("after the drain, 40 requests: %+v; want all on rs2", rep)
	}
	rsStatus := func() status.RealServer {
		out, err := ctl("status", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var st status.Status
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatal(err)
		}
		for _, v := range st.VirtualServers {
			for _, r := range v.RealServers {
				if r.Addr == rs1 {
					return r
				}
			}
		}
		t.Fatalf("no %s in the status", rs1)
		return status.RealServer{}
	}
	if r := rsStatus(); !r.Drained || r.EffectiveWeight != 0 {
		t.Errorf("status of the drained server: %+v", r)
	}
	if out, _ := ctl("status"); !strings.Contains(out, "drained") {
		t.Errorf("the status table does not say drained:\n%s", out)
	}
	want := fmt.Sprintf(`lvsd_real_server_drained{real_server=%q,virtual_server="TCP/%s"} 1`, rs1, vs)
	if m := metricsText(t, "http://127.0.0.1:9166/metrics"); !strings.Contains(m, want) {
		t.Errorf("no %s in the metrics", want)
	}

	// A reload changing the other server's weight: rs1 stays drained.
	os.WriteFile(conf, []byte(strings.Replace(text, "weight 3", "weight 2", 1)), 0o644)
	if out, err := ctl("reload"); err != nil || !strings.Contains(out, "reloaded") {
		t.Fatalf("reload: %q %v", out, err)
	}
	if w := weights(); w != rs1+"=0 "+rs2+"=2" {
		t.Errorf("weights after the reload: %s", w)
	}
	// enable: the configured weight again, traffic on both.
	if _, err := ctl("enable", vs, rs1); err != nil {
		t.Fatal(err)
	}
	if w := weights(); w != rs1+"=1 "+rs2+"=2" {
		t.Errorf("weights after enable: %s", w)
	}
	if rep := get(30); rep.Failed != 0 || rep.Answers["rs1"] < 5 {
		t.Errorf("after enable, 30 requests: %+v", rep)
	}
	if r := rsStatus(); r.Drained {
		t.Errorf("still drained: %+v", r)
	}
	if _, err := ctl("drain", vs, "198.51.100.99:80"); err == nil {
		t.Error("drain of an unknown real server accepted")
	}
}

// natWRRSetup is the start of an in-VM test of the lvsd binary in the lab
// topology: the VM's IPVS flushed, natWRRConf written; it returns the
// configuration's path, a control socket's path and the text.
func natWRRSetup(t *testing.T) (conf, sock, text string) {
	t.Helper()
	vmKernel(t)
	if os.Getenv("LVSD_IPVS_TOPOLOGY") == "" {
		t.Skip("needs the lab topology (client, dirA, rs1, rs2)")
	}
	if _, err := os.Stat("/usr/sbin/lvsd"); err != nil {
		t.Fatalf("lvsd is not in the image: %v", err)
	}
	dir := t.TempDir()
	conf, sock, text = filepath.Join(dir, "keepalived.conf"), filepath.Join(dir, "ctl"), natWRRConf()
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf, sock, text
}

// clientGet makes n HTTP requests to the VIP from the client namespace,
// each given 2 s.
func clientGet(t *testing.T, n int) lab.ClientReport {
	t.Helper()
	rep, err := clientGetWithin(n, "2s")
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// clientGetWithin is clientGet with the timeout of each request; it may
// run in a goroutine of its own.
func clientGetWithin(n int, timeout string) (lab.ClientReport, error) {
	var rep lab.ClientReport
	out, err := exec.Command("ip", "netns", "exec", "client", "labhelper", "get",
		"-url", "http://"+lab.VIP+"/", "-n", fmt.Sprint(n), "-timeout", timeout).Output()
	if err != nil {
		return rep, fmt.Errorf("client: %v: %s", err, out)
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		return rep, fmt.Errorf("client report %q: %v", out, err)
	}
	return rep, nil
}

// vmLvsd is lvsd run by an in-VM test (in dirA), its output in logs.
type vmLvsd struct {
	cmd    *exec.Cmd
	logs   *lockedLog
	exited chan struct{}
}

type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startVMLvsd runs /usr/sbin/lvsd with the configuration and the control
// socket, metrics on 127.0.0.1:9166, until the test ends (SIGTERM) or
// kill9.
func startVMLvsd(t *testing.T, conf, sock string) *vmLvsd {
	t.Helper()
	d := &vmLvsd{logs: &lockedLog{}, exited: make(chan struct{})}
	d.cmd = exec.Command("/usr/sbin/lvsd", "--dont-fork", "--log-console", "-f", conf, "--ctl-socket", sock, "--metrics-listen", "127.0.0.1:9166")
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(20 * time.Second):
			d.cmd.Process.Kill()
			<-d.exited
		}
		t.Logf("lvsd:\n%s", d.logs.String())
	})
	return d
}

// kill9 kills lvsd as a crash would: no cleanup of any kind.
func (d *vmLvsd) kill9() {
	d.cmd.Process.Kill()
	<-d.exited
}

func metricsText(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Errorf("metrics: %v", err)
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// sameConnections: two connection listings (ipvsadm -c) that differ only
// by a second in the expire column of some entries, whose timers ticked
// between the two reads (a listing of many connections takes longer than
// that under emulation).
func sameConnections(a, b string) bool {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	if len(la) != len(lb) || len(la) < 2 || la[0] != "IPVS connection entries" {
		return false
	}
	secs := func(s string) (int, bool) {
		var m, sec int
		if n, err := fmt.Sscanf(s, "%d:%d", &m, &sec); n != 2 || err != nil {
			return 0, false
		}
		return m*60 + sec, true
	}
	for i := range la {
		if la[i] == lb[i] {
			continue
		}
		// "PRO MM:SS  STATE..." : the expire field is bytes 4..9.
		if len(la[i]) != len(lb[i]) || len(la[i]) < 10 || la[i][:4] != lb[i][:4] || la[i][9:] != lb[i][9:] {
			return false
		}
		x, ok1 := secs(strings.TrimSpace(la[i][4:10]))
		y, ok2 := secs(strings.TrimSpace(lb[i][4:10]))
		if !ok1 || !ok2 || x-y > 1 || y-x > 1 {
			return false
		}
	}
	return true
}
