#!/usr/bin/env bash
# NativeAOT check (issue 11): publishes w2s with PublishAot=true, fails on any trim/AOT warning, and runs the CLI
# tests (golden fixtures through `w2s score` / `w2s generate`, search, JSON, `w2s serve` as a process) against the
# native binary.
# NativeAOT links with clang (Debian clang, lld, zlib1g-dev); where they cannot be installed this prints a loud
# warning and exits 3: the JIT build and its tests are unaffected.
# Usage: tools/ci/aot.sh [OUT_DIR]   (default: a temporary folder, removed afterwards)
set -uo pipefail
cd "$(dirname "$0")/../.."
if ! command -v clang >/dev/null || ! [ -e /usr/include/zlib.h ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang lld zlib1g-dev) >/dev/null 2>&1
    fi
fi
if ! command -v clang >/dev/null; then
    echo "WARNING: clang is missing and could not be installed: NativeAOT cannot link here; the JIT build stands" >&2
    exit 3
fi
out=${1:-}
if [ -z "$out" ]; then out=$(mktemp -d); trap 'rm -rf "$out"' EXIT; fi
log=$(mktemp)
dotnet publish src/WeakToStrong.Cli -c Release --use-current-runtime -p:PublishAot=true -o "$out" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
[ "$status" = 0 ] || { echo "NativeAOT publish failed" >&2; exit 1; }
if grep -E "warning (IL[0-9]+|NETSDK[0-9]+)" "$log"; then
    echo "NativeAOT publish has trim/AOT warnings (above)" >&2
    exit 1
fi
echo "NativeAOT w2s: $(stat -c %s "$out/w2s") bytes"
# Only tests that start w2s through CliRunner (which honours W2S_EXE): the native binary's exit codes, one-line errors,
# limits and bundled models. CliJsonTests and BenchmarkAccountingTests' other tests run in-process, so they are not here.
filter="FullyQualifiedName~WeakToStrong.Tests.Cli.CliTests|FullyQualifiedName~WeakToStrong.Tests.Cli.ParseErrorTests"
filter+="|FullyQualifiedName~SearchCliTests|FullyQualifiedName~BenchmarkAccountingTests.BenchReportsDecodeAgainstTheCeilingsItMeasured"
filter+="|FullyQualifiedName~ServeCommandTests|FullyQualifiedName~ServeSignalTests|FullyQualifiedName~DemoAndEvalTests"
filter+="|FullyQualifiedName~SearchLimitsTests.Cli|FullyQualifiedName~SearchLimitsTests.JsonStatsReportTheKvBudget"
filter+="|FullyQualifiedName~InfoValidationTests.Cli|FullyQualifiedName~CpuIsaTests.TheCliNamesABadPathInOneLine"
W2S_EXE="$out/w2s" dotnet test tests/WeakToStrong.Tests -c Release --filter "$filter" \
    || { echo "the CLI tests failed against the NativeAOT binary" >&2; exit 1; }
