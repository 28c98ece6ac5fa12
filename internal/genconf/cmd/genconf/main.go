// Command genconf writes a large keepalived.conf for benchmarks:
// genconf [-vs 10000] [-rs 10] > big.conf
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/lvsd/lvsd/internal/genconf"
)

func main() {
	vs := flag.Int("vs", 10000, "virtual servers")
	rs := flag.Int("rs", 10, "real servers per virtual server")
	flag.Parse()
	if err := genconf.Write(os.Stdout, *vs, *rs); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
