#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU: checks everything the CPU-only CI cannot.
#
#   tools/gpu/check.sh [OUT_DIR]
#
# 1. publishes the test suite and the CLI self-contained for linux-x64 (no .NET needed beyond this step; run
#    step 1 on a build machine and copy OUT_DIR/publish over if the GPU machine has no SDK: then run
#    `tools/gpu/check.sh --run-only OUT_DIR` there);
# 2. prints the device (nvidia-smi) and runs the NVRTC compile check for the device's architecture;
# 3. runs the CUDA test suite on the device (every kernel against the CPU op, the whole forward against the golden
#    fixtures, cuBLAS path included) — GPU tests must run, not skip: a skip fails the check;
# 4. runs `w2s bench --device cuda --json`;
# 5. writes OUT_DIR/report.json and OUT_DIR/report.md (a short table) and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."

run_only=0
if [ "${1:-}" = "--run-only" ]; then run_only=1; shift; fi
out="$(realpath -m "${1:-artifacts/gpu-check}")"
mkdir -p "$out"
status=0

if [ "$run_only" = 0 ]; then
    dotnet publish tests/WeakToStrong.Tests/WeakToStrong.Tests.csproj -c Release -r linux-x64 --self-contained -o "$out/publish/tests" -nologo -v q || exit 1
    dotnet publish src/WeakToStrong.Cli/WeakToStrong.Cli.csproj -c Release -r linux-x64 --self-contained -o "$out/publish/cli" -nologo -v q || exit 1
fi
# The kernel sources travel with the tests when they are not embedded in the library.
export W2S_KERNELS_DIR="${W2S_KERNELS_DIR:-$PWD/kernels}"

device="$(nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)"
if [ -z "$device" ]; then echo "check.sh: no NVIDIA GPU visible (nvidia-smi found none)" >&2; exit 2; fi
arch="sm_$(echo "$device" | awk -F', ' '{print $2}' | tr -d .)"
echo "device: $device ($arch)"

"$out/publish/cli/w2s" kernels --arch "$arch" --json > "$out/kernels.json" 2> "$out/kernels.err" || status=1

tests="$out/publish/tests"
# vstest-free run: the xunit console runner is not published, so use `dotnet test` on the assembly when an SDK
# exists, else the published testhost via `dotnet vstest` is unavailable too — the SDK path is the supported one.
if command -v dotnet >/dev/null; then
    dotnet test "$tests/WeakToStrong.Tests.dll" --filter "FullyQualifiedName~Cuda" \
        --logger "trx;LogFileName=$out/cuda-tests.trx" --logger "console;verbosity=normal" > "$out/cuda-tests.log" 2>&1 || status=1
else
    echo "check.sh: the test run needs the .NET SDK's test host (dotnet test)" >&2
    status=1
fi
skipped=$(grep -cE '^\s+Skipped .*Cuda\.(Gpu|Forward)' "$out/cuda-tests.log" || true)
if [ "$skipped" != 0 ]; then echo "check.sh: $skipped GPU tests skipped on a GPU machine" >&2; status=1; fi

"$out/publish/cli/w2s" bench --device cuda --json > "$out/bench.json" 2> "$out/bench.err" || status=1

summary=$(grep -E '^(Passed|Failed)!' "$out/cuda-tests.log" | tail -1)
{
    echo "{"
    echo "  \"device\": \"${device//\"/}\","
    echo "  \"arch\": \"$arch\","
    echo "  \"tests\": \"${summary//\"/}\","
    echo "  \"skipped_gpu_tests\": $skipped,"
    echo "  \"kernels\": $(cat "$out/kernels.json" 2>/dev/null || echo null),"
    echo "  \"bench\": $(cat "$out/bench.json" 2>/dev/null || echo null),"
    echo "  \"ok\": $([ $status = 0 ] && echo true || echo false)"
    echo "}"
} > "$out/report.json"
{
    echo "# GPU check"
    echo
    echo "| item | result |"
    echo "|---|---|"
    echo "| device | $device ($arch) |"
    echo "| CUDA tests | $summary |"
    echo "| GPU tests skipped | $skipped |"
    echo "| kernel compile check | $([ -s "$out/kernels.err" ] && echo "errors (kernels.err)" || echo ok) |"
    echo "| bench | $([ -s "$out/bench.json" ] && echo "bench.json" || echo "failed (bench.err)") |"
    echo "| overall | $([ $status = 0 ] && echo PASS || echo FAIL) |"
} > "$out/report.md"
cat "$out/report.md"
exit $status
