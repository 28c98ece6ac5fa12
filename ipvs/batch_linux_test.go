//go:build linux

package ipvs

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nlenc"
	"golang.org/x/sys/unix"
)

// The in-place encoder must produce the bytes of the straightforward one
// built on github.com/mdlayher/netlink's AttributeEncoder (below), which
// the lab tests validated against the kernel first.
func TestAppendOpMessageMatchesAttributeEncoder(t *testing.T) {
	svcs := []Service{
		{ServiceKey: ServiceKey{Family: INET, Proto: TCP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 80}, Scheduler: "wrr"},
		{ServiceKey: ServiceKey{Family: INET, Proto: UDP, Addr: netip.MustParseAddr("192.0.2.2"), Port: 53}, Scheduler: "sh",
			Flags: 0x1f, Timeout: 360, Netmask: 0xffffff00},
		{ServiceKey: ServiceKey{Family: INET6, Proto: TCP, Addr: netip.MustParseAddr("2001:db8::1"), Port: 443}, Scheduler: "mh",
			Flags: 1, Timeout: 60, Netmask: 64},
		{ServiceKey: ServiceKey{Family: INET, Fwmark: 7}, Scheduler: "lblcr"},
		{ServiceKey: ServiceKey{Family: INET6, Fwmark: 0xffffffff}, Scheduler: "ovf", Netmask: 200},
	}
	dests := []Destination{
		{DestKey: DestKey{Addr: netip.MustParseAddr("198.51.100.1"), Port: 8080}, Fwd: 0, Weight: 3},
		{DestKey: DestKey{Addr: netip.MustParseAddr("2001:db8::7"), Port: 1}, Fwd: 2, Weight: -1, UThreshold: 9, LThreshold: 2},
		{DestKey: DestKey{Addr: netip.MustParseAddr("203.0.113.9"), Port: 65535}, Fwd: 3, Weight: 65535, TunType: 1, TunPort: 6080, TunFlags: 3},
	}
	var ops []Op
	for _, s := range svcs {
		for k := OpCreateService; k < numOpKinds; k++ {
			if k == OpCreateDest || k == OpUpdateDest || k == OpRemoveDest {
				for _, d := range dests {
					ops = append(ops, Op{Kind: k, Service: s, Dest: d})
				}
				continue
			}
			ops = append(ops, Op{Kind: k, Service: s})
		}
	}
	for i, op := range ops {
		want := refMessage(t, 42, uint32(i), op)
		prefix := []byte{1, 2, 3}
		got, err := appendOpMessage(append([]byte(nil), prefix...), 42, uint32(i), op)
		if err != nil {
			t.Fatalf("%v: %v", op, err)
		}
		if !bytes.Equal(got[:3], prefix) || !bytes.Equal(got[3:], want) {
			t.Errorf("%v:\n got % x\nwant % x", op, got[3:], want)
		}
	}
	if _, err := appendOpMessage(nil, 42, 1, Op{Kind: numOpKinds}); err == nil {
		t.Error("an unknown op kind was encoded")
	}
}

func BenchmarkAppendOpMessage(b *testing.B) {
	op := Op{Kind: OpCreateDest,
		Service: Service{ServiceKey: ServiceKey{Family: INET, Proto: TCP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 80}, Scheduler: "wrr"},
		Dest:    Destination{DestKey: DestKey{Addr: netip.MustParseAddr("198.51.100.1"), Port: 8080}, Weight: 3}}
	buf := make([]byte, 0, 1<<16)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf, _ = appendOpMessage(buf[:0], 42, uint32(i), op)
	}
}

// refMessage is the reference encoding of an op's message.
func refMessage(t *testing.T, family uint16, seq uint32, op Op) []byte {
	t.Helper()
	var cmd byte
	switch op.Kind {
	case OpCreateService:
		cmd = cmdNewService
	case OpUpdateService:
		cmd = cmdSetService
	case OpRemoveService:
		cmd = cmdDelService
	case OpCreateDest:
		cmd = cmdNewDest
	case OpUpdateDest:
		cmd = cmdSetDest
	case OpRemoveDest:
		cmd = cmdDelDest
	default:
		t.Fatalf("unknown op %v", op.Kind)
	}
	ae := netlink.NewAttributeEncoder()
	ae.Do(cmdAttrService, func() ([]byte, error) { return refService(op.Service) })
	if op.Kind == OpCreateDest || op.Kind == OpUpdateDest || op.Kind == OpRemoveDest {
		ae.Do(cmdAttrDest, func() ([]byte, error) { return refDest(op.Dest) })
	}
	attrs, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	const hdr = unix.NLMSG_HDRLEN + unix.GENL_HDRLEN
	buf := make([]byte, hdr, hdr+len(attrs))
	binary.NativeEndian.PutUint32(buf[0:], uint32(hdr+len(attrs)))
	binary.NativeEndian.PutUint16(buf[4:], family)
	binary.NativeEndian.PutUint16(buf[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(buf[8:], seq)
	buf[hdr-4] = cmd
	buf[hdr-3] = genlVersion
	return append(buf, attrs...)
}

func refService(s Service) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Uint16(svcAttrAF, uint16(s.Family))
	if s.Fwmark != 0 {
		ae.Uint32(svcAttrFwmark, s.Fwmark)
	} else {
		ae.Uint16(svcAttrProtocol, uint16(s.Proto))
		ae.Bytes(svcAttrAddr, s.Addr.AsSlice())
		ae.Bytes(svcAttrPort, []byte{byte(s.Port >> 8), byte(s.Port)})
	}
	ae.String(svcAttrSchedName, s.Scheduler)
	flags := make([]byte, 8)
	binary.NativeEndian.PutUint32(flags, uint32(s.Flags))
	binary.NativeEndian.PutUint32(flags[4:], 0xffffffff)
	ae.Bytes(svcAttrFlags, flags)
	ae.Uint32(svcAttrTimeout, s.Timeout)
	switch {
	case s.Family == INET6 && s.Netmask > 0:
		b := make([]byte, 4)
		nlenc.PutUint32(b, min(s.Netmask, 128))
		ae.Bytes(svcAttrNetmask, b)
	case s.Family == INET && s.Netmask != 0:
		b := make([]byte, 4)
		binary.BigEndian.PutUint32(b, s.Netmask)
		ae.Bytes(svcAttrNetmask, b)
	}
	return ae.Encode()
}

func refDest(d Destination) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Uint16(destAttrAddrFam, uint16(FamilyOf(d.Addr)))
	ae.Bytes(destAttrAddr, d.Addr.AsSlice())
	ae.Bytes(destAttrPort, []byte{byte(d.Port >> 8), byte(d.Port)})
	ae.Uint32(destAttrFwdMethod, uint32(d.Fwd))
	ae.Uint32(destAttrWeight, uint32(max(d.Weight, 0)))
	ae.Uint32(destAttrUThresh, d.UThreshold)
	ae.Uint32(destAttrLThresh, d.LThreshold)
	ae.Uint8(destAttrTunType, uint8(d.TunType))
	ae.Bytes(destAttrTunPort, []byte{byte(d.TunPort >> 8), byte(d.TunPort)})
	ae.Uint16(destAttrTunFlags, uint16(d.TunFlags))
	return ae.Encode()
}
