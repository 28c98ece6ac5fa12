package healthcheck

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// udpServer answers each datagram on 127.0.0.1 with what answer returns
// (nothing: no reply). It returns the port.
func udpServer(t *testing.T, answer func(req []byte) [][]byte) int {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			for _, r := range answer(append([]byte(nil), buf[:n]...)) {
				c.WriteToUDP(r, from)
			}
		}
	}()
	t.Cleanup(func() {
		c.Close()
		wg.Wait()
	})
	return c.LocalAddr().(*net.UDPAddr).Port
}

// closedUDPPort is a UDP port nobody listens on (datagrams to it get an ICMP
// port unreachable).
func closedUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	return port
}

// dnsReply answers a query: same ID and question, QR set, the given rcode,
// no answers.
func dnsReply(q []byte, rcode byte) []byte {
	r := append([]byte(nil), q...)
	r[2] |= 0x80 // QR
	r[3] = r[3]&0xf0 | rcode
	return r
}

func dnsConf(port int, alpha bool, body string) string {
	a := ""
	if alpha {
		a = "alpha"
	}
	return fmt.Sprintf(`
virtual_server 192.0.2.1 53 {
  protocol UDP
  delay_loop 1
  %s
  real_server 127.0.0.1 %d {
    DNS_CHECK {
      connect_timeout 0.2
      retry 2
      delay_before_retry 0.1
      warmup 0
      %s
    }
  }
}`, a, port, body)
}

func TestDNS(t *testing.T) {
	t.Parallel()
	queries := make(chan []byte, 10)
	good := udpServer(t, func(q []byte) [][]byte {
		select {
		case queries <- q:
		default:
		}
		return [][]byte{dnsReply(q, 0)}
	})
	// Noise first: a runt, another ID, the query echoed (QR clear); then the reply.
	noisy := udpServer(t, func(q []byte) [][]byte {
		other := dnsReply(q, 2)
		other[0] ^= 0xff
		return [][]byte{{1, 2, 3}, other, q, dnsReply(q, 0)}
	})
	wrongID := udpServer(t, func(q []byte) [][]byte {
		r := dnsReply(q, 0)
		r[1] ^= 1
		return [][]byte{r}
	})
	rcode := func(rc byte) int {
		return udpServer(t, func(q []byte) [][]byte { return [][]byte{dnsReply(q, rc)} })
	}
	const timesOut = 3*200*time.Millisecond + 2*100*time.Millisecond
	const fails = 2 * 100 * time.Millisecond
	for _, tc := range []struct {
		name   string
		port   int
		body   string
		wantUp bool
		downAt time.Duration
		reason string
	}{
		{name: "good", port: good, body: "type AAAA\nname www.example.com", wantUp: true},
		{name: "noise before the reply", port: noisy, wantUp: true},
		{name: "wrong id", port: wrongID, downAt: timesOut, reason: "no reply: timeout"},
		{name: "SERVFAIL", port: rcode(2), downAt: fails, reason: "reply SERVFAIL"},
		{name: "NXDOMAIN", port: rcode(3), downAt: fails, reason: "reply NXDOMAIN"},
		{name: "REFUSED", port: rcode(5), downAt: fails, reason: "reply REFUSED"},
		{name: "silent", port: udpServer(t, func([]byte) [][]byte { return nil }), downAt: timesOut, reason: "no reply: timeout"},
		{name: "port unreachable", port: closedUDPPort(t), downAt: fails, reason: "port unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.wantUp {
				r := startRun(t, dnsConf(tc.port, true, tc.body), Options{})
				r.expect(t, false, 0)
				r.expect(t, true, 0)
				return
			}
			r := startRun(t, dnsConf(tc.port, false, tc.body), Options{})
			r.expect(t, true, 0)
			ev := r.expect(t, false, tc.downAt)
			if !strings.Contains(ev.Reason, tc.reason) {
				t.Errorf("reason %q, want it to mention %q", ev.Reason, tc.reason)
			}
		})
	}
	t.Run("query", func(t *testing.T) {
		t.Parallel()
		var q []byte
		select {
		case q = <-queries:
		case <-time.After(2 * time.Second):
			t.Fatal("no query")
		}
		// RD, one question, www.example.com AAAA IN.
		want := []byte("\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x03com\x00\x00\x1c\x00\x01")
		if !bytes.Equal(q[2:], want) {
			t.Errorf("query % x, want (after the ID) % x", q, want)
		}
	})
}

// DNS_CHECK's defaults: retry 3, delay_before_retry = delay_loop, the root's SOA.
func TestDNSDefaults(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got [][]byte
	port := udpServer(t, func(q []byte) [][]byte {
		mu.Lock()
		got = append(got, q)
		mu.Unlock()
		return nil
	})
	r := startRun(t, fmt.Sprintf(`
virtual_server 192.0.2.1 53 {
  protocol UDP
  delay_loop 0.3
  real_server 127.0.0.1 %d {
    DNS_CHECK {
      connect_timeout 0.1
      warmup 0
    }
  }
}`, port), Options{})
	r.expect(t, true, 0)
	// Four attempts of 0.1 s, three delays of delay_loop 0.3 s.
	r.expect(t, false, 4*100*time.Millisecond+3*300*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 4 {
		t.Fatalf("%d queries, want 4", len(got))
	}
	ids := map[uint16]bool{}
	for _, q := range got {
		ids[binary.BigEndian.Uint16(q)] = true
		if want := []byte("\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x06\x00\x01"); !bytes.Equal(q[2:], want) {
			t.Errorf("query % x, want (after the ID) % x", q, want)
		}
	}
	if len(ids) < 3 {
		t.Errorf("IDs %v: want a random one per query", ids)
	}
}

func TestDNSQuery(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string
		err  bool
	}{
		{name: ".", want: "\x00"},
		{name: "", want: "\x00"},
		{name: "a.b", want: "\x01a\x01b\x00"},
		{name: "a.b.", want: "\x01a\x01b\x00"},
		{name: "a..b", err: true},
		{name: strings.Repeat("x", 64), err: true},
	} {
		q, err := dnsQuery(tc.name, 6)
		if tc.err {
			if err == nil {
				t.Errorf("%q: no error", tc.name)
			}
			continue
		}
		if err != nil || string(q[12:len(q)-4]) != tc.want {
			t.Errorf("%q: % x %v, want name % x", tc.name, q, err, tc.want)
		}
	}
}
