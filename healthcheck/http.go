package healthcheck

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http/httputil"
	"net/netip"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lvsd/lvsd/conf"
)

const (
	// maxBody bounds what an HTTP check reads of a body.
	maxBody = 16 << 20
	// maxRegexBody bounds the part of a body a url regex is matched against.
	maxRegexBody = 4 << 20
	// urlBudget × connect_timeout bounds one url's whole exchange, however
	// slowly the server trickles its answer.
	urlBudget = 3
)

// httpProbe is HTTP_GET and SSL_GET: every url must pass, in order, each on a
// connection of its own (as keepalived).
type httpProbe struct {
	conn *connector
	tls  bool
	urls []*urlCheck
}

type urlCheck struct {
	path    string
	request []byte
	codes   []conf.CodeRange
	digest  []byte // nil: not checked
	re      *regexp.Regexp
	noMatch bool
	sni     string // "" : no SNI
}

func newHTTPProbe(c *conf.Checker, rs *conf.RealServer) (*httpProbe, error) {
	p := &httpProbe{conn: newConnector(c, rs), tls: c.Type == conf.CheckSSL}
	ip := connectIP(c, rs)
	for _, u := range c.URLs {
		uc := &urlCheck{path: u.Path, codes: u.StatusCodes, noMatch: u.RegexNoMatch}
		if len(uc.codes) == 0 {
			uc.codes = []conf.CodeRange{{Lo: 200, Hi: 299}}
		}
		if u.Digest != "" {
			d, err := hex.DecodeString(u.Digest)
			if err != nil || len(d) != md5.Size {
				return nil, fmt.Errorf("url %s: invalid digest %q", u.Path, u.Digest)
			}
			uc.digest = d
		}
		if u.Regex != "" {
			re, err := regexp.Compile(u.Regex)
			if err != nil {
				return nil, fmt.Errorf("url %s: regex: %v", u.Path, err)
			}
			uc.re = re
		}
		vhost := u.VirtualHost
		if vhost == "" {
			vhost = c.VirtualHost // conf already falls back to the real and virtual server's
		}
		if p.tls && c.EnableSNI && vhost != "" {
			uc.sni = vhost
		}
		uc.request = httpRequest(u.Path, c.HTTPProtocol, vhost, netip.AddrPortFrom(ip, uint16(c.ConnectPort)))
		p.urls = append(p.urls, uc)
	}
	if len(p.urls) == 0 {
		return nil, fmt.Errorf("%s without url", c.Type)
	}
	return p, nil
}

// httpRequest builds keepalived's request: HTTP/1.0 or 1.1, "Connection: close"
// for 1.0C and 1.1, Host the virtual host, else the address and port.
func httpRequest(path, proto, vhost string, target netip.AddrPort) []byte {
	version := "1.0"
	if proto == "1.1" {
		version = "1.1"
	}
	host := vhost
	if host == "" {
		host = target.String() // "[v6]:port" or "v4:port"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/%s\r\n", path, version)
	b.WriteString("User-Agent: KeepAliveClient\r\n")
	if proto == "1.0C" || proto == "1.1" {
		b.WriteString("Connection: close\r\n")
	}
	fmt.Fprintf(&b, "Host: %s\r\n\r\n", host)
	return b.Bytes()
}

func (p *httpProbe) probe(ctx context.Context) result {
	for _, u := range p.urls {
		if r := p.get(ctx, u); !r.ok {
			return r
		}
	}
	if len(p.urls) == 1 {
		return pass("GET " + p.urls[0].path + " succeeded")
	}
	return pass(fmt.Sprintf("all %d urls succeeded", len(p.urls)))
}

// timedConn gives every read and write its own deadline of connect_timeout, as
// keepalived does, within the url's overall deadline.
type timedConn struct {
	net.Conn
	timeout time.Duration
	end     time.Time
}

func (c *timedConn) deadline() time.Time {
	d := time.Now().Add(c.timeout)
	if d.After(c.end) {
		d = c.end
	}
	return d
}

func (c *timedConn) Read(b []byte) (int, error) {
	c.Conn.SetReadDeadline(c.deadline())
	return c.Conn.Read(b)
}

func (c *timedConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(c.deadline())
	return c.Conn.Write(b)
}

func (p *httpProbe) get(ctx context.Context, u *urlCheck) result {
	timeout := p.conn.timeout
	ctx, cancel := context.WithTimeout(ctx, urlBudget*timeout)
	defer cancel()
	end, _ := ctx.Deadline()
	// Closing the connection when ctx ends aborts a blocked read at shutdown.
	raw, done, err := p.conn.open(ctx)
	if err != nil {
		return fail("url %s: connect: %s", u.path, describe(err))
	}
	defer done()
	var conn net.Conn = &timedConn{Conn: raw, timeout: timeout, end: end}
	if p.tls {
		// Health checks verify nothing of the certificate, as keepalived.
		tc := tls.Client(conn, &tls.Config{
			InsecureSkipVerify: true, //nolint:gosec // a health check, not a client of the data
			ServerName:         u.sni,
			MinVersion:         tls.VersionTLS10,
			CipherSuites:       allCipherSuites,
		})
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail("url %s: TLS handshake: %s", u.path, describe(err))
		}
		conn = tc
	}
	if _, err := conn.Write(u.request); err != nil {
		return fail("url %s: send request: %s", u.path, describe(err))
	}
	return u.check(bufio.NewReader(conn))
}

// allCipherSuites accepts whatever a real server offers, old ones included:
// the check verifies nothing, so there is nothing to protect.
var allCipherSuites = func() []uint16 {
	var ids []uint16
	for _, s := range tls.CipherSuites() {
		ids = append(ids, s.ID)
	}
	for _, s := range tls.InsecureCipherSuites() {
		ids = append(ids, s.ID)
	}
	return ids
}()

// check reads and judges one response.
func (u *urlCheck) check(br *bufio.Reader) result {
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		if err == io.EOF {
			return fail("url %s: no data received", u.path)
		}
		return fail("url %s: read: %s", u.path, describe(err))
	}
	code, ok := statusCode(line)
	if !ok {
		return fail("url %s: malformed HTTP status line %q", u.path, truncate(line, 40))
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		return fail("url %s: malformed HTTP header: %s", u.path, describe(err))
	}
	if !codeIn(code, u.codes) {
		return fail("url %s: HTTP status %d", u.path, code)
	}
	if u.digest == nil && u.re == nil {
		return pass("")
	}
	var body io.Reader = br
	if strings.EqualFold(hdr.Get("Transfer-Encoding"), "chunked") {
		body = httputil.NewChunkedReader(br)
	} else if cl := hdr.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(strings.TrimSpace(cl), 10, 64); err == nil && n >= 0 {
			body = io.LimitReader(br, n)
		}
	}
	var h hash.Hash
	var w []io.Writer
	if u.digest != nil {
		h = md5.New()
		w = append(w, h)
	}
	var keep *capped
	if u.re != nil {
		keep = &capped{max: maxRegexBody}
		w = append(w, keep)
	}
	if _, err := io.Copy(io.MultiWriter(w...), io.LimitReader(body, maxBody)); err != nil {
		return fail("url %s: read body: %s", u.path, describe(err))
	}
	if h != nil {
		if sum := h.Sum(nil); !bytes.Equal(sum, u.digest) {
			return fail("url %s: MD5 digest %x, want %x", u.path, sum, u.digest)
		}
	}
	if u.re != nil {
		if u.re.Match(keep.b) == u.noMatch {
			if u.noMatch {
				return fail("url %s: body matches regex %q", u.path, u.re.String())
			}
			return fail("url %s: body does not match regex %q", u.path, u.re.String())
		}
	}
	return pass("")
}

// statusCode parses "HTTP/x.y NNN ...".
func statusCode(line string) (int, bool) {
	if !strings.HasPrefix(line, "HTTP/") {
		return 0, false
	}
	_, rest, ok := strings.Cut(line, " ")
	if !ok {
		return 0, false
	}
	rest = strings.TrimLeft(rest, " ")
	if len(rest) < 3 {
		return 0, false
	}
	code, err := strconv.Atoi(rest[:3])
	if err != nil || code < 100 || code > 599 || (len(rest) > 3 && rest[3] != ' ') {
		return 0, false
	}
	return code, true
}

func codeIn(code int, ranges []conf.CodeRange) bool {
	for _, r := range ranges {
		if code >= r.Lo && code <= r.Hi {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// capped keeps the first max bytes written to it.
type capped struct {
	b   []byte
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - len(c.b); room > 0 {
		if len(p) > room {
			c.b = append(c.b, p[:room]...)
		} else {
			c.b = append(c.b, p...)
		}
	}
	return len(p), nil
}
