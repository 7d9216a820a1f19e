#!/usr/bin/env bash
# Soak test of `w2s serve` (issue 20): a real `w2s serve` on loopback with the bundled sentiment models, 32 concurrent
# clients of mixed requests (sample, bon, cbs, eft; completions and chat; streamed and not; n = 1 or 2; 10 % leave
# mid-stream; 5 % malformed) for MINUTES (default 10). It asserts no 5xx, every 4xx expected, the server's resident
# memory flat after warm-up (<= 5 % growth from 40-50 % of the run to its last 10 %), KV blocks in use back to 0,
# /metrics' request counts equal to the clients', and a clean SIGTERM (exit code 0). Exit code 0 when all hold.
# Usage: benchmarks/soak.sh [MINUTES] [extra driver options, e.g. --clients 8 --seed 3]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
shift || true
dotnet build -c Release src/WeakToStrong.Cli -v q -nologo >/dev/null
dotnet build -c Release benchmarks/WeakToStrong.LoadTest -v q -nologo >/dev/null
log=$(mktemp -d)
dotnet src/WeakToStrong.Cli/bin/Release/net10.0/w2s.dll serve --port 0 --served-model-name soak --max-queue 64 --kv-memory 256MiB \
    >"$log/stdout" 2>"$log/stderr" &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$log"' EXIT
for _ in $(seq 240); do
    grep -q "^listening on " "$log/stdout" 2>/dev/null && break
    kill -0 $pid 2>/dev/null || { echo "w2s serve exited:"; cat "$log/stderr"; exit 1; }
    sleep 0.5
done
url=$(sed -n 's/^listening on //p' "$log/stdout" | head -1)
[ -n "$url" ] || { echo "w2s serve did not start in 2 minutes"; cat "$log/stderr"; exit 1; }
echo "w2s serve pid $pid at $url; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs"
status=0
dotnet benchmarks/WeakToStrong.LoadTest/bin/Release/net10.0/WeakToStrong.LoadTest.dll soak --url "$url" --pid "$pid" --minutes "$minutes" --model soak "$@" || status=1
kill -TERM $pid
if wait $pid; then echo "w2s serve exited 0 after SIGTERM"; else code=$?; echo "FAIL: w2s serve exited $code after SIGTERM"; cat "$log/stderr"; status=1; fi
exit $status
