package conf

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"strings"
)

// Level is how serious a diagnostic is.
type Level int

const (
	// Notice: lvsd parsed it but does not act on it yet.
	Notice Level = iota
	// Warning: reported as keepalived reports it (unknown keyword, ignored value).
	Warning
	// Error: a value or an element was rejected; the rest still runs.
	Error
	// Fatal: the configuration cannot run.
	Fatal
)

func (l Level) String() string {
	switch l {
	case Notice:
		return "notice"
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return "fatal"
}

// MarshalText makes levels readable in JSON.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// Diag is one diagnostic: where, how serious, which keyword, what is wrong.
type Diag struct {
	Pos     Pos    `json:"pos"`
	Level   Level  `json:"level"`
	Keyword string `json:"keyword,omitempty"`
	Msg     string `json:"msg"`
	// MissingParameter: a keyword without the parameter keepalived
	// requires (Fatal; keepalived exits with its program error, 2).
	MissingParameter bool `json:"missing_parameter,omitempty"`
}

// MissingParameter reports whether diags hold a keyword missing its
// parameter, which keepalived 2.2.7 refuses with exit code 2.
func MissingParameter(diags []Diag) bool {
	for _, d := range diags {
		if d.MissingParameter {
			return true
		}
	}
	return false
}

// String formats as "file:line: level: keyword: message".
func (d Diag) String() string {
	var b strings.Builder
	if d.Pos.File != "" || d.Pos.Line != 0 {
		if d.Pos.Line > 0 {
			fmt.Fprintf(&b, "%s:%d: ", d.Pos.File, d.Pos.Line)
		} else {
			fmt.Fprintf(&b, "%s: ", d.Pos.File)
		}
	}
	b.WriteString(d.Level.String())
	b.WriteString(": ")
	if d.Keyword != "" {
		b.WriteString(d.Keyword)
		b.WriteString(": ")
	}
	b.WriteString(d.Msg)
	return b.String()
}

type diagList struct{ list []Diag }

func (d *diagList) add(pos Pos, lvl Level, kw, msg string) {
	d.list = append(d.list, Diag{Pos: pos, Level: lvl, Keyword: kw, Msg: msg})
}

// Node is one statement: a keyword, its arguments and, for a block, its children.
type Node struct {
	Key      string
	Args     []Token
	Pos      Pos
	HasBlock bool
	Children []*Node
}

// sourceSeed seeds Source hashes: they compare blocks within one process.
var sourceSeed = maphash.MakeSeed()

// sourceHash identifies a block as written: its keywords and arguments
// (after includes, definitions and conditionals are resolved), not where
// they are. Equal hashes mean the same text, so the same meaning.
func (n *Node) sourceHash() uint64 {
	return maphash.Bytes(sourceSeed, n.appendSource(make([]byte, 0, 1024)))
}

// appendSource appends an unambiguous encoding of the block: each string
// is preceded by its length.
func (n *Node) appendSource(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(n.Key)))
	b = append(b, n.Key...)
	b = binary.AppendUvarint(b, uint64(len(n.Args)))
	for _, a := range n.Args {
		b = binary.AppendUvarint(b, uint64(len(a.Text)))
		b = append(b, a.Text...)
		if a.Quoted {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	if !n.HasBlock {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(len(n.Children)))
	for _, c := range n.Children {
		b = c.appendSource(b)
	}
	return b
}

// Words returns the arguments as plain strings.
func (n *Node) Words() []string {
	w := make([]string, len(n.Args))
	for i, a := range n.Args {
		w[i] = a.Text
	}
	return w
}

// treeBuilder assembles lexer lines into a tree of Nodes. A line is split at {
// and }; a { alone (at the start of a line) opens the block of the statement just
// before it, as keepalived allows.
type treeBuilder struct {
	root  Node
	stack []*Node
	diags *diagList
	slab  []Node
	toks  []Token // arguments are carved from here: one allocation per 4096
	// closed, when set, is called with each top-level block as it is
	// closed; what it returns takes the block's place in the tree.
	closed func(*Node) *Node
}

func newTreeBuilder(d *diagList) *treeBuilder {
	tb := &treeBuilder{diags: d}
	tb.root.HasBlock = true
	tb.stack = []*Node{&tb.root}
	return tb
}

func (tb *treeBuilder) newNode() *Node {
	if len(tb.slab) == 0 {
		tb.slab = make([]Node, 1024)
	}
	n := &tb.slab[0]
	tb.slab = tb.slab[1:]
	return n
}

func (tb *treeBuilder) top() *Node { return tb.stack[len(tb.stack)-1] }

// inGlobalDefs says whether the next statement goes into a global_defs block.
func (tb *treeBuilder) inGlobalDefs() bool { return tb.top().Key == "global_defs" }

func (tb *treeBuilder) flush(cur []Token, pos Pos) *Node {
	if len(cur) == 0 {
		return nil
	}
	n := tb.newNode()
	n.Key = cur[0].Text
	if args := cur[1:]; len(args) > 0 {
		if len(tb.toks) < len(args) {
			tb.toks = make([]Token, max(4096, len(args)))
		}
		n.Args = tb.toks[:len(args):len(args)]
		copy(n.Args, args)
		tb.toks = tb.toks[len(args):]
	}
	n.Pos = pos
	p := tb.top()
	p.Children = append(p.Children, n)
	return n
}

func (tb *treeBuilder) line(toks []Token, pos Pos) {
	start := 0
	for i, t := range toks {
		if t.Quoted || (t.Text != "{" && t.Text != "}") {
			continue
		}
		cur := toks[start:i]
		start = i + 1
		if t.Text == "{" {
			n := tb.flush(cur, pos)
			if n == nil {
				// "{" with nothing before it on this line: it opens the previous statement.
				p := tb.top()
				if len(p.Children) == 0 || p.Children[len(p.Children)-1].HasBlock {
					tb.diags.add(pos, Error, "", "unexpected '{'")
					n = tb.newNode()
					n.Key = "{"
					n.Pos = pos
					// Parse the block anyway, detached, so the braces still balance.
				} else {
					n = p.Children[len(p.Children)-1]
				}
			}
			n.HasBlock = true
			tb.stack = append(tb.stack, n)
			continue
		}
		tb.flush(cur, pos)
		if len(tb.stack) == 1 {
			tb.diags.add(pos, Error, "", "unmatched '}'")
			continue
		}
		done := tb.top()
		tb.stack = tb.stack[:len(tb.stack)-1]
		if kids := tb.root.Children; len(tb.stack) == 1 && tb.closed != nil && len(kids) > 0 && kids[len(kids)-1] == done {
			kids[len(kids)-1] = tb.closed(done)
		}
	}
	tb.flush(toks[start:], pos)
}

func (tb *treeBuilder) finish() *Node {
	for len(tb.stack) > 1 {
		n := tb.top()
		tb.diags.add(n.Pos, Error, n.Key, "block is not closed: missing '}'")
		tb.stack = tb.stack[:len(tb.stack)-1]
	}
	return &tb.root
}
