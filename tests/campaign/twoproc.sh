#!/bin/bash
# twoproc.sh [N]: two `sinklab train` processes started 10 ms apart into one new folder (N trials,
# default 10; 200 steps each, so the first still runs when the second starts on a fast machine),
# and two simultaneous --resume of one folder: exactly one runs (exit 0), the other is refused
# with exit 2 naming the holder's pid, and the folder holds one coherent run whose losses are
# bit-identical to a run made alone.
. "$(dirname "$0")/lib.sh"
N="${1:-10}"
CFG="$WORK/tiny.yaml"
tiny_config "$CFG"
"$BIN" train "$CFG" --out "$WORK/ref" --quiet --set train.steps=200 || exit 1
losses "$WORK/ref" > "$WORK/ref.losses"
both() {   # dir extra-args...: starts two, checks one 0 and one 2
    local d="$1"
    shift
    "$BIN" train "$CFG" --out "$d" --quiet --set train.steps=200 "$@" >"$WORK/a.out" 2>&1 &
    local a=$!
    sleep 0.01
    "$BIN" train "$CFG" --out "$d" --quiet --set train.steps=200 "$@" >"$WORK/b.out" 2>&1 &
    local b=$!
    wait $a; local ra=$?
    wait $b; local rb=$?
    local codes
    codes=$(printf '%s\n' $ra $rb | sort | tr '\n' ' ')
    if [ "$codes" != "0 2 " ]; then bad "$d: exits $ra and $rb, want one 0 and one 2"; return 1; fi
    grep -q "is in use by process [0-9]" "$WORK/a.out" "$WORK/b.out" || {
        bad "$d: the refused one does not name the holder: $(cat "$WORK/a.out" "$WORK/b.out")"; return 1; }
    losses "$d" | cmp -s - "$WORK/ref.losses" || { bad "$d: losses differ from a run made alone"; return 1; }
    [ -f "$d/summary.json" ] || { bad "$d: no summary.json"; return 1; }
    [ "$(grep -c '"final"' "$d/metrics.jsonl")" = 0 ] || { bad "$d: metrics.jsonl has a final line"; return 1; }
    return 0
}
for i in $(seq 1 "$N"); do both "$WORK/t$i" && ok; done
# two --resume at once of a stopped run
d="$WORK/res"
"$BIN" train "$CFG" --out "$d" --quiet --set train.steps=30 || exit 1
both "$d" --resume && ok
summary twoproc "$N new-folder races and one double --resume"
