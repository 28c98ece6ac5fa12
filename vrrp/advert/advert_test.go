package advert

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lvsd/lvsd/vrrp/internal/checksum"
)

var (
	srcA  = netip.MustParseAddr("192.0.2.1")
	srcB  = netip.MustParseAddr("192.0.2.2")
	vip1  = netip.MustParseAddr("192.0.2.100")
	vip2  = netip.MustParseAddr("198.51.100.7")
	mcast = MulticastGroup
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Golden vectors built by hand from the RFC 3768 §5.1 / RFC 5798 §5.1 layout;
// the checksums were computed on paper (one's complement sums in the comments).
var goldens = []struct {
	name     string
	adv      Advert
	src, dst netip.Addr
	wire     string
}{
	{
		// 2133 + 6401 + 0001 + c000 + 0264 = 0x14799 -> 0x479a -> ~ = b865
		name: "v2 one VIP no auth",
		adv:  Advert{Version: 2, Type: 1, VRID: 51, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{vip1}},
		wire: "21 33 64 01 00 01 b865 c0000264 0000000000000000",
	},
	{
		// 21c8 + ff02 + 0103 + c000 + 0264 + c633 + 6407 + 7365 + 6372 + 6574 = 0x44ab6
		// -> 0x4aba -> ~ = b545; password "secret" zero padded to 8 bytes.
		name: "v2 owner two VIPs PASS",
		adv: Advert{Version: 2, Type: 1, VRID: 200, Priority: 255, Interval: 3 * time.Second,
			AuthType: AuthPass, AuthData: Password("secret"), Addrs: []netip.Addr{vip1, vip2}},
		wire: "21 c8 ff 02 01 03 b545 c0000264 c6336407 7365637265740000",
	},
	{
		// pseudo c000+0201+e000+0012+0070+000c = 0x1a28f;
		// vrrp 3133+6401+0064+c000+0264 = 0x157fc; total 0x2fa8b -> 0xfa8d -> ~ = 0572
		name: "v3 one VIP 1s",
		adv:  Advert{Version: 3, Type: 1, VRID: 51, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{vip1}},
		src:  srcA, dst: mcast,
		wire: "31 33 64 01 0064 0572 c0000264",
	},
	{
		// priority 0, interval 40.95s = 4095cs = 0x0fff, source 192.0.2.2
		// pseudo c000+0202+e000+0012+0070+000c = 0x1a290;
		// vrrp 3101+0001+0fff+c000+0264 = 0x10365; total 0x2a5f5 -> 0xa5f7 -> ~ = 5a08
		name: "v3 priority 0 max interval",
		adv:  Advert{Version: 3, Type: 1, VRID: 1, Priority: 0, Interval: 40950 * time.Millisecond, Addrs: []netip.Addr{vip1}},
		src:  srcB, dst: mcast,
		wire: "31 01 00 01 0fff 5a08 c0000264",
	},
}

func TestGoldenMarshal(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			a := g.adv
			got, err := a.Marshal(g.src, g.dst)
			if err != nil {
				t.Fatal(err)
			}
			want := mustHex(t, g.wire)
			if !bytes.Equal(got, want) {
				t.Fatalf("Marshal\n got %x\nwant %x", got, want)
			}
		})
	}
}

func TestGoldenDecode(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			b := mustHex(t, g.wire)
			a, r := Decode(b, PacketInfo{Src: g.src, Dst: g.dst, TTL: 255})
			if r != DropNone {
				t.Fatalf("Decode dropped: %v", r)
			}
			want := g.adv
			want.Checksum = uint16(b[6])<<8 | uint16(b[7])
			if !reflect.DeepEqual(*a, want) {
				t.Fatalf("Decode\n got %+v\nwant %+v", *a, want)
			}
		})
	}
}

func TestMarshalErrors(t *testing.T) {
	cases := []struct {
		name string
		adv  Advert
	}{
		{"version 4", Advert{Version: 4, Interval: time.Second}},
		{"v2 sub-second", Advert{Version: 2, Interval: 500 * time.Millisecond}},
		{"v2 256s", Advert{Version: 2, Interval: 256 * time.Second}},
		{"v3 5ms", Advert{Version: 3, Interval: 5 * time.Millisecond}},
		{"v3 41s", Advert{Version: 3, Interval: 41 * time.Second}},
		{"v3 zero", Advert{Version: 3}},
		{"ipv6 addr", Advert{Version: 2, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::1")}}},
		{"too many addrs", Advert{Version: 2, Interval: time.Second, Addrs: make([]netip.Addr, 256)}},
	}
	for _, c := range cases {
		if _, err := c.adv.Marshal(srcA, mcast); err == nil {
			t.Errorf("%s: Marshal succeeded", c.name)
		}
	}
	a := Advert{Version: 3, Interval: time.Second}
	if _, err := a.Marshal(netip.Addr{}, mcast); err == nil {
		t.Error("v3 without source: Marshal succeeded")
	}
}

func TestPasswordTruncatesAndPads(t *testing.T) {
	if got := Password("0123456789"); string(got[:]) != "01234567" {
		t.Errorf("long password: %q", got)
	}
	if got := Password("ab"); got != [8]byte{'a', 'b'} {
		t.Errorf("short password: %q", got)
	}
}

// v3 interval field: 12 bits; the 4 reserved bits are ignored on receive.
func TestDecodeV3IgnoresReservedBits(t *testing.T) {
	a := Advert{Version: 3, VRID: 9, Priority: 50, Interval: 250 * time.Millisecond, Addrs: []netip.Addr{vip1}}
	b, err := a.Marshal(srcA, mcast)
	if err != nil {
		t.Fatal(err)
	}
	if b[4] != 0 || b[5] != 25 {
		t.Fatalf("interval field % x, want 00 19", b[4:6])
	}
	b[4] |= 0xf0
	// fix the checksum for the modified word: recompute from scratch
	b[6], b[7] = 0, 0
	s := checksum.Sum(b, checksum.Pseudo4(srcA, mcast, len(b), IPProtocol))
	b[6], b[7] = byte(s>>8), byte(s)
	got, r := Decode(b, PacketInfo{Src: srcA, Dst: mcast, TTL: 255})
	if r != DropNone || got.Interval != 250*time.Millisecond {
		t.Fatalf("got %v %v", got, r)
	}
}

func v2Packet(t testing.TB, mod func(*Advert)) []byte {
	a := Advert{Version: 2, VRID: 51, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{vip1}}
	if mod != nil {
		mod(&a)
	}
	b, err := a.Marshal(srcB, mcast)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func v3Packet(t testing.TB, mod func(*Advert)) []byte {
	a := Advert{Version: 3, VRID: 51, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{vip1}}
	if mod != nil {
		mod(&a)
	}
	b, err := a.Marshal(srcB, mcast)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReceiveValidation(t *testing.T) {
	okInfo := PacketInfo{Src: srcB, Dst: mcast, TTL: 255}
	v2exp := Expect{Version: 2, VRID: 51, Interval: time.Second, Addrs: []netip.Addr{vip1}}
	v2pass := v2exp
	v2pass.AuthType, v2pass.AuthData = AuthPass, Password("secret")
	v3exp := Expect{Version: 3, VRID: 51, Interval: 2 * time.Second, Addrs: []netip.Addr{vip1}}
	uni := v2exp
	uni.Unicast, uni.Peers = true, []netip.Addr{srcA}
	uniTTL := uni
	uniTTL.PeerTTL = []TTLRange{{Min: 10, Max: 64}}

	cases := []struct {
		name string
		pkt  []byte
		info PacketInfo
		exp  Expect
		want Check
	}{
		{"v2 valid", v2Packet(t, nil), okInfo, v2exp, Check{}},
		{"v3 valid, other interval accepted", v3Packet(t, nil), okInfo, v3exp, Check{}},
		{"empty", nil, okInfo, v2exp, Check{Drop: DropTooShort}},
		{"7 bytes", v2Packet(t, nil)[:7], okInfo, v2exp, Check{Drop: DropTooShort}},
		{"truncated auth", v2Packet(t, nil)[:15], okInfo, v2exp, Check{Drop: DropLength}},
		{"trailing byte", append(v2Packet(t, nil), 0), okInfo, v2exp, Check{Drop: DropLength}},
		{"count says 2, carries 1", func() []byte { b := v2Packet(t, nil); b[3] = 2; return b }(), okInfo, v2exp, Check{Drop: DropLength}},
		{"ttl 64", v2Packet(t, nil), PacketInfo{Src: srcB, Dst: mcast, TTL: 64}, v2exp, Check{Drop: DropTTL}},
		{"ttl 64 unicast ok", v2Packet(t, func(a *Advert) {}), PacketInfo{Src: srcA, Dst: srcB, TTL: 64}, uni, Check{}},
		{"unicast not a peer", v2Packet(t, nil), PacketInfo{Src: srcB, Dst: srcA, TTL: 255}, uni, Check{Drop: DropNotPeer}},
		{"peer ttl 9 under min_ttl 10", v2Packet(t, nil), PacketInfo{Src: srcA, Dst: srcB, TTL: 9}, uniTTL, Check{Drop: DropTTL}},
		{"peer ttl 65 over max_ttl 64", v2Packet(t, nil), PacketInfo{Src: srcA, Dst: srcB, TTL: 65}, uniTTL, Check{Drop: DropTTL}},
		{"peer ttl 10 and 64 in range", v2Packet(t, nil), PacketInfo{Src: srcA, Dst: srcB, TTL: 64}, uniTTL, Check{}},
		{"version 1", func() []byte { b := v2Packet(t, nil); b[0] = 0x11; return b }(), okInfo, v2exp, Check{Drop: DropVersion}},
		{"v3 packet to v2 instance", v3Packet(t, nil), okInfo, v2exp, Check{Drop: DropVersion}},
		{"v2 packet to v3 instance", v2Packet(t, nil), okInfo, v3exp, Check{Drop: DropVersion}},
		{"type 2", func() []byte { b := v2Packet(t, nil); b[0] = 0x22; return b }(), okInfo, v2exp, Check{Drop: DropType}},
		{"v2 checksum", func() []byte { b := v2Packet(t, nil); b[7] ^= 1; return b }(), okInfo, v2exp, Check{Drop: DropChecksum}},
		{"v2 corrupted address", func() []byte { b := v2Packet(t, nil); b[9] ^= 0x40; return b }(), okInfo, v2exp, Check{Drop: DropChecksum}},
		{"v3 checksum", func() []byte { b := v3Packet(t, nil); b[6] ^= 0x80; return b }(), okInfo, v3exp, Check{Drop: DropChecksum}},
		{"v3 wrong pseudo source", v3Packet(t, nil), PacketInfo{Src: srcA, Dst: mcast, TTL: 255}, v3exp, Check{Drop: DropChecksum}},
		{"v3 no pseudo header", v3Packet(t, nil), PacketInfo{TTL: 255}, v3exp, Check{Drop: DropChecksum}},
		{"unknown vrid", v2Packet(t, func(a *Advert) { a.VRID = 52 }), okInfo, v2exp, Check{Drop: DropUnknownVRID}},
		{"auth type PASS, expect none", v2Packet(t, func(a *Advert) { a.AuthType, a.AuthData = AuthPass, Password("secret") }), okInfo, v2exp, Check{Drop: DropAuthType}},
		{"auth type none, expect PASS", v2Packet(t, nil), okInfo, v2pass, Check{Drop: DropAuthType}},
		{"auth type AH", v2Packet(t, func(a *Advert) { a.AuthType = AuthAH }), okInfo, v2exp, Check{Drop: DropAuthType}},
		{"auth wrong password", v2Packet(t, func(a *Advert) { a.AuthType, a.AuthData = AuthPass, Password("secreT") }), okInfo, v2pass, Check{Drop: DropAuthFailure}},
		{"auth right password", v2Packet(t, func(a *Advert) { a.AuthType, a.AuthData = AuthPass, Password("secret") }), okInfo, v2pass, Check{}},
		{"v2 interval mismatch", v2Packet(t, func(a *Advert) { a.Interval = 2 * time.Second }), okInfo, v2exp, Check{Drop: DropInterval}},
		{"address list differs: accepted, noted", v2Packet(t, func(a *Advert) { a.Addrs = []netip.Addr{vip2} }), okInfo, v2exp, Check{AddrListMismatch: true}},
		{"address count differs: accepted, noted", v2Packet(t, func(a *Advert) { a.Addrs = []netip.Addr{vip1, vip2} }), okInfo, v2exp, Check{AddrListMismatch: true}},
		{"address order differs: fine", v2Packet(t, func(a *Advert) { a.Addrs = []netip.Addr{vip2, vip1} }), okInfo, Expect{Version: 2, VRID: 51, Interval: time.Second, Addrs: []netip.Addr{vip1, vip2}}, Check{}},
		{"priority 0: accepted, noted", v2Packet(t, func(a *Advert) { a.Priority = 0 }), okInfo, v2exp, Check{PriorityZero: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got Check
			a, r := Decode(c.pkt, c.info)
			if r != DropNone {
				got = Check{Drop: r}
			} else {
				got = c.exp.Validate(a, c.info)
			}
			if got != c.want {
				t.Fatalf("got %+v (%v), want %+v (%v)", got, got.Drop, c.want, c.want.Drop)
			}
		})
	}
}

func TestDropReasonStrings(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range DropReasons() {
		s := r.String()
		if s == "" || strings.HasPrefix(s, "drop(") || seen[s] {
			t.Errorf("reason %d has bad or duplicate name %q", r, s)
		}
		seen[s] = true
	}
	if len(seen) != int(dropMax)-1 {
		t.Errorf("got %d names", len(seen))
	}
	if DropReason(200).String() != "drop(200)" {
		t.Error("unknown reason string")
	}
}

func FuzzDecode(f *testing.F) {
	for _, g := range goldens {
		f.Add(mustHex(f, g.wire), g.src.AsSlice(), g.dst.AsSlice(), 255)
	}
	f.Add(v2Packet(f, nil), srcB.AsSlice(), mcast.AsSlice(), 255)
	f.Add([]byte{0x31, 1, 2, 0, 0, 100, 0, 0}, srcA.AsSlice(), mcast.AsSlice(), 1)
	exp := []Expect{
		{Version: 2, VRID: 51, Interval: time.Second, Addrs: []netip.Addr{vip1}},
		{Version: 2, VRID: 200, Interval: 3 * time.Second, AuthType: AuthPass, AuthData: Password("secret")},
		{Version: 3, VRID: 51, Interval: time.Second, Addrs: []netip.Addr{vip1}, Unicast: true, Peers: []netip.Addr{srcA}},
	}
	f.Fuzz(func(t *testing.T, b, src, dst []byte, ttl int) {
		s, _ := netip.AddrFromSlice(src)
		d, _ := netip.AddrFromSlice(dst)
		info := PacketInfo{Src: s, Dst: d, TTL: ttl}
		a, r := Decode(b, info)
		if r != DropNone {
			if a != nil {
				t.Fatal("advert returned with a drop reason")
			}
			return
		}
		for i := range exp {
			_ = exp[i].Validate(a, info)
		}
		// A decoded packet re-encodes to the same bytes when its fields
		// are representable (reserved v3 bits and v2 auth data with
		// auth type none are not kept).
		if a.Version == 2 && a.AuthType != AuthPass {
			return
		}
		if a.Version == 3 && b[4]&0xf0 != 0 {
			return
		}
		if a.Interval == 0 {
			return
		}
		re, err := a.Marshal(s, d)
		if err != nil {
			t.Fatalf("re-marshal %+v: %v", a, err)
		}
		// 0x0000 and 0xffff are the two forms of a zero one's-complement
		// sum: a received 0xffff checksum is valid, Marshal writes 0x0000.
		if len(re) == len(b) && len(b) >= 8 && re[6]|re[7] == 0 && b[6]&b[7] == 0xff {
			re = append([]byte(nil), re...)
			re[6], re[7] = 0xff, 0xff
		}
		if !bytes.Equal(re, b) {
			t.Fatalf("round trip\n got %x\nwant %x", re, b)
		}
	})
}
