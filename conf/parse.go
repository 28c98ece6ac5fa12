package conf

import (
	"fmt"
	"math"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// Options control loading.
type Options struct {
	// ConfigID selects @ID conditional lines; empty means the short host name.
	ConfigID string
	// InterfaceExists, when set, is asked about every interface the file names;
	// a missing one is fatal (keepalived cannot run it) unless dynamic_interfaces.
	InterfaceExists func(name string) bool
}

// DefaultConfigID is keepalived's default config id: the host name up to the first dot.
func DefaultConfigID() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	if i := strings.IndexByte(h, '.'); i >= 0 {
		h = h[:i]
	}
	return h
}

// withDefaults fills the config id with the short host name, as keepalived.
func (o Options) withDefaults() Options {
	if o.ConfigID == "" {
		o.ConfigID = DefaultConfigID()
	}
	return o
}

// Load reads, parses and validates a configuration file. It never fails
// outright: problems are diagnostics, and a Fatal one means the result must not
// be run. The Config is always non-nil.
func Load(path string, opt Options) (*Config, []Diag) {
	return run(opt, maxExpanded, func(lx *lexer) { lx.readFile(path, Pos{}, true, Fatal) })
}

// Parse is Load on text in memory (name is used in positions and for relative includes).
func Parse(name string, text string, opt Options) (*Config, []Diag) {
	return parseText(name, text, opt, maxExpanded)
}

// parseText is Parse with an expansion budget and, when noFiles, no file
// system (fuzzing: an include then finds nothing).
func parseText(name string, text string, opt Options, maxExp int, noFiles ...bool) (*Config, []Diag) {
	return run(opt, maxExp, func(lx *lexer) {
		if len(noFiles) > 0 && noFiles[0] {
			lx.fsRead, lx.glob = noFile, noGlob
		}
		lx.files = []string{name}
		lx.lexText(text, name)
	})
}

// run is the pipeline: lex (what read feeds the lexer), the tree with the
// virtual servers built as their blocks close, the rest built, validation.
func run(opt Options, maxExp int, read func(*lexer)) (*Config, []Diag) {
	opt = opt.withDefaults()
	d := &diagList{}
	tb := newTreeBuilder(d)
	pre := newEarly()
	tb.closed = pre.closed
	lx := newLexer(opt.ConfigID, d, tb.line)
	lx.inGlobalDefs = tb.inGlobalDefs
	lx.maxExp = maxExp
	read(lx)
	root := tb.finish()
	cfg := build(root, d, pre)
	cfg.Files = lx.files
	validate(cfg, d, opt)
	return cfg, d.list
}

func noFile(string) ([]byte, error)   { return nil, os.ErrNotExist }
func noGlob(string) ([]string, error) { return nil, nil }

// MaxLevel returns the most serious level among diags (Notice when empty).
func MaxLevel(diags []Diag) Level {
	m := Notice
	for _, d := range diags {
		if d.Level > m {
			m = d.Level
		}
	}
	return m
}

type parser struct {
	d   *diagList
	cfg *Config

	// The state of the virtual server, real server and checker being
	// parsed. It lives here, in memory the parse has anyway, rather than in
	// each block: a table's setter takes the block's state by pointer, which
	// would move it to the heap, once for each of tens of thousands of
	// blocks. A block of these kinds never holds another of its own kind.
	vsTimers, rsTimers timerSet
	chk                checkerParse
	// nextRulePrio4, 6 count the rules given no priority (keepalived's
	// numbering, shared by static_rules and virtual_rules).
	nextRulePrio4, nextRulePrio6 uint32
}

func (p *parser) errf(n *Node, format string, a ...any) {
	p.d.add(n.Pos, Error, n.Key, fmt.Sprintf(format, a...))
}

func (p *parser) warnf(n *Node, format string, a ...any) {
	p.d.add(n.Pos, Warning, n.Key, fmt.Sprintf(format, a...))
}

func (p *parser) unknown(n *Node) {
	p.d.add(n.Pos, Warning, "", fmt.Sprintf("unknown keyword '%s'", n.Key))
}

// notice reports n as parsed, not acted on, for reason.
func (p *parser) notice(n *Node, reason string) {
	p.d.add(n.Pos, Notice, n.Key, "parsed, "+reason)
}

// missingParameter reports a keyword given without the parameter keepalived
// requires: keepalived 2.2.7 refuses to run such a file.
func (p *parser) missingParameter(n *Node) {
	p.d.list = append(p.d.list, Diag{Pos: n.Pos, Level: Fatal, Keyword: n.Key, MissingParameter: true,
		Msg: "missing a parameter after keyword " + n.Key + " (keepalived refuses to run such a file)"})
}

func (p *parser) noBlock(n *Node) bool {
	if n.HasBlock {
		p.errf(n, "does not take a block")
		return false
	}
	return true
}

func (p *parser) wantBlock(n *Node) bool {
	if !n.HasBlock {
		p.errf(n, "needs a { block }")
		return false
	}
	return true
}

// blockLines calls line for each line of n's block; an error when n has
// no block.
func (p *parser) blockLines(n *Node, line func(l *Node)) {
	if p.wantBlock(n) {
		for _, l := range n.Children {
			line(l)
		}
	}
}

// nargs checks the argument count (max < 0: no maximum).
func (p *parser) nargs(n *Node, min, max int) bool {
	if len(n.Args) < min {
		if min == 1 {
			p.errf(n, "missing value")
		} else {
			p.errf(n, "needs %d arguments, got %d", min, len(n.Args))
		}
		return false
	}
	if max >= 0 && len(n.Args) > max {
		p.warnf(n, "extra arguments ignored: %s", strings.Join(n.Words()[max:], " "))
	}
	return true
}

func (p *parser) str(n *Node) (string, bool) {
	if !p.noBlock(n) || !p.nargs(n, 1, 1) {
		return "", false
	}
	// A copy: a string of the file's text would keep the whole text alive.
	return strings.Clone(n.Args[0].Text), true
}

// intIn parses argument i as an integer within [lo, hi].
func (p *parser) intIn(n *Node, i int, lo, hi int64) (int64, bool) {
	if len(n.Args) <= i {
		p.errf(n, "missing value")
		return 0, false
	}
	v, err := strconv.ParseInt(n.Args[i].Text, 10, 64)
	if err != nil {
		p.errf(n, "invalid number '%s'", n.Args[i].Text)
		return 0, false
	}
	if v < lo || v > hi {
		p.errf(n, "%d outside range [%d, %d]", v, lo, hi)
		return 0, false
	}
	return v, true
}

func (p *parser) int1(n *Node, lo, hi int64) (int, bool) {
	if !p.noBlock(n) || !p.nargs(n, 1, 1) {
		return 0, false
	}
	v, ok := p.intIn(n, 0, lo, hi)
	return int(v), ok
}

// seconds parses a (possibly fractional) number of seconds within [lo, hi].
func (p *parser) seconds(n *Node, i int, lo, hi float64) (time.Duration, bool) {
	if len(n.Args) <= i {
		p.errf(n, "missing value")
		return 0, false
	}
	v, err := strconv.ParseFloat(n.Args[i].Text, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		p.errf(n, "invalid time '%s'", n.Args[i].Text)
		return 0, false
	}
	if v < lo || v > hi {
		p.errf(n, "%s outside range [%g, %g] seconds", n.Args[i].Text, lo, hi)
		return 0, false
	}
	return time.Duration(math.Round(v*1e6)) * time.Microsecond, true
}

func (p *parser) dur(n *Node, lo, hi float64) (time.Duration, bool) {
	if !p.noBlock(n) || !p.nargs(n, 1, 1) {
		return 0, false
	}
	return p.seconds(n, 0, lo, hi)
}

// boolOpt parses an optional on/off argument: none means true.
func (p *parser) boolOpt(n *Node) bool {
	if !p.noBlock(n) {
		return false
	}
	if len(n.Args) == 0 {
		return true
	}
	p.nargs(n, 0, 1)
	switch strings.ToLower(n.Args[0].Text) {
	case "on", "true", "yes", "1":
		return true
	case "off", "false", "no", "0":
		return false
	}
	p.errf(n, "invalid boolean '%s' (want on|off|true|false|yes|no)", n.Args[0].Text)
	return false
}

func (p *parser) boolPtr(n *Node) *bool {
	b := p.boolOpt(n)
	return &b
}

// addr parses an IP address argument.
func (p *parser) addr(n *Node, s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		p.errf(n, "invalid IP address '%s'", s)
		return netip.Addr{}, false
	}
	return a, true
}

func (p *parser) addr1(n *Node) (netip.Addr, bool) {
	s, ok := p.str(n)
	if !ok {
		return netip.Addr{}, false
	}
	return p.addr(n, s)
}

func (p *parser) port(n *Node, s string) (int, bool) {
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 || v > 65535 {
		p.errf(n, "invalid port '%s'", s)
		return 0, false
	}
	return v, true
}

// options walks the option words of a statement ("KEYWORD [VALUE] ...")
// after its first skip arguments.
func (p *parser) options(n *Node, skip int) *options {
	return &options{p: p, n: n, w: n.Words(), i: skip - 1}
}

type options struct {
	p *parser
	n *Node
	w []string
	i int // the word at hand
}

// next moves to the next option keyword.
func (o *options) next() (string, bool) {
	o.i++
	if o.i >= len(o.w) {
		return "", false
	}
	return o.w[o.i], true
}

// value takes the value of the option keyword at hand.
func (o *options) value() (string, bool) {
	if o.i+1 >= len(o.w) {
		o.p.errf(o.n, "'%s' needs a value", o.w[o.i])
		return "", false
	}
	o.i++
	return o.w[o.i], true
}

// setInt sets *dst to the value of the option at hand, an integer in
// [lo, hi] (what names it in the error).
func (o *options) setInt(what string, lo, hi int, dst *int) {
	v, ok := o.value()
	if !ok {
		return
	}
	x, err := strconv.Atoi(v)
	if err != nil || x < lo || x > hi {
		o.p.errf(o.n, "invalid %s '%s' (%d-%d)", what, v, lo, hi)
		return
	}
	*dst = x
}

// userGroup parses "USER [GROUP]" into user and, when given, group.
func (p *parser) userGroup(n *Node, user, group *string) bool {
	if !p.noBlock(n) || !p.nargs(n, 1, 2) {
		return false
	}
	*user = n.Args[0].Text
	if len(n.Args) > 1 {
		*group = n.Args[1].Text
	}
	return true
}

// script parses "<STRING>|<QUOTED-STRING> [username [groupname]]". A quoted
// command is split into words (quotes inside it group words).
func (p *parser) script(n *Node) *Script {
	if !p.noBlock(n) || !p.nargs(n, 1, 3) {
		return nil
	}
	s := &Script{Pos: n.Pos}
	if n.Args[0].Quoted {
		s.Args = splitCommand(n.Args[0].Text)
	} else {
		s.Args = []string{n.Args[0].Text}
	}
	if len(s.Args) == 0 {
		p.errf(n, "empty command")
		return nil
	}
	if len(n.Args) > 1 {
		s.User = n.Args[1].Text
	}
	if len(n.Args) > 2 {
		s.Group = n.Args[2].Text
	}
	return s
}

// splitCommand splits a command line at white space; '…' and "…" group words.
func splitCommand(s string) []string {
	var out []string
	var cur strings.Builder
	in := false
	var q byte
	has := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			q = c
			has = true
		case c == ' ' || c == '\t' || c == '\n':
			if in || has {
				out = append(out, cur.String())
				cur.Reset()
			}
			in, has = false, false
			continue
		default:
			cur.WriteByte(c)
		}
		in = true
	}
	if in || has {
		out = append(out, cur.String())
	}
	return out
}

// early builds each virtual_server block as soon as the lexer has closed
// it, and the tree keeps a stub in its place: the block's nodes and
// tokens (about 100 bytes a statement, five times the file) are garbage at
// once instead of living until the whole file is read (issue 17: half of
// lvsd -t's peak memory on a 660,000-line file). A virtual_server depends
// on nothing else of the file (not on global_defs, which build reads
// first wherever it stands); build puts each one and its diagnostics back
// at the block's place, so the result and the order of the diagnostics are
// those of building the whole tree at the end.
type early struct {
	p     *parser
	d     diagList // the early blocks' diagnostics, in order
	built map[*Node]earlyBlock
}

type earlyBlock struct {
	vs       *VirtualServer // nil: rejected
	from, to int            // its diagnostics in early.d
}

func newEarly() *early {
	e := &early{built: map[*Node]earlyBlock{}}
	e.p = &parser{d: &e.d, cfg: &Config{}}
	return e
}

// closed is treeBuilder.closed.
func (e *early) closed(n *Node) *Node {
	if n.Key != "virtual_server" {
		return n
	}
	b := earlyBlock{from: len(e.d.list)}
	if topBlock.parse(e.p, n, e.p.cfg) != nil {
		b.vs = e.p.virtualServer(n)
	}
	b.to = len(e.d.list)
	stub := &Node{Key: n.Key, Pos: n.Pos, HasBlock: true}
	e.built[stub] = b
	return stub
}

func (e *early) block(n *Node) (earlyBlock, bool) {
	if e == nil {
		return earlyBlock{}, false
	}
	b, ok := e.built[n]
	return b, ok
}

// build turns the tree into a Config with keepalived's defaults; pre holds
// the blocks built early (nil: none).
func build(root *Node, d *diagList, pre *early) *Config {
	p := &parser{d: d, cfg: &Config{}}
	c := p.cfg
	setGlobalDefaults(&c.Global)
	// global_defs first, wherever it stands: instances take their defaults from it.
	for _, n := range root.Children {
		if n.Key == "global_defs" {
			if p.wantBlock(n) {
				p.global(n)
			}
		}
	}
	// Resolved here, not in global(): without global_defs they still default to the master's.
	if g := &c.Global; g.VRRPGarpLowerPrioDelay < 0 {
		g.VRRPGarpLowerPrioDelay = g.VRRPGarpMasterDelay
	}
	if g := &c.Global; g.VRRPGarpLowerPrioRepeat < 0 {
		g.VRRPGarpLowerPrioRepeat = g.VRRPGarpMasterRepeat
	}
	for _, n := range root.Children {
		if b, ok := pre.block(n); ok {
			d.list = append(d.list, pre.d.list[b.from:b.to]...)
			c.VirtualServers = appendNonNil(c.VirtualServers, b.vs)
			continue
		}
		info := topBlock.parse(p, n, c)
		if info == nil {
			continue
		}
		switch n.Key {
		case "global_defs":
		case "vrrp_script":
			c.Scripts = appendNonNil(c.Scripts, p.vrrpScript(n))
		case "track_file", "vrrp_track_file":
			c.TrackFiles = appendNonNil(c.TrackFiles, p.trackFile(n))
		case "vrrp_track_process":
			c.TrackProcesses = appendNonNil(c.TrackProcesses, p.trackProcess(n))
		case "vrrp_sync_group":
			c.SyncGroups = appendNonNil(c.SyncGroups, p.syncGroup(n))
		case "vrrp_instance":
			c.Instances = appendNonNil(c.Instances, p.instance(n))
		case "virtual_server_group":
			c.VSGroups = appendNonNil(c.VSGroups, p.vsGroup(n))
		case "virtual_server":
			c.VirtualServers = appendNonNil(c.VirtualServers, p.virtualServer(n))
		case "net_namespace", "instance":
			globalKeywords[n.Key](p, n, &c.Global)
		case "static_ipaddress":
			c.StaticAddresses = append(c.StaticAddresses, p.vips(n, nil)...)
		case "real_server_vips":
			c.RealServerVIPs = append(c.RealServerVIPs, p.realServerVIPs(n)...)
		case "bgp":
			p.bgp(n)
		case "static_routes":
			c.StaticRoutes = append(c.StaticRoutes, p.routes(n)...)
		case "static_rules":
			c.StaticRules = append(c.StaticRules, p.rules(n, n.Key)...)
		default:
			p.unhandled(n, info)
		}
	}
	return c
}

// realServerVIPs parses a real_server_vips block: a line "ADDR [KIND]"
// per VIP, KIND dr (the default), tun or ipip, or gre. A bad line is an
// error naming it and is left out.
func (p *parser) realServerVIPs(n *Node) []RealServerVIP {
	if !p.wantBlock(n) {
		return nil
	}
	var out []RealServerVIP
	for _, l := range n.Children {
		a, err := netip.ParseAddr(l.Key)
		if err != nil || l.HasBlock || len(l.Args) > 1 {
			p.errf(l, "real_server_vips: want a line \"ADDRESS [dr|tun|ipip|gre]\"")
			continue
		}
		v := RealServerVIP{Addr: a.Unmap(), Kind: "dr", Pos: l.Pos}
		if len(l.Args) == 1 {
			switch k := strings.ToLower(l.Args[0].Text); k {
			case "dr", "ipip", "gre":
				v.Kind = k
			case "tun":
				v.Kind = "ipip"
			default:
				p.errf(l, "real_server_vips: unknown kind %q (dr, tun, ipip or gre)", l.Args[0].Text)
				continue
			}
		}
		out = append(out, v)
	}
	return out
}

// topBlock is the top level of a file: its keywords are all acted on (or
// noticed) by build's switch.
var topBlock = block[Config]([]string{"top"})

// appendNonNil appends x to list unless it is nil (a block in error).
func appendNonNil[T any](list []*T, x *T) []*T {
	if x == nil {
		return list
	}
	return append(list, x)
}

func setGlobalDefaults(g *Global) {
	host, _ := os.Hostname()
	g.RouterID = host
	g.NotificationEmailFrom = "keepalived@" + host
	g.SMTPPort = 25
	g.SMTPHeloName = host
	g.SMTPConnectTimeout = 30 * time.Second
	g.VRRPVersion = 2
	g.VRRPMcastGroup4 = netip.MustParseAddr("224.0.0.18")
	g.VRRPGarpMasterDelay = 5 * time.Second
	g.VRRPGarpMasterRepeat = 5
	g.VRRPGarpLowerPrioDelay = -1 // resolved to the master delay after parsing
	g.VRRPGarpLowerPrioRepeat = -1
	g.VRRPGarpMasterRefreshRepeat = 1
	g.MaxAutoPriority = -1
	g.NFTablesTable = "keepalived"
	g.NFTablesPriority = -1
	g.Umask = -1
	g.VRRPNetlinkMonitorRcvBufs = NetlinkRcvBufsDefault
	g.VRRPNetlinkCmdRcvBufs = NetlinkRcvBufsDefault
	g.LVSNetlinkMonitorRcvBufs = NetlinkRcvBufsDefault
}

// NetlinkRcvBufsDefault is keepalived's netlink receive buffer (its
// IF_DEFAULT_BUFSIZE), the default of the *_netlink_*_rcv_bufs keywords.
const NetlinkRcvBufsDefault = 64 << 10

func (p *parser) global(n *Node) {
	g := &p.cfg.Global
	g.Pos = n.Pos
	globalBlock.each(p, n.Children, g, func(ch *Node) bool {
		switch ch.Key {
		case "notification_email":
			p.blockLines(ch, func(e *Node) {
				g.NotificationEmail = append(g.NotificationEmail, e.Key)
				g.NotificationEmail = append(g.NotificationEmail, e.Words()...)
			})
		case "smtp_server":
			if p.noBlock(ch) && p.nargs(ch, 1, 2) {
				g.SMTPServer = ch.Args[0].Text
				if len(ch.Args) > 1 {
					if v, ok := p.port(ch, ch.Args[1].Text); ok {
						g.SMTPPort = v
					}
				}
			}
		case "include_check":
			// Read by the lexer, where it governs the includes that follow.
		case "script_user":
			p.userGroup(ch, &g.ScriptUser, &g.ScriptGroup)
		case "notify_fifo", "vrrp_notify_fifo", "lvs_notify_fifo":
			f := g.fifo(ch.Key)
			if p.noBlock(ch) && p.nargs(ch, 1, 3) {
				f.Path, f.Pos = ch.Args[0].Text, ch.Pos
				f.User, f.Group = "", ""
				if len(ch.Args) > 1 {
					f.User = ch.Args[1].Text
				}
				if len(ch.Args) > 2 {
					f.Group = ch.Args[2].Text
				}
			}
		case "umask":
			if v, ok := umaskValue(ch); ok {
				g.Umask = v
			} else {
				p.errf(ch, "invalid umask '%s' (want a number or IRUSR|IWGRP|... bits)", ch.Args[0].Text)
			}
		case "notify_fifo_script", "vrrp_notify_fifo_script", "lvs_notify_fifo_script":
			if s := p.script(ch); s != nil {
				g.fifo(strings.TrimSuffix(ch.Key, "_script")).Script = s
			}
		case "vrrp_mcast_group4":
			if a, ok := p.addr1(ch); ok {
				if !a.Is4() || !a.IsMulticast() {
					p.errf(ch, "'%s' is not an IPv4 multicast address", a)
				} else {
					g.VRRPMcastGroup4 = a
				}
			}
		case "lvs_sync_daemon":
			p.lvsSyncDaemon(ch)
		case "lvs_timeouts":
			p.lvsTimeouts(ch)
		case "lvs_flush_onstop", "lvs_flush_on_stop":
			if p.noBlock(ch) && p.nargs(ch, 0, 1) {
				g.LVSFlushOnStop = "all"
				if len(ch.Args) == 1 {
					switch strings.ToUpper(ch.Args[0].Text) {
					case "VS":
						g.LVSFlushOnStop = "vs"
					case "NO", "OFF", "FALSE":
						g.LVSFlushOnStop = ""
					default:
						p.errf(ch, "invalid value '%s' (want VS or nothing)", ch.Args[0].Text)
					}
				}
			}
		case "max_auto_priority":
			if p.noBlock(ch) && p.nargs(ch, 0, 1) {
				g.MaxAutoPriority = 99
				if len(ch.Args) == 1 {
					if v, ok := p.intIn(ch, 0, -1, 99); ok {
						g.MaxAutoPriority = int(v)
					}
				}
			}
		case "vrrp_netlink_monitor_rcv_bufs", "vrrp_netlink_cmd_rcv_bufs", "lvs_netlink_monitor_rcv_bufs", "process_monitor_rcv_bufs":
			// As keepalived: 0 leaves the default.
			if v, ok := p.int1(ch, 0, 1<<31-1); ok && v > 0 {
				*map[string]*int{
					"vrrp_netlink_monitor_rcv_bufs": &g.VRRPNetlinkMonitorRcvBufs,
					"vrrp_netlink_cmd_rcv_bufs":     &g.VRRPNetlinkCmdRcvBufs,
					"lvs_netlink_monitor_rcv_bufs":  &g.LVSNetlinkMonitorRcvBufs,
					"process_monitor_rcv_bufs":      &g.ProcessMonitorRcvBufs,
				}[ch.Key] = v
			}
		case "nftables":
			if p.noBlock(ch) && p.nargs(ch, 0, 1) && len(ch.Args) == 1 {
				if t := ch.Args[0].Text; len(t) > 255 {
					p.errf(ch, "nftables table name too long - ignoring")
				} else {
					g.NFTablesTable = t
				}
			}
		case "vrrp_iptables":
			// keepalived 2.2.7 as Debian builds it (and lvsd) has no
			// iptables: its words, at error level as it logs them.
			p.errf(ch, "iptables not supported, using nftables instead. Please replace 'vrrp_iptables and 'vrrp_ipsets' with 'nftables' config option")
		case "dynamic_interfaces":
			if p.noBlock(ch) && p.nargs(ch, 0, 1) {
				g.DynamicInterfaces = true
				if len(ch.Args) == 1 && ch.Args[0].Text != "allow_if_changes" {
					p.errf(ch, "invalid value '%s' (want allow_if_changes or nothing)", ch.Args[0].Text)
				}
			}
		default:
			return false
		}
		return true
	})
}

// globalKeywords are the global_defs keywords that set one field.
var globalKeywords = keywords[Global]{
	"router_id": set(stringArg, func(g *Global) *string { return &g.RouterID }),
	"lvs_id":    set(stringArg, func(g *Global) *string { return &g.RouterID }), // keepalived 1.x name of router_id

	"notification_email_from":          set(stringArg, func(g *Global) *string { return &g.NotificationEmailFrom }),
	"smtp_helo_name":                   set(stringArg, func(g *Global) *string { return &g.SMTPHeloName }),
	"smtp_connect_timeout":             set(secondsArg(1, 3600), func(g *Global) *time.Duration { return &g.SMTPConnectTimeout }),
	"smtp_alert":                       set(boolPtrArg, func(g *Global) **bool { return &g.SMTPAlert }),
	"smtp_alert_vrrp":                  set(boolPtrArg, func(g *Global) **bool { return &g.SMTPAlertVRRP }),
	"smtp_alert_checker":               set(boolPtrArg, func(g *Global) **bool { return &g.SMTPAlertChecker }),
	"no_checker_emails":                set(boolArg, func(g *Global) *bool { return &g.NoCheckerEmails }),
	"enable_script_security":           set(boolArg, func(g *Global) *bool { return &g.EnableScriptSecurity }),
	"fifo_write_vrrp_states_on_reload": set(boolArg, func(g *Global) *bool { return &g.FIFOWriteVRRPStatesOnReload }),

	"vrrp_version":                    set(intArg(2, 3), func(g *Global) *int { return &g.VRRPVersion }),
	"vrrp_garp_master_delay":          set(secondsArg(0, 255), func(g *Global) *time.Duration { return &g.VRRPGarpMasterDelay }),
	"vrrp_garp_master_repeat":         set(intArg(1, 255), func(g *Global) *int { return &g.VRRPGarpMasterRepeat }),
	"vrrp_garp_lower_prio_delay":      set(secondsArg(0, 255), func(g *Global) *time.Duration { return &g.VRRPGarpLowerPrioDelay }),
	"vrrp_garp_lower_prio_repeat":     set(intArg(0, 255), func(g *Global) *int { return &g.VRRPGarpLowerPrioRepeat }),
	"vrrp_garp_master_refresh":        set(secondsArg(0, 1<<31), func(g *Global) *time.Duration { return &g.VRRPGarpMasterRefresh }),
	"vrrp_garp_master_refresh_repeat": set(intArg(1, 255), func(g *Global) *int { return &g.VRRPGarpMasterRefreshRepeat }),
	"vrrp_garp_interval":              set(secondsArg(0, 1), func(g *Global) *time.Duration { return &g.VRRPGarpInterval }),
	"vrrp_gna_interval":               set(secondsArg(0, 1), func(g *Global) *time.Duration { return &g.VRRPGnaInterval }),
	"vrrp_strict":                     set(boolArg, func(g *Global) *bool { return &g.VRRPStrict }),
	"vrrp_skip_check_adv_addr":        set(boolArg, func(g *Global) *bool { return &g.VRRPSkipCheckAdvAddr }),
	"vrrp_check_unicast_src":          set(boolArg, func(g *Global) *bool { return &g.VRRPCheckUnicastSrc }),
	"vrrp_lower_prio_no_advert":       set(boolArg, func(g *Global) *bool { return &g.VRRPLowerPrioNoAdvert }),
	"vrrp_higher_prio_send_advert":    set(boolArg, func(g *Global) *bool { return &g.VRRPHigherPrioSendAdvert }),
	"vrrp_startup_delay":              set(secondsArg(0, 3600), func(g *Global) *time.Duration { return &g.VRRPStartupDelay }),

	"vrrp_netlink_monitor_rcv_bufs_force": set(boolArg, func(g *Global) *bool { return &g.VRRPNetlinkMonitorRcvBufsForce }),
	"process_monitor_rcv_bufs_force":      set(boolArg, func(g *Global) *bool { return &g.ProcessMonitorRcvBufsForce }),
	"vrrp_netlink_cmd_rcv_bufs_force":     set(boolArg, func(g *Global) *bool { return &g.VRRPNetlinkCmdRcvBufsForce }),
	"lvs_netlink_monitor_rcv_bufs_force":  set(boolArg, func(g *Global) *bool { return &g.LVSNetlinkMonitorRcvBufsForce }),

	"lvs_flush": set(boolArg, func(g *Global) *bool { return &g.LVSFlush }),

	"nftables_priority": set(intArg(-1<<31, 1<<31-1), func(g *Global) *int { return &g.NFTablesPriority }),
	"nftables_counters": set(boolArg, func(g *Global) *bool { return &g.NFTablesCounters }),
	"nftables_ifindex":  set(boolArg, func(g *Global) *bool { return &g.NFTablesIfindex }),
	"rs_init_notifies":  set(boolArg, func(g *Global) *bool { return &g.RSInitNotifies }),

	// Also at the top level, as keepalived allows (build's switch).
	"net_namespace":     set(nameArg, func(g *Global) *string { return &g.NetNamespace }),
	"instance":          set(nameArg, func(g *Global) *string { return &g.Instance }),
	"data_use_instance": set(boolArg, func(g *Global) *bool { return &g.DataUseInstance }),
}

// nameArg is a net_namespace or instance name: one word that can be a
// file name (keepalived makes /run/netns/NAME and keepalived_NAME.pid of it).
func nameArg(p *parser, n *Node) (string, bool) {
	v, ok := p.str(n)
	if ok && (strings.Contains(v, "/") || v == "." || v == "..") {
		p.errf(n, "invalid name '%s' (it names a file: no '/')", v)
		return "", false
	}
	return v, ok
}

// umaskValue parses keepalived's "umask NUMBER|BITS": a number in C's
// base 0 (0x.., 0.., decimal), or I{R|W|X}{USR|GRP|OTH} names joined by
// '|' (the words may be split by blanks).
func umaskValue(n *Node) (int, bool) {
	text := strings.Join(n.Words(), "")
	if text == "" {
		return 0, false
	}
	if v, err := strconv.ParseInt(text, 0, 32); err == nil {
		return int(v) & 0o777, v >= 0 && v <= 0o777
	}
	bits := map[string]int{"IRUSR": 0o400, "IWUSR": 0o200, "IXUSR": 0o100, "IRGRP": 0o40, "IWGRP": 0o20, "IXGRP": 0o10, "IROTH": 0o4, "IWOTH": 0o2, "IXOTH": 0o1}
	v := 0
	for _, w := range strings.Split(text, "|") {
		b, ok := bits[w]
		if !ok {
			return 0, false
		}
		v |= b
	}
	return v, true
}

// fifo returns the FIFO keyword kw (notify_fifo, vrrp_notify_fifo or
// lvs_notify_fifo) sets.
func (g *Global) fifo(kw string) *NotifyFIFO {
	switch kw {
	case "vrrp_notify_fifo":
		return &g.VRRPNotifyFIFO
	case "lvs_notify_fifo":
		return &g.LVSNotifyFIFO
	}
	return &g.NotifyFIFO
}

var globalBlock = block([]string{"global_defs"}, globalKeywords)

func (p *parser) lvsSyncDaemon(n *Node) {
	if !p.noBlock(n) || !p.nargs(n, 1, -1) {
		return
	}
	// Without an instance (INTERFACE alone, or followed by its options),
	// the master and the backup daemon both run: active-active directors
	// behind ECMP, each sending its connections to the others.
	s := &LVSSyncDaemon{Interface: n.Args[0].Text, SyncID: -1, Port: 8848, Pos: n.Pos}
	first := 1
	if len(n.Args) > 1 && !syncDaemonOptions[n.Args[1].Text] {
		s.Instance, first = n.Args[1].Text, 2
	}
	o := p.options(n, first)
	for kw, ok := o.next(); ok; kw, ok = o.next() {
		switch kw {
		case "id":
			o.setInt("sync id", 0, 255, &s.SyncID)
		case "maxlen":
			o.setInt("maxlen", 1, 65507, &s.MaxLen)
		case "port":
			if v, ok := o.value(); ok {
				if x, ok := p.port(n, v); ok && x > 0 {
					s.Port = x
				}
			}
		case "ttl":
			o.setInt("ttl", 1, 255, &s.TTL)
		case "group":
			if v, ok := o.value(); ok {
				if a, ok := p.addr(n, v); ok {
					if !a.IsMulticast() {
						p.errf(n, "group '%s' is not a multicast address", v)
					} else {
						s.Group = a
					}
				}
			}
		default:
			p.errf(n, "unknown option '%s'", kw)
		}
	}
	p.cfg.Global.LVSSyncDaemon = s
}

// syncDaemonOptions are the options of lvs_sync_daemon after its
// interface and instance.
var syncDaemonOptions = map[string]bool{"id": true, "maxlen": true, "port": true, "ttl": true, "group": true}

func (p *parser) lvsTimeouts(n *Node) {
	if !p.noBlock(n) || !p.nargs(n, 2, -1) {
		return
	}
	t := &p.cfg.Global.LVSTimeouts
	t.Pos = n.Pos
	w := n.Words()
	for i := 0; i < len(w); i += 2 {
		if i+1 >= len(w) {
			p.errf(n, "'%s' needs a value", w[i])
			return
		}
		v, err := strconv.ParseUint(w[i+1], 10, 31)
		if err != nil || v == 0 {
			p.errf(n, "invalid timeout '%s'", w[i+1])
			continue
		}
		d := time.Duration(v) * time.Second
		switch w[i] {
		case "tcp":
			t.TCP = d
		case "tcpfin":
			t.TCPFin = d
		case "udp":
			t.UDP = d
		default:
			p.errf(n, "unknown timeout '%s' (want tcp, tcpfin or udp)", w[i])
		}
	}
}

func (p *parser) vrrpScript(n *Node) *VRRPScript {
	if !p.wantBlock(n) || !p.nargs(n, 1, 1) {
		return nil
	}
	s := &VRRPScript{Name: n.Args[0].Text, Interval: time.Second, Rise: 1, Fall: 1, Pos: n.Pos}
	timeoutSet := false
	vrrpScriptBlock.each(p, n.Children, s, func(ch *Node) bool {
		switch ch.Key {
		case "timeout":
			if v, ok := p.dur(ch, 0.001, 1<<31); ok {
				s.Timeout, timeoutSet = v, true
			}
		default:
			return false
		}
		return true
	})
	if !timeoutSet {
		s.Timeout = s.Interval
	}
	if len(s.Script.Args) == 0 {
		p.d.add(n.Pos, Error, "vrrp_script", fmt.Sprintf("no script set for vrrp_script %s - removing", s.Name))
		return nil
	}
	return s
}

// vrrpScriptKeywords are the vrrp_script keywords that set one field.
var vrrpScriptKeywords = keywords[VRRPScript]{
	"script": func(p *parser, n *Node, s *VRRPScript) {
		if sc := p.script(n); sc != nil {
			s.Script = *sc
		}
	},
	"user":      func(p *parser, n *Node, s *VRRPScript) { p.userGroup(n, &s.Script.User, &s.Script.Group) },
	"interval":  set(secondsArg(0.001, 1<<31), func(s *VRRPScript) *time.Duration { return &s.Interval }),
	"weight":    func(p *parser, n *Node, s *VRRPScript) { p.weightReverse(n, -254, 254, &s.Weight, &s.Reverse) },
	"rise":      set(intArg(1, 1<<31-1), func(s *VRRPScript) *int { return &s.Rise }),
	"fall":      set(intArg(1, 1<<31-1), func(s *VRRPScript) *int { return &s.Fall }),
	"init_fail": set(boolArg, func(s *VRRPScript) *bool { return &s.InitFail }),
}

var vrrpScriptBlock = block([]string{"vrrp_script"}, vrrpScriptKeywords)

// trackLine parses one line of a track_* block: "NAME [weight N [reverse|noreverse]]".
// weight is nil when not given.
func (p *parser) trackLine(ch *Node) (weight *int, reverse bool, ok bool) {
	w := ch.Words()
	if len(w) == 0 {
		return nil, false, true
	}
	if len(w) < 2 || w[0] != "weight" {
		p.errf(ch, "unexpected '%s' (want: NAME [weight N [reverse]])", w[0])
		return nil, false, false
	}
	v, err := strconv.Atoi(w[1])
	if err != nil || v < -254 || v > 254 {
		p.errf(ch, "invalid weight '%s' (-254..254)", w[1])
		return nil, false, false
	}
	if len(w) > 2 {
		if w[2] == "reverse" {
			reverse = true
		} else if w[2] != "noreverse" {
			p.errf(ch, "invalid option '%s'", w[2])
		}
	}
	return &v, reverse, true
}

// trackBlock parses the lines of a track_* block into what line makes of
// each (weight nil when not given).
func trackBlock[T any](p *parser, n *Node, line func(ch *Node, weight *int, reverse bool) T) []T {
	if !p.wantBlock(n) {
		return nil
	}
	var out []T
	for _, ch := range n.Children {
		if weight, reverse, ok := p.trackLine(ch); ok {
			out = append(out, line(ch, weight, reverse))
		}
	}
	return out
}

func (p *parser) trackInterfaces(n *Node) []TrackInterface {
	return trackBlock(p, n, func(ch *Node, weight *int, reverse bool) TrackInterface {
		return TrackInterface{Name: ch.Key, Weight: valueOr(weight, 0), Reverse: reverse, Pos: ch.Pos}
	})
}

func (p *parser) trackScripts(n *Node) []TrackScript {
	return trackBlock(p, n, func(ch *Node, weight *int, reverse bool) TrackScript {
		return TrackScript{Name: ch.Key, Weight: weight, Reverse: reverse, Pos: ch.Pos}
	})
}

func (p *parser) trackFileRefs(n *Node) []TrackFileRef {
	return trackBlock(p, n, func(ch *Node, weight *int, reverse bool) TrackFileRef {
		return TrackFileRef{Name: ch.Key, Weight: weight, Reverse: reverse, Pos: ch.Pos}
	})
}

func (p *parser) trackProcessRefs(n *Node) []TrackProcessRef {
	return trackBlock(p, n, func(ch *Node, weight *int, reverse bool) TrackProcessRef {
		w := ch.Words()
		return TrackProcessRef{Name: ch.Key, Weight: weight, Reverse: reverse, NoReverse: len(w) > 2 && w[2] == "noreverse", Pos: ch.Pos}
	})
}

// The value parsers of the track_* blocks of an instance or a sync group.
var (
	trackInterfacesArg  = always((*parser).trackInterfaces)
	trackScriptsArg     = always((*parser).trackScripts)
	trackFileRefsArg    = always((*parser).trackFileRefs)
	trackProcessRefsArg = always((*parser).trackProcessRefs)
)

// weightReverse parses "weight N [reverse]" with N in lo..hi.
func (p *parser) weightReverse(ch *Node, lo, hi int64, weight *int, reverse *bool) {
	if !p.noBlock(ch) || !p.nargs(ch, 1, 2) {
		return
	}
	if v, ok := p.intIn(ch, 0, lo, hi); ok {
		*weight = int(v)
	}
	if len(ch.Args) == 2 {
		if ch.Args[1].Text == "reverse" {
			*reverse = true
		} else {
			p.errf(ch, "invalid option '%s' (want reverse)", ch.Args[1].Text)
		}
	}
}

// trackFile parses a track_file block: file, weight [reverse], init_file
// [VALUE] [overwrite].
func (p *parser) trackFile(n *Node) *TrackFile {
	if !p.wantBlock(n) || !p.nargs(n, 1, 1) {
		return nil
	}
	f := &TrackFile{Name: n.Args[0].Text, Weight: 1, Pos: n.Pos}
	trackFileBlock.each(p, n.Children, f, func(ch *Node) bool {
		switch ch.Key {
		case "file":
			if v, ok := p.str(ch); ok {
				f.Path = v
			}
		case "weight":
			p.weightReverse(ch, -2147483647, 2147483647, &f.Weight, &f.Reverse)
		case "init_file":
			if p.noBlock(ch) && p.nargs(ch, 0, 2) {
				f.InitFile = true
				for _, a := range ch.Args {
					if a.Text == "overwrite" {
						f.InitOverwrite = true
						continue
					}
					v, err := strconv.ParseInt(a.Text, 10, 32)
					if err != nil {
						p.errf(ch, "invalid init_file value '%s'", a.Text)
						continue
					}
					f.InitValue = int(v)
				}
			}
		default:
			return false
		}
		return true
	})
	if f.Path == "" {
		p.d.add(n.Pos, Error, "track_file", fmt.Sprintf("no file set for track_file %s - removing", f.Name))
		return nil
	}
	return f
}

// trackFileBlock is a track_file block: its switch acts on its keywords.
var trackFileBlock = block[TrackFile]([]string{"track_file"})

// commMax is the longest comm the kernel keeps (TASK_COMM_LEN - 1).
const commMax = 15

// trackProcess parses a vrrp_track_process block as keepalived 2.2.7
// does, order included: a quorum above the quorum_max given before it, or
// a quorum_max below the quorum, is ignored; a second weight is ignored.
func (p *parser) trackProcess(n *Node) *TrackProcess {
	if !p.wantBlock(n) || !p.nargs(n, 1, 1) {
		return nil
	}
	tp := &TrackProcess{Name: n.Args[0].Text, Quorum: 1, QuorumMax: 1<<32 - 1, Pos: n.Pos}
	processSet := false
	trackProcessBlock.each(p, n.Children, tp, func(ch *Node) bool {
		switch ch.Key {
		case "process":
			if !p.noBlock(ch) {
				return true
			}
			if processSet {
				p.errf(ch, "Process already set for track process %s - ignoring %s", tp.Name, ch.Args[0].Text)
				return true
			}
			processSet = true
			tp.Process = ch.Args[0].Text
			for _, a := range ch.Args[1:] {
				tp.Params = append(tp.Params, a.Text)
			}
			if len(tp.Params) > 0 {
				if tp.ParamMatch == ParamMatchNone {
					tp.ParamMatch = ParamMatchExact
				}
				tp.FullCommand = true
			}
		case "param_match":
			if !p.noBlock(ch) {
				return true
			}
			switch {
			case len(ch.Args) == 0:
				tp.ParamMatch = ParamMatchExact
			case ch.Args[0].Text == ParamMatchInitial || ch.Args[0].Text == ParamMatchPartial:
				tp.ParamMatch = ch.Args[0].Text
			default:
				p.errf(ch, "Invalid param_match type %s - ignoring", ch.Args[0].Text)
				return true
			}
			tp.FullCommand = true
		case "weight":
			if len(ch.Args) == 0 {
				p.errf(ch, "No weight specified for track process %s - ignoring", tp.Name)
				return true
			}
			if tp.Weight != 0 {
				p.errf(ch, "Weight already set for track process %s - ignoring %s", tp.Name, ch.Args[0].Text)
				return true
			}
			p.weightReverse(ch, -254, 254, &tp.Weight, &tp.Reverse)
		case "quorum":
			v, ok := p.int1(ch, 1, 65535)
			if !ok {
				return true
			}
			if uint32(v) > tp.QuorumMax {
				p.errf(ch, "Quorum is greater than quorum_max - ignoring")
				return true
			}
			tp.Quorum = v
		case "quorum_max":
			v, ok := p.int1(ch, 0, 65535)
			if !ok {
				return true
			}
			if (v != 0 || tp.Quorum > 1) && v < tp.Quorum {
				p.errf(ch, "quorum_max is less than quorum - ignoring")
				return true
			}
			tp.QuorumMax = uint32(v)
			if v == 0 {
				tp.Quorum = 0
			} else if tp.Quorum == 0 {
				tp.Quorum = 1
			}
		case "delay", "fork_delay", "terminate_delay":
			d, ok := p.dur(ch, 0.000001, 3600)
			if !ok {
				return true
			}
			if ch.Key != "fork_delay" {
				tp.TerminateDelay = d
			}
			if ch.Key != "terminate_delay" {
				tp.ForkDelay = d
			}
		case "full_command":
			if p.noBlock(ch) {
				tp.FullCommand = true
			}
		default:
			return false
		}
		return true
	})
	if !processSet {
		p.d.add(n.Pos, Error, "vrrp_track_process", fmt.Sprintf("track process '%s' process name not specified", tp.Name))
		return nil
	}
	if !tp.FullCommand && len(tp.Process) > commMax {
		p.d.add(n.Pos, Warning, "process", fmt.Sprintf("track process %s: %q is longer than a process name can be (%d bytes): it never matches without full_command", tp.Name, tp.Process, commMax))
	}
	return tp
}

// trackProcessBlock is a vrrp_track_process block: its switch acts on its
// keywords.
var trackProcessBlock = block[TrackProcess]([]string{"vrrp_track_process"})

func (p *parser) syncGroup(n *Node) *SyncGroup {
	if !p.wantBlock(n) || !p.nargs(n, 1, 1) {
		return nil
	}
	g := &SyncGroup{Name: n.Args[0].Text, Pos: n.Pos}
	syncGroupBlock.each(p, n.Children, g, func(ch *Node) bool {
		switch ch.Key {
		case "group":
			p.blockLines(ch, func(m *Node) {
				// keepalived takes one name per line and warns on the rest.
				g.Group = append(g.Group, m.Key)
				for _, extra := range m.Args {
					p.d.add(m.Pos, Warning, "", fmt.Sprintf("unknown keyword '%s'", extra.Text))
				}
			})
		default:
			return false
		}
		return true
	})
	return g
}

// syncGroupKeywords are the vrrp_sync_group keywords that set one field.
var syncGroupKeywords = keywords[SyncGroup]{
	"smtp_alert":      set(boolPtrArg, func(g *SyncGroup) **bool { return &g.SMTPAlert }),
	"track_interface": set(trackInterfacesArg, func(g *SyncGroup) *[]TrackInterface { return &g.TrackInterface }),
	"track_script":    set(trackScriptsArg, func(g *SyncGroup) *[]TrackScript { return &g.TrackScript }),
	"global_tracking": set(boolArg, func(g *SyncGroup) *bool { return &g.GlobalTracking }),
	"track_file":      set(trackFileRefsArg, func(g *SyncGroup) *[]TrackFileRef { return &g.TrackFile }),
	"track_process":   set(trackProcessRefsArg, func(g *SyncGroup) *[]TrackProcessRef { return &g.TrackProcess }),

	"notify_priority_changes": set(boolArg, func(g *SyncGroup) *bool { return &g.NotifyPriorityChanges }),
}

var syncGroupBlock = block([]string{"vrrp_sync_group", "notify"}, syncGroupKeywords,
	embed(notifyKeywords, func(_ *parser, g *SyncGroup) *Notify { return &g.Notify }))
