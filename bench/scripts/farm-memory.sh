#!/usr/bin/env bash
# farm-memory.sh [MiB [members]]: the memory of the members during a farm
# deploy of a module of MiB mebibytes (default 64): the cart sample app
# padded with a custom section, uploaded to A, which farms it to B (and the
# other members; default 2 in all). Every member compiles with an empty
# compilation cache of its own. Prints the deploy's time (until every
# member serves the app), A's and B's RSS before the deploy and their
# peaks, sampled every 5 ms, then the same for the unpadded app.
# Loopback only: multicast bound to 127.0.0.1 with TTL 0.
set -euo pipefail
cd "$(dirname "$0")/../.."
mib="${1:-64}"
members="${2:-2}"
work=$(mktemp -d)
trap 'kill $(cat "$work"/pids 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/wasmfarm" ./cmd/wasmfarm
python3 - "$work/padded.wasm" "$mib" <<'PY'
import sys
def leb(v):
    out = bytearray()
    while True:
        c = v & 0x7f; v >>= 7
        if v: out.append(c | 0x80)
        else: out.append(c); return bytes(out)
base = open('wasmapps/build/cart.wasm', 'rb').read()
name = b'wasmfarm.pad'
n = int(sys.argv[2]) * 1024 * 1024 - len(base) - 64
content = leb(len(name)) + name + bytes(n)
open(sys.argv[1], 'wb').write(base + b'\x00' + leb(len(content)) + content)
PY
cp wasmapps/build/cart.wasm "$work/plain.wasm"

run() { # module
  local port=$((46000 + RANDOM % 2000)) token=t0k3n
  local common=(-cluster -mcast-port "$port" -mcast-bind 127.0.0.1 -domain "farmmem-$$-$port"
    -mcast-frequency 100ms -mcast-droptime 1s -admin-token "$token" -log-level warn)
  rm -rf "$work"/a "$work"/b "$work"/cache-a "$work"/cache-b
  "$work/wasmfarm" node -http 127.0.0.1:0 -admin 127.0.0.1:0 -jvm-route jvm_a -app /counter=builtin:counter \
    -data-dir "$work/a" -cache-dir "$work/cache-a" "${common[@]}" >"$work/a.out" 2>&1 &
  local a=$!
  "$work/wasmfarm" node -http 127.0.0.1:0 -admin 127.0.0.1:0 -jvm-route jvm_b -app /counter=builtin:counter \
    -data-dir "$work/b" -cache-dir "$work/cache-b" "${common[@]}" >"$work/b.out" 2>&1 &
  local b=$!
  echo "$a $b" >"$work/pids"
  local i others=""
  for i in $(seq 3 "$members"); do
    "$work/wasmfarm" node -http 127.0.0.1:0 -admin 127.0.0.1:0 -jvm-route "jvm_$i" -app /counter=builtin:counter \
      -data-dir "$work/m$i" -cache-dir "$work/cache-m$i" "${common[@]}" >"$work/m$i.out" 2>&1 &
    others="$others $!"
    echo "$a $b$others" >"$work/pids"
  done
  local admin=""
  for _ in $(seq 100); do
    admin=$(grep -o 'admin on http://[0-9.:]*' "$work/a.out" | head -1 | cut -d' ' -f3 || true)
    [ -n "$admin" ] && grep -q 'serving' "$work/b.out" && break
    sleep 0.1
  done
  sleep 2
  rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
  local ia ib; ia=$(rss "$a"); ib=$(rss "$b")
  ( while kill -0 "$a" 2>/dev/null; do echo "$(rss "$a") $(rss "$b")"; sleep 0.005; done ) >"$work/samples" &
  local s=$!
  "$work/wasmfarm" deploy -admin "$admin" -token "$token" -path /big "$1" | tail -1
  sleep 1
  kill "$s"
  local pa pb
  pa=$(awk '{print $1}' "$work/samples" | sort -n | tail -1)
  pb=$(awk '{print $2}' "$work/samples" | sort -n | tail -1)
  printf '  %-10s A (compiles): %6d KiB before, peak %6d KiB (%+d)   B (receives): %6d KiB before, peak %6d KiB (%+d)\n' \
    "$(basename "$1")" "$ia" "$pa" $((pa - ia)) "$ib" "$pb" $((pb - ib))
  kill "$a" "$b" $others; wait "$a" "$b" $others 2>/dev/null || true
  rm -rf "$work"/m* "$work"/cache-m*
}
echo "farm deploy of a $mib MiB module to $members members on loopback (RSS sampled every 5 ms):"
run "$work/padded.wasm"
run "$work/plain.wasm"
