#!/bin/sh
# test.sh: installs what is missing, builds, and runs every test, in two flavours:
#   Release with -Werror (build/), then AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/).
# When PyTorch is importable, the parity fixtures are regenerated first (they must come out
# byte-identical to the committed ones) and the reference model checks itself.
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh --with-test-deps
scripts/get_corpora.sh || echo "test: the Brown corpus could not be fetched; tests that need it will say so"

if /usr/bin/python3 -c "import torch, numpy" 2>/dev/null; then
    echo "test: regenerating the PyTorch parity fixtures"
    /usr/bin/python3 tests/reference/gen_fixtures.py
    /usr/bin/python3 tests/reference/selfcheck.py
else
    echo "test: PyTorch not importable; the committed fixtures are used as they are"
fi

echo "test: Release build"
ctest --test-dir build --output-on-failure -j 2

echo "test: libFuzzer harnesses, 2000 executions each (clang, ASan, UBSan)"
scripts/fuzz.sh 2000

echo "test: address,undefined sanitizer build"
SINKLAB_BUILD_DIR=build-asan SINKLAB_CMAKE_ARGS="-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSINKLAB_SANITIZE=address,undefined" scripts/setup.sh
ASAN_OPTIONS=detect_leaks=0 ctest --test-dir build-asan --output-on-failure -j 2
