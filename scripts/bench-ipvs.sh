#!/usr/bin/env bash
# IPVS programming at 1,000, 10,000 and 100,000 real servers (issue 17,
# target 5): lvsd, keepalived 2.2.7, ipvsadm -R and the reconciler in-process
# on the lab VM's kernel (QEMU; the host may have no IPVS), each run in a fresh
# network namespace, side by side in the same VM run. Prints Markdown for
# docs/BENCHMARKS.md. Long (20-40 minutes under TCG): part of `make bench`,
# not of CI (the test skips without LVSD_LAB_BENCH). LVSD_LAB_BENCH_SIZES
# (virtual servers × 10, default 100,1000,10000), LVSD_LAB_BENCH_REPS
# (default 3) and LVSD_IPVS_BENCH_CAP (per phase, default 5m) bound it;
# LVSD_BENCH_NO_VM=1 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
if [ -n "${LVSD_BENCH_NO_VM:-}" ]; then
  echo "bench-ipvs: skipped (LVSD_BENCH_NO_VM)" >&2
  exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "## IPVS programming (issue 17): $(date -u '+%F %H:%M UTC'), load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
echo
LVSD_INTEGRATION=1 LVSD_LAB_BENCH=1 LVSD_LAB_BENCH_MD="$tmp/ipvs.md" LVSD_LAB_BENCH_PROFILE_DIR="$tmp" \
  go test -count=1 -timeout 160m -run '^TestIPVSBenchLab$' ./integration > "$tmp/test.log" 2>&1 \
  || { tail -60 "$tmp/test.log" >&2; exit 1; }
cat "$tmp/ipvs.md"
for p in "$tmp"/*.pprof; do
  [ -f "$p" ] || continue
  echo
  echo "lvsd's CPU profile ($(basename "$p"), top 25 cumulative):"
  echo
  echo '```'
  go tool pprof -top -cum -nodecount 25 "$p" 2>/dev/null | sed -n '1,35p'
  echo '```'
done
