// Package manpage turns lvsd's Markdown manual pages (docs/lvsd.md,
// docs/lvsd.conf.md) into man(7) pages, so that the installed pages are
// generated from the documentation and never drift from it.
//
// It reads the subset of Markdown those pages use: a title line
// "# name(section)", "##" sections and "###" subsections, paragraphs,
// "-" and "1." lists (continuation lines indented), fenced code blocks,
// pipe tables, definition lists ("`term`" then ": text"), and inline
// `code`, **strong**, *emphasis* and [links](url). Anything else is
// rendered as the text it is. The output is plain man(7) (no tbl, no
// groff extensions) and escapes every character roff would misread.
package manpage

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Page names the page's header fields beyond the title line.
type Page struct {
	Source string // footer: the software, e.g. "lvsd"
	Manual string // header: e.g. "System Manager's Manual"
}

var titleRE = regexp.MustCompile(`^# ([A-Za-z0-9_.+-]+)\(([1-9][a-z]*)\)\s*$`)

// Convert renders md as a man page. The first line must be the title,
// "# name(section)"; an error names the line that cannot be rendered.
func Convert(md []byte, p Page) ([]byte, error) {
	lines := strings.Split(strings.ReplaceAll(string(md), "\r\n", "\n"), "\n")
	if len(lines) == 0 {
		return nil, fmt.Errorf("line 1: empty document")
	}
	m := titleRE.FindStringSubmatch(lines[0])
	if m == nil {
		return nil, fmt.Errorf("line 1: want a title \"# name(section)\", have %q", lines[0])
	}
	w := &writer{}
	w.line(`.\" Generated from Markdown by internal/manpage: edit the Markdown, not this file.`)
	w.line(fmt.Sprintf(".TH %s %s \"\" %s %s", quoteArg(strings.ToUpper(m[1])), m[2], quoteArg(p.Source), quoteArg(p.Manual)))
	c := &converter{w: w, lines: lines, i: 1}
	if err := c.blocks(0); err != nil {
		return nil, err
	}
	return w.buf.Bytes(), nil
}

type writer struct{ buf bytes.Buffer }

func (w *writer) line(s string) { w.buf.WriteString(s); w.buf.WriteByte('\n') }

// text writes roff text lines: a line starting with a control character
// is protected with \&.
func (w *writer) text(s string) {
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if l[0] == '.' || l[0] == '\'' {
			l = `\&` + l
		}
		w.line(l)
	}
}

type converter struct {
	w       *writer
	lines   []string
	i       int
	section string
}

var (
	orderedRE = regexp.MustCompile(`^(\d+)\.\s+(.*)$`)
	tableSep  = regexp.MustCompile(`^\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$`)
)

func indentOf(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }

// blocks renders the block elements of lines indented by at least indent
// (the body of a list item), until one indented less.
func (c *converter) blocks(indent int) error {
	for c.i < len(c.lines) {
		raw := c.lines[c.i]
		if strings.TrimSpace(raw) == "" {
			c.i++
			continue
		}
		if indentOf(raw) < indent {
			return nil
		}
		l := raw[min(indent, len(raw)):]
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(t, "```"):
			if err := c.code(); err != nil {
				return err
			}
		case strings.HasPrefix(l, "# "):
			return fmt.Errorf("line %d: a second title", c.i+1)
		case strings.HasPrefix(l, "## "):
			c.section = strings.TrimSpace(l[3:])
			c.w.line(".SH " + quoteArg(inline(c.section)))
			c.i++
		case strings.HasPrefix(l, "### "):
			c.w.line(".SS " + quoteArg(inline(strings.TrimSpace(l[4:]))))
			c.i++
		case strings.HasPrefix(t, "|"):
			if err := c.table(indent); err != nil {
				return err
			}
		case strings.HasPrefix(l, "- ") || strings.HasPrefix(l, "* "):
			c.w.line(".IP \\(bu 2")
			if err := c.item(indent, 2); err != nil {
				return err
			}
		case orderedRE.MatchString(l):
			m := orderedRE.FindStringSubmatch(l)
			c.w.line(".IP " + m[1] + ". 4")
			if err := c.item(indent, len(l)-len(m[2])); err != nil {
				return err
			}
		case c.i+1 < len(c.lines) && strings.HasPrefix(strings.TrimSpace(c.lines[c.i+1]), ": "):
			c.definition(indent)
		default:
			c.paragraph(indent)
		}
	}
	return nil
}

// item renders a list item whose text starts at column indent+width, with
// its continuation lines and nested blocks indented to that column.
func (c *converter) item(indent, width int) error {
	first := c.lines[c.i][min(indent+width, len(c.lines[c.i])):]
	c.i++
	text := []string{first}
	for c.i < len(c.lines) {
		l := c.lines[c.i]
		if strings.TrimSpace(l) == "" || indentOf(l) < indent+width || strings.HasPrefix(strings.TrimSpace(l), "```") ||
			strings.HasPrefix(strings.TrimSpace(l), "- ") || strings.HasPrefix(strings.TrimSpace(l), "|") {
			break
		}
		text = append(text, l)
		c.i++
	}
	c.w.text(inline(strings.Join(text, "\n")))
	// Nested blocks: the following lines indented to the item's text.
	for c.i < len(c.lines) && strings.TrimSpace(c.lines[c.i]) == "" {
		c.i++
	}
	if c.i < len(c.lines) && indentOf(c.lines[c.i]) >= indent+width {
		c.w.line(".RS")
		err := c.blocks(indent + width)
		c.w.line(".RE")
		return err
	}
	return nil
}

func (c *converter) paragraph(indent int) {
	var text []string
	for c.i < len(c.lines) {
		l := c.lines[c.i]
		t := strings.TrimSpace(l)
		if t == "" || indentOf(l) < indent || strings.HasPrefix(t, "```") || strings.HasPrefix(t, "#") ||
			strings.HasPrefix(t, "|") || (len(text) > 0 && (strings.HasPrefix(t, "- ") || orderedRE.MatchString(t))) {
			break
		}
		text = append(text, l)
		c.i++
	}
	s := inline(strings.Join(text, "\n"))
	if c.section == "NAME" {
		// man(7): "name \- description" on one line.
		s = strings.Join(strings.Fields(s), " ")
		if !strings.Contains(s, ` \(em `) {
			s = strings.Replace(s, " - ", ` \(em `, 1)
		}
		s = strings.Replace(s, ` \(em `, ` \- `, 1)
	}
	c.w.line(".PP")
	c.w.text(s)
}

// definition renders "term" lines followed by ": text" (with indented
// continuation lines) as a tagged paragraph.
func (c *converter) definition(indent int) {
	term := strings.TrimSpace(c.lines[c.i])
	c.i++
	def := []string{strings.TrimPrefix(strings.TrimSpace(c.lines[c.i]), ": ")}
	c.i++
	for c.i < len(c.lines) {
		l := c.lines[c.i]
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "```") || strings.HasPrefix(t, "|") || strings.HasPrefix(t, "#") {
			break
		}
		def = append(def, l)
		c.i++
	}
	c.w.line(".TP")
	c.w.text(inline(term))
	c.w.text(inline(strings.Join(def, "\n")))
}

func (c *converter) code() error {
	open := c.i
	fence := indentOf(c.lines[c.i])
	c.i++
	c.w.line(".PP")
	c.w.line(".RS 4")
	c.w.line(".nf")
	for ; c.i < len(c.lines); c.i++ {
		l := c.lines[c.i]
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			c.i++
			c.w.line(".fi")
			c.w.line(".RE")
			return nil
		}
		// The fence's indentation is the block's margin.
		l = l[min(fence, indentOf(l)):]
		l = escape(strings.TrimRight(l, " \t"))
		if l == "" {
			c.w.line(".sp")
			continue
		}
		if l[0] == '.' || l[0] == '\'' {
			l = `\&` + l
		}
		c.w.line(l)
	}
	return fmt.Errorf("line %d: code block not closed", open+1)
}

// table renders a pipe table as tagged paragraphs: the first column is
// the tag, the other cells the body, each on its own line and prefixed
// with its column's header when that is not empty (and not the only
// other column).
func (c *converter) table(indent int) error {
	start := c.i
	header := splitRow(c.lines[c.i])
	c.i++
	if c.i >= len(c.lines) || !tableSep.MatchString(strings.TrimSpace(c.lines[c.i])) {
		return fmt.Errorf("line %d: a table header without its |---| line", start+1)
	}
	c.i++
	for c.i < len(c.lines) && strings.HasPrefix(strings.TrimSpace(c.lines[c.i]), "|") {
		cells := splitRow(c.lines[c.i])
		if len(cells) != len(header) {
			return fmt.Errorf("line %d: %d cells, the header has %d", c.i+1, len(cells), len(header))
		}
		c.w.line(".TP")
		c.w.text(inline(cells[0]))
		first := true
		for j := 1; j < len(cells); j++ {
			if cells[j] == "" {
				continue
			}
			if !first {
				c.w.line(".br")
			}
			first = false
			s := inline(cells[j])
			if header[j] != "" && len(header) > 2 {
				s = inline(header[j]) + ": " + s
			}
			c.w.text(s)
		}
		c.i++
	}
	return nil
}

// splitRow splits a table row at the pipes outside code spans; "\|" is a
// pipe in a cell.
func splitRow(row string) []string {
	row = strings.TrimSpace(row)
	row = strings.TrimPrefix(row, "|")
	if strings.HasSuffix(row, "|") && !strings.HasSuffix(row, `\|`) {
		row = row[:len(row)-1]
	}
	var cells []string
	var cur strings.Builder
	inCode := false
	for i := 0; i < len(row); i++ {
		ch := row[i]
		switch {
		case ch == '\\' && i+1 < len(row) && row[i+1] == '|':
			cur.WriteByte('|')
			i++
		case ch == '`':
			inCode = !inCode
			cur.WriteByte(ch)
		case ch == '|' && !inCode:
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(ch)
		}
	}
	return append(cells, strings.TrimSpace(cur.String()))
}

var linkRE = regexp.MustCompile(`\[([^\]]+)\]\(([^)\s]+)\)`)

// inline renders the inline Markup of s as roff escapes.
func inline(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case s[i] == '`':
			end := strings.IndexByte(s[i+1:], '`')
			if end < 0 {
				b.WriteString(escape(s[i:]))
				return b.String()
			}
			code := strings.ReplaceAll(s[i+1:i+1+end], "\n", " ")
			// \% keeps roff from hyphenating a keyword.
			b.WriteString(`\fB\%` + strings.ReplaceAll(escape(code), "-", `\-`) + `\fR`)
			i += end + 2
		case strings.HasPrefix(s[i:], "**"):
			end := strings.Index(s[i+2:], "**")
			if end < 0 {
				b.WriteString(escape("**"))
				i += 2
				continue
			}
			b.WriteString(`\fB` + inline(s[i+2:i+2+end]) + `\fR`)
			i += end + 4
		case (s[i] == '*' || s[i] == '_') && emphasisAt(s, i):
			end := strings.IndexByte(s[i+1:], s[i])
			b.WriteString(`\fI` + inline(s[i+1:i+1+end]) + `\fR`)
			i += end + 2
		case s[i] == '[':
			if m := linkRE.FindStringSubmatchIndex(s[i:]); m != nil && m[0] == 0 {
				text, url := s[i+m[2]:i+m[3]], s[i+m[4]:i+m[5]]
				b.WriteString(inline(text))
				if strings.Contains(url, "://") && url != text {
					b.WriteString(" (" + escape(url) + ")")
				}
				i += m[1]
				continue
			}
			b.WriteString("[")
			i++
		case s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\\`*_[]()#|<>-.!", s[i+1]) >= 0:
			b.WriteString(escape(s[i+1 : i+2]))
			i += 2
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			b.WriteString(escape(string(r)))
			i += n
		}
	}
	return b.String()
}

// emphasisAt says whether s[i] ('*' or '_') opens an emphasis: it is
// followed by a non-space and closed on the same line by the same
// character followed by a non-word character (so snake_case names and
// "a * b" stay as they are).
func emphasisAt(s string, i int) bool {
	if i > 0 && isWord(s[i-1]) {
		return false
	}
	if i+1 >= len(s) || s[i+1] == ' ' || s[i+1] == s[i] {
		return false
	}
	end := strings.IndexByte(s[i+1:], s[i])
	if end <= 0 || strings.Contains(s[i+1:i+1+end], "\n") || strings.Contains(s[i+1:i+1+end], "`") {
		return false
	}
	after := i + 2 + end
	return after >= len(s) || !isWord(s[after])
}

func isWord(b byte) bool {
	return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

// glyphs are roff's names of the non-ASCII characters the manual uses;
// any other is written as \[uXXXX].
var glyphs = map[rune]string{
	'—': `\(em`, '–': `\(en`, '…': `\&...`, '≠': `\(!=`, '×': `\(mu`, '→': `\(->`, '←': `\(<-`,
	'“': `\(lq`, '”': `\(rq`, '‘': `\(oq`, '’': `\(cq`, '≤': `\(<=`, '≥': `\(>=`, '±': `\(+-`,
	'▶': `\(->`, '·': `\(pc`, '\u00a0': `\~`,
}

// escape makes s literal roff text: backslashes and non-ASCII characters.
func escape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '\t':
			b.WriteString("        ")
		case r < 0x80:
			b.WriteRune(r)
		default:
			if g, ok := glyphs[r]; ok {
				b.WriteString(g)
			} else {
				fmt.Fprintf(&b, `\[u%04X]`, r)
			}
		}
	}
	return b.String()
}

// quoteArg quotes a macro argument (a double quote in it is \(dq).
func quoteArg(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `\(dq`) + `"`
}

// Lvsd is the header of lvsd's pages.
var Lvsd = Page{Source: "lvsd", Manual: "lvsd manual"}

// Pages are lvsd's man pages and the Markdown each is generated from
// (relative to docs/ and packaging/man/).
var Pages = []struct{ Markdown, Man string }{
	{"lvsd.md", "lvsd.8"},
	{"lvsd.conf.md", "lvsd.conf.5"},
}
