package conf

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// checkerKind is what conf knows of one type of checker (the keyword of its
// block): its keywords, its defaults and what it needs to run. Adding a
// checker to conf is one entry of checkerKinds.
type checkerKind struct {
	name string // the keyword of the block, and Checker.Type
	// notYet: the block is parsed past with a notice; no checker is made.
	notYet bool
	// script: the checker runs a program (MISC_CHECK) rather than connect:
	// no connection options, and of the timers only delay_loop, warmup,
	// retry and delay_before_retry.
	script bool
	// needsPort: a checker left without a port to connect to is removed.
	needsPort bool
	// port is the port to use when neither the checker nor its real
	// server has one (a fwmark service).
	port int
	// retry and delayBeforeRetry are the type's timer defaults
	// (delayBeforeRetry -1: the delay_loop).
	retry            int
	delayBeforeRetry time.Duration
	// keywords are the type's own, besides the timers, the connection
	// options and checkerKeywords.
	keywords keywords[checkerParse]
	// block is the table of all the keywords of the block (see initCheckerBlocks).
	block table[checkerParse]
	// preset sets defaults before the block is parsed; complete fills in
	// what the block left unset.
	preset, complete func(c *Checker)
	// incomplete says why a checker cannot run ("" when it can); such a
	// checker is removed in validation.
	incomplete func(c *Checker) string
	// check validates what the keywords cannot check alone.
	check func(v *validator, c *Checker)
	// resolve fills in, in validation before incomplete, what the checker
	// takes from elsewhere in the configuration.
	resolve func(v *validator, c *Checker)
	// timers, when set, are the checker's timers whatever the file says:
	// the block takes none.
	timers *CheckTimers
}

// checkerKinds are the checkers conf parses. A slice rather than a map:
// looking through it (the most used first) is quicker than hashing the
// keyword, which a parse does for every checker block and again in
// validation for every checker.
var checkerKinds = []checkerKind{
	{name: CheckTCP, needsPort: true, retry: 1, delayBeforeRetry: time.Second},
	{name: CheckHTTP, needsPort: true, retry: 1, delayBeforeRetry: 3 * time.Second,
		keywords: httpKeywords, complete: httpDefaults, incomplete: needsURL},
	{name: CheckSSL, needsPort: true, retry: 1, delayBeforeRetry: 3 * time.Second,
		keywords: sslKeywords, complete: httpDefaults, incomplete: needsURL},
	{name: CheckMisc, script: true, retry: 0, delayBeforeRetry: time.Second,
		keywords: miscKeywords, incomplete: needsMiscPath},
	{name: CheckSMTP, needsPort: true, port: 25, retry: 1, delayBeforeRetry: time.Second,
		keywords: smtpKeywords},
	{name: CheckDNS, port: 53, retry: 3, delayBeforeRetry: -1,
		keywords: dnsKeywords, complete: dnsDefaults},
	{name: CheckUDP, needsPort: true, retry: 1, delayBeforeRetry: time.Second,
		keywords: udpKeywords, preset: udpDefaults, check: (*validator).udpCheck},
	{name: CheckPing, retry: 1, delayBeforeRetry: time.Second},
	{name: CheckExpect, needsPort: true, retry: 1, delayBeforeRetry: time.Second,
		keywords: expectKeywords, incomplete: needsExpect},
	{name: CheckFile, keywords: fileKeywords, timers: &fileCheckTimers,
		resolve: (*validator).fileCheck, incomplete: needsTrackFile},
	{name: CheckBFD, notYet: true},
}

func init() { initCheckerBlocks() }

// initCheckerBlocks makes each checker kind's table: its own keywords, the
// timers, the connection options (unless it runs a program) and
// checkerKeywords; a kind's own section of keywordTable is named after it.
func initCheckerBlocks() {
	timers := embed(timerKeywords, func(_ *parser, c *checkerParse) *timerSet { return &c.timers })
	scriptTimers := embed(scriptTimerKeywords, func(_ *parser, c *checkerParse) *timerSet { return &c.timers })
	for i := range checkerKinds {
		k := &checkerKinds[i]
		if k.notYet {
			continue
		}
		sections := []string{"checker"}
		if _, ok := keywordTable[k.name]; ok {
			sections = append(sections, k.name)
		}
		switch {
		case k.timers != nil:
			k.block = block(sections[1:], k.keywords)
		case k.script:
			k.block = block(sections, k.keywords, scriptTimers, checkerKeywords)
		default:
			k.block = block(append(sections, "connection", "timers"), k.keywords, connKeywords, timers, checkerKeywords)
		}
	}
}

// checkerKindOf returns the kind of checker a block keyword names, or nil.
func checkerKindOf(keyword string) *checkerKind {
	for i := range checkerKinds {
		if checkerKinds[i].name == keyword {
			return &checkerKinds[i]
		}
	}
	return nil
}

// whyNot says why the checker c cannot run, "" when it can.
func (k *checkerKind) whyNot(c *Checker) string {
	if k.needsPort && c.ConnectPort == 0 {
		return "checker has no port to use (set connect_port)"
	}
	if k.incomplete != nil {
		return k.incomplete(c)
	}
	return ""
}

// checkerParse is a checker block being parsed.
type checkerParse struct {
	*Checker
	timers  timerSet
	portSet bool    // connect_port was given
	hosts   []*Node // SMTP_CHECK's host blocks
}

// checker parses a checker block. It returns several checkers for an
// SMTP_CHECK with host { } sub-blocks (one per host, as keepalived).
func (p *parser) checker(n *Node, kind *checkerKind, rs *RealServer, rsTimers timerSet) []*Checker {
	if !p.wantBlock(n) {
		return nil
	}
	c := &p.chk
	*c = checkerParse{Checker: &Checker{Type: kind.name, Pos: n.Pos, VirtualHost: rs.VirtualHost}}
	if kind.keywords != nil {
		c.CheckerOptions = &CheckerOptions{} // nil for the kinds without keywords of their own
	}
	if kind.preset != nil {
		kind.preset(c.Checker)
	}
	kind.block.each(p, n.Children, c, nil)
	if !c.portSet {
		c.ConnectPort = rs.Port
	}
	if c.ConnectPort == 0 {
		// No port from the checker or the real server (a fwmark service):
		// the protocol's own.
		c.ConnectPort = kind.port
	}
	if kind.complete != nil {
		kind.complete(c.Checker)
	}
	c.Timers = c.timers.over(rsTimers).resolve(kind)
	if kind.timers != nil {
		c.Timers = *kind.timers
	}
	if len(c.hosts) == 0 {
		return []*Checker{c.Checker}
	}
	var out []*Checker
	for _, h := range c.hosts {
		hc := *c.Checker
		hc.Pos = h.Pos
		host := &checkerParse{Checker: &hc}
		hostBlock.each(p, h.Children, host, nil)
		out = append(out, &hc)
	}
	return out
}

// checkerKeywords are the keywords of every checker.
var checkerKeywords = keywords[checkerParse]{
	"alpha":            set(boolPtrArg, func(c *checkerParse) **bool { return &c.Alpha }),
	"log_all_failures": set(boolArg, func(c *checkerParse) *bool { return &c.LogAllFailures }),
}

// connKeywords are the connection options of a checker (and of an
// SMTP_CHECK host).
var connKeywords = keywords[checkerParse]{
	"connect_ip": set(addrArg, func(c *checkerParse) *netip.Addr { return &c.ConnectIP }),
	"connect_port": func(p *parser, n *Node, c *checkerParse) {
		if v, ok := portArg(p, n); ok {
			c.ConnectPort, c.portSet = v, true
		}
	},
	"bindto":    set(addrArg, func(c *checkerParse) *netip.Addr { return &c.BindTo }),
	"bind_port": set(portArg, func(c *checkerParse) *int { return &c.BindPort }),
	"bind_if":   set(stringArg, func(c *checkerParse) *string { return &c.BindIf }),
	"fwmark": func(p *parser, n *Node, c *checkerParse) {
		if v, ok := p.int1(n, 0, 1<<32-1); ok {
			c.Fwmark = uint32(v)
		}
	},
}

// hostBlock is an SMTP_CHECK host block: connection options.
var hostBlock = block([]string{"connection"}, connKeywords)

// HTTP_GET and SSL_GET.

var httpKeywords = keywords[checkerParse]{
	"url": func(p *parser, n *Node, c *checkerParse) {
		if u, ok := p.url(n); ok {
			c.URLs = append(c.URLs, u)
		}
	},
	"virtualhost":   set(stringArg, func(c *checkerParse) *string { return &c.VirtualHost }),
	"http_protocol": set(choiceArg("invalid http_protocol '%s' (want 1.0, 1.0C or 1.1)", true, "1.0", "1.0C", "1.1"), func(c *checkerParse) *string { return &c.HTTPProtocol }),
	"fast_recovery": set(boolArg, func(c *checkerParse) *bool { return &c.FastRecovery }),
}

var sslKeywords = httpKeywords.with(keywords[checkerParse]{
	"enable_sni": set(boolArg, func(c *checkerParse) *bool { return &c.EnableSNI }),
})

func httpDefaults(c *Checker) {
	if c.HTTPProtocol == "" {
		c.HTTPProtocol = "1.0"
	}
}

func needsURL(c *Checker) string {
	if len(c.URLs) == 0 {
		return c.Type + " without url"
	}
	return ""
}

// MISC_CHECK.

var miscKeywords = keywords[checkerParse]{
	"misc_path":    set(always((*parser).miscPath), func(c *checkerParse) **Script { return &c.MiscPath }),
	"misc_timeout": set(secondsArg(0.001, 1<<31), func(c *checkerParse) *time.Duration { return &c.MiscTimeout }),
	"misc_dynamic": set(boolArg, func(c *checkerParse) *bool { return &c.MiscDynamic }),
	"user": func(p *parser, n *Node, c *checkerParse) {
		// Checked, but kept only after misc_path.
		user, group := new(string), new(string)
		if c.MiscPath != nil {
			user, group = &c.MiscPath.User, &c.MiscPath.Group
		}
		p.userGroup(n, user, group)
	},
}

func needsMiscPath(c *Checker) string {
	if c.MiscPath == nil {
		return "MISC_CHECK without misc_path"
	}
	return ""
}

// SMTP_CHECK.

var smtpKeywords = keywords[checkerParse]{
	"helo_name": set(stringArg, func(c *checkerParse) *string { return &c.HeloName }),
	"host": func(p *parser, n *Node, c *checkerParse) {
		if p.wantBlock(n) {
			c.hosts = append(c.hosts, n)
		}
	},
}

// DNS_CHECK.

var dnsKeywords = keywords[checkerParse]{
	"type": set(choiceArg("unknown DNS type '%s'", true, "A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY"),
		func(c *checkerParse) *string { return &c.DNSType }),
	"name": set(dnsNameArg, func(c *checkerParse) *string { return &c.DNSName }),
}

func dnsDefaults(c *Checker) {
	if c.DNSType == "" {
		c.DNSType = "SOA"
	}
	if c.DNSName == "" {
		c.DNSName = "."
	}
}

func dnsNameArg(p *parser, n *Node) (string, bool) {
	v, ok := p.str(n)
	if !ok {
		return "", false
	}
	if err := checkDNSName(v); err != nil {
		p.errf(n, "DNS_CHECK name '%s' %v - ignoring", v, err)
		return "", false
	}
	return v, true
}

// checkDNSName rejects a DNS_CHECK name that cannot be sent as a query:
// an empty label (as keepalived), a label of more than 63 octets or a name
// of more than 253.
func checkDNSName(name string) error {
	if name == "." {
		return nil
	}
	if strings.HasPrefix(name, ".") || strings.Contains(name, "..") {
		return errors.New("has an empty label")
	}
	name = strings.TrimSuffix(name, ".")
	if len(name) > 253 {
		return errors.New("is longer than 253 octets")
	}
	for _, l := range strings.Split(name, ".") {
		if len(l) > 63 {
			return fmt.Errorf("has a label longer than 63 octets (%.20s...)", l)
		}
	}
	return nil
}

// UDP_CHECK.

var udpKeywords = keywords[checkerParse]{
	"payload": set((*parser).hexStr, func(c *checkerParse) *[]byte { return &c.Payload }),
	"require_reply": func(p *parser, n *Node, c *checkerParse) {
		if !p.noBlock(n) {
			return
		}
		c.RequireReply = true
		c.ReplyPattern = strings.Join(n.Words(), " ")
		if _, _, err := c.ReplyMatch(); err != nil {
			// As keepalived: a reply is still required, its content is not checked.
			p.errf(n, "invalid hex string '%s' (%v) - the reply's content is not checked", c.ReplyPattern, err)
			c.ReplyPattern = ""
		}
	},
	"min_reply_length": set(intArg(0, 65535), func(c *checkerParse) *int { return &c.MinReplyLength }),
	"max_reply_length": set(intArg(0, 65535), func(c *checkerParse) *int { return &c.MaxReplyLength }),
}

func udpDefaults(c *Checker) { c.MaxReplyLength = 255 }

// udpCheck checks a UDP_CHECK's reply lengths against its pattern.
func (v *validator) udpCheck(c *Checker) {
	if !c.RequireReply {
		return
	}
	if strings.TrimSpace(c.ReplyPattern) == "" {
		if c.MinReplyLength != 0 || c.MaxReplyLength != 255 {
			// As keepalived: the lengths are checked with the pattern.
			v.d.add(c.Pos, Notice, c.Type, "min_reply_length and max_reply_length apply only with a require_reply pattern (as in keepalived) - ignored")
		}
	} else if c.MinReplyLength > c.MaxReplyLength {
		v.warnf(c.Pos, c.Type, "min_reply_length %d > max_reply_length %d - the check will always fail", c.MinReplyLength, c.MaxReplyLength)
	}
}

// FILE_CHECK.

var fileKeywords = keywords[checkerParse]{
	"track_file": set(stringArg, func(c *checkerParse) *string { return &c.TrackFileName }),
	"weight": func(p *parser, n *Node, c *checkerParse) {
		if !p.noBlock(n) || !p.nargs(n, 1, 2) {
			return
		}
		w, err := strconv.Atoi(n.Args[0].Text)
		if err != nil || w < -65535 || w > 65535 {
			p.errf(n, "weight for track file must be in [-65535..65535] inclusive - ignoring")
			return
		}
		rev := false
		if len(n.Args) == 2 {
			switch n.Args[1].Text {
			case "reverse":
				rev = true
			case "noreverse":
			default:
				p.errf(n, "unknown track file weight option %s - ignoring", n.Args[1].Text)
				return
			}
		}
		c.FileWeight, c.FileReverse, c.fileWeightSet = w, rev, true
	},
}

// fileCheckTimers: lvsd reads a FILE_CHECK's file twice a second
// (keepalived on inotify events); a value that means down takes the real
// server down at once.
var fileCheckTimers = CheckTimers{DelayLoop: 500 * time.Millisecond, ConnectTimeout: time.Second, Retry: 0, DelayBeforeRetry: 500 * time.Millisecond, Warmup: 0}

// fileCheck resolves the track_file a FILE_CHECK names.
func (v *validator) fileCheck(c *Checker) {
	if c.TrackFileName == "" {
		return
	}
	for _, tf := range v.c.TrackFiles {
		if tf.Name == c.TrackFileName {
			c.FilePath = tf.Path
			if !c.fileWeightSet || c.FileWeight == 0 {
				c.FileWeight, c.FileReverse = tf.Weight, tf.Reverse
			}
			return
		}
	}
	v.errf(c.Pos, c.Type, "track_file %s not found", c.TrackFileName)
}

func needsTrackFile(c *Checker) string {
	if c.FilePath == "" {
		return "FILE_CHECK has no track_file specified"
	}
	return ""
}

// EXPECT_CHECK (lvsd's own).

var expectKeywords = keywords[checkerParse]{
	"send":         set(stringArg, func(c *checkerParse) *string { return &c.Send }),
	"expect":       set(stringArg, func(c *checkerParse) *string { return &c.Expect }),
	"expect_regex": set(stringArg, func(c *checkerParse) *string { return &c.ExpectRegex }),
}

func needsExpect(c *Checker) string {
	if c.Expect == "" && c.ExpectRegex == "" {
		return "EXPECT_CHECK needs expect or expect_regex"
	}
	return ""
}

// miscPath parses misc_path: a quoted command line, or a program and its arguments.
func (p *parser) miscPath(n *Node) *Script {
	if !p.noBlock(n) || !p.nargs(n, 1, -1) {
		return nil
	}
	s := &Script{Pos: n.Pos}
	for _, a := range n.Args {
		if a.Quoted {
			s.Args = append(s.Args, splitCommand(a.Text)...)
		} else {
			s.Args = append(s.Args, a.Text)
		}
	}
	if len(s.Args) == 0 {
		p.errf(n, "empty command")
		return nil
	}
	return s
}

func (p *parser) url(n *Node) (URL, bool) {
	if !p.wantBlock(n) {
		return URL{}, false
	}
	u := URL{Pos: n.Pos}
	urlBlock.each(p, n.Children, &u, nil)
	if u.Path == "" {
		p.d.add(n.Pos, Error, "url", "url without path - ignoring")
		return u, false
	}
	return u, true
}

// urlKeywords are the keywords of a url block.
var urlKeywords = keywords[URL]{
	"path":           set(stringArg, func(u *URL) *string { return &u.Path }),
	"digest":         set(digestArg, func(u *URL) *string { return &u.Digest }),
	"status_code":    func(p *parser, n *Node, u *URL) { u.StatusCodes = append(u.StatusCodes, p.statusCodes(n)...) },
	"virtualhost":    set(stringArg, func(u *URL) *string { return &u.VirtualHost }),
	"regex":          set(stringArg, func(u *URL) *string { return &u.Regex }),
	"regex_no_match": set(boolArg, func(u *URL) *bool { return &u.RegexNoMatch }),
}

var urlBlock = block([]string{"url"}, urlKeywords)

// digestArg parses an MD5 digest, kept in lower case.
func digestArg(p *parser, n *Node) (string, bool) {
	v, ok := p.str(n)
	if !ok {
		return "", false
	}
	if b, err := hex.DecodeString(v); err != nil || len(b) != 16 {
		p.errf(n, "invalid MD5 digest '%s' (want 32 hex digits)", v)
		return "", false
	}
	return strings.ToLower(v), true
}

// statusCodes parses status_code: codes and ranges of codes.
func (p *parser) statusCodes(n *Node) []CodeRange {
	if !p.noBlock(n) || !p.nargs(n, 1, -1) {
		return nil
	}
	var out []CodeRange
	for _, w := range n.Words() {
		lo, hi := w, w
		if i := strings.IndexByte(w, '-'); i > 0 {
			lo, hi = w[:i], w[i+1:]
		}
		l, err1 := strconv.Atoi(lo)
		h, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || l < 100 || h > 599 || l > h {
			p.errf(n, "invalid status code '%s' (100-599 or a range)", w)
			continue
		}
		out = append(out, CodeRange{l, h})
	}
	return out
}

// hexStr parses keepalived's free-format hex string ("Ab12f 3 456").
func (p *parser) hexStr(n *Node) ([]byte, bool) {
	if !p.noBlock(n) || !p.nargs(n, 1, -1) {
		return nil, false
	}
	str := strings.Join(n.Words(), " ")
	b, _, err := readHexStr(str, false)
	if err != nil {
		p.errf(n, "invalid hex string '%s' (%v)", str, err)
		return nil, false
	}
	return b, true
}
