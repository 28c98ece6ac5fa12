#!/usr/bin/env bash
# Benchmarks, side by side with keepalived in the same run. Prints Markdown for
# docs/BENCHMARKS.md. Every loop is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/lvsd" .
go run ./internal/genconf/cmd/genconf -vs 10000 -rs 10 > "$tmp/big.conf"
lines=$(wc -l < "$tmp/big.conf")
echo "## Configuration parse: 10,000 virtual servers x 10 real servers with TCP_CHECK ($lines lines)"
echo
echo "$(date -u +%F), $(nproc) cores, $(keepalived --version 2>&1 | head -1)"
echo
echo "Load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (wall times stretch under load; user+system CPU does not)."
echo
hyperfine --warmup 1 --runs 7 -N -i --export-markdown "$tmp/parse.md" --export-json "$tmp/parse.json" \
  "$tmp/lvsd -t -f $tmp/big.conf" "keepalived -t -f $tmp/big.conf" >/dev/null
sed "s#$tmp/##g" "$tmp/parse.md"
echo
python3 - "$tmp/parse.json" "$tmp/" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
print("| Command | mean user+system CPU [ms] |")
print("|:---|---:|")
for x in r:
    print(f"| `{x['command'].replace(sys.argv[2], '')}` | {1000*(x['user']+x['system']):.0f} |")
PY
echo
echo "Peak RSS (one run each, /usr/bin/time): lvsd $(/usr/bin/time -f %M "$tmp/lvsd" -t -f "$tmp/big.conf" 2>&1 >/dev/null | tail -1) KiB, keepalived $(/usr/bin/time -f %M keepalived -t -f "$tmp/big.conf" 2>&1 >/dev/null | tail -1) KiB."
echo
echo '`conf.Load` alone (go test -bench):'
echo
echo '```'
go test ./conf -run '^$' -bench LoadLarge -benchtime 5x -count 1 | grep Benchmark
echo '```'
