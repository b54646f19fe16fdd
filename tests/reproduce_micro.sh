#!/bin/sh
# reproduce_micro.sh: keeps `sinklab reproduce` alive end to end: claim C2 at the micro scale
# (one seed, a few steps: too short for a sink, so its verdict is expected to be inconclusive
# with the reason). Checks the sweep ran, the intervention was applied and the report says so.
set -eu
BIN=${SINKLAB_BIN:?}
SRC=${SINKLAB_SRC:?}
OUT=$(mktemp -d /tmp/sinklab_reproduce.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
"$BIN" reproduce C2 --scale micro --claims "$SRC/configs/claims" --out "$OUT" > "$OUT/log.txt" 2>&1 || {
    cat "$OUT/log.txt"; echo "FAIL: sinklab reproduce C2 --scale micro exited non-zero"; exit 1; }
test -f "$OUT/REPORT.md" || { echo "FAIL: no REPORT.md"; exit 1; }
test -f "$OUT/report.html" || { echo "FAIL: no report.html"; exit 1; }
test -f "$OUT/C2/runs/seed=0/summary.json" || { ls -R "$OUT"; echo "FAIL: the C2 run did not finish"; exit 1; }
ls "$OUT"/C2/interventions/*/interventions.json > /dev/null || { echo "FAIL: drop_bos was not applied"; exit 1; }
grep -q '^| C2 ' "$OUT/REPORT.md" || { echo "FAIL: REPORT.md has no C2 row"; exit 1; }
grep -Eq '\| (reproduced|not reproduced|inconclusive) \|' "$OUT/REPORT.md" || { echo "FAIL: no verdict"; exit 1; }
# the report records the claim file's hash and the command
grep -q 'hash [0-9a-f]\{16\}' "$OUT/REPORT.md" || { echo "FAIL: no claim hash"; exit 1; }
grep -q 'sinklab reproduce C2 --scale micro' "$OUT/REPORT.md" || { echo "FAIL: no command"; exit 1; }
# a second run reuses the finished run (no training: the sweep reports it complete)
"$BIN" reproduce C2 --scale micro --claims "$SRC/configs/claims" --out "$OUT" > "$OUT/log2.txt" 2>&1
grep -q 'all complete' "$OUT/log2.txt" || { cat "$OUT/log2.txt"; echo "FAIL: the finished run was not reused"; exit 1; }
# a run whose config.yaml cannot be read leaves the claim undecided, saying why (not "0 of 1 finished")
cp "$OUT/C2/runs/seed=0/config.yaml" "$OUT/config.keep"
printf 'model:\n  n_layr: 2\n' > "$OUT/C2/runs/seed=0/config.yaml"
"$BIN" reproduce C2 --scale micro --no-run --claims "$SRC/configs/claims" --out "$OUT" > "$OUT/log3.txt" 2>&1 || true
grep -q 'inconclusive: a run could not be read' "$OUT/log3.txt" && grep -q 'n_layr' "$OUT/log3.txt" ||
    { cat "$OUT/log3.txt"; echo "FAIL: an unreadable run's config was not reported as the reason"; exit 1; }
cp "$OUT/config.keep" "$OUT/C2/runs/seed=0/config.yaml"
echo "1 passed, 0 failed"
