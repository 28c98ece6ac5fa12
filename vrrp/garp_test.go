package vrrp

import (
	"bytes"
	"encoding/hex"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// Captured from keepalived v2.2.7 taking over 192.0.2.101 on an interface
// with MAC 0e:58:ff:1b:c7:66 (ARP part of the frame; the Ethernet
// destination was ff:ff:ff:ff:ff:ff).
func TestGARPPayloadMatchesKeepalived(t *testing.T) {
	mac, _ := net.ParseMAC("0e:58:ff:1b:c7:66")
	got, err := garpPayload(mac, netip.MustParseAddr("192.0.2.101"))
	if err != nil {
		t.Fatal(err)
	}
	want := mustHex(t, "0001 0800 0604 0001 0e58ff1bc766 c0000265 ffffffffffff c0000265")
	if !bytes.Equal(got, want) {
		t.Fatalf("got %x\nwant %x", got, want)
	}
	if _, err := garpPayload(mac[:4], netip.MustParseAddr("192.0.2.1")); err == nil {
		t.Error("short MAC accepted")
	}
	if _, err := garpPayload(mac, netip.MustParseAddr("2001:db8::1")); err == nil {
		t.Error("IPv6 accepted")
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
