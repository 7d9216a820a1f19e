#!/usr/bin/env bash
# Start-up of `w2s generate`, JIT vs NativeAOT: publishes both builds, then times process start → first generated
# token on stdout (w2s generate prints each token as it is sampled) over RUNS runs of each, alternating the two so
# that both see the same machine load, and prints the medians and the AOT binary's size.
# Usage: benchmarks/startup/startup.sh [RUNS=10] [MODEL_DIR=tests/.../fixtures/gpt2-tiny]
# Needs: the .NET SDK, clang (NativeAOT's linker; tools/ci/aot.sh installs it) and python3 (the timer).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-10}
model=${2:-tests/WeakToStrong.Tests/TestData/fixtures/gpt2-tiny}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
dotnet publish src/WeakToStrong.Cli -c Release -o "$out/jit" >/dev/null
dotnet publish src/WeakToStrong.Cli -c Release --use-current-runtime -p:PublishAot=true -o "$out/aot" >/dev/null
python3 - "$runs" "$model" "$out/jit/w2s" "$out/aot/w2s" <<'EOF'
import os, statistics, subprocess, sys, time

runs, model, jit, aot = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
args = ["generate", "--model", model, "--prompt", "Hello world", "--max-new-tokens", "4", "--temperature", "0"]

def once(exe):
    """Seconds from spawning the process to the first byte on its stdout, and to its exit."""
    start = time.perf_counter()
    p = subprocess.Popen([exe] + args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    first = p.stdout.read(1)
    token = time.perf_counter() - start
    p.stdout.read()
    if p.wait() != 0 or not first:
        sys.exit(f"{exe} failed or printed nothing")
    return token, time.perf_counter() - start

for exe in (jit, aot):
    once(exe)  # warm the page cache; not counted
times = {jit: [], aot: []}
for _ in range(runs):
    for exe in (jit, aot):
        times[exe].append(once(exe))
for name, exe in (("JIT", jit), ("NativeAOT", aot)):
    first = statistics.median(t for t, _ in times[exe]) * 1000
    total = statistics.median(t for _, t in times[exe]) * 1000
    print(f"{name:10} first token {first:7.1f} ms (median of {runs})   whole run {total:7.1f} ms")
ratio = statistics.median(t for t, _ in times[jit]) / statistics.median(t for t, _ in times[aot])
print(f"JIT / NativeAOT, first token: {ratio:.1f}x")
print(f"NativeAOT binary: {os.path.getsize(aot) / 2**20:.1f} MiB ({os.path.getsize(aot):,} bytes)")
EOF
