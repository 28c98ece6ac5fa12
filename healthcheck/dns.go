package healthcheck

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"

	"github.com/lvsd/lvsd/conf"
)

// dnsTypes are the query types of DNS_CHECK's type.
var dnsTypes = map[string]uint16{
	"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28, "RRSIG": 46, "DNSKEY": 48,
}

// dnsRcodes name the response codes of a failed DNS_CHECK.
var dnsRcodes = map[int]string{1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}

// dnsProbe is DNS_CHECK: a query for name of type (class IN, recursion
// desired) on a connected UDP socket. As keepalived, it passes at the first
// datagram that is a response (QR set) with the query's ID and RCODE 0
// (NOERROR), whatever its answers; it fails on a response with another RCODE
// (SERVFAIL, NXDOMAIN, REFUSED...), on a receive error (an ICMP port
// unreachable: "connection refused") and when connect_timeout passes.
// Datagrams of another ID, queries and runts are ignored.
type dnsProbe struct {
	t     *udpTarget
	query []byte // with ID 0
}

func newDNSProbe(c *conf.Checker, rs *conf.RealServer) (*dnsProbe, error) {
	typ, ok := dnsTypes[strings.ToUpper(c.DNSType)]
	if !ok {
		return nil, fmt.Errorf("unknown DNS type %q", c.DNSType)
	}
	q, err := dnsQuery(c.DNSName, typ)
	if err != nil {
		return nil, err
	}
	return &dnsProbe{t: newUDPTarget(c, rs, false), query: q}, nil
}

// dnsQuery builds a query (ID 0) for name ("." or empty: the root).
func dnsQuery(name string, typ uint16) ([]byte, error) {
	q := make([]byte, 12, 12+len(name)+6)
	binary.BigEndian.PutUint16(q[2:], 0x0100) // RD
	binary.BigEndian.PutUint16(q[4:], 1)      // QDCOUNT
	name = strings.TrimSuffix(name, ".")
	if len(name) > 253 {
		return nil, fmt.Errorf("name %q: longer than 253 octets", name)
	}
	if name != "" {
		for _, l := range strings.Split(name, ".") {
			if l == "" || len(l) > 63 {
				return nil, fmt.Errorf("name %q: empty label or label longer than 63 octets", name)
			}
			q = append(q, byte(len(l)))
			q = append(q, l...)
		}
	}
	q = append(q, 0)
	q = binary.BigEndian.AppendUint16(q, typ)
	q = binary.BigEndian.AppendUint16(q, 1) // IN
	return q, nil
}

func (p *dnsProbe) probe(ctx context.Context) result {
	return p.t.with(ctx, func(c *net.UDPConn) result { return p.exchange(ctx, c) })
}

func (p *dnsProbe) exchange(ctx context.Context, c *net.UDPConn) result {
	q := append([]byte(nil), p.query...)
	id := uint16(rand.Uint32())
	binary.BigEndian.PutUint16(q, id)
	if _, err := c.Write(q); err != nil {
		return fail("send: %s", dnsErr(err))
	}
	buf := make([]byte, 2048)
	for {
		n, err := c.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return fail("%s", describe(ctx.Err()))
			}
			return fail("no reply: %s", dnsErr(err))
		}
		if n < 12 || binary.BigEndian.Uint16(buf) != id || buf[2]&0x80 == 0 {
			continue // a runt, another ID, a query
		}
		if rc := int(buf[3] & 0x0f); rc != 0 {
			name := dnsRcodes[rc]
			if name == "" {
				name = fmt.Sprintf("RCODE %d", rc)
			}
			return fail("reply %s", name)
		}
		return pass("")
	}
}

func dnsErr(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return "port unreachable (ICMP)"
	}
	return describe(err)
}
