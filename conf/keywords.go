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

// table is a keywords table made for look-ups: by the keyword's length,
// then among the few of that length. That is quicker than a map's hashing,
// for the statements of tens of thousands of blocks.
type table[T any] struct {
	byLen [][]entry[T]
}

type entry[T any] struct {
	keyword string
	set     setter[T]
}

func (k keywords[T]) table() table[T] {
	var t table[T]
	for kw, f := range k {
		for len(t.byLen) <= len(kw) {
			t.byLen = append(t.byLen, nil)
		}
		t.byLen[len(kw)] = append(t.byLen[len(kw)], entry[T]{kw, f})
	}
	return t
}

// parse runs the setter of n's keyword; false when the table has none.
func (t table[T]) parse(p *parser, n *Node, x *T) bool {
	if len(n.Key) >= len(t.byLen) {
		return false
	}
	for _, e := range t.byLen[len(n.Key)] {
		if e.keyword == n.Key {
			e.set(p, n, x)
			return true
		}
	}
	return false
}

// keywords returns the table's entries.
func (t table[T]) keywords() keywords[T] {
	k := keywords[T]{}
	for _, list := range t.byLen {
		for _, e := range list {
			k[e.keyword] = e.set
		}
	}
	return k
}

// with returns a table of t's keywords and more's.
func (t table[T]) with(more keywords[T]) table[T] {
	k := t.keywords()
	for kw, f := range more {
		k[kw] = f
	}
	return k.table()
}

// only returns a table of t's entries for the keywords kws.
func (t table[T]) only(kws ...string) table[T] {
	all, k := t.keywords(), keywords[T]{}
	for _, kw := range kws {
		k[kw] = all[kw]
	}
	return k.table()
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
				return w, true
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
}.table()
