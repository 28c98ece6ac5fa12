#!/usr/bin/env bash
# VRRP at scale (issue 17, target 4): lvsd and keepalived 2.2.7 in the same
# run, with scripts/vrrp_scale_bench.py (network namespaces on the host
# kernel, a bridge per interface, tcpdump on the bridges; no IPVS needed).
#   - steady: the daemon MASTER of 255 instances on one interface, and of
#     2 x 255 in 255 sync groups (eth0 VRID n with eth1 VRID n), VRRPv2 at
#     advert_int 1 and VRRPv3 at 0.1: CPU (utime+stime from /proc over a
#     fixed window) and the advert jitter from the wire;
#   - failover: kill -9 of a master of 255 instances, the daemon under test
#     the BACKUP: per VRID, its first advert after the master's last one.
# Prints Markdown for docs/BENCHMARKS.md. Needs root, iproute2, tcpdump,
# keepalived, python3. Runs about 4-5 minutes; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
[ "$(id -u)" = 0 ] || { echo "bench-vrrp-scale: needs root (network namespaces)" >&2; exit 1; }
for t in ip tcpdump keepalived python3; do
  command -v "$t" >/dev/null || { echo "bench-vrrp-scale: $t is missing (scripts/deps.sh)" >&2; exit 1; }
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 go build -o "$tmp/lvsd" .
STEADY_1S=${STEADY_1S:-20}   # CPU window at advert_int 1 (s)
STEADY_100MS=${STEADY_100MS:-10}
declare -A cmd=(
  [lvsd]="$tmp/lvsd -P -n -l -f {conf} -p {dir}/{ns}.pid"
  [keepalived]="keepalived -P -n -l -f {conf} -p {dir}/{ns}.pid -r {dir}/{ns}.vrrp.pid"
)
run() { # daemon args... -> one JSON line (or {"error": ...})
  local d=$1 out
  shift
  out=$(timeout 300 python3 scripts/vrrp_scale_bench.py --cmd "${cmd[$d]}" --tag "vs${d:0:1}" "$@" 2>&1) ||
    { echo "$out" >&2; echo '{"error": "failed"}'; return; }
  tail -1 <<<"$out" | tee -a "$tmp/raw.jsonl"
}
fmt() { # field JSON -> value
  python3 -c 'import json,sys
r = json.loads(sys.argv[2]); v = r.get(sys.argv[1])
print("FAILED" if "error" in r else ("n/a" if v is None else v))' "$1" "$2"
}
echo "## VRRP at scale (issue 17): lvsd vs keepalived"
echo
echo "$(date -u '+%F %H:%M UTC'), $(nproc) cores, $(keepalived --version 2>&1 | head -1), load average at start $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "Steady: the daemon MASTER of every instance, the capture the only listener; CPU = utime+stime over the"
echo "window (% of one CPU); jitter = |gap between two adverts of a VRID - advert_int|, over every VRID."
echo
echo "| instances | VRRP, advert_int | daemon | CPU % | adverts/s | jitter p50 ms | p99 ms | max ms |"
echo "|:---|:---|:---|---:|---:|---:|---:|---:|"
for shape in "1" "2 --sync"; do
  set -- $shape
  label="255 on eth0"; [ "$1" = 2 ] && label="2 × 255, 255 sync groups"
  for va in "2 1 $STEADY_1S" "3 0.1 $STEADY_100MS"; do
    read -r v a w <<<"$va"
    for d in lvsd keepalived; do
      j=$(run "$d" --phase steady --ifaces "$@" --version "$v" --advert "$a" --window "$w")
      rate=$(python3 -c 'import json,sys
r = json.loads(sys.argv[1])
print("%.0f" % (r["gaps"] / r["window_s"]) if "gaps" in r else "n/a")' "$j")
      echo "| $label | v$v, ${a} s | $d | $(fmt cpu_pct "$j") | $rate | $(fmt jitter_p50_ms "$j") | $(fmt jitter_p99_ms "$j") | $(fmt jitter_max_ms "$j") |"
    done
  done
done
echo
echo "Failover of 255 instances at once: kill -9 of the master (priority 150, the same daemon), the daemon"
echo "under test the BACKUP (priority 100). Per VRID: the backup's first advert - the master's last one;"
echo "overhead = that - Master_Down_Interval. Target: the last of the 255 within MDI + 10 ms."
echo "Backup CPU: over 5 s before the kill, receiving the 255 instances' adverts."
echo
echo "| VRRP, advert_int | daemon | MDI ms | taken over | overhead p50 ms | max ms | last advert after ms | backup CPU % |"
echo "|:---|:---|---:|---:|---:|---:|---:|---:|"
for va in "2 1" "3 0.1"; do
  read -r v a <<<"$va"
  for d in lvsd keepalived; do
    j=$(run "$d" --phase failover --version "$v" --advert "$a" --window 5)
    echo "| v$v, ${a} s | $d | $(fmt mdi_ms "$j") | $(fmt taken_over "$j")/255 | $(fmt overhead_p50_ms "$j") | $(fmt overhead_max_ms "$j") | $(fmt delay_max_ms "$j") | $(fmt backup_cpu_pct "$j") |"
  done
done
echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg). Raw results:"
echo
echo '```'
cat "$tmp/raw.jsonl"
echo '```'
