package conf

import (
	"net/netip"
	"strings"
	"time"
)

// A block's plain keywords are tables: each keyword names a value parser
// (how its arguments are read and checked, with the diagnostics) and the
// field of the block's value it sets. What does more than set one field
// (remembering where it was given, checking against other keywords) stays
// code, in the switch beside the table.

// setter parses the statement n into the block value x.
type setter[T any] func(p *parser, n *Node, x *T)

// keywords maps the keywords of one kind of block to their setters, as
// declared; table() makes the table a parse looks them up in.
type keywords[T any] map[string]setter[T]

// table is a block's keywords made for look-ups: by the keyword's length,
// then among the few of that length. That is quicker than a map's hashing,
// for the statements of tens of thousands of blocks. Each entry carries the
// keyword's status from keywordTable.
type table[T any] struct {
	byLen [][]entry[T]
}

type entry[T any] struct {
	keyword string
	set     setter[T] // nil: the block's switch acts on it (or it is only noticed)
	info    *kwInfo
}

// table makes a table of k alone (for the tests of a table's setters).
func (k keywords[T]) table() table[T] {
	var t table[T]
	for kw, f := range k {
		t.add(entry[T]{kw, f, &kwInfo{}})
	}
	return t
}

func (t *table[T]) add(e entry[T]) {
	for len(t.byLen) <= len(e.keyword) {
		t.byLen = append(t.byLen, nil)
	}
	t.byLen[len(e.keyword)] = append(t.byLen[len(e.keyword)], e)
}

// block makes the table of a kind of block: every keyword of its sections
// of keywordTable, with its setter from tables when it has one. A setter
// for a keyword none of the sections has is a mistake of lvsd's (a keyword
// acted on without a status): it panics when the package is initialised,
// so that any test run finds it.
func block[T any](sections []string, tables ...keywords[T]) table[T] {
	var t table[T]
	setters := keywords[T]{}
	for _, k := range tables {
		for kw, f := range k {
			setters[kw] = f
		}
	}
	for _, sec := range sections {
		kws, ok := keywordTable[sec]
		if !ok {
			panic("conf: no section " + sec + " in keywordTable")
		}
		for kw := range kws {
			info := kws[kw]
			t.add(entry[T]{kw, setters[kw], &info})
			delete(setters, kw)
		}
	}
	for kw := range setters {
		panic("conf: keyword " + kw + " of sections " + strings.Join(sections, ", ") + " is not in keywordTable")
	}
	return t
}

// find returns the entry of keyword kw, or nil.
func (t table[T]) find(kw string) *entry[T] {
	if len(kw) >= len(t.byLen) {
		return nil
	}
	list := t.byLen[len(kw)]
	for i := range list {
		if list[i].keyword == kw {
			return &list[i]
		}
	}
	return nil
}

// parse handles the statement n of a block: an unknown keyword warns, a
// keyword keepalived requires a parameter of is fatal without one, a
// keyword lvsd does not act on has its notice, and a keyword with a setter
// is parsed. It returns nil when n is dealt with, else the keyword's
// status: the block's switch acts on it (and calls unhandled in its
// default case).
func (t table[T]) parse(p *parser, n *Node, x *T) *kwInfo {
	e := t.find(n.Key)
	if e == nil {
		p.unknown(n)
		return nil
	}
	if e.info.arg && len(n.Args) == 0 {
		p.missingParameter(n)
		return nil
	}
	if e.info.notice != "" {
		p.notice(n, e.info.notice)
	}
	if e.set != nil {
		e.set(p, n, x)
		return nil
	}
	return e.info
}

// each parses the statements of a block with parse; fn acts on each
// keyword left to the block and returns false for one it does not know,
// which unhandled then reports (a nil fn knows none).
func (t table[T]) each(p *parser, stmts []*Node, x *T, fn func(n *Node) bool) {
	for _, n := range stmts {
		if info := t.parse(p, n, x); info != nil && (fn == nil || !fn(n)) {
			p.unhandled(n, info)
		}
	}
}

// unhandled is the default case of a block's switch: nothing more for a
// keyword that is only noticed; a keyword acted on that the switch does not
// know is reported as unknown (which TestKeywordTable catches).
func (p *parser) unhandled(n *Node, info *kwInfo) {
	if info.notice == "" {
		p.unknown(n)
	}
}

// keywords returns the table's setters.
func (t table[T]) keywords() keywords[T] {
	k := keywords[T]{}
	for _, list := range t.byLen {
		for _, e := range list {
			if e.set != nil {
				k[e.keyword] = e.set
			}
		}
	}
	return k
}

// with returns k's keywords and more's.
func (k keywords[T]) with(more keywords[T]) keywords[T] {
	out := keywords[T]{}
	for kw, f := range k {
		out[kw] = f
	}
	for kw, f := range more {
		out[kw] = f
	}
	return out
}

// only returns k's keywords kws.
func (k keywords[T]) only(kws ...string) keywords[T] {
	out := keywords[T]{}
	for _, kw := range kws {
		out[kw] = k[kw]
	}
	return out
}

// embed makes setters of a block T of the setters of a part U of it.
func embed[T, U any](k keywords[U], part func(p *parser, x *T) *U) keywords[T] {
	out := keywords[T]{}
	for kw, f := range k {
		out[kw] = func(p *parser, n *Node, x *T) { f(p, n, part(p, x)) }
	}
	return out
}

// valueParser reads the value of a statement; ok false (after its
// diagnostic) leaves the field as it was.
type valueParser[V any] func(p *parser, n *Node) (v V, ok bool)

// set parses a statement with parse and stores its value in field.
func set[T, V any](parse valueParser[V], field func(*T) *V) setter[T] {
	return func(p *parser, n *Node, x *T) {
		if v, ok := parse(p, n); ok {
			*field(x) = v
		}
	}
}

// setPtr is set for a field that stays nil until the keyword is given.
func setPtr[T, V any](parse valueParser[V], field func(*T) **V) setter[T] {
	return func(p *parser, n *Node, x *T) {
		if v, ok := parse(p, n); ok {
			*field(x) = &v
		}
	}
}

// always makes a value parser of a function whose result is stored even
// when it reports an error (a bool parsed as false, a script as nil).
func always[V any](f func(p *parser, n *Node) V) valueParser[V] {
	return func(p *parser, n *Node) (V, bool) { return f(p, n), true }
}

// The value parsers of one-argument statements (see parse.go).
var (
	stringArg  valueParser[string]     = (*parser).str
	addrArg    valueParser[netip.Addr] = (*parser).addr1
	boolArg                            = always((*parser).boolOpt)
	boolPtrArg                         = always((*parser).boolPtr)
	scriptArg                          = always((*parser).script)
	// negatedBoolArg is for no_X, the opposite of X.
	negatedBoolArg = always(func(p *parser, n *Node) bool { return !p.boolOpt(n) })
)

// portArg parses a port number.
func portArg(p *parser, n *Node) (int, bool) {
	s, ok := p.str(n)
	if !ok {
		return 0, false
	}
	return p.port(n, s)
}

// intArg parses an integer within [lo, hi].
func intArg(lo, hi int64) valueParser[int] {
	return func(p *parser, n *Node) (int, bool) { return p.int1(n, lo, hi) }
}

// secondsArg parses a (possibly fractional) number of seconds within [lo, hi].
func secondsArg(lo, hi float64) valueParser[time.Duration] {
	return func(p *parser, n *Node) (time.Duration, bool) { return p.dur(n, lo, hi) }
}

// choiceArg parses one word among choices; with upper, the word is
// compared and stored in upper case. errf formats the error with the word.
func choiceArg(errf string, upper bool, choices ...string) valueParser[string] {
	return func(p *parser, n *Node) (string, bool) {
		v, ok := p.str(n)
		if !ok {
			return "", false
		}
		w := v
		if upper {
			w = strings.ToUpper(v)
		}
		for _, c := range choices {
			if w == c {
				return c, true // not w: the model keeps no string of the file's text
			}
		}
		p.errf(n, errf, v)
		return "", false
	}
}

// familyArg parses an address family name.
var familyArg = choiceArg("invalid family '%s' (want inet or inet6)", false, "inet", "inet6")

// notifyKeywords are the notify scripts of an instance or a sync group.
var notifyKeywords = keywords[Notify]{
	"notify_master": set(scriptArg, func(nt *Notify) **Script { return &nt.Master }),
	"notify_backup": set(scriptArg, func(nt *Notify) **Script { return &nt.Backup }),
	"notify_fault":  set(scriptArg, func(nt *Notify) **Script { return &nt.Fault }),
	"notify_stop":   set(scriptArg, func(nt *Notify) **Script { return &nt.Stop }),
	"notify":        set(scriptArg, func(nt *Notify) **Script { return &nt.Any }),
}
