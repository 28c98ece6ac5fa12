package conf

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// lexTree runs the lexer and the tree builder on text (no model, no
// validation), so that each lexer rule can be checked on the statements it yields.
func lexTree(t *testing.T, name, text, configID string) (*Node, []Diag) {
	t.Helper()
	d := &diagList{}
	tb := newTreeBuilder(d)
	lx := newLexer(configID, d, tb.line)
	lx.lexText(text, name)
	return tb.finish(), d.list
}

// lexTreeFile is lexTree on a file, as Load reads it (includes relative to it).
func lexTreeFile(t *testing.T, path, configID string) (*Node, []Diag, []string) {
	t.Helper()
	d := &diagList{}
	tb := newTreeBuilder(d)
	lx := newLexer(configID, d, tb.line)
	lx.readFile(path, Pos{}, true, Fatal)
	return tb.finish(), d.list, lx.files
}

// renderTree prints one statement a line: two spaces of indent per level, the
// keyword, the arguments (quoted ones as Go strings, so "a b" stays visibly one
// token) and " {" when the statement opens a block. With pos non-nil each line
// starts with pos(file):line.
func renderTree(n *Node, pos func(Pos) string) []string {
	var out []string
	var walk func(n *Node, depth int)
	walk = func(n *Node, depth int) {
		for _, c := range n.Children {
			var b strings.Builder
			if pos != nil {
				b.WriteString(pos(c.Pos))
				b.WriteByte(' ')
			}
			b.WriteString(strings.Repeat("  ", depth))
			b.WriteString(c.Key)
			for _, a := range c.Args {
				b.WriteByte(' ')
				if a.Quoted {
					b.WriteString(strconv.Quote(a.Text))
				} else {
					b.WriteString(a.Text)
				}
			}
			if c.HasBlock {
				b.WriteString(" {")
			}
			out = append(out, b.String())
			walk(c, depth+1)
		}
	}
	walk(n, 0)
	return out
}

func lineNo(p Pos) string { return strconv.Itoa(p.Line) }

func diffLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("statements:\n got:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

func diagStrings(diags []Diag) []string {
	out := make([]string, 0, len(diags))
	for _, d := range diags {
		if !isDefaultingWarning(d) {
			out = append(out, d.String())
		}
	}
	return out
}

// isDefaultingWarning matches keepalived's warnings for a virtual server that
// names no protocol, scheduler or forwarding method. Tests that are about
// something else ignore them; TestDefaultsVirtualServerWarnings asserts them.
func isDefaultingWarning(d Diag) bool {
	return d.Level == Warning && (strings.HasSuffix(d.Msg, "no protocol set - defaulting to UDP") ||
		strings.HasSuffix(d.Msg, "no scheduler set, setting default 'wlc'") ||
		strings.HasSuffix(d.Msg, "no forwarding method set, setting default NAT"))
}

// writeFiles creates files (path relative to dir → content) and returns dir.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestLexRules has one row per lexer rule: text in, statements out (with the
// line each comes from), and the exact diagnostics.
func TestLexRules(t *testing.T) {
	tests := []struct {
		rule  string
		id    string // ConfigID
		in    string
		want  []string // "line: statement"
		diags []string
	}{
		// Comments: # and ! start a comment anywhere outside quotes.
		{rule: "hash comment line", in: "# all of it\nrouter_id a", want: []string{"2: router_id a"}},
		{rule: "bang comment line", in: "! all of it\nrouter_id a", want: []string{"2: router_id a"}},
		{rule: "indented comment", in: "   \t# x\nrouter_id a", want: []string{"2: router_id a"}},
		{rule: "hash after words", in: "router_id a # b c", want: []string{"1: router_id a"}},
		{rule: "bang after words", in: "router_id a ! b c", want: []string{"1: router_id a"}},
		{rule: "hash inside a word", in: "router_id a#b", want: []string{"1: router_id a"}},
		{rule: "bang inside a word", in: "router_id a!b", want: []string{"1: router_id a"}},
		{rule: "comment hides a brace", in: "a {\n b # }\n}", want: []string{"1: a {", "2:   b"}},
		{rule: "hash in double quotes is text", in: `router_id "a # b"`, want: []string{`1: router_id "a # b"`}},
		{rule: "bang in single quotes is text", in: `router_id 'a ! b'`, want: []string{`1: router_id "a ! b"`}},
		{rule: "comment after a quoted string", in: `router_id "a#" # b`, want: []string{`1: router_id "a#"`}},

		// Quoted strings: one token, white space kept, escapes resolved.
		{rule: "double quotes keep spaces", in: `notify "/bin/x  -a b"`, want: []string{`1: notify "/bin/x  -a b"`}},
		{rule: "single quotes keep spaces", in: `notify '/bin/x -a b'`, want: []string{`1: notify "/bin/x -a b"`}},
		{rule: "other quote inside single quotes", in: `notify '/bin/x "a b"'`, want: []string{`1: notify "/bin/x \"a b\""`}},
		{rule: "other quote inside double quotes", in: `notify "/bin/x 'a b'"`, want: []string{`1: notify "/bin/x 'a b'"`}},
		{rule: "escaped double quote", in: `send "a\"b"`, want: []string{`1: send "a\"b"`}},
		{rule: "escaped backslash", in: `send "a\\b"`, want: []string{`1: send "a\\b"`}},
		{rule: "escaped single quote", in: `send 'it\'s'`, want: []string{`1: send "it's"`}},
		{rule: "escape sequences", in: `send "GET / HTTP/1.0\r\n\tx"`, want: []string{`1: send "GET / HTTP/1.0\r\n\tx"`}},
		{rule: "unknown escape is the character", in: `send "\q\$"`, want: []string{`1: send "q$"`}},
		{rule: "empty quoted string is a token", in: `a "" b`, want: []string{`1: a "" b`}},
		{rule: "quote ends a word", in: `a b"c d"e`, want: []string{`1: a b "c d" e`}},
		{rule: "quoted braces are text", in: `a "{" "}"`, want: []string{`1: a "{" "}"`}},
		{rule: "quoted keyword", in: `"a b" c`, want: []string{`1: a b c`}}, // the key loses its quoting
		{rule: "unterminated quote drops the line", in: "a \"b\nc", want: []string{"2: c"},
			diags: []string{"t.conf:1: error: unterminated quoted string"}},

		// Braces are tokens of their own.
		{rule: "brace glued to the name", in: "vrrp_instance VI_1{\n state MASTER\n}",
			want: []string{"1: vrrp_instance VI_1 {", "2:   state MASTER"}},
		{rule: "brace glued on both sides", in: "a{b}", want: []string{"1: a {", "1:   b"}},
		{rule: "block on one line", in: "track_interface { eth0 }", want: []string{"1: track_interface {", "1:   eth0"}},
		{rule: "several statements on one line", in: "a { b 1 } c { d { e } }",
			want: []string{"1: a {", "1:   b 1", "1: c {", "1:   d {", "1:     e"}},
		{rule: "brace on the next line opens the previous statement", in: "vrrp_instance VI_1\n{\n  state BACKUP\n}",
			want: []string{"1: vrrp_instance VI_1 {", "3:   state BACKUP"}},
		{rule: "brace on the next line after a comment", in: "a # x\n\n  {  # y\n b\n}",
			want: []string{"1: a {", "4:   b"}},
		{rule: "text after a closing brace belongs to the parent", in: "a {\n b {\n  10.0.0.1 } priority 50\n}",
			want: []string{"1: a {", "2:   b {", "3:     10.0.0.1", "3:   priority 50"}},
		{rule: "closing brace then a new block", in: "a {\n} b {\n}", want: []string{"1: a {", "2: b {"}},
		{rule: "empty block", in: "a {}", want: []string{"1: a {"}},

		// Conditional lines.
		{rule: "@ID matching", id: "main", in: "@main router_id m", want: []string{"1: router_id m"}},
		{rule: "@ID not matching", id: "backup", in: "@main router_id m\nx", want: []string{"2: x"}},
		{rule: "@^ID matching is dropped", id: "main", in: "@^main a\n@^backup b", want: []string{"2: b"}},
		{rule: "@ID with tabs and indent", id: "main", in: "  @main\t\tpriority 200", want: []string{"1: priority 200"}},
		{rule: "@ID alone is nothing", id: "main", in: "@main\n@^x\ny", want: []string{"3: y"}},
		{rule: "@ID is a whole word", id: "main", in: "@mai a\n@main2 b\n@main c", want: []string{"3: c"}},
		{rule: "@ID in a block", id: "backup", in: "unicast_peer {\n @^main 1.2.3.4\n @^backup 1.2.3.5\n}",
			want: []string{"1: unicast_peer {", "2:   1.2.3.4"}},
		{rule: "@ID with a definition", id: "main", in: "@main $P=240\n@backup $P=200\npriority $P",
			want: []string{"3: priority 240"}},
		{rule: "definition producing @ID", id: "main", in: "$IF_MAIN=@main\n$IF_MAIN priority 240\n$IF_MAIN=@other\n$IF_MAIN priority 1",
			want: []string{"2: priority 240"}},

		// Definitions and substitution.
		{rule: "$X followed by white space", in: "$X=1\npriority $X \nweight $X\t2", want: []string{"2: priority 1", "3: weight 1 2"}},
		{rule: "$X at the end of the line", in: "$X=1\npriority $X", want: []string{"2: priority 1"}},
		{rule: "${X} needs no white space", in: "$X=1\nip 10.${X}.0.${X}0/24", want: []string{"2: ip 10.1.0.10/24"}},
		{rule: "$X glued to more text stays", in: "$X=1\na $X. $Xb ${X}b", want: []string{"2: a $X. $Xb 1b"}},
		{rule: "$X after a word", in: "$X=1\na b$X", want: []string{"2: a b1"}},
		{rule: "undefined stays as is", in: "$X=1\nscript \"/bin/sh -c 'echo $HOME ${UNDEF}'\"\na $Y $",
			want: []string{`2: script "/bin/sh -c 'echo $HOME ${UNDEF}'"`, "3: a $Y $"}},
		// As in keepalived, the braces of an undefined ${Z} outside quotes are braces.
		{rule: "undefined ${Z} unquoted splits at its braces", in: "$X=1\na ${Z}", want: []string{"2: a $ {", "2:   Z"}},
		{rule: "substitution inside quotes", in: "$D=/usr/bin\nnotify \"${D}/n.sh a b\"", want: []string{`2: notify "/usr/bin/n.sh a b"`}},
		{rule: "value with spaces makes several tokens", in: "$V=1 2  3\na $V", want: []string{"2: a 1 2 3"}},
		{rule: "empty value", in: "$E=\na $E b", want: []string{"2: a b"}},
		{rule: "value with a brace opens a block", in: "$B=b {\na $B\n c\n}", want: []string{"2: a b {", "3:   c"}},
		{rule: "space before = is no definition", in: "$X =1", want: []string{"1: $X =1"}},
		{rule: "name starting with a digit is no definition", in: "$1X=1", want: []string{"1: $1X=1"}},
		{rule: "indented definition", in: "  \t$X=1\na $X", want: []string{"2: a 1"}},
		{rule: "redefinition takes effect from there", in: "$X=1\na $X\n$X=2\nb $X", want: []string{"2: a 1", "4: b 2"}},
		{rule: "replacement is recursive, at use time (man page)",
			in:   "$ADDRESS_BASE=10.2.${ADDRESS_BASE_SUB}\n$ADDRESS_BASE_SUB=0\n${ADDRESS_BASE}.100/32\n$ADDRESS_BASE_SUB=10\n${ADDRESS_BASE}.100/32",
			want: []string{"3: 10.2.0.100/32", "5: 10.2.10.100/32"}},
		{rule: "recursion without braces needs white space", in: "$A=$B\n$B=x\nk $A", want: []string{"3: k x"}},
		{rule: "self reference stops", in: "$A=${A}\nk \"${A}\"", want: []string{`2: k "${A}"`},
			diags: []string{"t.conf:2: error: definition substitution does not terminate"}},
		{rule: "multi-line definition makes a block (man page)", id: "high",
			in: "$INSTANCE= \\\nvrrp_instance VI_${NUM} { \\\n    interface eth0.${NUM} \\\n    @high priority 130 \\\n    @low priority 120 \\\n    virtual_ipaddress { \\\n        10.0.${NUM}.254/24 \\\n    } \\\n}\n\n$NUM=0\n$INSTANCE\n$NUM=1\n$INSTANCE",
			want: []string{
				"12: vrrp_instance VI_0 {", "12:   interface eth0.0", "12:   priority 130", "12:   virtual_ipaddress {", "12:     10.0.0.254/24",
				"14: vrrp_instance VI_1 {", "14:   interface eth0.1", "14:   priority 130", "14:   virtual_ipaddress {", "14:     10.0.1.254/24",
			}},
		{rule: "multi-line definition with a first line", in: "$M=a 1 \\\n b 2\nx\n$M", want: []string{"3: x", "4: a 1", "4: b 2"}},
		{rule: "nested multi-line definitions (man page)",
			in: "$RS= \\\nreal_server 192.168.${VS_NUM}.${RS_NUM} 80 { \\\n  weight ${RS_NUM} \\\n}\n" +
				"$VS= \\\nvirtual_server 10.0.${VS_NUM}.4 80 { \\\n  $RS_NUM=1 \\\n  $RS \\\n  $RS_NUM=2 \\\n  $RS \\\n}\n" +
				"$VS_NUM=0\n$VS\n$VS_NUM=1\n$VS",
			want: []string{
				"13: virtual_server 10.0.0.4 80 {",
				"13:   real_server 192.168.0.1 80 {", "13:     weight 1",
				"13:   real_server 192.168.0.2 80 {", "13:     weight 2",
				"15: virtual_server 10.0.1.4 80 {",
				"15:   real_server 192.168.1.1 80 {", "15:     weight 1",
				"15:   real_server 192.168.1.2 80 {", "15:     weight 2",
			}},
		{rule: "predefined _INSTANCE", id: "node7", in: "router_id ${_INSTANCE}", want: []string{"1: router_id node7"}},
		{rule: "predefined _PWD", in: "script \"${_PWD}/chk.sh\"", want: []string{`1: script "/etc/keepalived/chk.sh"`}},
		{rule: "predefined _HASH and _BANG in quotes", in: "send \"${_HASH}x${_BANG}\"", want: []string{`1: send "#x!"`}},
		{rule: "predefined _RANDOM with a range", in: "weight ${_RANDOM 7 7}\nw2 ${_RANDOM 3 3}", want: []string{"1: weight 7", "2: w2 3"}},
		{rule: "user definition shadows nothing predefined", in: "$_HASH=h\na ${_HASH}", want: []string{"2: a h"}},

		// Sequences.
		{rule: "~SEQ start, end (man page)", in: "~SEQ(SUBNET, 0, 3) ip_address 10.0.${SUBNET}.1",
			want: []string{"1: ip_address 10.0.0.1", "1: ip_address 10.0.1.1", "1: ip_address 10.0.2.1", "1: ip_address 10.0.3.1"}},
		{rule: "~SEQ start, step, end", in: "~SEQ(N, 10, 5, 20) n $N", want: []string{"1: n 10", "1: n 15", "1: n 20"}},
		{rule: "~SEQ end only", in: "~SEQ(N, 3) n $N", want: []string{"1: n 1", "1: n 2", "1: n 3"}},
		{rule: "~SEQ negative end", in: "~SEQ(N, -2) n $N", want: []string{"1: n -1", "1: n -2"}},
		{rule: "~SEQ counting down", in: "~SEQ(N, 3, 1) n $N", want: []string{"1: n 3", "1: n 2", "1: n 1"}},
		{rule: "~SEQ empty range", in: "~SEQ(N, 3, 1, 1) n $N\nx", want: []string{"2: x"}},
		{rule: "~SEQx is hexadecimal (man page)", in: "~SEQx(SUBNET, 0x90, 0x10, 0xc0) ip_address fe80::20:${SUBNET}:1",
			want: []string{"1: ip_address fe80::20:90:1", "1: ip_address fe80::20:a0:1", "1: ip_address fe80::20:b0:1", "1: ip_address fe80::20:c0:1"}},
		{rule: "~SEQ nested on one line", in: "~SEQ(A, 1, 2) ~SEQ(B, 0, 1) x${A}${B}",
			want: []string{"1: x10", "1: x11", "1: x20", "1: x21"}},
		{rule: "~SEQ in a block", in: "virtual_ipaddress {\n ~SEQ(I, 1, 2) 10.0.0.${I}\n}",
			want: []string{"1: virtual_ipaddress {", "2:   10.0.0.1", "2:   10.0.0.2"}},
		{rule: "~SEQ with a multi-line definition", in: "$B= \\\nb$I { \\\n}\n~SEQ(I, 1, 2) $B",
			want: []string{"4: b1 {", "4: b2 {"}},
		{rule: "~SEQ malformed", in: "~SEQ(N 1 2) x\ny", want: []string{"2: y"},
			diags: []string{"t.conf:1: error: ~SEQ: malformed sequence: want ~SEQ(var, start, step, end)"}},
		{rule: "~SEQ bad number", in: "~SEQ(N, 1, z) x", want: nil,
			diags: []string{`t.conf:1: error: ~SEQ: bad number "z"`}},
	}
	for _, tc := range tests {
		t.Run(tc.rule, func(t *testing.T) {
			root, diags := lexTree(t, "/etc/keepalived/t.conf", tc.in, tc.id)
			got := renderTree(root, func(p Pos) string { return lineNo(p) + ":" })
			diffLines(t, got, tc.want)
			gotDiags := diagStrings(diags)
			for i := range gotDiags {
				gotDiags[i] = strings.TrimPrefix(gotDiags[i], "/etc/keepalived/")
			}
			diffLines(t, gotDiags, tc.diags)
		})
	}
}

// TestLexRandomRange checks ${_RANDOM MIN MAX} stays within its bounds and the
// default range is [0, 32767].
func TestLexRandomRange(t *testing.T) {
	root, diags := lexTree(t, "t.conf", "~SEQ(I, 1, 200) r ${_RANDOM 5 9} ${_RANDOM}", "")
	if len(diags) != 0 {
		t.Fatalf("diags: %v", diags)
	}
	if len(root.Children) != 200 {
		t.Fatalf("%d lines, want 200", len(root.Children))
	}
	seen := map[string]bool{}
	for _, n := range root.Children {
		w := n.Words()
		a, err := strconv.Atoi(w[0])
		if err != nil || a < 5 || a > 9 {
			t.Fatalf("${_RANDOM 5 9} = %q", w[0])
		}
		seen[w[0]] = true
		b, err := strconv.Atoi(w[1])
		if err != nil || b < 0 || b > 32767 {
			t.Fatalf("${_RANDOM} = %q", w[1])
		}
	}
	if len(seen) < 2 {
		t.Errorf("200 draws of ${_RANDOM 5 9} all gave %v", seen)
	}
}

// TestLexTokenText checks the exact text and quoting of tokens, which the
// rendering above shows only indirectly.
func TestLexTokenText(t *testing.T) {
	root, diags := lexTree(t, "t.conf", `misc_path "/bin/check -a 'x y'" plain 'single' "" "t\tab"`, "")
	if len(diags) != 0 {
		t.Fatalf("diags: %v", diags)
	}
	n := root.Children[0]
	want := []Token{
		{Text: "/bin/check -a 'x y'", Quoted: true},
		{Text: "plain"},
		{Text: "single", Quoted: true},
		{Text: "", Quoted: true},
		{Text: "t\tab", Quoted: true},
	}
	if n.Key != "misc_path" || fmt.Sprint(n.Args) != fmt.Sprint(want) {
		t.Errorf("got %s %v, want misc_path %v", n.Key, n.Args, want)
	}
	if n.Pos != (Pos{File: "t.conf", Line: 1}) {
		t.Errorf("pos %v", n.Pos)
	}
}

// TestLexInclude covers include: globs (sorted, non-matching names skipped),
// paths relative to the including file, nesting, includes inside a block, and
// the file:line of every statement read from an included file.
func TestLexInclude(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"main.conf": "global_defs {\n" + // 1
			"  router_id main\n" + // 2
			"}\n" + // 3
			"include conf.d/*.conf\n" + // 4
			"include sub/inner.conf\n" + // 5
			"vrrp_instance VI_9 {\n" + // 6
			"  include vi9.inc # comment\n" + // 7
			"  priority 9\n" + // 8
			"}\n", // 9
		"conf.d/b.conf":  "\n\nvrrp_script b {\n  script /b\n}\n",
		"conf.d/a.conf":  "vrrp_script a {\n  script /a\n}\n",
		"conf.d/c.txt":   "never read\n",
		"sub/inner.conf": "# inner\ninclude more.conf\nrouter_id inner\n",
		"sub/more.conf":  "\n\n\nmore 1\n",
		"vi9.inc":        "interface eth0\nvirtual_router_id 9\n",
	})
	main := filepath.Join(dir, "main.conf")
	root, diags, files := lexTreeFile(t, main, "")
	if len(diags) != 0 {
		t.Fatalf("diags: %v", diagStrings(diags))
	}
	rel := func(p Pos) string {
		r, _ := filepath.Rel(dir, p.File)
		return fmt.Sprintf("%s:%d", r, p.Line)
	}
	diffLines(t, renderTree(root, rel), []string{
		"main.conf:1 global_defs {",
		"main.conf:2   router_id main",
		"conf.d/a.conf:1 vrrp_script a {",
		"conf.d/a.conf:2   script /a",
		"conf.d/b.conf:3 vrrp_script b {",
		"conf.d/b.conf:4   script /b",
		"sub/more.conf:4 more 1",
		"sub/inner.conf:3 router_id inner",
		"main.conf:6 vrrp_instance VI_9 {",
		"vi9.inc:1   interface eth0",
		"vi9.inc:2   virtual_router_id 9",
		"main.conf:8   priority 9",
	})
	var relFiles []string
	for _, f := range files {
		r, _ := filepath.Rel(dir, f)
		relFiles = append(relFiles, r)
	}
	diffLines(t, relFiles, []string{"main.conf", "conf.d/a.conf", "conf.d/b.conf", "sub/inner.conf", "sub/more.conf", "vi9.inc"})

	// Through Load, the model keeps the included positions and Files lists them.
	cfg, _ := Load(main, Options{ConfigID: "x"})
	if len(cfg.Scripts) != 2 || cfg.Scripts[1].Pos != (Pos{File: filepath.Join(dir, "conf.d/b.conf"), Line: 3}) {
		t.Errorf("scripts: %+v", cfg.Scripts)
	}
	if len(cfg.Files) != 6 || cfg.Files[0] != main {
		t.Errorf("Files = %v", cfg.Files)
	}
}

// TestLexIncludeErrors: a cycle, a missing file and an unmatched glob are
// reported at the include line, and reading goes on. As keepalived, a plain
// include of a missing file is no configuration error (a warning); see
// TestLexIncludeChecks for the checks that make it one.
func TestLexIncludeErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"main.conf": "a 1\n" +
			"include loop1.conf\n" + // 2
			"include missing.conf\n" + // 3
			"include none/*.conf\n" + // 4
			"include self.conf\n" + // 5
			"include\n" + // 6
			"z 26\n",
		"loop1.conf": "b 1\ninclude loop2.conf\n",
		"loop2.conf": "c 1\n\ninclude loop1.conf\nd 1\n",
		"self.conf":  "e 1\ninclude self.conf\n",
	})
	main := filepath.Join(dir, "main.conf")
	root, diags, _ := lexTreeFile(t, main, "")
	diffLines(t, renderTree(root, nil), []string{"a 1", "b 1", "c 1", "d 1", "e 1", "z 26"})
	p := func(f string) string { return filepath.Join(dir, f) }
	diffLines(t, diagStrings(diags), []string{
		p("loop2.conf") + ":3: error: include: include cycle: " + p("loop1.conf") + " is already being read",
		p("main.conf") + ":3: warning: include: cannot read " + p("missing.conf") + ": no such file",
		p("main.conf") + ":4: warning: include: no file matches \"none/*.conf\"",
		p("self.conf") + ":2: error: include: include cycle: " + p("self.conf") + " is already being read",
		p("main.conf") + ":6: error: include: missing file name",
	})
}

// TestLexIncludeAbsolute: an absolute include path is used as it is, and a
// relative one in a Parse'd text is relative to the name's directory.
func TestLexIncludeAbsolute(t *testing.T) {
	dir := writeFiles(t, map[string]string{"abs.conf": "router_id abs\n", "d/rel.conf": "smtp_server 10.0.0.1\n"})
	text := "global_defs {\ninclude " + filepath.Join(dir, "abs.conf") + "\ninclude d/rel.conf\n}\n"
	cfg, diags := Parse(filepath.Join(dir, "virtual.conf"), text, Options{})
	if len(diags) != 0 {
		t.Fatalf("diags: %v", diagStrings(diags))
	}
	if cfg.Global.RouterID != "abs" || cfg.Global.SMTPServer != "10.0.0.1" {
		t.Errorf("router_id %q smtp_server %q", cfg.Global.RouterID, cfg.Global.SMTPServer)
	}
	if len(cfg.Files) != 3 || cfg.Files[1] != filepath.Join(dir, "abs.conf") || cfg.Files[2] != filepath.Join(dir, "d/rel.conf") {
		t.Errorf("Files = %v", cfg.Files)
	}
}

// TestLexMultiLineDefinitionLines: lines after a multi-line definition keep
// their own line numbers (the continuation lines are counted).
func TestLexMultiLineDefinitionLines(t *testing.T) {
	root, diags := lexTree(t, "t.conf", "$M= \\\n a \\\n b \\\n c\nafter 5\n$M\nlast 7", "")
	if len(diags) != 0 {
		t.Fatalf("diags: %v", diags)
	}
	diffLines(t, renderTree(root, func(p Pos) string { return lineNo(p) + ":" }),
		[]string{"5: after 5", "6: a", "6: b", "6: c", "7: last 7"})
}
