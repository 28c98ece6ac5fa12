package healthcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/lvsd/lvsd/conf"
)

// maxExpectReply bounds what EXPECT_CHECK reads while waiting for a match.
const maxExpectReply = 64 << 10

// expectProbe is lvsd's EXPECT_CHECK: connect, write send, read until expect
// (a substring) and expect_regex are both found in what was received.
type expectProbe struct {
	conn   *connector
	send   []byte
	expect []byte
	re     *regexp.Regexp
}

func newExpectProbe(c *conf.Checker, rs *conf.RealServer) (*expectProbe, error) {
	p := &expectProbe{conn: newConnector(c, rs), send: []byte(c.Send), expect: []byte(c.Expect)}
	if c.ExpectRegex != "" {
		re, err := regexp.Compile(c.ExpectRegex)
		if err != nil {
			return nil, fmt.Errorf("expect_regex: %v", err)
		}
		p.re = re
	}
	if len(p.expect) == 0 && p.re == nil {
		return nil, errors.New("EXPECT_CHECK needs expect or expect_regex")
	}
	return p, nil
}

func (p *expectProbe) matched(b []byte) bool {
	if len(p.expect) > 0 && !bytes.Contains(b, p.expect) {
		return false
	}
	return p.re == nil || p.re.Match(b)
}

func (p *expectProbe) probe(ctx context.Context) result {
	c, done, err := p.conn.open(ctx)
	if err != nil {
		return fail("connect: %s", describe(err))
	}
	defer done()
	// The exchange after the connection has connect_timeout too, in all.
	c.SetDeadline(time.Now().Add(p.conn.timeout))
	if len(p.send) > 0 {
		if _, err := c.Write(p.send); err != nil {
			return fail("send: %s", describe(err))
		}
	}
	buf := make([]byte, 0, 512)
	for len(buf) < maxExpectReply { // bounded: every read adds at least a byte or ends
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if n > 0 && p.matched(buf) {
			return pass("reply matched")
		}
		if err != nil {
			if err == io.EOF {
				return fail("reply did not match (%d bytes, connection closed): %q", len(buf), truncate(string(buf), 60))
			}
			if len(buf) == 0 {
				return fail("no reply: %s", describe(err))
			}
			return fail("reply did not match (%d bytes, %s): %q", len(buf), describe(err), truncate(string(buf), 60))
		}
	}
	return fail("reply did not match in %d bytes", maxExpectReply)
}
