#!/usr/bin/env bash
# Kernel checks that need no GPU (docs/architecture.md §The CPU backend as the reference for CUDA):
#   1. installs, if missing, NVRTC 11.8 from Debian's non-free section (libnvrtc11.2) and g++ (for the emulator);
#   2. compiles every kernel with NVRTC for sm_80 and sm_90 and fails on a compile error or a register spill;
#   3. runs the CUDA tests: the emulated kernels against the CPU ops, the compile check, the host-side units.
# Idempotent; CI runs it as root on a fresh Debian machine. Usage: tools/ci/kernels.sh [--no-tests]
set -euo pipefail
cd "$(dirname "$0")/../.."

need_apt_update=1
apt_install() {
    if [ "$(id -u)" != 0 ]; then echo "kernels.sh: not root, cannot install $*" >&2; return 1; fi
    if [ "$need_apt_update" = 1 ]; then apt-get update -qq; need_apt_update=0; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! ldconfig -p | grep 'libnvrtc\.so\.' >/dev/null; then
    sources=/etc/apt/sources.list.d/debian.sources
    if [ -f "$sources" ] && ! grep -q 'non-free' "$sources"; then
        sed -i '/^Components:/ s/$/ contrib non-free non-free-firmware/' "$sources"
    elif [ ! -f "$sources" ] && [ -f /etc/apt/sources.list ] && ! grep -q 'non-free' /etc/apt/sources.list; then
        sed -i -E '/^deb / s/ main$/ main contrib non-free non-free-firmware/' /etc/apt/sources.list
    fi
    apt_install libnvrtc11.2 libnvrtc-builtins11.8
fi
command -v g++ >/dev/null || apt_install g++

dotnet build tests/WeakToStrong.Tests/WeakToStrong.Tests.csproj -v q -nologo
# The compile check as `w2s kernels` runs it (the library entry point, through the test assembly's copy).
if [ "${1:-}" != "--no-tests" ]; then
    dotnet test tests/WeakToStrong.Tests/WeakToStrong.Tests.csproj --no-build --filter "FullyQualifiedName~Cuda" -nologo
fi
