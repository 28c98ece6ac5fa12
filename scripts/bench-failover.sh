#!/usr/bin/env bash
# Failover benchmark: lvsd and keepalived in the same run, with the shared
# failover_bench.py (network namespaces, a bridge, tcpdump on the wire).
# Modes kill (SIGKILL: Master_Down_Interval) and term (SIGTERM: priority 0,
# Skew_Time); VRRPv2 at advert_int 1s and VRRPv3 at 0.05s; TRIALS trials
# each (default 5). Prints a Markdown table for docs/BENCHMARKS.md.
# Needs root, iproute2, tcpdump, keepalived, python3. Every loop is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
TRIALS=${TRIALS:-5}
bench=${FAILOVER_BENCH:-}
for c in "$bench" ../shared/tools/failover_bench.py /work/shared/tools/failover_bench.py; do
  if [ -n "$c" ] && [ -f "$c" ]; then bench=$c; break; fi
done
[ -f "$bench" ] || { echo "failover_bench.py not found (set FAILOVER_BENCH)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench-failover: needs root (network namespaces)" >&2; exit 1; }
for t in ip tcpdump keepalived python3; do
  command -v "$t" >/dev/null || { echo "bench-failover: $t is missing (scripts/deps.sh)" >&2; exit 1; }
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 go build -o "$tmp/lvsd" .
declare -A cmd=(
  [lvsd]="$tmp/lvsd -P -n -l -f {conf} -p {dir}/{ns}.pid"
  [keepalived]="keepalived -P -n -l -f {conf} -p {dir}/{ns}.pid -r {dir}/{ns}.vrrp.pid"
)
run() { # daemon mode version advert -> "overhead vip" (medians, ms)
  local out
  out=$(timeout 900 python3 "$bench" --cmd "${cmd[$1]}" --mode "$2" --version "$3" --advert "$4" \
        --trials "$TRIALS" --tag "fb${1:0:1}${2:0:1}$3" 2>&1) || { echo "$out" >&2; echo "FAILED FAILED"; return; }
  echo "$out" >> "$tmp/raw.txt"
  sed -n 's/^median_overhead_ms=\([-0-9.]*\) median_vip_ms=\([-0-9.]*\)$/\1 \2/p' <<<"$out" | tail -1
}
echo "## VRRP failover (issue 4): lvsd vs keepalived"
echo
echo "$(date -u +%F), $(nproc) cores, $(keepalived --version 2>&1 | head -1), $TRIALS trials per row, load average at start $(cut -d' ' -f1-3 /proc/loadavg)."
echo "\`scripts/bench-failover.sh\` with \`$(basename "$bench")\`: overhead = takeover on the wire minus the"
echo "protocol's own wait (kill: last advert + Master_Down_Interval; term: priority 0 + Skew_Time);"
echo "vip = from the signal until the VIP is on the backup (polled every 2 ms)."
echo
echo "| mode | VRRP | advert_int | lvsd overhead ms | keepalived overhead ms | lvsd vip ms | keepalived vip ms | vip ratio lvsd/keepalived |"
echo "|:---|:---|---:|---:|---:|---:|---:|---:|"
for mode in kill term; do
  for va in "2 1" "3 0.05"; do
    set -- $va
    read -r lo lv < <(run lvsd "$mode" "$1" "$2")
    read -r ko kv < <(run keepalived "$mode" "$1" "$2")
    ratio=$(python3 -c "import sys
try: print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))
except Exception: print('n/a')" "$lv" "$kv")
    echo "| $mode | v$1 | ${2}s | $lo | $ko | $lv | $kv | $ratio |"
  done
done
echo
echo "Targets: median overhead no worse than keepalived's + 0.5 ms; v3 at 50 ms adverts: failover (vip) under 200 ms."
