#!/usr/bin/env bash
# The GPU check, on a machine with an NVIDIA GPU and no .NET: bash and python3 (with PyTorch and transformers for
# the peer figure) are all it needs. Made by tools/gpu/prepare.sh, which prints the command; see docs/cuda.md "GPU check".
#
#   run.sh [--rehearse] BUNDLE_DIR OUT_DIR
#
# Steps, each under a time limit, the whole run under RUN_LIMIT_S (default 470 s):
#   device     nvidia-smi: name, compute capability, memory, driver
#   kernels    w2s kernels --arch sm_XY: every kernel compiles for the device with NVRTC, no spills (warms the cache)
#   ops-test   w2s ops --device cuda: every op against the CPU op, normalised MSE under its threshold
#   ops-perf   w2s ops --device cuda --mode perf: each op's time, GB/s and TFLOP/s next to the measured ceilings
#   golden     every golden fixture through w2s score / w2s generate --device cuda against golden.json
#   bench-*    w2s bench --device cuda --json, batch 1 and 16, GPT-2-124M and Llama-3-8B shapes, random bf16 weights
#   hf-peer    the same decode shapes through Hugging Face transformers generate in bf16 (the peer figure)
# then report.json and report.md in OUT_DIR (with run.log, every step's output). Exits 1 if any step failed.
#
# --rehearse (CI, no GPU, no .NET): the device-free steps on the CPU (ops against float64, the fixtures, a short
# bench, the report), the kernel compile check where NVRTC is installed, and two checks of the bundle itself:
# no larger than 48 MiB, and no .NET reachable (so a framework-dependent w2s would fail here as on the GPU machine).
set -uo pipefail

rehearse=0
if [ "${1:-}" = "--rehearse" ]; then rehearse=1; shift; fi
if [ $# -ne 2 ]; then echo "usage: run.sh [--rehearse] BUNDLE_DIR OUT_DIR" >&2; exit 2; fi
bundle="$(cd "$1" 2>/dev/null && pwd)" || { echo "run.sh: bundle folder $1 not found" >&2; exit 2; }
out="$(mkdir -p "$2" && cd "$2" && pwd)" || { echo "run.sh: cannot create $2" >&2; exit 2; }
w2s="$bundle/bin/w2s"
[ -f "$w2s" ] || { echo "run.sh: $w2s is missing (run tools/gpu/prepare.sh)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "run.sh: python3 is needed" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# A carried copy may lose its execute bit (or sit on a read-only mount): run a copy then.
if [ ! -x "$w2s" ]; then cp "$w2s" "$work/w2s" && chmod +x "$work/w2s" && w2s="$work/w2s"; fi
export XDG_CACHE_HOME="$work/cache" NO_COLOR=1 PYTHONUNBUFFERED=1
steps="$work/steps.tsv"
: > "$steps"
: > "$out/run.log"
start=$(date +%s)
budget=${RUN_LIMIT_S:-470}

# step NAME LIMIT_S COMMAND...: runs COMMAND with stdout to $work/NAME.out, stderr to $work/NAME.err, under
# min(LIMIT_S, what is left of the run's budget); records "NAME rc seconds limit" in steps.tsv.
step() {
    local name=$1 limit=$2; shift 2
    local left
    left=$((budget - ($(date +%s) - start) - 15))
    [ "$left" -lt "$limit" ] && limit=$left
    if [ "$limit" -le 0 ]; then
        printf '%s\t%s\t%s\t%s\n' "$name" 124 0 0 >> "$steps"
        echo "== $name: no time left in the run's ${budget} s" | tee -a "$out/run.log"
        return
    fi
    echo "== $name (limit ${limit} s): $*" | tee -a "$out/run.log"
    local t0 rc
    t0=$(date +%s%N)
    timeout --kill-after=5 "$limit" "$@" > "$work/$name.out" 2> "$work/$name.err"
    rc=$?
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(( ($(date +%s%N) - t0) / 1000000 ))e-3" "$limit" >> "$steps"
    { cat "$work/$name.err"; [ -s "$work/$name.out" ] && head -c 20000 "$work/$name.out"; echo "-- $name: exit $rc"; } >> "$out/run.log"
    echo "-- $name: exit $rc"
}

skip() { printf '%s\tskip\t0\t0\t%s\n' "$1" "$2" >> "$steps"; echo "== $1: skipped ($2)" | tee -a "$out/run.log"; }

if [ "$rehearse" = 1 ]; then
    device=cpu
    size=$(du -sb "$bundle" | cut -f1)
    if [ "$size" -gt $((48 * 1024 * 1024)) ]; then
        printf '%s\t%s\t0\t0\t%s\n' bundle-size 1 "bundle is $size bytes, over 48 MiB" >> "$steps"
    else
        printf '%s\t%s\t0\t0\t%s\n' bundle-size 0 "$size bytes" >> "$steps"
    fi
    # The point of the rehearsal: w2s must run where there is no .NET at all (no dotnet on PATH, no runtime in the
    # places a framework-dependent app looks). W2S_REHEARSE_ALLOW_DOTNET=1 (CI where no mount namespace can be made)
    # records this check as skipped instead.
    found=""
    for d in "${DOTNET_ROOT:-}" /usr/share/dotnet /usr/lib/dotnet /usr/local/share/dotnet "$HOME/.dotnet" \
             "$(dirname "$(readlink -f "$(command -v dotnet 2>/dev/null || echo /nonexistent)")")"; do
        [ -n "$d" ] && [ -d "$d/shared/Microsoft.NETCore.App" ] && found="$d"
    done
    if [ -z "$found" ]; then
        printf '%s\t%s\t0\t0\t%s\n' no-dotnet 0 "no .NET runtime reachable" >> "$steps"
    elif [ "${W2S_REHEARSE_ALLOW_DOTNET:-0}" = 1 ]; then
        skip no-dotnet "a .NET runtime is at $found (W2S_REHEARSE_ALLOW_DOTNET=1)"
    else
        printf '%s\t%s\t0\t0\t%s\n' no-dotnet 1 "a .NET runtime is at $found: rehearse where none is (see .ci/run)" >> "$steps"
    fi
    skip device "rehearsal: no GPU"
    # grep reads all of ldconfig's output: with -q it exits at the first match and, under pipefail, the SIGPIPE it
    # leaves ldconfig makes the test fail at random.
    if ldconfig -p 2>/dev/null | grep 'libnvrtc\.so\.' >/dev/null; then
        step kernels 120 "$w2s" kernels --arch sm_90 --json
    else
        skip kernels "no NVRTC here"
    fi
    step ops-test 120 "$w2s" ops --device cpu --json
    # Small shapes only: the CPU takes seconds per model-sized attention call; the step itself is what is rehearsed.
    step ops-perf 120 "$w2s" ops --device cpu --mode perf --shapes small --json
    step golden 180 python3 "$bundle/golden.py" --w2s "$w2s" --fixtures "$bundle/fixtures" --device cpu --out "$work/golden.json"
    step bench-gpt2-124m 120 "$w2s" bench --device cpu --json --shape gpt2-124m --dtypes bf16 --batches 1,2 --steps 2 --prompt-tokens 8
    skip bench-llama3-8b "rehearsal: 16 GB of weights"
    skip hf-peer "rehearsal: no GPU"
else
    device=cuda
    # NVRTC and cuBLAS come from the CUDA toolkit; where the loader finds none, from the wheels PyTorch carries.
    if ! ldconfig -p 2>/dev/null | grep 'libnvrtc\.so\.1[23]' >/dev/null && [ ! -e /usr/local/cuda/lib64/libnvrtc.so.13 ] && [ ! -e /usr/local/cuda/lib64/libnvrtc.so.12 ]; then
        wheels=$(python3 -c 'import glob, os, site; print(":".join(sorted({os.path.dirname(p) for b in site.getsitepackages() for p in glob.glob(os.path.join(b, "nvidia", "**", "lib*.so*"), recursive=True) if "nvrtc" in p or "cublas" in p})))' 2>/dev/null)
        [ -n "$wheels" ] && export LD_LIBRARY_PATH="$wheels${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" && echo "NVRTC/cuBLAS from the Python wheels: $wheels" | tee -a "$out/run.log"
    fi
    step device 30 nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader
    arch="sm_$(head -1 "$work/device.out" 2>/dev/null | awk -F', ' '{print $2}' | tr -d .)"
    [ "$arch" = "sm_" ] && arch=sm_90
    step kernels 120 "$w2s" kernels --arch "$arch" --json
    step ops-test 120 "$w2s" ops --device cuda --json
    step ops-perf 120 "$w2s" ops --device cuda --mode perf --json
    step golden 120 python3 "$bundle/golden.py" --w2s "$w2s" --fixtures "$bundle/fixtures" --device cuda --out "$work/golden.json"
    step bench-gpt2-124m 60 "$w2s" bench --device cuda --json --shape gpt2-124m --dtypes bf16 --batches 1,16 --steps 32 --prompt-tokens 64
    step bench-llama3-8b 120 "$w2s" bench --device cuda --json --shape llama3-8b --dtypes bf16 --batches 1,16 --steps 32 --prompt-tokens 64
    step hf-peer 150 python3 "$bundle/hf_peer.py" --shapes gpt2-124m,llama3-8b --batches 1,16 --prompt-tokens 64 --steps 32 --out "$work/hf-peer.json"
fi

python3 "$bundle/report.py" --work "$work" --out "$out" --device "$device" --rehearse "$rehearse" --seconds "$(( $(date +%s) - start ))" \
    --version "$(cat "$bundle/VERSION" 2>/dev/null)"
