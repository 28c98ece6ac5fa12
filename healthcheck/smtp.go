package healthcheck

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/lvsd/lvsd/conf"
)

// defaultHeloName is the HELO argument of an SMTP_CHECK without helo_name:
// keepalived's, so that mail servers see (and their logs filter) the same
// health check whichever daemon runs it.
const defaultHeloName = "smtpchecker.keepalived.org"

// maxSMTPReply bounds the lines of one SMTP reply lvsd reads.
const maxSMTPReply = 16 << 10

// smtpProbe is SMTP_CHECK: connect, read the greeting (220), send
// "HELO helo_name" (expect 250), send QUIT and read its reply (any code).
// Each step (the connection, each reply, each command) has connect_timeout.
type smtpProbe struct {
	conn *connector
	helo []byte // "HELO name\r\n"
}

func newSMTPProbe(c *conf.Checker, rs *conf.RealServer) *smtpProbe {
	name := c.HeloName
	if name == "" {
		name = defaultHeloName
	}
	return &smtpProbe{conn: newConnector(c, rs), helo: []byte("HELO " + name + "\r\n")}
}

func (p *smtpProbe) probe(ctx context.Context) result {
	c, done, err := p.conn.open(ctx)
	if err != nil {
		return fail("connect: %s", describe(err))
	}
	defer done()
	br := bufio.NewReaderSize(c, 512)
	step := func() { c.SetDeadline(time.Now().Add(p.conn.timeout)) }

	step()
	code, line, err := readSMTPReply(br)
	if err != nil {
		return fail("greeting: %s", smtpErr(err))
	}
	if code != 220 {
		return fail("bad greeting: %q", truncate(line, 60))
	}
	step()
	if _, err := c.Write(p.helo); err != nil {
		return fail("HELO: %s", describe(err))
	}
	code, line, err = readSMTPReply(br)
	if err != nil {
		return fail("HELO: %s", smtpErr(err))
	}
	if code != 250 {
		return fail("bad HELO reply: %q", truncate(line, 60))
	}
	step()
	if _, err := io.WriteString(c, "QUIT\r\n"); err != nil {
		return fail("QUIT: %s", describe(err))
	}
	// As keepalived: the QUIT must be answered, whatever the code.
	if _, _, err := readSMTPReply(br); err != nil {
		return fail("QUIT: %s", smtpErr(err))
	}
	return pass("")
}

// errSMTPSyntax is a reply line that does not start with a 3-digit code.
var errSMTPSyntax = errors.New("not an SMTP reply")

type smtpSyntaxError struct{ line string }

func (e smtpSyntaxError) Error() string { return fmt.Sprintf("not an SMTP reply: %q", e.line) }
func (e smtpSyntaxError) Unwrap() error { return errSMTPSyntax }

// readSMTPReply reads one reply, of one line or several ("250-a", "250-b",
// "250 c"): its code and last line (without CR LF). Lines of a multi-line
// reply must carry the same code (RFC 5321, 4.2.1).
func readSMTPReply(br *bufio.Reader) (code int, line string, err error) {
	budget := maxSMTPReply
	for {
		l, err := readLine(br, &budget)
		if err != nil {
			return 0, "", err
		}
		c, more, ok := smtpCode(l)
		if !ok || (code != 0 && c != code) {
			return 0, l, smtpSyntaxError{truncate(l, 60)}
		}
		code = c
		if !more {
			return code, l, nil
		}
	}
}

// readLine reads a line ending in LF, of at most *budget bytes (which it
// decrements), and returns it without its CR LF.
func readLine(br *bufio.Reader, budget *int) (string, error) {
	var buf []byte
	for {
		b, err := br.ReadSlice('\n')
		*budget -= len(b)
		if *budget < 0 {
			return "", fmt.Errorf("reply longer than %d bytes", maxSMTPReply)
		}
		buf = append(buf, b...)
		switch {
		case err == nil:
			return trimCRLF(string(buf)), nil
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && len(buf) > 0:
			return "", errors.New("connection closed within a line")
		default:
			return "", err
		}
	}
}

func trimCRLF(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}

// smtpCode parses "NNN", "NNN text" and "NNN-text" (more: a line follows).
func smtpCode(l string) (code int, more, ok bool) {
	if len(l) < 3 || (len(l) > 3 && l[3] != ' ' && l[3] != '-') {
		return 0, false, false
	}
	for i := 0; i < 3; i++ {
		if l[i] < '0' || l[i] > '9' {
			return 0, false, false
		}
	}
	code, _ = strconv.Atoi(l[:3])
	return code, len(l) > 3 && l[3] == '-', true
}

func smtpErr(err error) string {
	if errors.Is(err, io.EOF) {
		return "connection closed"
	}
	var se smtpSyntaxError
	if errors.As(err, &se) {
		return se.Error()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return describe(err)
}
