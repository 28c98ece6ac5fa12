// Command genman writes lvsd's man pages from the Markdown manual:
// docs/lvsd.md → lvsd.8 and docs/lvsd.conf.md → lvsd.conf.5, in the
// directory -o (default packaging/man). Run from the module root (make man).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lvsd/lvsd/internal/manpage"
)

func main() {
	out := flag.String("o", "packaging/man", "output directory")
	docs := flag.String("docs", "docs", "directory of the Markdown pages")
	flag.Parse()
	for _, p := range manpage.Pages {
		md, err := os.ReadFile(filepath.Join(*docs, p.Markdown))
		if err != nil {
			fmt.Fprintln(os.Stderr, "genman:", err)
			os.Exit(1)
		}
		roff, err := manpage.Convert(md, manpage.Lvsd)
		if err != nil {
			fmt.Fprintf(os.Stderr, "genman: %s:%v\n", p.Markdown, err)
			os.Exit(1)
		}
		if err := os.WriteFile(filepath.Join(*out, p.Man), roff, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "genman:", err)
			os.Exit(1)
		}
	}
}
