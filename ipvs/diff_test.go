package ipvs

import (
	"net/netip"
	"strings"
	"testing"
)

func tcpKey(addr string, port uint16) ServiceKey {
	a := netip.MustParseAddr(addr)
	return ServiceKey{Family: FamilyOf(a), Proto: TCP, Addr: a, Port: port}
}

func fwmKey(mark uint32) ServiceKey { return ServiceKey{Family: INET, Fwmark: mark} }

func svc(k ServiceKey, sched string) Service {
	return Service{ServiceKey: k, Scheduler: sched, Netmask: 0xffffffff}
}

func persistent(s Service, timeout uint32, mask uint32) Service {
	s.Flags |= FlagPersistent
	s.Timeout = timeout
	s.Netmask = mask
	return s
}

func dst(ap string, fwd Forward, w int) Destination {
	p := netip.MustParseAddrPort(ap)
	return Destination{DestKey: DestKey{Addr: p.Addr(), Port: p.Port()}, Fwd: fwd, Weight: w}
}

func tbl(ss ...*TableService) Table {
	t := Table{}
	for _, s := range ss {
		t[s.Service.ServiceKey] = s
	}
	return t
}

func ts(s Service, ds ...Destination) *TableService {
	out := &TableService{Service: s, Dests: map[DestKey]Destination{}}
	for _, d := range ds {
		out.Dests[d.DestKey] = d
	}
	return out
}

// own returns an ownership of every entry of t.
func own(t Table) Ownership {
	o := NewOwnership()
	for k, s := range t {
		o.addService(k)
		for dk := range s.Dests {
			o.addDest(k, dk)
		}
	}
	return o
}

func opStrings(ops []Op) string {
	var s []string
	for _, o := range ops {
		s = append(s, o.String())
	}
	return strings.Join(s, "\n")
}

func TestDiff(t *testing.T) {
	web := tcpKey("192.0.2.1", 80)
	other := tcpKey("192.0.2.2", 443)
	base := svc(web, "wlc")
	a1 := dst("10.0.0.1:80", Masq, 1)
	a2 := dst("10.0.0.2:80", Masq, 3)
	withFlags := func(s Service, f Flags) Service { s.Flags |= f; return s }
	tun := func(d Destination, tt TunnelType, port uint16, fl TunnelFlags) Destination {
		d.Fwd, d.TunType, d.TunPort, d.TunFlags = Tunnel, tt, port, fl
		return d
	}
	cases := []struct {
		name    string
		desired Table
		kernel  Table
		owned   Ownership // nil Services: own everything in kernel
		want    string
	}{
		{name: "empty", desired: Table{}, kernel: Table{}, want: ""},
		{
			name:    "create service and destinations",
			desired: tbl(ts(base, a2, a1)),
			kernel:  Table{},
			want: "create-service TCP 192.0.2.1:80 wlc\n" +
				"create-dest TCP 192.0.2.1:80 -> 10.0.0.1:80 masq w1\n" +
				"create-dest TCP 192.0.2.1:80 -> 10.0.0.2:80 masq w3",
		},
		{
			name:    "unchanged gives no operation",
			desired: tbl(ts(base, a1, a2), ts(persistent(svc(fwmKey(1), "rr"), 300, 0xffffff00), a1)),
			kernel:  tbl(ts(base, a1, a2), ts(persistent(svc(fwmKey(1), "rr"), 300, 0xffffff00), a1)),
			want:    "",
		},
		{
			name:    "kernel-internal hashed flag is ignored",
			desired: tbl(ts(base, a1)),
			kernel:  tbl(ts(withFlags(base, FlagHashed), a1)),
			want:    "",
		},
		{
			name:    "a local destination matches masquerading",
			desired: tbl(ts(base, a1)),
			kernel:  tbl(ts(base, dst("10.0.0.1:80", Local, 1))),
			want:    "",
		},
		{
			name:    "scheduler change is an edit",
			desired: tbl(ts(svc(web, "rr"), a1)),
			kernel:  tbl(ts(base, a1)),
			want:    "update-service TCP 192.0.2.1:80 rr",
		},
		{
			name:    "persistence added is an edit",
			desired: tbl(ts(persistent(base, 360, 0xffffffff), a1)),
			kernel:  tbl(ts(base, a1)),
			want:    "update-service TCP 192.0.2.1:80 wlc persistent timeout 360",
		},
		{
			name:    "persistence timeout change is an edit",
			desired: tbl(ts(persistent(base, 600, 0xffffffff), a1)),
			kernel:  tbl(ts(persistent(base, 360, 0xffffffff), a1)),
			want:    "update-service TCP 192.0.2.1:80 wlc persistent timeout 600",
		},
		{
			name:    "granularity change is an edit",
			desired: tbl(ts(persistent(base, 360, 0xffffff00), a1)),
			kernel:  tbl(ts(persistent(base, 360, 0xffffffff), a1)),
			want:    "update-service TCP 192.0.2.1:80 wlc persistent timeout 360 mask 255.255.255.0",
		},
		{
			name:    "scheduler flags change is an edit",
			desired: tbl(ts(withFlags(svc(web, "sh"), FlagSched1|FlagSched2), a1)),
			kernel:  tbl(ts(withFlags(svc(web, "sh"), FlagSched2), a1)),
			want:    "update-service TCP 192.0.2.1:80 sh flag-1|flag-2",
		},
		{
			name:    "one-packet scheduling is an edit",
			desired: tbl(ts(withFlags(svc(web, "rr"), FlagOnePacket))),
			kernel:  tbl(ts(svc(web, "rr"))),
			want:    "update-service TCP 192.0.2.1:80 rr ops",
		},
		{
			name:    "weight change is an edit",
			desired: tbl(ts(base, a1, dst("10.0.0.2:80", Masq, 5))),
			kernel:  tbl(ts(base, a1, a2)),
			want:    "update-dest TCP 192.0.2.1:80 -> 10.0.0.2:80 masq w5",
		},
		{
			name:    "forwarding change is an edit",
			desired: tbl(ts(base, dst("10.0.0.1:80", Route, 1))),
			kernel:  tbl(ts(base, a1)),
			want:    "update-dest TCP 192.0.2.1:80 -> 10.0.0.1:80 route w1",
		},
		{
			name:    "tunnel parameters change is an edit",
			desired: tbl(ts(base, tun(a1, TunGUE, 6080, TunCsum))),
			kernel:  tbl(ts(base, tun(a1, TunIPIP, 0, 0))),
			want:    "update-dest TCP 192.0.2.1:80 -> 10.0.0.1:80 tunnel w1 gue port 6080 csum",
		},
		{
			name:    "tunnel fields of a non-tunnel destination are ignored",
			desired: tbl(ts(base, a1)),
			kernel:  tbl(ts(base, func() Destination { d := a1; d.TunType = TunGRE; return d }())),
			want:    "",
		},
		{
			name:    "thresholds change is an edit",
			desired: tbl(ts(base, func() Destination { d := a1; d.UThreshold = 100; return d }())),
			kernel:  tbl(ts(base, a1)),
			want:    "update-dest TCP 192.0.2.1:80 -> 10.0.0.1:80 masq w1 thresholds 0-100",
		},
		{
			name:    "owned destination no longer wanted is removed",
			desired: tbl(ts(base, a1)),
			kernel:  tbl(ts(base, a1, a2)),
			want:    "remove-dest TCP 192.0.2.1:80 -> 10.0.0.2:80",
		},
		{
			name:    "foreign destination in a wanted service is left alone",
			desired: tbl(ts(base, a1)),
			kernel:  tbl(ts(base, a1, a2)),
			owned:   own(tbl(ts(base, a1))),
			want:    "",
		},
		{
			name:    "owned service no longer wanted is removed with its destinations",
			desired: tbl(ts(base, a1)),
			kernel:  tbl(ts(base, a1), ts(svc(other, "rr"), a1, a2)),
			want:    "remove-service TCP 192.0.2.2:443",
		},
		{
			name:    "foreign service is left alone",
			desired: tbl(ts(base, a1)),
			kernel:  tbl(ts(base, a1), ts(svc(other, "rr"), a1, a2)),
			owned:   own(tbl(ts(base, a1))),
			want:    "",
		},
		{
			name:    "foreign service named by the configuration is adopted and edited",
			desired: tbl(ts(svc(web, "rr"), a1)),
			kernel:  tbl(ts(base, dst("10.0.0.1:80", Masq, 9))),
			owned:   NewOwnership(),
			want: "update-service TCP 192.0.2.1:80 rr\n" +
				"update-dest TCP 192.0.2.1:80 -> 10.0.0.1:80 masq w1",
		},
		{
			name:    "make before break: adds and edits before removals, services removed last",
			desired: tbl(ts(svc(web, "rr"), a2), ts(svc(fwmKey(3), "wlc"), a1)),
			kernel:  tbl(ts(base, a1), ts(svc(other, "rr"), a1)),
			want: "create-service FWM 3 wlc\n" +
				"update-service TCP 192.0.2.1:80 rr\n" +
				"create-dest TCP 192.0.2.1:80 -> 10.0.0.2:80 masq w3\n" +
				"create-dest FWM 3 -> 10.0.0.1:80 masq w1\n" +
				"remove-dest TCP 192.0.2.1:80 -> 10.0.0.1:80\n" +
				"remove-service TCP 192.0.2.2:443",
		},
		{
			name:    "IPv6 services and fwmark families are distinct keys",
			desired: tbl(ts(svc(ServiceKey{Family: INET6, Fwmark: 1}, "rr"))),
			kernel:  tbl(ts(svc(fwmKey(1), "rr"))),
			owned:   NewOwnership(),
			want:    "create-service FWM 1 IPv6 rr",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			owned := c.owned
			if owned.Services == nil {
				owned = own(c.kernel)
			}
			got := opStrings(Diff(c.desired, c.kernel, owned))
			if got != c.want {
				t.Errorf("ops:\n%s\nwant:\n%s", got, c.want)
			}
			// Applying the ops to the kernel table must converge: a second
			// diff is empty (for the entries lvsd manages).
			k := c.kernel.Clone()
			o := owned.Clone()
			for _, op := range Diff(c.desired, k, o) {
				applyOp(k, o, op)
			}
			if again := Diff(c.desired, k, o); len(again) != 0 {
				t.Errorf("not converged, second diff:\n%s", opStrings(again))
			}
		})
	}
}

func TestDiffDoesNotMutateInputs(t *testing.T) {
	d := tbl(ts(svc(tcpKey("192.0.2.1", 80), "rr"), dst("10.0.0.1:80", Masq, 1)))
	k := tbl(ts(svc(tcpKey("192.0.2.9", 80), "rr"), dst("10.0.0.1:80", Masq, 1)))
	ds, ks := d.String(), k.String()
	o := own(k)
	Diff(d, k, o)
	if d.String() != ds || k.String() != ks || !o.OwnsService(tcpKey("192.0.2.9", 80)) {
		t.Fatal("Diff changed its inputs")
	}
}
