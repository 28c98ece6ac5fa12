package lab

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// BirdRouter is the configuration of a BIRD 2 router for the BGP tests: it
// peers (eBGP, AS 65000 at addr) with the directors (AS 65001; protocol
// name → address), installs one kernel route per prefix with a next hop per
// director (merge paths), and sends them nothing. Hold time 3 s, retries
// after 1 s, so that the tests run in seconds.
func BirdRouter(addr string, directors map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `router id %s;
protocol device { scan time 1; }
protocol kernel {
  merge paths on;
  ipv4 { import none; export all; };
}
template bgp director {
  local %s as 65000;
  hold time 3;
  connect retry time 1;
  error wait time 1, 2;
  ipv4 { import all; export none; };
}
`, addr, addr)
	for _, n := range slices.Sorted(maps.Keys(directors)) {
		fmt.Fprintf(&b, "protocol bgp %s from director { neighbor %s as 65001; }\n", n, directors[n])
	}
	return b.String()
}
