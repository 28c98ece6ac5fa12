//go:build lvsdbench

// The soak benchmark's build (scripts/bench-soak.sh, go build -tags
// lvsdbench): this host's kernel has no IPVS, so the daemon programs an
// in-memory table instead (memKernel, one table shared by the reconciler and
// the status reader) and runs its checks for real. LVSD_BENCH_PPROF=addr
// serves net/http/pprof there, for heap and goroutine profiles. Never in
// the released binary.
package main

import (
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"

	"github.com/lvsd/lvsd/ipvs"
)

func init() {
	mk := newMemKernel()
	defaultNewKernel = func() (ipvs.Kernel, error) { return mk, nil }
	if addr := os.Getenv("LVSD_BENCH_PPROF"); addr != "" {
		go func() {
			if err := http.ListenAndServe(addr, nil); err != nil {
				slog.Error("LVSD_BENCH_PPROF", "err", err)
			}
		}()
	}
}
