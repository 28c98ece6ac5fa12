// Package genconf writes large, valid keepalived.conf files for benchmarks.
package genconf

import (
	"bufio"
	"fmt"
	"io"
)

// Write writes nVS virtual servers with nRS real servers each, every real server
// with a TCP_CHECK: 66 lines per virtual server at nRS = 10. Virtual
// servers live in 203.0.113.0/24 (ports 1024 upwards), real servers in
// 198.51.100.0/24 and 192.0.2.0/24 (documentation ranges).
func Write(w io.Writer, nVS, nRS int) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	fmt.Fprintf(bw, "! generated: %d virtual servers x %d real servers, TCP_CHECK\nglobal_defs {\n    router_id bench\n}\n\n", nVS, nRS)
	for v := 0; v < nVS; v++ {
		fmt.Fprintf(bw, "virtual_server 203.0.113.%d %d {\n", 1+v%250, 1024+v/250)
		bw.WriteString("    delay_loop 6\n    lb_algo wrr\n    lb_kind NAT\n    protocol TCP\n")
		for r := 0; r < nRS; r++ {
			n := v*nRS + r
			fmt.Fprintf(bw, "    real_server %s %d {\n        weight %d\n        TCP_CHECK {\n            connect_port %d\n        }\n    }\n",
				rsAddr(n), 8000+r, 1+r%5, 8000+r)
		}
		bw.WriteString("}\n")
	}
	return bw.Flush()
}

func rsAddr(n int) string {
	if n%2 == 0 {
		return fmt.Sprintf("198.51.100.%d", 1+(n/2)%254)
	}
	return fmt.Sprintf("192.0.2.%d", 1+(n/2)%254)
}
