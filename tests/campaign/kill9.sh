#!/bin/bash
# kill9.sh [N]: N (default 20) runs killed with SIGKILL at random moments, every third one the
# moment a checkpoint's .tmp appears (mid-save); each is resumed to its end and its losses must be
# bit-identical to an uninterrupted run.
. "$(dirname "$0")/lib.sh"
N="${1:-20}"
CFG="$WORK/tiny.yaml"
tiny_config "$CFG"
"$BIN" train "$CFG" --out "$WORK/ref" --quiet || { echo "kill9: reference run failed" >&2; exit 1; }
losses "$WORK/ref" > "$WORK/ref.losses"
midsave=0
for i in $(seq 1 "$N"); do
    d="$WORK/k$i"
    "$BIN" train "$CFG" --out "$d" --quiet >/dev/null 2>&1 &
    pid=$!
    if [ $((i % 3)) -eq 0 ]; then
        # poll for a checkpoint being written, then kill while it is
        for _ in $(seq 1 4000); do
            ls "$d/checkpoints/" 2>/dev/null | grep -q '\.tmp$' && break
        done
        ls "$d/checkpoints/" 2>/dev/null | grep -q '\.tmp$' && midsave=$((midsave + 1))
    else
        sleep "0.$(printf '%03d' "$(rand 1500)")"
    fi
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    if ! finish_run "$d"; then bad "k$i: resume failed: $(tail -2 "$WORK/resume.out")"; continue; fi
    losses "$d" > "$WORK/k$i.losses"
    if cmp -s "$WORK/ref.losses" "$WORK/k$i.losses"; then ok; else bad "k$i: losses differ from the uninterrupted run"; fi
    rm -rf "$d"
done
summary kill9 "$N kills, $midsave while a checkpoint was being written, every resume bit-identical"
