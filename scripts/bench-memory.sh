#!/usr/bin/env bash
# Memory benchmarks (issue 17), lvsd and keepalived in the same run on the
# same generated configuration (10,000 virtual servers x 10 real servers with
# TCP_CHECK, 660,005 lines). Prints Markdown for docs/BENCHMARKS.md.
#   - lvsd -t / keepalived -t: peak RSS, wall and CPU time (3 runs each);
#   - the daemons' steady RSS once they have loaded it (in a network
#     namespace of their own; this host has no IPVS, so neither programs the
#     table nor runs the checks: the configuration's cost alone);
#   - the checker's bytes per TCP_CHECK and a /metrics scrape of 10,000
#     backends (go test).
# Needs root (a network namespace), keepalived, GNU time. Every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
[ "$(id -u)" = 0 ] || { echo "bench-memory: needs root (a network namespace)" >&2; exit 1; }
for t in ip keepalived /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "bench-memory: $t is missing (scripts/deps.sh)" >&2; exit 1; }
done
tmp=$(mktemp -d)
ns=lvsdmem$$
cleanup() {
  for f in "$tmp"/*.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  sleep 1
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/lvsd" .
go run ./internal/genconf/cmd/genconf -vs 10000 -rs 10 > "$tmp/big.conf"
echo "## Memory (issue 17): $(wc -l < "$tmp/big.conf") lines, 100,000 real servers"
echo
echo "$(date -u +%F), $(nproc) cores, $(keepalived --version 2>&1 | head -1), load average at start $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| command | peak RSS (3 runs) | wall | user+system CPU |"
echo "|:---|---:|---:|---:|"
for cmd in "$tmp/lvsd -t -f $tmp/big.conf" "keepalived -t -f $tmp/big.conf"; do
  rows=()
  for _ in 1 2 3; do
    # shellcheck disable=SC2086
    rows+=("$(/usr/bin/time -f '%M %e %U %S' $cmd 2>&1 >/dev/null | tail -1)")
  done
  printf '%s\n' "${rows[@]}" | awk -v c="${cmd//$tmp\//}" '
    { rss[NR]=$1/1024; wall[NR]=$2; cpu[NR]=$3+$4 }
    END { printf "| `%s` | %.0f / %.0f / %.0f MiB | %.2f / %.2f / %.2f s | %.2f / %.2f / %.2f s |\n", c, rss[1], rss[2], rss[3], wall[1], wall[2], wall[3], cpu[1], cpu[2], cpu[3] }'
done
echo
# The daemons, one after the other, 20 s after their start.
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
ip netns add "$ns"
ip -n "$ns" link set lo up
steady() { # name pidfiles... -> "| name | RSS | peak |"
  local name=$1 total=0 peak=0 p
  shift
  sleep 20
  for f in "$@"; do
    [ -f "$f" ] || continue
    p=$(cat "$f")
    total=$((total + $(rss "$p")))
    peak=$((peak + $(hwm "$p")))
  done
  printf '| %s | %.1f MiB | %.1f MiB |\n' "$name" "$(echo "$total/1024" | bc -l)" "$(echo "$peak/1024" | bc -l)"
  for f in "$@"; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  sleep 2
}
echo "Steady RSS 20 s after the start, sum of the processes (keepalived: parent and checker):"
echo
echo "| daemon | RSS | peak (VmHWM) |"
echo "|:---|---:|---:|"
ip netns exec "$ns" "$tmp/lvsd" -n -l -f "$tmp/big.conf" -p "$tmp/lvsd.pid" --ctl-socket "$tmp/lvsd.ctl" \
  --metrics-listen 127.0.0.1:9166 > "$tmp/lvsd.log" 2>&1 &
steady lvsd "$tmp/lvsd.pid"
ip netns exec "$ns" keepalived -n -l -f "$tmp/big.conf" -p "$tmp/ka.pid" -c "$tmp/kac.pid" -r "$tmp/kav.pid" \
  > "$tmp/ka.log" 2>&1 &
steady keepalived "$tmp/ka.pid" "$tmp/kac.pid" "$tmp/kav.pid"
echo
echo 'Checker state per TCP_CHECK and one scrape of 10,000 backends (go test):'
echo
echo '```'
go test -count=1 -run TestSchedulerBytesPerCheck -v ./healthcheck | grep -E 'bytes per check'
go test -count=1 -run '^$' -bench Scrape10000 -benchtime 20x . | grep Benchmark
echo '```'
