#!/usr/bin/env bash
# Load benchmark (issue 8; docs/architecture.md §Loading and memory, "one copy of the weights"): writes a
# multi-GB checkpoint of a real shape with random weights (tools/random-checkpoint), loads it with `w2s bench --load`
# from a warm page cache RUNS times (default 3) and prints each run's load time, GB/s and peak RSS against the target
# (peak RSS ≤ 1.15 × checkpoint bytes + KV budget + 0.5 GB; load ≥ 1 GB/s); the checkpoint is deleted at the end.
#
#   benchmarks/load-memory.sh [gpt2-large|tinyllama] [f32|f16|bf16]      (needs ~2× the checkpoint in free disk)
set -euo pipefail
cd "$(dirname "$0")/.."
shape=${1:-gpt2-large}
dtype=${2:-f32}
kv=${KV_MEMORY:-512MiB}
runs=${RUNS:-3}
dir=$(mktemp -d "${TMPDIR:-/tmp}/w2s-load-XXXXXX")
trap 'rm -rf "$dir"' EXIT
dotnet build -c Release src/WeakToStrong.Cli >/dev/null
dotnet build -c Release tools/random-checkpoint >/dev/null
dotnet tools/random-checkpoint/bin/Release/net10.0/RandomCheckpoint.dll --shape "$shape" --dtype "$dtype" --out "$dir/model"
cat "$dir/model/model.safetensors" > /dev/null # the page cache is warm, as the target asks
for _ in $(seq "$runs"); do
    dotnet src/WeakToStrong.Cli/bin/Release/net10.0/w2s.dll bench --load "$dir/model" --kv-memory "$kv"
done
