#!/bin/sh
# setup.sh: makes this checkout ready to build and run, idempotently.
#   1. installs the Debian packages sinklab needs when they are missing (apt-get when run as
#      root; otherwise prints the exact apt-get line and stops),
#   2. configures and builds into build/ (Release, warnings are errors).
# Usage: scripts/setup.sh [--with-tools] [--with-test-deps] [--print-packages]
#   --with-tools      adds python3-numpy (tools/sinklab_ckpt.py; the quick start uses it)
#   --with-test-deps  adds python3-torch, python3-numpy, python3-yaml, chromium, slurm-wlm, munge
#   --print-packages  prints the Debian packages it would require, one a line, and stops
# Environment: SINKLAB_BUILD_DIR (default build), SINKLAB_CMAKE_ARGS (extra cmake arguments).
set -eu
cd "$(dirname "$0")/.."

PKGS="build-essential cmake pkg-config libopenblas-dev libyaml-dev zlib1g-dev libcmocka-dev fortunes"
PRINT=0
for arg in "$@"; do
    case "$arg" in
        --with-tools) PKGS="$PKGS python3-numpy" ;;
        --with-test-deps) PKGS="$PKGS python3-torch python3-numpy python3-yaml chromium slurm-wlm munge" ;;
        --print-packages) PRINT=1 ;;
        *) echo "setup: unknown argument '$arg' (expected --with-tools, --with-test-deps or --print-packages)" >&2; exit 2 ;;
    esac
done
if [ "$PRINT" = 1 ]; then
    printf '%s\n' $PKGS | sort -u
    exit 0
fi

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "setup: installing$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null
        apt-get install -y -q --no-install-recommends $missing >/dev/null
    else
        echo "setup: missing Debian packages. Run as root:" >&2
        echo "  apt-get update && apt-get install -y$missing" >&2
        exit 1
    fi
fi

BUILD="${SINKLAB_BUILD_DIR:-build}"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSINKLAB_WERROR=ON ${SINKLAB_CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD" -j "$(nproc)" >/dev/null
echo "setup: built $BUILD/sinklab"
