package lab

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// readNewc parses a newc archive (enough of it to check ours).
func readNewc(t *testing.T, b []byte) (names []string, files map[string]string, modes map[string]uint32) {
	t.Helper()
	files, modes = map[string]string{}, map[string]uint32{}
	off := 0
	for i := 0; i < 10000; i++ {
		if off%4 != 0 {
			t.Fatalf("header at %d not aligned", off)
		}
		h := string(b[off : off+110])
		if h[:6] != "070701" {
			t.Fatalf("bad magic at %d: %q", off, h[:6])
		}
		field := func(n int) int {
			v, err := strconv.ParseUint(h[6+8*n:14+8*n], 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return int(v)
		}
		mode, size, namesize := field(1), field(6), field(11)
		name := string(b[off+110 : off+110+namesize-1])
		off += 110 + namesize
		off = (off + 3) &^ 3
		data := string(b[off : off+size])
		off += size
		off = (off + 3) &^ 3
		if name == "TRAILER!!!" {
			if len(b)%512 != 0 {
				t.Errorf("archive length %d not a multiple of 512", len(b))
			}
			return
		}
		names = append(names, name)
		files[name] = data
		modes[name] = uint32(mode)
	}
	t.Fatal("no trailer")
	return
}

func TestCPIO(t *testing.T) {
	tr := newTree()
	tr.file("/usr/bin/hello", 0o755, []byte("#!/bin/sh\necho hi\n"))
	tr.symlink("bin", "usr/bin")
	tr.add(&entry{Name: "dev/console", Mode: modeChr | 0o600, Major: 5, Minor: 1})
	src := filepath.Join(t.TempDir(), "src")
	os.WriteFile(src, []byte("from host"), 0o644)
	tr.hostFile("etc/x", 0o644, src)
	var buf bytes.Buffer
	if err := tr.write(&buf, os.ReadFile); err != nil {
		t.Fatal(err)
	}
	names, files, modes := readNewc(t, buf.Bytes())
	want := []string{"bin", "dev", "dev/console", "etc", "etc/x", "usr", "usr/bin", "usr/bin/hello"}
	if !slices.Equal(names, want) {
		t.Errorf("names %v, want %v (parents first)", names, want)
	}
	if files["usr/bin/hello"] != "#!/bin/sh\necho hi\n" || files["etc/x"] != "from host" || files["bin"] != "usr/bin" {
		t.Errorf("contents: %q", files)
	}
	if modes["usr/bin/hello"] != modeReg|0o755 || modes["bin"] != modeLink|0o777 || modes["usr"] != modeDir|0o755 || modes["dev/console"] != modeChr|0o600 {
		t.Errorf("modes: %v", modes)
	}
	var again bytes.Buffer
	tr.write(&again, os.ReadFile)
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("archive is not reproducible")
	}
}

func TestNATConfig(t *testing.T) {
	for name, ref := range map[string]string{"primary": RefNATPrimary, "backup": RefNATBackup} {
		c, err := NATConfig(ref)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, bad := range []string{"192.168.", "10.0.0.", "delay_loop 10", "connect_timeout 5"} {
			if strings.Contains(c, bad) {
				t.Errorf("%s: lab copy still has %q", name, bad)
			}
		}
		if regexp.MustCompile(`(?m)^\s*persistence_timeout`).MatchString(c) {
			t.Errorf("%s: lab copy still has persistence_timeout", name)
		}
		for _, want := range []string{"virtual_server 192.0.2.100 80", "192.0.2.100/24", "198.51.100.254/24",
			"real_server 198.51.100.71 80", "real_server 198.51.100.72 80", "delay_loop 1", "connect_timeout 1",
			"lb_kind NAT", "lb_algo rr", "vrrp_sync_group VRRP1", "interface eth0", "interface eth1"} {
			if !strings.Contains(c, want) {
				t.Errorf("%s: lab copy lacks %q", name, want)
			}
		}
	}
	if _, err := NATConfig(strings.ReplaceAll(RefNATPrimary, "10.0.0.72", "10.0.0.73")); err == nil {
		t.Error("a reference without 10.0.0.72 was adapted silently")
	}
}

// TestReferenceCopyUpToDate compares the embedded copy of the reference
// configs with shared/corpus/reference when that directory is beside the
// repository.
func TestReferenceCopyUpToDate(t *testing.T) {
	dir := ""
	wd, _ := os.Getwd()
	for d := wd; d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(filepath.Join(d, "shared/corpus/reference")); err == nil && fi.IsDir() {
			dir = filepath.Join(d, "shared/corpus/reference")
			break
		}
	}
	if dir == "" {
		// CI always has shared/ beside the repository: there, a missing
		// reference is a failure, not a reason to skip the drift check.
		if os.Getenv(EnvIntegration) != "" {
			t.Fatal("no shared/corpus/reference beside the repository")
		}
		t.Skip("no shared/corpus/reference beside the repository")
	}
	for f, emb := range map[string]string{"nat-primary.conf": RefNATPrimary, "nat-backup.conf": RefNATBackup} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != emb {
			t.Errorf("integration/lab/reference/%s differs from %s: copy it again", f, filepath.Join(dir, f))
		}
	}
}

func TestParseIPVS(t *testing.T) {
	out := `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.0.2.100:80 rr persistent 50
  -> 198.51.100.71:80             Masq    1      0          188
  -> 198.51.100.72:80             Route   3      2          0
UDP  192.0.2.100:53 wlc
FWM  7 sh
  -> 198.51.100.71:0              Tunnel  0      0          0
`
	svcs, err := ParseIPVS(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 3 {
		t.Fatalf("%d services: %+v", len(svcs), svcs)
	}
	s := FindService(svcs, "TCP", "192.0.2.100:80")
	if s == nil || s.Sched != "rr" || s.Flags != "persistent 50" || !slices.Equal(s.RealAddrs(), []string{"198.51.100.71:80", "198.51.100.72:80"}) {
		t.Errorf("TCP service: %+v", s)
	}
	if r := s.Real("198.51.100.72:80"); r == nil || r.Forward != "Route" || r.Weight != 3 || r.Active != 2 {
		t.Errorf("real: %+v", r)
	}
	if s := FindService(svcs, "FWM", "7"); s == nil || len(s.Reals) != 1 || s.Reals[0].Forward != "Tunnel" {
		t.Errorf("FWM: %+v", s)
	}
	if _, err := ParseIPVS("garbage line\n"); err == nil {
		t.Error("garbage accepted")
	}
}

func TestParseAddrs(t *testing.T) {
	out := `1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever preferred_lft forever
2: eth0@if7    inet 192.0.2.2/24 scope global eth0\       valid_lft forever preferred_lft forever
2: eth0@if7    inet 192.0.2.100/24 scope global secondary eth0\       valid_lft forever preferred_lft forever
2: eth0@if7    inet6 fe80::1/64 scope link \       valid_lft forever preferred_lft forever
`
	m := ParseAddrs(out)
	if !slices.Equal(m["eth0"], []string{"192.0.2.2/24", "192.0.2.100/24", "fe80::1/64"}) || !slices.Equal(m["lo"], []string{"127.0.0.1/8"}) {
		t.Errorf("%v", m)
	}
}

// TestCheckNATFailover runs the checks on results recorded from a real
// keepalived run in the lab (testdata/nat-keepalived), then on doctored
// copies that must fail.
func TestCheckNATFailover(t *testing.T) {
	dir := "testdata/nat-keepalived"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	good := func() *Result {
		r := &Result{ExitCode: 0, Files: map[string][]byte{}}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			r.Files[e.Name()] = b
		}
		return r
	}
	fails, sum := CheckNATFailover(good())
	if len(fails) != 0 {
		t.Errorf("recorded keepalived run fails the checks: %q", fails)
	}
	if sum.FailoverOutageMS() <= 0 || sum.Phases["p1"].Answers["rs1"] == 0 {
		t.Errorf("summary: %+v", sum)
	}

	for name, doctor := range map[string]func(r *Result){
		"rs2 not removed": func(r *Result) { r.Files["p2-ipvs-dirA.txt"] = r.Files["p1-ipvs-dirA.txt"] },
		"VIP on both":     func(r *Result) { r.Files["p1-addr-dirB.txt"] = r.Files["p1-addr-dirA.txt"] },
		"no failover":     func(r *Result) { r.Files["p4-addr-dirB.txt"] = r.Files["p1-addr-dirB.txt"] },
		"one server":      func(r *Result) { r.Files["p1-client.json"] = []byte(`{"requests":20,"failed":0,"answers":{"rs1":20}}`) },
		"failed requests": func(r *Result) {
			r.Files["p4-client.json"] = []byte(`{"requests":20,"failed":2,"answers":{"rs1":9,"rs2":9}}`)
		},
		"wait timed out": func(r *Result) { r.Files["waits.txt"] = append(r.Files["waits.txt"], "p4: x timeout 20\n"...) },
		"exit status":    func(r *Result) { r.ExitCode = 12 },
		"dirA survived":  func(r *Result) { r.Files["p4-namespaces.txt"] = r.Files["p1-namespaces.txt"] },
	} {
		r := good()
		doctor(r)
		if fails, _ := CheckNATFailover(r); len(fails) == 0 {
			t.Errorf("%s: not detected", name)
		}
	}
}

func TestWaits(t *testing.T) {
	r := &Result{Files: map[string][]byte{"waits.txt": []byte("p1: a b ok 1.25\np2: c timeout 20\n")}}
	w := r.Waits()
	if w["p1: a b"] != 1.25 || w["p2: c"] != -1 {
		t.Errorf("%v", w)
	}
}

// TestScriptsParse checks the shell scripts with sh -n (dash or bash is
// close enough to busybox ash for syntax).
func TestScriptsParse(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	sc, err := NATFailover("keepalived")
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"init.sh": string(initScript), "lib.sh": string(libScript), "nat": sc.Script} {
		cmd := exec.Command(sh, "-n")
		cmd.Stdin = strings.NewReader(s)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v: %s", name, err, out)
		}
	}
	if _, err := NATFailover("nginx"); err == nil {
		t.Error("unknown daemon accepted")
	}
}

func TestModuleClosure(t *testing.T) {
	dir := t.TempDir()
	dep := `kernel/net/netfilter/ipvs/ip_vs.ko: kernel/net/netfilter/nf_conntrack.ko kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/ipvs/ip_vs_rr.ko: kernel/net/netfilter/ipvs/ip_vs.ko kernel/net/netfilter/nf_conntrack.ko kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/nf_conntrack.ko: kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko:
kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko:
kernel/lib/libcrc32c.ko:
kernel/drivers/net/veth.ko:
kernel/net/bridge/bridge.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko
kernel/net/802/stp.ko: kernel/net/llc/llc.ko
kernel/net/llc/llc.ko:
kernel/drivers/virtio/virtio_pci.ko:
kernel/drivers/block/virtio_blk.ko:
kernel/drivers/net/dummy.ko:
kernel/drivers/net/unused.ko:
`
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644)
	order, lines, err := moduleClosure(dir)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, m := range order {
		pos[modName(m)] = i
	}
	for _, m := range []string{"ip_vs", "ip_vs_rr", "nf_conntrack", "libcrc32c", "veth", "bridge", "stp", "llc", "dummy"} {
		if _, ok := pos[m]; !ok {
			t.Errorf("%s missing from %v", m, order)
		}
	}
	if _, ok := pos["unused"]; ok {
		t.Error("unused module included")
	}
	if !(pos["libcrc32c"] < pos["nf_conntrack"] && pos["nf_conntrack"] < pos["ip_vs"] && pos["ip_vs"] < pos["ip_vs_rr"] && pos["llc"] < pos["stp"] && pos["stp"] < pos["bridge"]) {
		t.Errorf("load order wrong: %v", order)
	}
	if len(lines) != len(order) {
		t.Errorf("%d dep lines for %d modules", len(lines), len(order))
	}
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte("kernel/drivers/net/veth.ko:\n"), 0o644)
	if _, _, err := moduleClosure(dir); err == nil || !strings.Contains(err.Error(), "ip_vs") {
		t.Errorf("missing required module not reported: %v", err)
	}
}

func TestImagePath(t *testing.T) {
	for in, want := range map[string]string{
		"/lib/x86_64-linux-gnu/libc.so.6": "usr/lib/x86_64-linux-gnu/libc.so.6",
		"/lib64/ld-linux-x86-64.so.2":     "usr/lib64/ld-linux-x86-64.so.2",
		"/usr/sbin/ipvsadm":               "usr/sbin/ipvsadm",
		"/sbin/ip":                        "usr/sbin/ip",
		"/etc/protocols":                  "etc/protocols",
	} {
		if got := imagePath(in); got != want {
			t.Errorf("imagePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMissingHostError(t *testing.T) {
	e := &MissingHostError{Missing: []string{"qemu-system-x86_64 (package qemu-system-x86)"}, Pkgs: []string{"qemu-system-x86"}}
	if !strings.Contains(e.Error(), "apt-get install -y qemu-system-x86") {
		t.Error(e.Error())
	}
}
