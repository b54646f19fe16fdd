#!/bin/bash
# corrupt.sh [N]: N (default 100) damaged copies of a checkpoint (a random bit flipped, truncated,
# a range zeroed, junk appended, two bytes swapped), each refused with exit 2 and a message naming
# the file by `sinklab analyze`; then one damaged newest checkpoint in a run folder makes --resume
# fall back to the newest intact one, say why, and still end bit-identical.
. "$(dirname "$0")/lib.sh"
N="${1:-100}"
CFG="$WORK/tiny.yaml"
tiny_config "$CFG"
"$BIN" train "$CFG" --out "$WORK/ref" --quiet || exit 1
src="$WORK/ref/checkpoints/$(cat "$WORK/ref/checkpoints/latest")"
size=$(stat -c %s "$src")
refused=0
for i in $(seq 1 "$N"); do
    f="$WORK/c$i.ckpt"
    cp "$src" "$f"
    off=$(rand "$size")
    case $((i % 5)) in
    0) byte=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
       printf "$(printf '\\%03o' $((byte ^ (1 << $(rand 8)))))" | dd of="$f" bs=1 seek="$off" conv=notrunc 2>/dev/null ;;
    1) truncate -s "$off" "$f" ;;
    2) dd if=/dev/zero of="$f" bs=1 seek="$off" count=$((1 + $(rand 64))) conv=notrunc 2>/dev/null ;;
    3) head -c $((1 + $(rand 100))) /dev/urandom >> "$f" ;;
    4) a=$(od -An -tx1 -j "$off" -N2 "$f" | tr -d ' ')
       [ "${a:0:2}" = "${a:2:2}" ] && a="${a:0:2}$(printf %02x $(( (0x${a:0:2} + 1) % 256 )))"
       printf "\\x${a:2:2}\\x${a:0:2}" | dd of="$f" bs=1 seek="$off" conv=notrunc 2>/dev/null ;;
    esac
    if cmp -s "$src" "$f"; then skip "c$i: the damage left the file unchanged"; continue; fi
    "$BIN" analyze "$f" --out "$WORK/an" >"$WORK/an.out" 2>&1
    rc=$?
    if [ "$rc" = 2 ] && grep -q "$f" "$WORK/an.out"; then ok; refused=$((refused + 1))
    else bad "c$i (kind $((i % 5)), offset $off): exit $rc: $(tail -1 "$WORK/an.out")"; fi
    rm -f "$f"
done
# a damaged newest checkpoint: resume falls back (which needs the moments in the older checkpoint:
# checkpoint.optimizer_state all; with the default, latest, the fallback is refused, saying why)
d="$WORK/fallback"
"$BIN" train "$CFG" --out "$d" --quiet --set train.steps=40 --set checkpoint.optimizer_state=all || exit 1
printf 'X' | dd of="$d/checkpoints/step_0000040.ckpt" bs=1 seek=3000 conv=notrunc 2>/dev/null
if finish_run "$d" && grep -q "(file damaged); newest intact: step_0000030.ckpt" "$d/log.txt" &&
   losses "$d" | cmp -s - <(losses "$WORK/ref"); then ok
else bad "fallback: $(grep -m1 step_000004 "$d/log.txt")"; fi
summary corrupt "$refused damaged checkpoints refused, fallback resume bit-identical"
