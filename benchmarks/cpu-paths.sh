#!/usr/bin/env bash
# The CPU backend's vector paths side by side (issue 13): `w2s bench --device cpu` on the GPT-2-124M shape, run as
# W2S_CPU_ISA=avx2 and W2S_CPU_ISA=avx512 alternately ROUNDS times (default 2) so that both see the same machine,
# then per round and configuration the tokens/s of each path and their ratio, and the F32 FMA ceiling at each width
# (equal where 512-bit FMAs are split in two, as on AMD Zen 4; about double at avx512 where they are not).
#
#   benchmarks/cpu-paths.sh [ROUNDS]          (≈ 30 s per path per round; needs python3 for the table)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
if ! grep -qw avx512f /proc/cpuinfo; then echo "this CPU has no AVX-512: only the avx2 path runs here" >&2; exit 2; fi
dotnet build -c Release src/WeakToStrong.Cli >/dev/null
w2s="dotnet src/WeakToStrong.Cli/bin/Release/net10.0/w2s.dll"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in $(seq "$rounds"); do
    for path in avx2 avx512; do
        echo "round $round: $path" >&2
        W2S_CPU_ISA=$path $w2s bench --device cpu --json 2>/dev/null > "$out/$round-$path.json"
    done
done
python3 - "$out" "$rounds" <<'PY'
import json, sys
folder, rounds = sys.argv[1], int(sys.argv[2])
print(f"{'round':>5} {'dtype':<5} {'phase':<8} {'batch':>5} {'avx2 tok/s':>11} {'avx512 tok/s':>13} {'avx512/avx2':>12}")
for r in range(1, rounds + 1):
    runs = {p: json.load(open(f"{folder}/{r}-{p}.json")) for p in ("avx2", "avx512")}
    for a, b in zip(runs["avx2"]["results"], runs["avx512"]["results"]):
        print(f"{r:>5} {a['dtype']:<5} {a['phase']:<8} {a['batch']:>5} {a['tokens_per_second']:>11.1f} {b['tokens_per_second']:>13.1f} {b['tokens_per_second'] / a['tokens_per_second']:>12.2f}")
    for p, run in runs.items():
        speedups = ", ".join(f"{s['dtype']} {s['speedup_vs_batch1']:.1f}x" for s in run["decode_speedups"])
        ceilings = ", ".join(f"{c['path']} {c['gigaflops']:.0f}" for c in run["fma_ceilings"])
        print(f"      {p}: batch 16 vs 1: {speedups}; FMA ceiling GFLOP/s: {ceilings}")
PY
