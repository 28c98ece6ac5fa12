//go:build linux

package ipvs

// Kernel tests of the netlink layer (netlink.go, batch_linux.go,
// kernel.go): services and destinations are turned into netlink messages,
// sent to a real kernel, and read back. Each test runs in a fresh network
// namespace (its own IPVS table), entered on a locked OS thread only while
// the kernel is opened there, as github.com/moby/ipvs's tests do; the
// namespace goes when the test ends.
//
// The host kernel of a CI machine has no IPVS: these tests run inside the
// lab VM. integration's TestIPVSLab builds this package's test binary,
// runs it there with -test.run '^TestKernel' and LVSD_IPVS_INVM=1, reports
// every test as a subtest and fails when one did not pass or did not run.
// Elsewhere they skip.
//
// Every mutation is made both ways lvsd makes it: one operation per
// exchange through github.com/cloudflare/ipvs (the Kernel methods, "single")
// and batched through our own encoder (ApplyOps, "batch"). What the kernel
// reads back is compared with what was sent, and ipvsadm -Ln, an
// independent reader, with the lines it must print.

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// envInVM marks the lab VM run of the test binary (the name
// integration's in-VM tests use too).
const envInVM = "LVSD_IPVS_INVM"

// testNetns is a network namespace of a test with the kernel opened in it.
type testNetns struct {
	t  *testing.T
	ns netns.NsHandle
	k  *netlinkKernel
}

// requireVM skips outside the lab VM.
func requireVM(t *testing.T) {
	t.Helper()
	if os.Getenv(envInVM) == "" {
		if os.Getenv("LVSD_INTEGRATION") == "" {
			t.Skip("kernel test: needs a kernel with IPVS; LVSD_INTEGRATION=1 go test -run TestIPVSLab ./integration/ runs it in the lab VM")
		}
		t.Skip("kernel test: runs inside the lab VM, where integration's TestIPVSLab runs it and fails unless it passes")
	}
}

// newTestKernel skips outside the lab VM. Inside, it creates a network
// namespace, opens the kernel's IPVS there (both netlink sockets are bound
// to it for good) and closes both at the end of the test.
func newTestKernel(t *testing.T) *testNetns {
	t.Helper()
	requireVM(t)
	n := &testNetns{t: t}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("current network namespace: %v", err)
	}
	defer orig.Close()
	n.ns, err = netns.New() // the thread is in it now
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("new network namespace: %v", err)
	}
	k, kerr := NewKernel()
	if err := netns.Set(orig); err != nil {
		// The thread stays locked: it ends with this goroutine.
		t.Fatalf("back to the original network namespace: %v", err)
	}
	runtime.UnlockOSThread()
	if kerr != nil {
		n.ns.Close()
		t.Fatalf("kernel in the new namespace: %v", kerr)
	}
	n.k = k.(*netlinkKernel)
	t.Cleanup(func() {
		n.k.Close()
		n.ns.Close()
	})
	if n.k.b == nil {
		t.Fatal("no batching socket")
	}
	// With lo up the namespace has its local routing table: without one
	// the kernel refuses every IPv4 destination (its address type is not
	// unicast), and 127.0.0.1 is a local address.
	n.rtnl(func(h *netlink.Handle) error { return up(h, "lo") })
	return n
}

// do runs f on a thread in the namespace.
func (n *testNetns) do(f func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(n.ns); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		return fmt.Errorf("back to the original network namespace: %w", err) // the thread stays locked and ends with the goroutine
	}
	runtime.UnlockOSThread()
	return ferr
}

// run runs a command in the namespace.
func (n *testNetns) run(name string, args ...string) string {
	n.t.Helper()
	var out []byte
	err := n.do(func() error {
		var err error
		out, err = exec.Command(name, args...).CombinedOutput()
		return err
	})
	if err != nil {
		n.t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// rtnl runs f with an rtnetlink handle in the namespace.
func (n *testNetns) rtnl(f func(h *netlink.Handle) error) {
	n.t.Helper()
	h, err := netlink.NewHandleAt(n.ns, unix.NETLINK_ROUTE)
	if err != nil {
		n.t.Fatalf("rtnetlink in the namespace: %v", err)
	}
	defer h.Close()
	if err := f(h); err != nil {
		n.t.Fatal(err)
	}
}

// up sets links up.
func up(h *netlink.Handle, names ...string) error {
	for _, name := range names {
		l, err := h.LinkByName(name)
		if err != nil {
			return fmt.Errorf("link %s: %w", name, err)
		}
		if err := h.LinkSetUp(l); err != nil {
			return fmt.Errorf("link %s up: %w", name, err)
		}
	}
	return nil
}

// veth adds a veth NAME (its peer NAME-peer), both up, NAME with an IPv4
// address.
func (n *testNetns) veth(name, addr string) {
	n.t.Helper()
	n.rtnl(func(h *netlink.Handle) error {
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "-peer"}); err != nil {
			return fmt.Errorf("veth %s: %w", name, err)
		}
		if err := up(h, name, name+"-peer"); err != nil {
			return err
		}
		a, err := netlink.ParseAddr(addr)
		if err != nil {
			return err
		}
		l, err := h.LinkByName(name)
		if err != nil {
			return err
		}
		return h.AddrAdd(l, a)
	})
}

// ipvsadm returns what ipvsadm -Ln (with more options) prints in the
// namespace as sorted lines, the columns folded to one space: a service
// as "TCP 10.1.0.1:80 rr", a destination as "KEY -> ADDR C1 C2" with the
// service's key ("TCP 10.1.0.1:80", "FWM 9 IPv6") and the two columns
// after its address (-Ln: forwarding and weight; --thresholds: upper and
// lower threshold; --tun-info: forwarding and tunnel).
func (n *testNetns) ipvsadm(opts ...string) []string {
	n.t.Helper()
	out := n.run("ipvsadm", append([]string{"-Ln"}, opts...)...)
	var lines []string
	svc := ""
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 0 || strings.HasPrefix(l, "IP Virtual Server") || f[0] == "Prot" ||
			(len(f) > 1 && f[1] == "RemoteAddress:Port"):
		case f[0] == "->":
			lines = append(lines, svc+" -> "+strings.Join(f[1:min(4, len(f))], " "))
		default:
			key := f[:2]
			if f[0] == "FWM" && len(f) > 2 && f[2] == "IPv6" {
				key = f[:3]
			}
			svc = strings.Join(key, " ")
			lines = append(lines, strings.Join(f, " "))
		}
	}
	slices.Sort(lines)
	return lines
}

func (n *testNetns) wantIPVSADM(opts []string, want ...string) {
	n.t.Helper()
	want = slices.Sorted(slices.Values(want))
	if got := n.ipvsadm(opts...); !slices.Equal(got, want) {
		n.t.Errorf("ipvsadm -Ln %s:\n%s\nwant:\n%s", strings.Join(opts, " "), strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// kernelMode is one way of sending mutations.
type kernelMode struct {
	name  string
	apply func(k *netlinkKernel, ops []Op) []error
}

var kernelModes = []kernelMode{
	{"single", func(k *netlinkKernel, ops []Op) []error { return applyEach(k, ops) }},
	{"batch", func(k *netlinkKernel, ops []Op) []error { return k.b.apply(ops) }},
}

// forModes runs f once per mode, each in a namespace of its own.
func forModes(t *testing.T, f func(t *testing.T, n *testNetns, apply func(ops ...Op) []error)) {
	requireVM(t)
	for _, m := range kernelModes {
		t.Run(m.name, func(t *testing.T) {
			n := newTestKernel(t)
			f(t, n, func(ops ...Op) []error { return m.apply(n.k, ops) })
		})
	}
}

// mustApply applies ops and fails on any error.
func mustApply(t *testing.T, apply func(ops ...Op) []error, ops ...Op) {
	t.Helper()
	for i, err := range apply(ops...) {
		if err != nil {
			t.Errorf("%v: %v", ops[i], err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// testKey parses a key as ServiceKey.String writes it: "TCP 10.0.0.1:80",
// "UDP [2001:db8::1]:53", "FWM 7", "FWM 7 IPv6".
func testKey(t *testing.T, s string) ServiceKey {
	t.Helper()
	f := strings.Fields(s)
	if f[0] == "FWM" {
		var m uint32
		fmt.Sscan(f[1], &m)
		k := ServiceKey{Family: INET, Fwmark: m}
		if len(f) > 2 && f[2] == "IPv6" {
			k.Family = INET6
		}
		return k
	}
	p, ok := ParseProtocol(f[0])
	ap, err := netip.ParseAddrPort(f[1])
	if !ok || err != nil {
		t.Fatalf("key %q", s)
	}
	return ServiceKey{Family: FamilyOf(ap.Addr()), Proto: p, Addr: ap.Addr(), Port: ap.Port()}
}

// testService is a service as lvsd programs one: the netmask of the whole
// address (/32, /128) unless mask is set, persistent when timeout is.
func testService(t *testing.T, key, sched string, flags Flags, timeout, mask uint32) Service {
	s := Service{ServiceKey: testKey(t, key), Scheduler: sched, Flags: flags, Timeout: timeout, Netmask: mask}
	if timeout != 0 {
		s.Flags |= FlagPersistent
	}
	if mask == 0 {
		s.Netmask = 0xffffffff
		if s.Family == INET6 {
			s.Netmask = 128
		}
	}
	return s
}

// kernelServices reads the services back, the kernel-internal hashed flag
// cleared, sorted by key.
func kernelServices(t *testing.T, k Kernel) []Service {
	t.Helper()
	infos, err := k.Services()
	if err != nil {
		t.Fatalf("services: %v", err)
	}
	var out []Service
	for _, s := range infos {
		if s.Stats != (Stats{}) {
			t.Errorf("%s: counters %+v without traffic", s.ServiceKey, s.Stats)
		}
		s.Service.Flags &^= FlagHashed
		out = append(out, s.Service)
	}
	slices.SortFunc(out, func(a, b Service) int { return a.ServiceKey.cmp(b.ServiceKey) })
	return out
}

func wantServices(t *testing.T, k Kernel, want []Service) {
	t.Helper()
	want = slices.Clone(want)
	slices.SortFunc(want, func(a, b Service) int { return a.ServiceKey.cmp(b.ServiceKey) })
	got := kernelServices(t, k)
	if !slices.Equal(got, want) {
		t.Errorf("services read back:\n%s\nwant:\n%s", listing(got), listing(want))
	}
}

func listing[T any](xs []T) string {
	var b strings.Builder
	for _, x := range xs {
		fmt.Fprintf(&b, "  %+v\n", x)
	}
	return b.String()
}

// hasTwos reports whether the kernel has the twos scheduler (Linux 6.3+;
// the lab VM loads every ip_vs_* module its kernel ships).
func hasTwos() bool {
	_, err := os.Stat("/sys/module/ip_vs_twos")
	return err == nil
}

type serviceCase struct {
	key, sched     string
	flags          Flags
	timeout, mask  uint32
	ipvsadm        string // the line ipvsadm -Ln prints
	updatedIPVSADM string // after the update of TestKernelServices
}

// kernelServiceCases: every protocol, both families, firewall marks, every
// scheduler with the flags it takes, one-packet scheduling, persistence
// with and without a netmask. ipvsadm prints the scheduler flags before
// the persistence, "ops" after it.
var kernelServiceCases = []serviceCase{
	{"TCP 10.1.0.1:80", "rr", FlagSched1 | FlagSched2 | FlagSched3, 0, 0, "TCP 10.1.0.1:80 rr (flag-1,flag-2,flag-3)", "TCP 10.1.0.1:80 wrr (flag-1,flag-2,flag-3) persistent 123 mask 255.255.0.0"},
	{"TCP 10.1.0.2:80", "wrr", 0, 0, 0, "TCP 10.1.0.2:80 wrr", "TCP 10.1.0.2:80 rr persistent 123 mask 255.255.0.0"},
	{"TCP 10.1.0.3:80", "lc", 0, 0, 0, "TCP 10.1.0.3:80 lc", "TCP 10.1.0.3:80 wrr persistent 123 mask 255.255.0.0"},
	{"TCP 10.1.0.4:80", "wlc", 0, 0, 0, "TCP 10.1.0.4:80 wlc", "TCP 10.1.0.4:80 wrr persistent 123 mask 255.255.0.0"},
	{"TCP 10.1.0.5:80", "lblc", 0, 0, 0, "TCP 10.1.0.5:80 lblc", "TCP 10.1.0.5:80 wrr persistent 123 mask 255.255.0.0"},
	{"TCP 10.1.0.6:80", "lblcr", 0, 0, 0, "TCP 10.1.0.6:80 lblcr", "TCP 10.1.0.6:80 wrr persistent 123 mask 255.255.0.0"},
	{"TCP 10.1.0.7:80", "dh", 0, 0, 0, "TCP 10.1.0.7:80 dh", "TCP 10.1.0.7:80 wrr persistent 123 mask 255.255.0.0"},
	{"TCP 10.1.0.8:80", "sh", FlagSched1 | FlagSched2, 0, 0, "TCP 10.1.0.8:80 sh (sh-fallback,sh-port)", "TCP 10.1.0.8:80 wrr (flag-1,flag-2) persistent 123 mask 255.255.0.0"},
	{"TCP 10.1.0.9:80", "sed", 0, 0, 0, "TCP 10.1.0.9:80 sed", "TCP 10.1.0.9:80 wrr persistent 123 mask 255.255.0.0"},
	{"TCP 10.1.0.10:80", "nq", 0, 0, 0, "TCP 10.1.0.10:80 nq", "TCP 10.1.0.10:80 wrr persistent 123 mask 255.255.0.0"},
	{"TCP 10.1.0.11:80", "mh", FlagSched1 | FlagSched2, 0, 0, "TCP 10.1.0.11:80 mh (mh-fallback,mh-port)", "TCP 10.1.0.11:80 wrr (flag-1,flag-2) persistent 123 mask 255.255.0.0"},
	{"TCP 10.1.0.12:80", "fo", 0, 0, 0, "TCP 10.1.0.12:80 fo", "TCP 10.1.0.12:80 wrr persistent 123 mask 255.255.0.0"},
	{"TCP 10.1.0.13:80", "ovf", 0, 0, 0, "TCP 10.1.0.13:80 ovf", "TCP 10.1.0.13:80 wrr persistent 123 mask 255.255.0.0"},
	{"UDP 10.1.0.14:53", "rr", FlagOnePacket, 0, 0, "UDP 10.1.0.14:53 rr ops", "UDP 10.1.0.14:53 wrr persistent 123 mask 255.255.0.0 ops"},
	{"SCTP 10.1.0.15:3868", "rr", 0, 0, 0, "SCTP 10.1.0.15:3868 rr", "SCTP 10.1.0.15:3868 wrr persistent 123 mask 255.255.0.0"},
	{"TCP 10.1.0.16:443", "wlc", 0, 300, 0xffffff00, "TCP 10.1.0.16:443 wlc persistent 300 mask 255.255.255.0", "TCP 10.1.0.16:443 wrr persistent 123 mask 255.255.0.0"},
	{"TCP 10.1.0.17:0", "wlc", 0, 30, 0, "TCP 10.1.0.17:0 wlc persistent 30", "TCP 10.1.0.17:0 wrr persistent 123 mask 255.255.0.0"},
	{"TCP [2001:db8:1::1]:443", "wrr", 0, 0, 0, "TCP [2001:db8:1::1]:443 wrr", "TCP [2001:db8:1::1]:443 rr persistent 123 mask 48"},
	{"UDP [2001:db8:1::2]:53", "sh", FlagSched2, 60, 64, "UDP [2001:db8:1::2]:53 sh (sh-port) persistent 60 mask 64", "UDP [2001:db8:1::2]:53 wrr (flag-2) persistent 123 mask 48"},
	{"SCTP [2001:db8:1::3]:3868", "lc", 0, 0, 0, "SCTP [2001:db8:1::3]:3868 lc", "SCTP [2001:db8:1::3]:3868 wrr persistent 123 mask 48"},
	{"FWM 7", "sh", 0, 600, 0xffffff00, "FWM 7 sh persistent 600 mask 255.255.255.0", "FWM 7 wrr persistent 123 mask 255.255.0.0"},
	{"FWM 8", "rr", 0, 0, 0, "FWM 8 rr", "FWM 8 wrr persistent 123 mask 255.255.0.0"},
	// ipvsadm prints the mark as a signed number.
	{"FWM 4294967295", "lblcr", 0, 0, 0, "FWM -1 lblcr", "FWM -1 wrr persistent 123 mask 255.255.0.0"},
	{"FWM 9 IPv6", "wlc", 0, 60, 64, "FWM 9 IPv6 wlc persistent 60 mask 64", "FWM 9 IPv6 wrr persistent 123 mask 48"},
}

var twosCase = serviceCase{"TCP 10.1.0.18:80", "twos", 0, 0, 0, "TCP 10.1.0.18:80 twos", "TCP 10.1.0.18:80 wrr persistent 123 mask 255.255.0.0"}

// updated is what TestKernelServices changes a service to: another
// scheduler, persistence for 123 s by /16 (IPv4) or /48 (IPv6).
func updated(s Service) Service {
	if s.Scheduler == "wrr" {
		s.Scheduler = "rr"
	} else {
		s.Scheduler = "wrr"
	}
	s.Flags |= FlagPersistent
	s.Timeout = 123
	s.Netmask = 0xffff0000
	if s.Family == INET6 {
		s.Netmask = 48
	}
	return s
}

// TestKernelServices creates, reads back, updates and removes services of
// every kind.
func TestKernelServices(t *testing.T) {
	forModes(t, func(t *testing.T, n *testNetns, apply func(ops ...Op) []error) {
		cases := kernelServiceCases
		if hasTwos() {
			cases = append(slices.Clone(cases), twosCase)
		} else {
			t.Log("the kernel has no twos scheduler: its service must be refused")
			s := testService(t, twosCase.key, twosCase.sched, 0, 0, 0)
			if err := apply(Op{Kind: OpCreateService, Service: s})[0]; !errors.Is(err, syscall.ENOENT) {
				t.Errorf("a twos service without twos: %v, want ENOENT", err)
			}
		}
		var svcs []Service
		var ops []Op
		var want, wantUpdated []string
		for _, c := range cases {
			s := testService(t, c.key, c.sched, c.flags, c.timeout, c.mask)
			svcs = append(svcs, s)
			ops = append(ops, Op{Kind: OpCreateService, Service: s})
			want = append(want, c.ipvsadm)
			wantUpdated = append(wantUpdated, c.updatedIPVSADM)
		}
		mustApply(t, apply, ops...)
		wantServices(t, n.k, svcs)
		n.wantIPVSADM(nil, want...)

		ops = ops[:0]
		for i, s := range svcs {
			svcs[i] = updated(s)
			ops = append(ops, Op{Kind: OpUpdateService, Service: svcs[i]})
		}
		mustApply(t, apply, ops...)
		wantServices(t, n.k, svcs)
		n.wantIPVSADM(nil, wantUpdated...)

		// Every other one goes, then the rest.
		var kept []Service
		var keptLines []string
		ops = ops[:0]
		for i, s := range svcs {
			if i%2 == 0 {
				ops = append(ops, Op{Kind: OpRemoveService, Service: Service{ServiceKey: s.ServiceKey}})
			} else {
				kept = append(kept, s)
				keptLines = append(keptLines, wantUpdated[i])
			}
		}
		mustApply(t, apply, ops...)
		wantServices(t, n.k, kept)
		n.wantIPVSADM(nil, keptLines...)
		ops = ops[:0]
		for _, s := range kept {
			ops = append(ops, Op{Kind: OpRemoveService, Service: Service{ServiceKey: s.ServiceKey}})
		}
		mustApply(t, apply, ops...)
		if s, err := n.k.Services(); err != nil || s != nil {
			t.Errorf("services of the empty table: %v, %v; want none and no error", s, err)
		}
		n.wantIPVSADM(nil)
	})
}

type destCase struct {
	svc string
	d   Destination
	// The lines ipvsadm -Ln and -Ln --thresholds print for it.
	ipvsadm, thresholds string
	upd                 Destination
	updIPVSADM          string
}

func dest(ap string, fwd Forward, w int) Destination {
	return Destination{DestKey: DestKey{Addr: netip.MustParseAddrPort(ap).Addr(), Port: netip.MustParseAddrPort(ap).Port()}, Fwd: fwd, Weight: w}
}

func (d Destination) with(f func(*Destination)) Destination { f(&d); return d }

func tunnel(tt TunnelType, port uint16, fl TunnelFlags) func(*Destination) {
	return func(d *Destination) { d.Fwd, d.TunType, d.TunPort, d.TunFlags = Tunnel, tt, port, fl }
}

func thresholds(u, l uint32) func(*Destination) {
	return func(d *Destination) { d.UThreshold, d.LThreshold = u, l }
}

const (
	destSvc4  = "TCP 10.3.0.1:80"
	destSvc6  = "TCP [2001:db8:3::1]:443"
	destSvcFW = "FWM 5"
)

// kernelDestCases: every forwarding method (a local address keeps its
// own: Linux 6.1 does not report it as Local), weights from 0 to 65535,
// thresholds, every tunnel type with its checksum flags, IPv6
// destinations and an IPv4 tunnel destination of an IPv6 service, the
// destinations of a firewall-mark service; each with an update.
var kernelDestCases = []destCase{
	{destSvc4, dest("10.4.0.1:8080", Masq, 1), "-> 10.4.0.1:8080 Masq 1", "-> 10.4.0.1:8080 0 0",
		dest("10.4.0.1:8080", Route, 2), "-> 10.4.0.1:8080 Route 2"},
	{destSvc4, dest("10.4.0.2:80", Route, 0), "-> 10.4.0.2:80 Route 0", "-> 10.4.0.2:80 0 0",
		dest("10.4.0.2:80", Masq, 65535), "-> 10.4.0.2:80 Masq 65535"},
	{destSvc4, dest("10.4.0.3:80", Tunnel, 100), "-> 10.4.0.3:80 Tunnel 100", "-> 10.4.0.3:80 0 0",
		dest("10.4.0.3:80", 0, 100).with(tunnel(TunGUE, 7000, TunCsum)), "-> 10.4.0.3:80 Tunnel 100"},
	{destSvc4, dest("10.4.0.4:80", 0, 65535).with(tunnel(TunGUE, 6080, TunNoCsum)), "-> 10.4.0.4:80 Tunnel 65535", "-> 10.4.0.4:80 0 0",
		dest("10.4.0.4:80", 0, 3).with(tunnel(TunIPIP, 0, 0)), "-> 10.4.0.4:80 Tunnel 3"},
	{destSvc4, dest("10.4.0.5:80", 0, 1).with(tunnel(TunGUE, 6081, TunCsum)), "-> 10.4.0.5:80 Tunnel 1", "-> 10.4.0.5:80 0 0",
		dest("10.4.0.5:80", 0, 1).with(tunnel(TunGUE, 6085, TunRemCsum)), "-> 10.4.0.5:80 Tunnel 1"},
	{destSvc4, dest("10.4.0.6:80", 0, 1).with(tunnel(TunGUE, 6082, TunRemCsum)), "-> 10.4.0.6:80 Tunnel 1", "-> 10.4.0.6:80 0 0",
		dest("10.4.0.6:80", 0, 1).with(tunnel(TunGRE, 0, TunCsum)), "-> 10.4.0.6:80 Tunnel 1"},
	{destSvc4, dest("10.4.0.7:80", 0, 1).with(tunnel(TunGRE, 0, TunNoCsum)), "-> 10.4.0.7:80 Tunnel 1", "-> 10.4.0.7:80 0 0",
		dest("10.4.0.7:80", Masq, 1), "-> 10.4.0.7:80 Masq 1"},
	{destSvc4, dest("10.4.0.8:80", 0, 1).with(tunnel(TunGRE, 0, TunCsum)), "-> 10.4.0.8:80 Tunnel 1", "-> 10.4.0.8:80 0 0",
		dest("10.4.0.8:80", 0, 1).with(tunnel(TunGRE, 0, TunNoCsum)), "-> 10.4.0.8:80 Tunnel 1"},
	{destSvc4, dest("10.4.0.9:80", Masq, 5).with(thresholds(100, 10)), "-> 10.4.0.9:80 Masq 5", "-> 10.4.0.9:80 100 10",
		dest("10.4.0.9:80", Masq, 5).with(thresholds(7, 7)), "-> 10.4.0.9:80 Masq 5"},
	{destSvc4, dest("127.0.0.1:80", Masq, 1), "-> 127.0.0.1:80 Masq 1", "-> 127.0.0.1:80 0 0",
		dest("127.0.0.1:80", Masq, 9), "-> 127.0.0.1:80 Masq 9"},
	{destSvc6, dest("[2001:db8:4::1]:443", Route, 4), "-> [2001:db8:4::1]:443 Route 4", "-> [2001:db8:4::1]:443 0 0",
		dest("[2001:db8:4::1]:443", Tunnel, 4), "-> [2001:db8:4::1]:443 Tunnel 4"},
	{destSvc6, dest("[2001:db8:4::2]:8443", Masq, 2).with(thresholds(50, 0)), "-> [2001:db8:4::2]:8443 Masq 2", "-> [2001:db8:4::2]:8443 50 0",
		dest("[2001:db8:4::2]:8443", Masq, 0).with(thresholds(0, 0)), "-> [2001:db8:4::2]:8443 Masq 0"},
	{destSvc6, dest("10.4.0.20:443", Tunnel, 1), "-> 10.4.0.20:443 Tunnel 1", "-> 10.4.0.20:443 0 0",
		dest("10.4.0.20:443", 0, 2).with(tunnel(TunGUE, 6090, TunNoCsum)), "-> 10.4.0.20:443 Tunnel 2"},
	{destSvcFW, dest("10.4.0.30:0", Route, 1), "-> 10.4.0.30:0 Route 1", "-> 10.4.0.30:0 0 0",
		dest("10.4.0.30:0", Route, 8).with(thresholds(1000, 999)), "-> 10.4.0.30:0 Route 8"},
	{destSvcFW, dest("10.4.0.31:8080", Masq, 2), "-> 10.4.0.31:8080 Masq 2", "-> 10.4.0.31:8080 0 0",
		dest("10.4.0.31:8080", 0, 2).with(tunnel(TunIPIP, 0, 0)), "-> 10.4.0.31:8080 Tunnel 2"},
}

// kernelDests reads the destinations of a service back, sorted.
func kernelDests(t *testing.T, k Kernel, sk ServiceKey) []Destination {
	t.Helper()
	infos, err := k.Destinations(sk)
	if err != nil {
		t.Fatalf("destinations of %s: %v", sk, err)
	}
	var out []Destination
	for _, d := range infos {
		if d.ActiveConns != 0 || d.InactiveConns != 0 || d.PersistConns != 0 || d.Stats != (Stats{}) {
			t.Errorf("%s -> %s: counters %+v without traffic", sk, d.DestKey, d)
		}
		out = append(out, d.Destination)
	}
	slices.SortFunc(out, func(a, b Destination) int { return a.DestKey.cmp(b.DestKey) })
	return out
}

// wantDests compares the destinations of every service of cases with
// pick(c), as the kernel reads them back and as ipvsadm shows them: the
// line line(c) of ipvsadm -Ln, and the tunnel in ipvsadm -Ln --tun-info.
func wantDests(t *testing.T, n *testNetns, cases []destCase, pick func(destCase) Destination, line func(destCase) string) {
	t.Helper()
	want := map[string][]Destination{}
	var adm, tun []string
	for _, c := range cases {
		d := pick(c)
		want[c.svc] = append(want[c.svc], d)
		adm = append(adm, c.svc+" "+line(c))
		tun = append(tun, c.svc+" -> "+d.DestKey.String()+" "+tunInfo(d))
	}
	for _, svc := range []string{destSvc4, destSvc6, destSvcFW} {
		w := want[svc]
		slices.SortFunc(w, func(a, b Destination) int { return a.DestKey.cmp(b.DestKey) })
		if got := kernelDests(t, n.k, testKey(t, svc)); !slices.Equal(got, w) {
			t.Errorf("destinations of %s read back:\n%s\nwant:\n%s", svc, listing(got), listing(w))
		}
	}
	n.wantIPVSADM(nil, append(adm, destServiceLines...)...)
	n.wantIPVSADM([]string{"--tun-info"}, append(tun, destServiceLines...)...)
}

// destServiceLines are ipvsadm's lines of the services of kernelDestCases.
var destServiceLines = []string{destSvc4 + " wlc", destSvc6 + " wlc", destSvcFW + " wlc"}

// tunInfo is how ipvsadm --tun-info shows a destination's method and
// tunnel: "Masq n/a", "Tunnel ipip", "Tunnel gue:6080:-c" (+c: checksum,
// r+c: remote checksum), "Tunnel gre:+c".
func tunInfo(d Destination) string {
	if d.Fwd != Tunnel {
		return map[Forward]string{Masq: "Masq", Route: "Route"}[d.Fwd] + " n/a"
	}
	csum := map[TunnelFlags]string{TunNoCsum: "-c", TunCsum: "+c", TunRemCsum: "r+c"}[d.TunFlags]
	switch d.TunType {
	case TunGUE:
		return fmt.Sprintf("Tunnel gue:%d:%s", d.TunPort, csum)
	case TunGRE:
		return "Tunnel gre:" + csum
	}
	return "Tunnel ipip"
}

// TestKernelDestinations creates, reads back, updates and removes
// destinations of every kind.
func TestKernelDestinations(t *testing.T) {
	forModes(t, func(t *testing.T, n *testNetns, apply func(ops ...Op) []error) {
		var ops []Op
		for _, svc := range []string{destSvc4, destSvc6, destSvcFW} {
			ops = append(ops, Op{Kind: OpCreateService, Service: testService(t, svc, "wlc", 0, 0, 0)})
		}
		mustApply(t, apply, ops...)
		ops = ops[:0]
		for _, c := range kernelDestCases {
			ops = append(ops, Op{Kind: OpCreateDest, Service: Service{ServiceKey: testKey(t, c.svc)}, Dest: c.d})
		}
		mustApply(t, apply, ops...)
		wantDests(t, n, kernelDestCases, func(c destCase) Destination { return c.d }, func(c destCase) string { return c.ipvsadm })
		// --thresholds: the upper and lower thresholds.
		var th []string
		for _, c := range kernelDestCases {
			th = append(th, c.svc+" "+c.thresholds)
		}
		n.wantIPVSADM([]string{"--thresholds"}, append(th, destServiceLines...)...)

		ops = ops[:0]
		for _, c := range kernelDestCases {
			ops = append(ops, Op{Kind: OpUpdateDest, Service: Service{ServiceKey: testKey(t, c.svc)}, Dest: c.upd})
		}
		mustApply(t, apply, ops...)
		wantDests(t, n, kernelDestCases, func(c destCase) Destination { return c.upd }, func(c destCase) string { return c.updIPVSADM })

		ops = ops[:0]
		var kept []destCase
		for i, c := range kernelDestCases {
			if i%2 == 0 {
				ops = append(ops, Op{Kind: OpRemoveDest, Service: Service{ServiceKey: testKey(t, c.svc)}, Dest: Destination{DestKey: c.d.DestKey}})
			} else {
				kept = append(kept, c)
			}
		}
		mustApply(t, apply, ops...)
		wantDests(t, n, kept, func(c destCase) Destination { return c.upd }, func(c destCase) string { return c.updIPVSADM })
		ops = ops[:0]
		for _, c := range kept {
			ops = append(ops, Op{Kind: OpRemoveDest, Service: Service{ServiceKey: testKey(t, c.svc)}, Dest: Destination{DestKey: c.d.DestKey}})
		}
		mustApply(t, apply, ops...)
		for _, svc := range []string{destSvc4, destSvc6, destSvcFW} {
			if d, err := n.k.Destinations(testKey(t, svc)); err != nil || d != nil {
				t.Errorf("destinations of %s: %v, %v; want none and no error", svc, d, err)
			}
		}
	})
}

// TestKernelErrors: the kernel's answers the reconciler (and the fake
// kernel of the unit tests) rely on: EEXIST for an existing entry, ESRCH
// for a missing service, ENOENT for a missing destination, and a failed
// operation of a batch leaves the others done.
func TestKernelErrors(t *testing.T) {
	forModes(t, func(t *testing.T, n *testNetns, apply func(ops ...Op) []error) {
		s := testService(t, "TCP 10.5.0.1:80", "rr", 0, 0, 0)
		missing := testService(t, "TCP 10.5.0.2:80", "rr", 0, 0, 0)
		d := dest("10.6.0.1:80", Masq, 1)
		d2 := dest("10.6.0.2:80", Route, 2)
		ops := []Op{
			{Kind: OpCreateService, Service: s},
			{Kind: OpCreateService, Service: s},
			{Kind: OpCreateDest, Service: s, Dest: d},
			{Kind: OpCreateDest, Service: s, Dest: d},
			{Kind: OpUpdateService, Service: missing},
			{Kind: OpRemoveService, Service: missing},
			{Kind: OpCreateDest, Service: missing, Dest: d},
			{Kind: OpUpdateDest, Service: s, Dest: d2},
			{Kind: OpRemoveDest, Service: s, Dest: d2},
			{Kind: OpCreateService, Service: testService(t, "TCP 10.5.0.3:80", "nosuch", 0, 0, 0)},
			{Kind: OpCreateDest, Service: s, Dest: d2.with(thresholds(1, 2))}, // lower above upper
			{Kind: OpCreateDest, Service: s, Dest: d2},
		}
		want := []error{nil, syscall.EEXIST, nil, syscall.EEXIST, syscall.ESRCH, syscall.ESRCH, syscall.ESRCH,
			syscall.ENOENT, syscall.ENOENT, syscall.ENOENT, syscall.ERANGE, nil}
		for i, err := range apply(ops...) {
			if want[i] == nil && err != nil || want[i] != nil && !errors.Is(err, want[i]) {
				t.Errorf("%v: %v, want %v", ops[i], err, want[i])
			}
		}
		wantServices(t, n.k, []Service{s})
		if got := kernelDests(t, n.k, s.ServiceKey); !slices.Equal(got, []Destination{d, d2}) {
			t.Errorf("destinations: %+v", got)
		}
		n.wantIPVSADM(nil, "TCP 10.5.0.1:80 rr", "TCP 10.5.0.1:80 -> 10.6.0.1:80 Masq 1", "TCP 10.5.0.1:80 -> 10.6.0.2:80 Route 2")
	})
}

// TestKernelBatch programs a table far larger than one sendmsg (200
// services × 20 destinations, several batches) in one ApplyOps, with
// failing operations in the middle, and reads it all back.
func TestKernelBatch(t *testing.T) {
	n := newTestKernel(t)
	const nsvc, ndest = 200, 20
	var ops []Op
	var fails []int
	want := Table{}
	for i := range nsvc {
		s := testService(t, fmt.Sprintf("TCP 10.7.%d.%d:80", i/250, i%250+1), "wrr", 0, 0, 0)
		ts := &TableService{Service: s, Dests: map[DestKey]Destination{}}
		want[s.ServiceKey] = ts
		ops = append(ops, Op{Kind: OpCreateService, Service: s})
		for j := range ndest {
			d := dest(fmt.Sprintf("10.8.%d.%d:8080", (i*ndest+j)/250, (i*ndest+j)%250+1), Route, j+1)
			ts.Dests[d.DestKey] = d
			ops = append(ops, Op{Kind: OpCreateDest, Service: s, Dest: d})
			if i%50 == 25 && j == 10 {
				fails = append(fails, len(ops))
				ops = append(ops, Op{Kind: OpCreateDest, Service: s, Dest: d}) // again: EEXIST
			}
		}
	}
	start := time.Now()
	errs := n.k.ApplyOps(ops)
	t.Logf("%d operations in %v", len(ops), time.Since(start))
	for i, err := range errs {
		if slices.Contains(fails, i) {
			if !errors.Is(err, syscall.EEXIST) {
				t.Errorf("op %d %v: %v, want EEXIST", i, ops[i], err)
			}
		} else if err != nil {
			t.Errorf("op %d %v: %v", i, ops[i], err)
		}
	}
	got, _, err := readTable(n.k, func(ServiceKey) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Errorf("table read back differs:\n%s\nwant:\n%s", got, want)
	}
	if l := n.ipvsadm(); len(l) != nsvc*(ndest+1) {
		t.Errorf("ipvsadm lists %d lines, want %d", len(l), nsvc*(ndest+1))
	}
}

// TestKernelTimeouts reads and sets the connection timeouts; zero leaves
// a value as it is.
func TestKernelTimeouts(t *testing.T) {
	n := newTestKernel(t)
	def, err := n.k.Timeouts()
	if err != nil {
		t.Fatal(err)
	}
	// A new namespace has the kernel's defaults.
	if def != (Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second}) {
		t.Errorf("default timeouts %+v", def)
	}
	if err := n.k.SetTimeouts(Timeouts{TCP: 7200 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if got, err := n.k.Timeouts(); err != nil || got != (Timeouts{TCP: 7200 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second}) {
		t.Errorf("after setting tcp: %+v (%v)", got, err)
	}
	if err := n.k.SetTimeouts(Timeouts{TCP: 60 * time.Second, TCPFin: 30 * time.Second, UDP: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := n.k.SetTimeouts(Timeouts{}); err != nil {
		t.Fatal(err)
	}
	if got, err := n.k.Timeouts(); err != nil || got != (Timeouts{TCP: 60 * time.Second, TCPFin: 30 * time.Second, UDP: 10 * time.Second}) {
		t.Errorf("after setting all: %+v (%v)", got, err)
	}
	if out := n.run("ipvsadm", "-L", "--timeout"); !strings.Contains(out, "(tcp tcpfin udp): 60 30 10") {
		t.Errorf("ipvsadm -L --timeout: %q", out)
	}
}

// TestKernelSyncDaemons starts, lists and stops the connection
// synchronisation daemons, with the kernel's defaults and with every
// parameter set; starting a running one and stopping a stopped one are
// no errors.
func TestKernelSyncDaemons(t *testing.T) {
	n := newTestKernel(t)
	n.veth("sync0", "192.0.2.1/24")
	n.veth("sync1", "192.0.2.2/24")
	list := func() []SyncDaemon {
		t.Helper()
		ds, err := n.k.SyncDaemons()
		if err != nil {
			t.Fatalf("sync daemons: %v", err)
		}
		slices.SortFunc(ds, func(a, b SyncDaemon) int { return int(a.State) - int(b.State) })
		return ds
	}
	if ds := list(); len(ds) != 0 {
		t.Fatalf("sync daemons of a new namespace: %+v", ds)
	}
	backup := SyncDaemon{State: SyncBackup, Interface: "sync0", SyncID: 42}
	if err := n.k.StartSyncDaemon(backup); err != nil {
		t.Fatal(err)
	}
	master := SyncDaemon{State: SyncMaster, Interface: "sync1", SyncID: 7, MaxLen: 1400,
		Group: netip.MustParseAddr("239.1.2.3"), Port: 8849, TTL: 3}
	if err := n.k.StartSyncDaemon(master); err != nil {
		t.Fatal(err)
	}
	if err := n.k.StartSyncDaemon(master); err != nil {
		t.Errorf("starting a running daemon: %v", err)
	}
	ds := list()
	if len(ds) != 2 || ds[0] != master {
		t.Errorf("sync daemons %+v, want the master %+v first", ds, master)
	}
	// The backup has the kernel's defaults: the group 224.0.0.81, port
	// 8848, TTL 1 and a maximum length from the interface's MTU.
	if len(ds) == 2 {
		b := ds[1]
		if b.State != SyncBackup || b.Interface != "sync0" || b.SyncID != 42 ||
			b.Group != netip.MustParseAddr("224.0.0.81") || b.Port != 8848 || b.TTL != 1 || b.MaxLen == 0 {
			t.Errorf("backup daemon %+v", b)
		}
	}
	out := n.run("ipvsadm", "-L", "--daemon")
	for _, w := range []string{"master sync daemon (mcast=sync1, syncid=7, maxlen=1400, group=239.1.2.3, port=8849, ttl=3)",
		"backup sync daemon (mcast=sync0, syncid=42"} {
		if !strings.Contains(out, w) {
			t.Errorf("ipvsadm -L --daemon lacks %q:\n%s", w, out)
		}
	}
	if err := n.k.StopSyncDaemon(SyncMaster); err != nil {
		t.Fatal(err)
	}
	if ds := list(); len(ds) != 1 || ds[0].State != SyncBackup {
		t.Errorf("after stopping the master: %+v", ds)
	}
	if err := n.k.StopSyncDaemon(SyncMaster); err != nil {
		t.Errorf("stopping a stopped daemon: %v", err)
	}
	if err := n.k.StopSyncDaemon(SyncBackup); err != nil {
		t.Fatal(err)
	}
	if ds := list(); len(ds) != 0 {
		t.Errorf("after stopping both: %+v", ds)
	}
}

// TestKernelFlush empties the table, services and destinations, and
// nothing else: the timeouts stay.
func TestKernelFlush(t *testing.T) {
	n := newTestKernel(t)
	if err := n.k.SetTimeouts(Timeouts{UDP: 42 * time.Second}); err != nil {
		t.Fatal(err)
	}
	var ops []Op
	for _, x := range []struct{ key, dest string }{
		{"TCP 10.9.0.1:80", "10.9.1.1:80"}, {"UDP [2001:db8:9::1]:53", "[2001:db8:9::2]:53"}, {"FWM 3", "10.9.1.3:0"},
	} {
		s := testService(t, x.key, "rr", 0, 0, 0)
		ops = append(ops, Op{Kind: OpCreateService, Service: s}, Op{Kind: OpCreateDest, Service: s, Dest: dest(x.dest, Route, 1)})
	}
	if s, _ := n.k.Services(); len(s) != 0 {
		t.Fatalf("services of a new namespace: %+v", s)
	}
	for i, err := range n.k.ApplyOps(ops) {
		if err != nil {
			t.Fatalf("%v: %v", ops[i], err)
		}
	}
	if s, err := n.k.Services(); err != nil || len(s) != 3 {
		t.Fatalf("services: %+v (%v)", s, err)
	}
	if err := n.k.Flush(); err != nil {
		t.Fatal(err)
	}
	if s, err := n.k.Services(); err != nil || s != nil {
		t.Errorf("services after flush: %+v (%v)", s, err)
	}
	n.wantIPVSADM(nil)
	if err := n.k.Flush(); err != nil {
		t.Errorf("flushing an empty table: %v", err)
	}
	if to, err := n.k.Timeouts(); err != nil || to.UDP != 42*time.Second {
		t.Errorf("timeouts after flush: %+v (%v)", to, err)
	}
}
