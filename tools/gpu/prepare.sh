#!/usr/bin/env bash
# Makes the GPU-check bundle on a machine with the .NET SDK, for a GPU machine without one (docs/cuda.md "GPU check").
#
#   tools/gpu/prepare.sh [BUNDLE_DIR]        (default artifacts/gpu, git-ignored)
#
# BUNDLE_DIR/bin/w2s     w2s for linux-x64: self-contained, trimmed, compressed single file (no .NET needed there)
# BUNDLE_DIR/fixtures/   the golden fixtures (tiny HF checkpoints + golden.json from transformers)
# BUNDLE_DIR/*.sh, *.py  run.sh and the Python steps it calls (standard library, plus torch/transformers for hf_peer.py)
# Fails if the bundle is over 48 MiB. Prints the command to run on the GPU machine and the folder to carry.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
bundle="$(realpath -m "${1:-$repo/artifacts/gpu}")"
limit=$((48 * 1024 * 1024))

rm -rf "$bundle"
mkdir -p "$bundle/bin"
dotnet publish "$repo/src/WeakToStrong.Cli/WeakToStrong.Cli.csproj" -c Release -r linux-x64 --self-contained \
    -p:PublishAot=false -p:PublishTrimmed=true -p:PublishSingleFile=true -p:EnableCompressionInSingleFile=true \
    -p:DebugType=none -p:GenerateDocumentationFile=false -o "$bundle/bin" -nologo -v q
# Only the executable travels (no symbols or XML docs).
find "$bundle/bin" -type f ! -name w2s -delete
cp -r "$repo/tests/WeakToStrong.Tests/TestData/fixtures" "$bundle/fixtures"
cp "$repo"/tools/gpu/{run.sh,golden.py,hf_peer.py,report.py} "$bundle/"
echo "$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown) $(date -u +%Y-%m-%dT%H:%MZ)" > "$bundle/VERSION"

size=$(du -sb "$bundle" | cut -f1)
if [ "$size" -gt "$limit" ]; then
    echo "prepare.sh: the bundle is $size bytes, over the 48 MiB limit" >&2
    exit 1
fi
rel="$(realpath -m --relative-to="$repo" "$bundle")"
echo "bundle: $bundle ($((size / 1024 / 1024)) MiB of 48; w2s $(($(stat -c %s "$bundle/bin/w2s") / 1024 / 1024)) MiB)"
echo "carry:  $rel"
echo "run:    bash $rel/run.sh $rel \"\$OUT\"     (on the GPU machine, from the repository root; give it 540 s: the run ends within 8 minutes)"
