package ipvs

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of testdata/ipvsadm")

// goldenTable has a service of every kind the formatter distinguishes,
// listed in an order that is not ipvsadm's, with destinations of every
// forwarding method and tunnel and counters that need abbreviating.
func goldenTable() []ListedService {
	a := netip.MustParseAddr
	svc := func(key ServiceKey, sched string, flags Flags, timeout, mask uint32, st Stats, dests ...DestInfo) ListedService {
		return ListedService{ServiceInfo: ServiceInfo{Service: Service{ServiceKey: key, Scheduler: sched, Flags: flags, Timeout: timeout, Netmask: mask}, Stats: st}, Dests: dests}
	}
	dst := func(ap string, fwd Forward, w int, f func(*DestInfo)) DestInfo {
		p := netip.MustParseAddrPort(ap)
		d := DestInfo{Destination: Destination{DestKey: DestKey{Addr: p.Addr(), Port: p.Port()}, Fwd: fwd, Weight: w}}
		if f != nil {
			f(&d)
		}
		return d
	}
	sip := svc(ServiceKey{Family: INET, Proto: UDP, Addr: a("10.1.0.16"), Port: 5060}, "rr", FlagPersistent, 60, 0xffffffff, Stats{},
		dst("10.4.0.40:5060", Masq, 1, nil))
	sip.PEName = "sip" // persistence_engine
	return []ListedService{
		svc(ServiceKey{Family: INET, Fwmark: 4294967295}, "lblcr", 0, 0, 0xffffffff, Stats{}),
		svc(ServiceKey{Family: INET6, Proto: UDP, Addr: a("2001:db8:1::2"), Port: 53}, "sh", FlagSched2|FlagPersistent, 60, 64, Stats{},
			dst("[2001:db8:4::1]:53", Route, 4, nil), dst("10.4.0.20:53", Tunnel, 1, nil)),
		svc(ServiceKey{Family: INET, Proto: TCP, Addr: a("192.0.2.100"), Port: 80}, "wlc", FlagPersistent, 300, 0xffffff00,
			Stats{Connections: 123456789, PacketsIn: 99999999, PacketsOut: 100000000, BytesIn: 123456789012, BytesOut: 123456789012345, CPS: 7, PPSIn: 1234567890, PPSOut: 3, BPSIn: 100000000000000, BPSOut: 12},
			dst("198.51.100.72:80", Masq, 2, func(d *DestInfo) {
				d.ActiveConns, d.InactiveConns, d.PersistConns, d.UThreshold, d.LThreshold = 5, 17, 3, 100, 10
				d.Stats = Stats{Connections: 1000000000, PacketsIn: 42, BytesIn: 999999999, CPS: 123456789, PPSIn: 2, PPSOut: 1, BPSIn: 5, BPSOut: 1000000000}
			}),
			dst("198.51.100.71:80", Masq, 1, nil), dst("10.0.0.1:80", Local, 0, nil)),
		svc(ServiceKey{Family: INET, Proto: TCP, Addr: a("10.1.0.1"), Port: 80}, "rr", FlagSched1|FlagSched2|FlagSched3, 0, 0xffffffff, Stats{},
			dst("10.4.0.5:80", Tunnel, 1, func(d *DestInfo) { d.TunType, d.TunPort, d.TunFlags = TunGUE, 6081, TunCsum }),
			dst("10.4.0.6:80", Tunnel, 1, func(d *DestInfo) { d.TunType, d.TunFlags = TunGRE, TunRemCsum }),
			dst("10.4.0.4:80", Tunnel, 65535, func(d *DestInfo) { d.TunType, d.TunPort = TunGUE, 6080 }),
			dst("10.4.0.3:80", Tunnel, 100, nil)),
		svc(ServiceKey{Family: INET, Proto: UDP, Addr: a("10.1.0.14"), Port: 53}, "rr", FlagOnePacket, 0, 0xffffffff, Stats{}),
		svc(ServiceKey{Family: INET, Proto: SCTP, Addr: a("10.1.0.15"), Port: 3868}, "mh", FlagSched1|FlagSched2, 0, 0xffffffff, Stats{}),
		svc(ServiceKey{Family: INET, Fwmark: 7}, "sh", FlagPersistent|FlagSched1, 600, 0xffffff00, Stats{}, dst("10.4.0.30:0", Route, 1, nil)),
		svc(ServiceKey{Family: INET6, Fwmark: 9}, "wlc", FlagPersistent, 60, 128, Stats{}),
		sip,
	}
}

// TestWriteListingGolden prints the golden table in every format and
// compares with testdata/ipvsadm/NAME.txt (go test -run Golden -update
// rewrites them; review the difference: the lab VM test compares the same
// code with the real ipvsadm).
func TestWriteListingGolden(t *testing.T) {
	info := Info{Version: 1<<16 | 2<<8 | 1, Size: 4096}
	tcp80 := ServiceKey{Family: INET, Proto: TCP, Addr: netip.MustParseAddr("192.0.2.100"), Port: 80}
	cases := map[string][]string{
		"list":            {"-L", "-n"},
		"stats":           {"-Ln", "--stats"},
		"stats-exact":     {"-Ln", "--stats", "--exact"},
		"rate":            {"-Ln", "--rate"},
		"rate-exact":      {"-Ln", "--rate", "--exact"},
		"thresholds":      {"-Ln", "--thresholds"},
		"persistent-conn": {"-Ln", "--persistent-conn"},
		"tun-info":        {"-Ln", "--tun-info"},
		"nosort":          {"-Ln", "--nosort"},
		"save":            {"-S", "-n"},
		"service":         {"-Ln", "-t", "192.0.2.100:80"},
		"service-fwmark6": {"-L", "-n", "-f", "9", "-6"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			f, err := ParseListArgs(args)
			if err != nil {
				t.Fatal(err)
			}
			svcs := goldenTable()
			if f.Service != nil {
				svcs = nil
				for _, s := range goldenTable() {
					if sameListKey(s.ServiceKey, *f.Service) {
						svcs = append(svcs, s)
					}
				}
				if len(svcs) != 1 {
					t.Fatalf("%v selects %d services", args, len(svcs))
				}
			}
			if name == "service" && *f.Service != tcp80 {
				t.Fatalf("-t parsed as %+v", *f.Service)
			}
			var b bytes.Buffer
			if err := WriteListing(&b, info, svcs, f); err != nil {
				t.Fatal(err)
			}
			golden(t, name, b.Bytes())
		})
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "ipvsadm", name+".txt")
	if *updateGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// TestWriteConnections: the kernel's proc lines (IPv4 in hex, IPv6 in
// full, a persistence engine) as ipvsadm -Lnc prints them.
func TestWriteConnections(t *testing.T) {
	proc := "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n" +
		"TCP C000020A 9C40 C0000264 0050 C6336447 0050 ESTABLISHED     899\n" +
		"UDP C000020A 0035 C0000264 0035 C6336448 0035 UDP             299 sip 3132\n" +
		"TCP 2001:0db8:0000:0000:0000:0000:0000:000a D431 2001:0db8:0001:0000:0000:0000:0000:0001 01BB 2001:0db8:0004:0000:0000:0000:0000:0001 01BB SYN_RECV         59\n"
	for name, f := range map[string]ListFormat{"conn": {Connections: true}, "conn-pe": {Connections: true, PersistentConn: true}} {
		var b bytes.Buffer
		if err := WriteConnections(&b, strings.NewReader(proc), f); err != nil {
			t.Fatal(err)
		}
		golden(t, name, b.Bytes())
	}
	if err := WriteConnections(&bytes.Buffer{}, strings.NewReader(""), ListFormat{}); err == nil {
		t.Error("an empty proc file is not an error")
	}
}

// TestMergeSortWraps: ipvsadm compares addresses by a wrapping
// subtraction, so 10.0.0.1 sorts after 192.0.2.1 when they differ by more
// than 2^31, and a mark of 2^32-1 (-1) before 7.
func TestMergeSortWraps(t *testing.T) {
	d := func(s string) DestInfo {
		return DestInfo{Destination: Destination{DestKey: DestKey{Addr: netip.MustParseAddr(s)}}}
	}
	got := mergeSort([]DestInfo{d("10.0.0.1"), d("192.0.2.1"), d("192.0.2.0")}, cmpDests)
	var s []string
	for _, x := range got {
		s = append(s, x.Addr.String())
	}
	if strings.Join(s, " ") != "192.0.2.0 192.0.2.1 10.0.0.1" {
		t.Errorf("sorted %v", s)
	}
	svcs := mergeSort([]ListedService{{ServiceInfo: ServiceInfo{Service: Service{ServiceKey: ServiceKey{Fwmark: 7}}}},
		{ServiceInfo: ServiceInfo{Service: Service{ServiceKey: ServiceKey{Fwmark: 4294967295}}}}}, cmpListedServices)
	if svcs[0].Fwmark != 4294967295 {
		t.Errorf("mark order %d, %d", svcs[0].Fwmark, svcs[1].Fwmark)
	}
}

func TestParseListArgsErrors(t *testing.T) {
	for _, args := range [][]string{{"-X"}, {"-t"}, {"-t", "nope"}, {"-f", "0"}, {"--bogus"}, {"word"},
		{"-S", "-n", "-t", "192.0.2.1:80"}, {"-S", "--stats"}, {"-Lnc", "-t", "192.0.2.1:80"}} {
		if _, err := ParseListArgs(args); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	f, err := ParseListArgs([]string{"-Lnc", "--persistent-conn"})
	if err != nil || !f.Connections || !f.PersistentConn {
		t.Errorf("-Lnc --persistent-conn: %+v %v", f, err)
	}
	f, err = ParseListArgs([]string{"-Ln", "-u[2001:db8::1]:53"})
	if err != nil || f.Service == nil || f.Service.Proto != UDP || f.Service.Family != INET6 || f.Service.Port != 53 {
		t.Errorf("-u attached: %+v %v", f.Service, err)
	}
}
