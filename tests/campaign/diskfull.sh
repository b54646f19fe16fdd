#!/bin/bash
# diskfull.sh: a run on a small tmpfs that fills up: exit 1, "No space left on device" on stderr
# and in log.txt, the previous checkpoint intact; after space is freed the run resumes and ends
# bit-identical. Needs root (mount); otherwise skipped.
. "$(dirname "$0")/lib.sh"
CFG="$WORK/tiny.yaml"
tiny_config "$CFG"
if [ "$(id -u)" != 0 ]; then skip "diskfull: needs root to mount a tmpfs"; summary diskfull; exit 0; fi
"$BIN" train "$CFG" --out "$WORK/ref" --quiet || exit 1
mnt="$WORK/small"
mkdir -p "$mnt"
if ! mount -t tmpfs -o size=1200k tmpfs "$mnt"; then skip "diskfull: mount failed"; summary diskfull; exit 0; fi
trap 'umount "$mnt" 2>/dev/null; rm -rf "$WORK"' EXIT
d="$mnt/run"
"$BIN" train "$CFG" --out "$d" --quiet >"$WORK/full.out" 2>&1
rc=$?
if [ "$rc" = 1 ] && grep -q "No space left on device" "$WORK/full.out" && grep -q "No space left on device" "$d/log.txt"; then ok
else bad "full: exit $rc, want 1 with 'No space left on device' on stderr and in log.txt: $(tail -2 "$WORK/full.out")"; fi
if "$BIN" analyze "$d/checkpoints/$(cat "$d/checkpoints/latest")" --out "$WORK/an" >/dev/null 2>&1; then ok
else bad "full: the latest checkpoint is not intact"; fi
# free the space: move the run to a roomy disk and resume there
cp -r "$d" "$WORK/moved"
if finish_run "$WORK/moved" && losses "$WORK/moved" | cmp -s - <(losses "$WORK/ref"); then ok
else bad "full: resume after freeing space failed or differs: $(tail -1 "$WORK/resume.out")"; fi
summary diskfull "a full disk reported in log.txt, previous checkpoint intact, resume bit-identical"
