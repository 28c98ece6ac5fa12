package manpage

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func convert(t *testing.T, md string) string {
	t.Helper()
	out, err := Convert([]byte(md), Page{Source: "src", Manual: "man"})
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestConvertBlocks(t *testing.T) {
	md := "# tool(8)\n\n## NAME\n\ntool — does\nthings\n\n## SYNOPSIS\n\n```\ntool [-x]\n.dot line\n\nback\\slash\n```\n\n" +
		"## DESCRIPTION\n\nA `--flag` and **bold** and *it* and snake_case_name and a*b*c.\n.starts with a dot\n\n" +
		"- one\n  continued\n- two\n\n   ```\n   nested\n   ```\n\n1. first\n2. second\n\n### Sub\n\n" +
		"| Option | |\n|---|---|\n| `-x` | the x \\| pipe |\n| `a|b` | in code |\n\n" +
		"| Metric | Type | Labels | |\n|---|---|---|---|\n| `m` | gauge | | text |\n\n" +
		"`/etc/file`\n: the file,\nread at start.\n\nSee [the guide](guide.md) and [site](https://example.com/x).\n"
	got := convert(t, md)
	for _, want := range []string{
		".TH \"TOOL\" 8 \"\" \"src\" \"man\"\n",
		".SH \"NAME\"\n.PP\ntool \\- does things\n",
		".nf\ntool [-x]\n\\&.dot line\n.sp\nback\\eslash\n.fi\n",
		"A \\fB\\%\\-\\-flag\\fR and \\fBbold\\fR and \\fIit\\fR and snake_case_name and a*b*c.\n\\&.starts with a dot\n",
		".IP \\(bu 2\none\ncontinued\n.IP \\(bu 2\ntwo\n.RS\n.PP\n.RS 4\n.nf\nnested\n.fi\n.RE\n.RE\n",
		".IP 1. 4\nfirst\n.IP 2. 4\nsecond\n",
		".SS \"Sub\"\n",
		".TP\n\\fB\\%\\-x\\fR\nthe x | pipe\n.TP\n\\fB\\%a|b\\fR\nin code\n",
		".TP\n\\fB\\%m\\fR\nType: gauge\n.br\ntext\n",
		".TP\n\\fB\\%/etc/file\\fR\nthe file,\nread at start.\n",
		"See the guide and site (https://example.com/x).\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

func TestConvertEscapes(t *testing.T) {
	got := convert(t, "# x(5)\n\n## A\n\nem — dash, ≠, × and ☃ and \\*literal\\*\n")
	if want := "em \\(em dash, \\(!=, \\(mu and \\[u2603] and *literal*\n"; !strings.Contains(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, l := range strings.Split(got, "\n") {
		for _, r := range l {
			if r > 0x7f {
				t.Errorf("non-ASCII %q in %q", r, l)
			}
		}
	}
}

func TestConvertErrors(t *testing.T) {
	for _, c := range []struct{ md, want string }{
		{"no title\n", "line 1: want a title"},
		{"# x(8)\n\n```\nopen\n", "line 3: code block not closed"},
		{"# x(8)\n\n| a | b |\n| c | d |\n", "line 3: a table header without"},
		{"# x(8)\n\n| a | b |\n|---|---|\n| c |\n", "line 5: 1 cells, the header has 2"},
		{"# x(8)\n\n# y(8)\n", "line 3: a second title"},
	} {
		_, err := Convert([]byte(c.md), Page{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want %q", c.md, err, c.want)
		}
	}
}

// TestPagesFresh fails when packaging/man holds pages that are not what
// the Markdown manual generates: run `make man` and commit the result.
func TestPagesFresh(t *testing.T) {
	for _, p := range Pages {
		md, err := os.ReadFile(filepath.Join("..", "..", "docs", p.Markdown))
		if err != nil {
			t.Fatal(err)
		}
		want, err := Convert(md, Lvsd)
		if err != nil {
			t.Fatalf("docs/%s:%v", p.Markdown, err)
		}
		have, err := os.ReadFile(filepath.Join("..", "..", "packaging", "man", p.Man))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(have, want) {
			t.Errorf("packaging/man/%s is stale: it is not generated from docs/%s (run make man)", p.Man, p.Markdown)
		}
	}
}

// TestPagesRender renders the committed pages as lintian does (man
// --warnings) and with groff's every warning: nothing may be printed on
// standard error, and the page must show its sections.
func TestPagesRender(t *testing.T) {
	if _, err := exec.LookPath("man"); err != nil {
		t.Skip("man is not installed")
	}
	for _, p := range Pages {
		path := filepath.Join("..", "..", "packaging", "man", p.Man)
		var stdout, stderr bytes.Buffer
		cmd := exec.Command("man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", path)
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "LC_ALL=C.UTF-8")
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("man --warnings -l %s: %v\n%s", p.Man, err, stderr.String())
		}
		stderr.Reset()
		cmd = exec.Command("groff", "-ww", "-man", "-Tutf8", "-z", path)
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("groff -ww %s: %v\n%s", p.Man, err, stderr.String())
		}
		stdout.Reset()
		cmd = exec.Command("man", "-l", path)
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat", "LC_ALL=C.UTF-8")
		cmd.Stdout = &stdout
		if err := cmd.Run(); err != nil {
			t.Fatalf("man -l %s: %v", p.Man, err)
		}
		for _, s := range []string{"NAME\n", "SEE ALSO\n"} {
			if !strings.Contains(stdout.String(), s) {
				t.Errorf("man -l %s: no section %q in:\n%s", p.Man, s, stdout.String())
			}
		}
	}
}
