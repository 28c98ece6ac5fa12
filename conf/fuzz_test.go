package conf

import (
	"os"
	"path/filepath"
	"testing"
)

// corpusFiles returns the shared keepalived.conf corpus (../shared/corpus beside the repository).
func corpusFiles(tb testing.TB) []string {
	tb.Helper()
	files, _ := filepath.Glob(filepath.Join("..", "..", "shared", "corpus", "*", "*"))
	if len(files) == 0 {
		tb.Fatalf("no corpus files under ../../shared/corpus (the shared folder must sit beside the repository)")
	}
	return files
}

func seedFuzz(f *testing.F) {
	for _, file := range corpusFiles(f) {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	for _, s := range []string{
		"$A=$A $A\n$A\n",
		"$A= \\\n$A \\\n$A\n$A\n",
		"~SEQ(A,0,999999) ~SEQ(B,0,999999) x ${A}${B}\n",
		"vrrp_instance X{{{{{{{{{{\n}}}}}}}}}}}}}\n",
		"include *\ninclude /dev/null\ninclude /proc/self/fd/0\n",
		"include * *", // once read this package's sources through the glob
		"\"unterminated\n'x\\\n@^ @ @@ $ ${ ${} ${_RANDOM 9 1}\n",
		"virtual_server 1.2.3.4-9/33 {\nreal_server ::1 99999 {\nHTTP_GET { url { status_code 99-1 } }\n}\n}\n",
	} {
		f.Add(s)
	}
}

// FuzzLex drives the lexer alone: no input may panic or run away.
func FuzzLex(f *testing.F) {
	seedFuzz(f)
	f.Fuzz(func(t *testing.T, text string) {
		d := &diagList{}
		lines := 0
		lx := newLexer("fuzz", d, func(toks []Token, pos Pos) {
			lines++
			if len(toks) == 0 {
				t.Fatalf("%v: empty token line emitted", pos)
			}
			if pos.Line < 1 {
				t.Fatalf("token line without a line number: %+v", pos)
			}
		})
		lx.maxExp = 10000
		lx.fsRead, lx.glob = noFile, noGlob // includes must not read this machine's files
		lx.lexText(text, "fuzz.conf")
		if lines > lx.maxExp+len(text)+1 {
			t.Fatalf("%d lines from %d bytes: the expansion budget did not hold", lines, len(text))
		}
	})
}

// FuzzParse drives the whole pipeline: lexer, tree, model, validation.
func FuzzParse(f *testing.F) {
	seedFuzz(f)
	f.Fuzz(func(t *testing.T, text string) {
		cfg, diags := parseText("fuzz.conf", text, Options{ConfigID: "fuzz", InterfaceExists: func(string) bool { return true }}, 10000, true)
		if cfg == nil {
			t.Fatal("nil config")
		}
		for _, d := range diags {
			if d.Msg == "" {
				t.Fatalf("diagnostic without a message: %+v", d)
			}
		}
		for _, in := range cfg.Instances {
			if in.VRID < 1 || in.VRID > 255 || in.Priority < 1 || in.Priority > 255 {
				t.Fatalf("instance %s kept with VRID %d priority %d", in.Name, in.VRID, in.Priority)
			}
		}
	})
}
