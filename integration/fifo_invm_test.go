package integration_test

// In the lab VM (run by TestIPVSLab; keepalived's checker needs IPVS, which
// the host kernel may lack): the checker's FIFO lines compared with
// keepalived 2.2.7's. The same configuration runs in keepalived and then in
// lvsd, each alone in a fresh network namespace with the same real servers
// (listeners of this test inside it); the same events are driven into both
// (two real servers' checks fail and recover, a virtual server's quorum is
// lost and regained, start, SIGTERM) and the lines each wrote to its
// lvs_notify_fifo and notify_fifo must be equal, in order. notify_fifo also
// has the VRRP instance's lines: keepalived writes them from its VRRP
// process and the checkers' from its checker process, so their order
// between the two is not keepalived's contract; each kind's order is.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvsd/lvsd/internal/netnstest"
)

// fifoCmpConf: VS 1 (quorum 2, omega: its DOWN lines at shutdown) with three
// real servers, VS 2 with one whose check fails from the start;
// rs_init_notifies: the real servers' UP lines at start.
const fifoCmpConf = `global_defs {
  router_id fifocmp
  notify_fifo {{DIR}}/all.fifo
  lvs_notify_fifo {{DIR}}/lvs.fifo
  rs_init_notifies
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 61
  priority 100
  advert_int 1
  virtual_ipaddress {
    192.0.2.161/24
  }
}
virtual_server 192.0.2.160 80 {
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  quorum 2
  omega
  real_server 198.51.100.71 80 {
    weight 1
    TCP_CHECK {
      connect_timeout 1
      retry 0
    }
  }
  real_server 198.51.100.72 80 {
    weight 1
    TCP_CHECK {
      connect_timeout 1
      retry 0
    }
  }
  real_server 198.51.100.73 80 {
    weight 1
    TCP_CHECK {
      connect_timeout 1
      retry 0
    }
  }
}
virtual_server 192.0.2.160 81 {
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 198.51.100.71 81 {
    weight 1
    TCP_CHECK {
      connect_timeout 1
      retry 0
    }
  }
}
`

const fifoCmpNS = "fifo-cmp"

// fifoLines reads a FIFO (opened before the daemon starts) in the
// background; lines returns the complete lines read so far.
type fifoLines struct {
	mu   sync.Mutex
	buf  strings.Builder
	stop chan struct{}
	done chan struct{}
}

func readFIFO(t *testing.T, path string) *fifoLines {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := &fifoLines{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		defer unix.Close(fd)
		b := make([]byte, 4096)
		for {
			n, err := unix.Read(fd, b)
			if n > 0 {
				f.mu.Lock()
				f.buf.Write(b[:n])
				f.mu.Unlock()
				continue
			}
			if err != nil && !errors.Is(err, unix.EAGAIN) {
				return
			}
			select {
			case <-f.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(f.close)
	return f
}

func (f *fifoLines) close() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
}

func (f *fifoLines) lines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.buf.String()
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.Split(s[:i], "\n")
	}
	return nil
}

// fifoRealServer is a listener of the test in the namespace; closing it
// makes its TCP_CHECK fail (connection refused), opening it again recover.
type fifoRealServer struct {
	addr string
	ln   net.Listener
}

func (r *fifoRealServer) open(t *testing.T) {
	t.Helper()
	err := netnstest.Do(fifoCmpNS, func() error {
		ln, err := net.Listen("tcp", r.addr)
		r.ln = ln
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	go func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}(r.ln)
}

func (r *fifoRealServer) close() {
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
}

// fifoRun is what one daemon wrote for the scenario.
type fifoRun struct {
	lvs, all []string
	log      string
}

// fifoScenario runs one daemon (argv, in the namespace) through the
// events and returns its FIFOs' lines.
func fifoScenario(t *testing.T, name, dir string, argv ...string) fifoRun {
	t.Helper()
	rs := []*fifoRealServer{{addr: "198.51.100.71:80"}, {addr: "198.51.100.72:80"}, {addr: "198.51.100.73:80"}}
	for _, r := range rs {
		r.open(t)
	}
	defer func() {
		for _, r := range rs {
			r.close()
		}
	}()
	for _, f := range []string{"all.fifo", "lvs.fifo"} {
		os.Remove(filepath.Join(dir, f))
		if err := unix.Mkfifo(filepath.Join(dir, f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	lvs, all := readFIFO(t, filepath.Join(dir, "lvs.fifo")), readFIFO(t, filepath.Join(dir, "all.fifo"))
	output, stop := startInNetns(t, fifoCmpNS, filepath.Join(dir, name+".out"), argv...)
	defer stop()
	// waitLine waits for line in lvs_notify_fifo, then a quiet moment for
	// any line that comes with it.
	waitLine := func(fifo *fifoLines, line string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !slices.Contains(fifo.lines(), line) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no %q in 30s; lvs_notify_fifo:\n%s\nnotify_fifo:\n%s\noutput:\n%s", name, line,
					strings.Join(lvs.lines(), "\n"), strings.Join(all.lines(), "\n"), tail(output(), 60))
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(1500 * time.Millisecond)
	}
	const vs1, vs2 = "[192.0.2.160]:tcp:80", "[192.0.2.160]:tcp:81"
	rsLine := func(ip, port, vs, state string) string {
		return "RS [198.51.100." + ip + "]:tcp:" + port + " " + vs + " " + state
	}
	// Start: VS 2's real server fails its first check; VI_1 becomes MASTER.
	waitLine(lvs, "VS "+vs2+" DOWN")
	waitLine(all, `INSTANCE "VI_1" MASTER 100`)
	// A real server down, quorum kept.
	rs[2].close()
	waitLine(lvs, rsLine("73", "80", vs1, "DOWN"))
	// Another: the quorum (2) is lost.
	rs[1].close()
	waitLine(lvs, "VS "+vs1+" DOWN")
	// Back: the quorum is regained.
	rs[1].open(t)
	waitLine(lvs, "VS "+vs1+" UP")
	rs[2].open(t)
	waitLine(lvs, rsLine("73", "80", vs1, "UP"))
	stop()
	time.Sleep(time.Second) // the last lines are in the pipes
	lvs.close()
	all.close()
	return fifoRun{lvs: lvs.lines(), all: all.lines(), log: output()}
}

// startInNetns starts argv in network namespace ns, its output into the
// file out (output reads it back); stop sends SIGTERM and waits for the end
// (30 s, then SIGKILL and an error). stop may be called more than once.
func startInNetns(t *testing.T, ns, out string, argv ...string) (output func() string, stop func()) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	output = func() string { b, _ := os.ReadFile(out); return string(b) }
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(exited) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Signal(unix.SIGTERM)
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				t.Errorf("%s: not stopped 30s after SIGTERM", argv[0])
				cmd.Process.Kill()
				<-exited
			}
		})
	}
	return output, stop
}

// splitKinds splits notify_fifo's lines into the VRRP ones and the
// checkers'.
func splitKinds(lines []string) (vrrp, lvs []string) {
	for _, l := range lines {
		if strings.HasPrefix(l, "INSTANCE ") || strings.HasPrefix(l, "GROUP ") {
			vrrp = append(vrrp, l)
		} else {
			lvs = append(lvs, l)
		}
	}
	return vrrp, lvs
}

func TestIPVSInVMNotifyFIFO(t *testing.T) {
	if os.Getenv(envInVM) == "" {
		t.Skipf("runs inside the lab VM (TestIPVSLab sets %s)", envInVM)
	}
	exec.Command("ip", "netns", "del", fifoCmpNS).Run()
	ipCmds := [][]string{
		{"netns", "add", fifoCmpNS},
		{"-n", fifoCmpNS, "link", "set", "lo", "up"},
		{"-n", fifoCmpNS, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0"},
		{"-n", fifoCmpNS, "addr", "add", "192.0.2.1/24", "dev", "eth0"},
		{"-n", fifoCmpNS, "link", "set", "eth0", "up"},
		{"-n", fifoCmpNS, "link", "set", "peer0", "up"},
	}
	for _, a := range []string{"198.51.100.71", "198.51.100.72", "198.51.100.73"} {
		ipCmds = append(ipCmds, []string{"-n", fifoCmpNS, "addr", "add", a + "/32", "dev", "lo"})
	}
	for _, args := range ipCmds {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	defer exec.Command("ip", "netns", "del", fifoCmpNS).Run()
	dir := t.TempDir()
	cf := filepath.Join(dir, "fifo.conf")
	if err := os.WriteFile(cf, []byte(strings.ReplaceAll(fifoCmpConf, "{{DIR}}", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	k := fifoScenario(t, "keepalived", dir, "keepalived", "-n", "-l", "-D", "-f", cf,
		"-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "kv.pid"), "-c", filepath.Join(dir, "kc.pid"))
	l := fifoScenario(t, "lvsd", dir, "/usr/sbin/lvsd", "-n", "-l", "-f", cf, "-p", filepath.Join(dir, "l.pid"), "--metrics-listen", "")
	t.Logf("keepalived's lvs_notify_fifo:\n%s\nits notify_fifo:\n%s", strings.Join(k.lvs, "\n"), strings.Join(k.all, "\n"))
	// What keepalived 2.2.7 wrote, every time: at start each virtual
	// server's real servers (rs_init_notifies) then its quorum (gained at
	// start-up), VS 2's failed first check, the events, and at SIGTERM the
	// omega virtual server's real servers that were up, then its quorum.
	rs := func(n, port, state string) string {
		return "RS [198.51.100." + n + "]:tcp:" + port + " [192.0.2.160]:tcp:" + port + " " + state
	}
	vs := func(port, state string) string { return "VS [192.0.2.160]:tcp:" + port + " " + state }
	want := []string{
		rs("71", "80", "UP"), rs("72", "80", "UP"), rs("73", "80", "UP"), vs("80", "UP"),
		rs("71", "81", "UP"), vs("81", "UP"),
		rs("71", "81", "DOWN"), vs("81", "DOWN"),
		rs("73", "80", "DOWN"),
		rs("72", "80", "DOWN"), vs("80", "DOWN"),
		rs("72", "80", "UP"), vs("80", "UP"),
		rs("73", "80", "UP"),
		rs("71", "80", "DOWN"), rs("72", "80", "DOWN"), rs("73", "80", "DOWN"), vs("80", "DOWN"),
	}
	if !slices.Equal(k.lvs, want) {
		t.Errorf("keepalived's lvs_notify_fifo is not what it wrote before\n%s", lineDiff("keepalived before", "keepalived now", want, k.lvs))
	}
	if !slices.Equal(k.lvs, l.lvs) {
		t.Errorf("lvs_notify_fifo lines differ\n%s", lineDiff("keepalived", "lvsd", k.lvs, l.lvs))
	}
	kv, kl := splitKinds(k.all)
	lv, ll := splitKinds(l.all)
	if !slices.Equal(kl, ll) {
		t.Errorf("notify_fifo: the checkers' lines differ\n%s", lineDiff("keepalived", "lvsd", kl, ll))
	}
	if !slices.Equal(kv, lv) {
		t.Errorf("notify_fifo: the VRRP lines differ\n%s", lineDiff("keepalived", "lvsd", kv, lv))
	}
	if !slices.Equal(kl, k.lvs) {
		t.Errorf("keepalived: notify_fifo's checker lines are not lvs_notify_fifo's\n%s", lineDiff("lvs_notify_fifo", "notify_fifo", k.lvs, kl))
	}
	if t.Failed() {
		t.Logf("keepalived's output:\n%s\nlvsd's output:\n%s", tail(k.log, 80), tail(l.log, 80))
	}
}

// lineDiff shows two line lists side by side, "!" where they differ.
func lineDiff(kname, lname string, k, l []string) string {
	var b strings.Builder
	for i := 0; i < len(k) || i < len(l); i++ {
		var x, y string
		if i < len(k) {
			x = k[i]
		}
		if i < len(l) {
			y = l[i]
		}
		mark := " "
		if x != y {
			mark = "!"
		}
		fmt.Fprintf(&b, "%s %-60s | %s\n", mark, x, y)
	}
	return fmt.Sprintf("  %-60s | %s\n", kname, lname) + b.String()
}
