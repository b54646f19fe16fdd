#!/bin/sh
# fuzz.sh: builds the libFuzzer harnesses (tests/fuzz/fuzz_*.c) with clang, ASan and UBSan into
# build-fuzz/, then runs each for a fixed number of executions from its seed corpus
# (tests/fuzz/corpus/NAME). A crash fails the script and leaves the input in build-fuzz/crash-*.
# Usage: scripts/fuzz.sh [RUNS]   (default 2000 per harness: the CI run, well under a minute;
#        the README's figures come from RUNS=1000000)
set -eu
cd "$(dirname "$0")/.."
RUNS="${1:-2000}"
for p in clang libomp-dev; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        if [ "$(id -u)" = 0 ]; then
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$p" >/dev/null
        else
            echo "fuzz: $p is missing; run as root: apt-get install -y $p" >&2
            exit 1
        fi
    fi
done
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSINKLAB_FUZZ=ON >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target fuzz_config fuzz_set fuzz_checkpoint fuzz_corpus \
    fuzz_corpus_gz >/dev/null
export ASAN_OPTIONS="malloc_fill_byte=0:max_malloc_fill_size=0"
for h in config set checkpoint corpus corpus_gz; do
    work="build-fuzz/fuzz-work/$h"
    mkdir -p "$work"
    # new inputs go to the work folder; the committed seeds are only read
    if ! build-fuzz/fuzz_$h -runs="$RUNS" -timeout=10 -max_len=65536 -seed=1 \
            -artifact_prefix=build-fuzz/ "$work" "tests/fuzz/corpus/$h" >"build-fuzz/fuzz_$h.log" 2>&1; then
        tail -40 "build-fuzz/fuzz_$h.log" >&2
        echo "fuzz: fuzz_$h failed (input saved as build-fuzz/crash-*)" >&2
        exit 1
    fi
    echo "fuzz: fuzz_$h $(grep '^Done' "build-fuzz/fuzz_$h.log" | tail -1)"
done
