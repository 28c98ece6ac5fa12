#!/usr/bin/env bash
# Soak benchmark (issue 17, target 6): lvsd -C with 10,000 TCP_CHECKs
# (1,000 virtual servers x 10 real servers, delay_loop 10: 1,000 checks a
# second) for SOAK_DURATION (default 1h; e.g. SOAK_DURATION=3m to try the
# harness), a reload (SIGHUP) every 30 s and a /metrics scrape every 5 s;
# VmRSS, process_resident_memory_bytes, go_memstats_heap_inuse_bytes and
# go_goroutines must be flat from a sixth of the run on (10 min of an
# hour). In `make bench`, not in CI. Prints Markdown for docs/BENCHMARKS.md
# and exits non-zero when the soak fails.
#
# Natively on the host kernel, in a network namespace of its own where the
# real servers' addresses (198.51.100.0/24, 192.0.2.0/24) are local and the
# harness listens on their ports. This host's kernel has no IPVS: lvsd is
# built with -tags lvsdbench, which gives it an in-memory IPVS table
# (soak_lvsdbench.go) and pprof on LVSD_BENCH_PPROF; everything else is the
# daemon as shipped. Needs root. SOAK_OUT: where the log, samples and
# profiles go (default a new directory under /tmp, kept).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
[ "$(id -u)" = 0 ] || { echo "bench-soak: needs root (a network namespace)" >&2; exit 1; }
duration=${SOAK_DURATION:-1h}
out=${SOAK_OUT:-$(mktemp -d /tmp/lvsd-soak.XXXXXX)}
mkdir -p "$out"
ns=lvsdsoak$$
cleanup() {
  ip netns del "$ns" 2>/dev/null || true
}
trap cleanup EXIT
go build -tags lvsdbench -o "$out/lvsd-bench" .
go build -o "$out/soak" ./internal/soak/cmd/soak
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" route add local 198.51.100.0/24 dev lo
ip -n "$ns" route add local 192.0.2.0/24 dev lo
ip netns exec "$ns" "$out/soak" -lvsd "$out/lvsd-bench" -duration "$duration" -out "$out" ${SOAK_ARGS:-}
