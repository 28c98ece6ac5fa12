package conf

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unsafe"
)

// Token is one word of a configuration line.
type Token struct {
	Text   string
	Quoted bool // came from "…" or '…'
}

// lexer turns files into lines of tokens, applying keepalived's preprocessing:
// include (glob, relative to the including file, cycles detected), # and !
// comments, @ID / @^ID conditional lines, $NAME=value definitions (multi-line with
// a trailing backslash) and $NAME / ${NAME} substitution, ~SEQ(...) lines, quoted
// strings with escapes, and braces split into their own tokens.
type lexer struct {
	configID string
	diags    *diagList
	defs     map[string][]string // a multi-line definition has several lines
	stack    []string            // files being read, for cycle detection
	files    []string
	emit     func(toks []Token, pos Pos)
	toks     []Token // reused buffer
	depth    int     // substitution re-entry depth
	expanded int     // lines produced by definitions and ~SEQ, against maxExp
	maxExp   int     // expansion budget (maxExpanded unless a test lowers it)
	runaway  bool    // expansion stopped: nesting too deep or budget spent

	// The file system, replaceable so that fuzzing never reads real files.
	fsRead func(string) ([]byte, error)
	glob   func(string) ([]string, error)

	// checks are the include checks in force (include_check in
	// global_defs); a file read by an include starts with its includer's,
	// and its own changes end with it.
	checks includeChecks
	// inGlobalDefs says whether the line at hand is in global_defs (where
	// include_check is read); nil: never.
	inGlobalDefs func() bool
}

const (
	maxSubstDepth = 32
	// maxExpanded bounds the lines definitions and sequences may produce, and
	// maxLineLen the length of a substituted line, so that no input (recursive
	// definitions, nested ~SEQ) can make the lexer run away.
	maxExpanded = 1_000_000
	maxLineLen  = 1 << 20
)

// budget counts one expanded line; false (reported once) when the budget is spent.
func (lx *lexer) budget(pos Pos) bool {
	if lx.runaway {
		return false
	}
	lx.expanded++
	if lx.expanded > lx.maxExp {
		lx.stop(pos, fmt.Sprintf("definitions and sequences expand to more than %d lines; the rest is ignored", lx.maxExp))
		return false
	}
	return true
}

// stop ends all further expansion, reporting why once.
func (lx *lexer) stop(pos Pos, msg string) {
	if !lx.runaway {
		lx.runaway = true
		lx.diags.add(pos, Error, "", msg)
	}
}

func newLexer(configID string, diags *diagList, emit func([]Token, Pos)) *lexer {
	return &lexer{configID: configID, diags: diags, defs: map[string][]string{}, emit: emit, maxExp: maxExpanded,
		fsRead: os.ReadFile, glob: filepath.Glob}
}

// readFile lexes one file. A file that cannot be read is fatal for the main file
// and, for an include, reported at level (keepalived goes on without it).
func (lx *lexer) readFile(path string, from Pos, main bool, level Level) {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	for _, f := range lx.stack {
		if f == abs {
			lx.diags.add(from, Error, "include", fmt.Sprintf("include cycle: %s is already being read", path))
			return
		}
	}
	if len(lx.stack) >= 32 {
		lx.diags.add(from, Error, "include", "includes nested too deeply")
		return
	}
	data, err := lx.fsRead(path)
	if err != nil {
		if main {
			lx.diags.add(Pos{File: path}, Fatal, "", fmt.Sprintf("cannot read configuration: %v", err))
		} else {
			lx.diags.add(from, level, "include", fmt.Sprintf("cannot read %s: %v", path, err))
		}
		return
	}
	lx.stack = append(lx.stack, abs)
	lx.files = append(lx.files, path)
	if len(data) == 0 {
		lx.stack = lx.stack[:len(lx.stack)-1]
		return
	}
	saved := lx.checks
	// The buffer is never written again: tokens can share it instead of a copy.
	lx.lexText(unsafe.String(&data[0], len(data)), path)
	lx.checks = saved
	lx.stack = lx.stack[:len(lx.stack)-1]
}

func (lx *lexer) lexText(text, file string) {
	line := 0
	for len(text) > 0 {
		var l string
		l, text = cutLine(text)
		line++
		pos := Pos{File: file, Line: line}
		// A multi-line definition: "$NAME= \" followed by lines ending in "\".
		if name, first, ok := multiLineDef(l); ok {
			var body []string
			if first != "" {
				body = append(body, first)
			}
			for len(text) > 0 {
				var m string
				m, text = cutLine(text)
				line++
				m = strings.TrimRight(m, " \t\r")
				cont := strings.HasSuffix(m, "\\")
				if cont {
					m = strings.TrimRight(m[:len(m)-1], " \t")
				}
				body = append(body, m)
				if !cont {
					break
				}
			}
			lx.defs[name] = body
			continue
		}
		lx.line(l, pos)
	}
}

// trimBlanks is strings.TrimLeft(s, " \t"), without making a cutset for
// every line.
func trimBlanks(s string) string {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return s[i:]
}

// asciiSpace is what strings.TrimSpace trims of ASCII.
func asciiSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// cutLine splits text after its first line (without the newline).
func cutLine(text string) (line, rest string) {
	if i := strings.IndexByte(text, '\n'); i >= 0 {
		return text[:i], text[i+1:]
	}
	return text, ""
}

// multiLineDef recognises "$NAME=… \" (a definition continued on following lines).
func multiLineDef(l string) (name, first string, ok bool) {
	i := 0
	for i < len(l) && asciiSpace(l[i]) {
		i++
	}
	if i == len(l) || l[i] != '$' {
		return "", "", false // most lines: no need to trim them whole
	}
	s := strings.TrimSpace(l)
	if len(s) < 3 || s[0] != '$' || !strings.HasSuffix(s, "\\") {
		return "", "", false
	}
	eq := strings.IndexByte(s, '=')
	if eq < 2 || !validDefName(s[1:eq]) {
		return "", "", false
	}
	first = strings.TrimSpace(strings.TrimSuffix(s[eq+1:], "\\"))
	return s[1:eq], first, true
}

func validDefName(n string) bool {
	if n == "" || (n[0] >= '0' && n[0] <= '9') {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// line handles one logical line: conditionals, definitions, substitution, ~SEQ,
// include, then tokenizes.
func (lx *lexer) line(l string, pos Pos) {
	s := trimBlanks(l)
	if len(s) == 0 {
		return
	}
	// Conditional configuration: @ID rest / @^ID rest.
	if s[0] == '@' {
		neg := len(s) > 1 && s[1] == '^'
		rest := s[1:]
		if neg {
			rest = s[2:]
		}
		end := strings.IndexAny(rest, " \t")
		if end < 0 {
			return // "@id" alone: nothing to include either way
		}
		id := rest[:end]
		if (id == lx.configID) == neg {
			return
		}
		s = strings.TrimLeft(rest[end:], " \t")
		if s == "" {
			return // "@id " with nothing after it (found by FuzzLex)
		}
	}
	// Definition: $NAME=VALUE (no space before '=').
	if s[0] == '$' {
		if eq := strings.IndexByte(s, '='); eq > 1 && validDefName(s[1:eq]) {
			lx.defs[s[1:eq]] = []string{strings.TrimRight(s[eq+1:], " \t\r")}
			return
		}
	}
	if strings.HasPrefix(s, "~SEQ") {
		lx.seq(s, pos)
		return
	}
	if strings.HasPrefix(s, "~LST") {
		lx.diags.add(pos, Error, "~LST", "list blocks are not supported yet; line ignored")
		return
	}
	if strings.IndexByte(s, '$') >= 0 && (len(lx.defs) > 0 || strings.Contains(s, "${_")) {
		out, multi := lx.substitute(s, pos)
		if multi != nil {
			if lx.depth >= maxSubstDepth {
				lx.stop(pos, "definitions nested too deeply (recursive definition?); expansion stopped")
				return
			}
			lx.depth++
			for _, m := range multi {
				if !lx.budget(pos) {
					break
				}
				lx.line(m, pos)
			}
			lx.depth--
			return
		}
		s = out
		// A definition may expand to a conditional line ("$IF_MAIN=@main" then
		// "$IF_MAIN priority 240", as in keepalived.conf(5)): handle it again.
		if t := strings.TrimLeft(s, " \t"); t != "" && t[0] == '@' && lx.depth < maxSubstDepth {
			lx.depth++
			lx.line(t, pos)
			lx.depth--
			return
		}
	}
	if len(s) > 0 && s[0] == 'i' { // a definition may have made it empty
		if kw, pattern, ok := includeLine(s); ok {
			lx.include(kw, pattern, pos)
			return
		}
	}
	toks, ok := lx.tokenize(s, pos)
	if !ok || len(toks) == 0 {
		return
	}
	if toks[0].Text == "include_check" && !toks[0].Quoted && lx.inGlobalDefs != nil && lx.inGlobalDefs() {
		lx.includeCheck(toks[1:], pos) // and the statement goes on to global_defs
	}
	lx.emit(toks, pos)
}

// tokenize splits a line into tokens. Comments (# or !) end the line outside
// quotes; { and } are tokens of their own.
func (lx *lexer) tokenize(s string, pos Pos) ([]Token, bool) {
	toks := lx.toks[:0]
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f':
			i++
		case c == '#' || c == '!':
			i = len(s)
		case c == '{' || c == '}':
			toks = append(toks, Token{Text: s[i : i+1]})
			i++
		case c == '"' || c == '\'':
			q := c
			j := i + 1
			var b *strings.Builder
			start := j
			closed := false
			for j < len(s) {
				if s[j] == '\\' && j+1 < len(s) {
					if b == nil {
						b = &strings.Builder{}
					}
					b.WriteString(s[start:j])
					b.WriteByte(unescape(s[j+1]))
					j += 2
					start = j
					continue
				}
				if s[j] == q {
					closed = true
					break
				}
				j++
			}
			if !closed {
				lx.diags.add(pos, Error, "", "unterminated quoted string")
				lx.toks = toks
				return nil, false
			}
			text := s[start:j]
			if b != nil {
				b.WriteString(text)
				text = b.String()
			}
			toks = append(toks, Token{Text: text, Quoted: true})
			i = j + 1
		default:
			j := i
			for j < len(s) {
				d := s[j]
				if d == ' ' || d == '\t' || d == '\r' || d == '\v' || d == '\f' || d == '{' || d == '}' || d == '#' || d == '!' || d == '"' || d == '\'' {
					break
				}
				j++
			}
			toks = append(toks, Token{Text: s[i:j]})
			i = j
		}
	}
	lx.toks = toks
	return toks, true
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 't':
		return '\t'
	case 'r':
		return '\r'
	}
	return c
}

// substitute replaces $NAME (followed by white space or end of line) and ${NAME};
// undefined names stay as they are. Replacement is recursive (bounded). A
// multi-line definition makes the result several lines (returned as multi).
func (lx *lexer) substitute(s string, pos Pos) (string, []string) {
	for round := 0; round < maxSubstDepth; round++ {
		var b strings.Builder
		changed := false
		i := 0
		for i < len(s) {
			if s[i] != '$' {
				j := strings.IndexByte(s[i:], '$')
				if j < 0 {
					b.WriteString(s[i:])
					break
				}
				b.WriteString(s[i : i+j])
				i += j
				continue
			}
			name, next, braced := defRef(s, i)
			if name == "" {
				b.WriteByte('$')
				i++
				continue
			}
			val, ok := lx.lookup(name, pos)
			if !ok || (!braced && next < len(s) && s[next] != ' ' && s[next] != '\t') {
				b.WriteString(s[i:next])
				i = next
				continue
			}
			b.WriteString(val)
			i = next
			changed = true
		}
		s = b.String()
		if len(s) > maxLineLen {
			lx.diags.add(pos, Error, "", fmt.Sprintf("definition substitution makes a line longer than %d bytes; line ignored", maxLineLen))
			return "", []string{}
		}
		if !changed {
			break
		}
		if round == maxSubstDepth-1 {
			lx.diags.add(pos, Error, "", "definition substitution does not terminate")
		}
	}
	if strings.IndexByte(s, '\n') >= 0 {
		return "", strings.Split(s, "\n")
	}
	return s, nil
}

// defRef parses a reference at s[i]=='$'.
func defRef(s string, i int) (name string, next int, braced bool) {
	j := i + 1
	if j < len(s) && s[j] == '{' {
		k := strings.IndexByte(s[j:], '}')
		if k < 0 {
			return "", 0, false
		}
		inner := s[j+1 : j+k]
		// ${_RANDOM MIN MAX} carries arguments.
		if f := strings.Fields(inner); len(f) > 0 && f[0] == "_RANDOM" {
			return inner, j + k + 1, true
		}
		if !validDefName(inner) {
			return "", 0, false
		}
		return inner, j + k + 1, true
	}
	k := j
	for k < len(s) && (s[k] == '_' || s[k] >= 'a' && s[k] <= 'z' || s[k] >= 'A' && s[k] <= 'Z' || s[k] >= '0' && s[k] <= '9') {
		k++
	}
	if k == j || !validDefName(s[j:k]) {
		return "", 0, false
	}
	return s[j:k], k, false
}

func (lx *lexer) lookup(name string, pos Pos) (string, bool) {
	if v, ok := lx.defs[name]; ok {
		return strings.Join(v, "\n"), true
	}
	switch {
	case name == "_PWD":
		return filepath.Dir(pos.File), true
	case name == "_INSTANCE":
		return lx.configID, true
	case name == "_HASH":
		return "#", true
	case name == "_BANG":
		return "!", true
	case strings.HasPrefix(name, "_RANDOM"):
		f := strings.Fields(name)
		lo, hi := 0, 32767
		if len(f) > 1 {
			lo, _ = strconv.Atoi(f[1])
		}
		if len(f) > 2 {
			hi, _ = strconv.Atoi(f[2])
		}
		if hi < lo {
			lo, hi = hi, lo
		}
		return strconv.Itoa(lo + rand.IntN(hi-lo+1)), true
	}
	return "", false
}

// seq expands "~SEQ(var, start, step, end) rest" (and ~SEQx, hexadecimal).
func (lx *lexer) seq(s string, pos Pos) {
	hex := strings.HasPrefix(s, "~SEQx(")
	open := strings.IndexByte(s, '(')
	closeP := strings.IndexByte(s, ')')
	if open < 0 || closeP < open {
		lx.diags.add(pos, Error, "~SEQ", "malformed sequence: want ~SEQ(var, start, step, end)")
		return
	}
	parts := strings.Split(s[open+1:closeP], ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	rest := strings.TrimSpace(s[closeP+1:])
	if len(parts) < 2 || len(parts) > 4 || !validDefName(parts[0]) {
		lx.diags.add(pos, Error, "~SEQ", "malformed sequence: want ~SEQ(var, start, step, end)")
		return
	}
	nums := make([]int64, 0, 3)
	for _, p := range parts[1:] {
		n, err := strconv.ParseInt(p, 0, 64)
		if err != nil {
			lx.diags.add(pos, Error, "~SEQ", fmt.Sprintf("bad number %q", p))
			return
		}
		nums = append(nums, n)
	}
	var start, step, end int64
	switch len(nums) {
	case 1:
		end = nums[0]
		start, step = 1, 1
		if end < 0 {
			start, step = -1, -1
		}
	case 2:
		start, end = nums[0], nums[1]
		step = 1
		if end < start {
			step = -1
		}
	case 3:
		start, step, end = nums[0], nums[1], nums[2]
	}
	if step == 0 || (step > 0 && start > end) || (step < 0 && start < end) {
		return
	}
	if n := (end-start)/step + 1; n > 1_000_000 {
		lx.diags.add(pos, Error, "~SEQ", "sequence longer than 1000000")
		return
	}
	if lx.depth >= maxSubstDepth {
		lx.stop(pos, "sequences nested too deeply; expansion stopped")
		return
	}
	lx.depth++
	defer func() { lx.depth-- }()
	for v := start; (step > 0 && v <= end) || (step < 0 && v >= end); v += step {
		if hex {
			lx.defs[parts[0]] = []string{strconv.FormatInt(v, 16)}
		} else {
			lx.defs[parts[0]] = []string{strconv.FormatInt(v, 10)}
		}
		if !lx.budget(pos) {
			return
		}
		lx.line(rest, pos)
	}
}

// includeChecks are keepalived 2.2's include_check settings: which problems
// of an include are errors (the others are warnings).
type includeChecks uint8

const (
	// checkReadable: a matched name that is not a readable file.
	checkReadable includeChecks = 1 << iota
	// checkMatch: a name without wildcards that matches no file.
	checkMatch
	// checkWildcardMatch: a name that matches no file, even with wildcards.
	checkWildcardMatch
	// checkBraceMatch: an alternative of a brace expression that matches no file.
	checkBraceMatch
	checkAll = checkReadable | checkMatch | checkWildcardMatch | checkBraceMatch
)

// includeKinds are the include keywords and the checks each adds to those
// in force (keepalived.conf(5): includer, includem, includew, includeb,
// includea).
var includeKinds = map[string]includeChecks{
	"include":  0,
	"includer": checkReadable,
	"includem": checkReadable | checkMatch,
	"includew": checkReadable | checkWildcardMatch,
	"includeb": checkReadable | checkBraceMatch,
	"includea": checkAll,
}

// includeLine recognises an include line: its keyword and, as keepalived
// takes it, the rest of the line (up to a comment) as one file name. A
// variant without a name is no include (keepalived: an unknown keyword);
// a bare include is, and is reported.
func includeLine(s string) (kw, pattern string, ok bool) {
	end := strings.IndexAny(s, " \t")
	if end < 0 {
		end = len(s)
	}
	kw = s[:end]
	if _, known := includeKinds[kw]; !known {
		return "", "", false
	}
	rest := s[end:]
	if i := strings.IndexAny(rest, "#!"); i >= 0 {
		rest = rest[:i]
	}
	pattern = strings.TrimSpace(rest)
	if pattern == "" && kw != "include" {
		return "", "", false
	}
	return kw, pattern, true
}

// includeCheck applies an include_check statement of global_defs: no
// option sets every check; "match", "+match" add one (and the readable
// check), "-match" removes one; as keepalived 2.2.7, the known options are
// match, wildcard_match and brace_match.
func (lx *lexer) includeCheck(args []Token, pos Pos) {
	if len(args) == 0 {
		lx.checks = checkAll
		return
	}
	for _, a := range args {
		name, remove := a.Text, false
		if name != "" && (name[0] == '+' || name[0] == '-') {
			name, remove = name[1:], name[0] == '-'
		}
		var c includeChecks
		switch name {
		case "match":
			c = checkMatch
		case "wildcard_match":
			c = checkWildcardMatch
		case "brace_match":
			c = checkBraceMatch
		default:
			lx.diags.add(pos, Warning, "include_check", fmt.Sprintf("unknown include_check type '%s' - ignoring", a.Text))
			continue
		}
		if remove {
			lx.checks &^= c
		} else {
			lx.checks |= c | checkReadable
		}
	}
}

// maxBraceAlternatives bounds what a brace expression expands to.
const maxBraceAlternatives = 1024

// expandBraces expands csh-style brace expressions ("{a,b}c" to "ac",
// "bc"), as glob's GLOB_BRACE; false when there would be more than
// maxBraceAlternatives.
func expandBraces(p string) ([]string, bool) {
	out := []string{}
	var expand func(p string) bool
	expand = func(p string) bool {
		depth, start := 0, -1
		for i := 0; i < len(p); i++ {
			switch p[i] {
			case '{':
				if depth == 0 {
					start = i
				}
				depth++
			case '}':
				if depth == 0 {
					continue
				}
				depth--
				if depth > 0 {
					continue
				}
				parts := splitTopCommas(p[start+1 : i])
				if len(parts) < 2 {
					continue // "{a}" is no alternative
				}
				for _, part := range parts {
					if !expand(p[:start] + part + p[i+1:]) {
						return false
					}
				}
				return true
			}
		}
		if len(out) >= maxBraceAlternatives {
			return false
		}
		out = append(out, p)
		return true
	}
	ok := expand(p)
	return out, ok
}

// splitTopCommas splits s at the commas outside inner braces.
func splitTopCommas(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			if depth > 0 {
				depth--
			}
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

// include reads the files a name matches (a glob with brace expressions,
// relative to the including file's directory), in order. Problems are
// reported at the include line: as errors when the checks in force (those
// of include_check and of the variant kw) cover them, as warnings otherwise.
func (lx *lexer) include(kw, pattern string, pos Pos) {
	if pattern == "" {
		lx.diags.add(pos, Error, kw, "missing file name")
		return
	}
	checks := lx.checks | includeKinds[kw]
	level := func(c includeChecks) Level {
		if checks&c != 0 {
			return Error
		}
		return Warning
	}
	alts, ok := expandBraces(pattern)
	if !ok {
		lx.diags.add(pos, Error, kw, fmt.Sprintf("%q expands to more than %d names", pattern, maxBraceAlternatives))
		return
	}
	braced := len(alts) > 1 || alts[0] != pattern
	var matches []string
	missingAlt := false
	for _, alt := range alts {
		pat := alt
		if !filepath.IsAbs(pat) {
			pat = filepath.Join(filepath.Dir(pos.File), pat)
		}
		m, err := lx.glob(pat)
		if err != nil {
			lx.diags.add(pos, Error, kw, fmt.Sprintf("bad pattern %q: %v", alt, err))
			continue
		}
		if len(m) == 0 && !hasWildcard(alt) {
			missingAlt = true
		}
		sort.Strings(m)
		matches = append(matches, m...)
	}
	switch {
	case braced && missingAlt && len(matches) == 0:
		lx.diags.add(pos, level(checkBraceMatch), kw, fmt.Sprintf("no file matches %q", pattern))
	case braced && missingAlt:
		lx.diags.add(pos, level(checkBraceMatch), kw, fmt.Sprintf("some files of %q are missing", pattern))
	case !braced && len(matches) == 0 && hasWildcard(pattern):
		lx.diags.add(pos, level(checkWildcardMatch), kw, fmt.Sprintf("no file matches %q", pattern))
	case !braced && len(matches) == 0:
		p := pattern
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(pos.File), p)
		}
		lx.diags.add(pos, level(checkMatch|checkWildcardMatch), kw, fmt.Sprintf("cannot read %s: no such file", p))
	}
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.IsDir() {
			lx.diags.add(pos, level(checkAll), kw, fmt.Sprintf("%s is a directory - skipping", m))
			continue
		}
		lx.readFile(m, pos, false, level(checkAll))
	}
}

func hasWildcard(s string) bool { return strings.ContainsAny(s, "*?[") }
