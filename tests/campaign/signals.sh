#!/bin/bash
# signals.sh: SIGINT, SIGTERM, SIGHUP stop a run cleanly (exit 130/143/129, "interrupted at step N
# (SIG)" in log.txt, no summary.json (the run is resumable, not complete), a checkpoint of
# step N) and the resumed run is
# bit-identical; a second signal stops at once and the run still resumes bit-identically.
. "$(dirname "$0")/lib.sh"
CFG="$WORK/tiny.yaml"
tiny_config "$CFG"
"$BIN" train "$CFG" --out "$WORK/ref" --quiet || exit 1
losses "$WORK/ref" > "$WORK/ref.losses"
trial() {   # name signal expected-rc count
    local d="$WORK/$1"
    "$BIN" train "$CFG" --out "$d" --quiet >/dev/null 2>&1 &
    local pid=$!
    wait_for_step "$d" $((20 + $(rand 100))) "$pid" || { wait "$pid"; bad "$1: the run ended before the signal"; return; }
    for _ in $(seq 1 "$4"); do kill -"$2" "$pid" 2>/dev/null; done
    wait "$pid"
    local rc=$?
    if [ "$4" = 1 ]; then
        [ "$rc" = "$3" ] || { bad "$1: exit $rc, want $3"; return; }
        grep -q "interrupted at step [0-9]* (SIG$2)" "$d/log.txt" || { bad "$1: no 'interrupted' line in log.txt"; return; }
        [ ! -f "$d/summary.json" ] || { bad "$1: an interrupted run wrote summary.json (it would count as complete)"; return; }
        local step
        step=$(sed -n 's/^interrupted at step \([0-9]*\).*/\1/p' "$d/log.txt")
        [ -f "$d/checkpoints/step_$(printf %07d "$step").ckpt" ] || { bad "$1: no checkpoint of step $step"; return; }
        [ -f "$d/report.html" ] || { bad "$1: no report"; return; }
    else
        [ "$rc" -ge 128 ] || { bad "$1: exit $rc after two signals"; return; }
    fi
    finish_run "$d" || { bad "$1: resume failed: $(tail -1 "$WORK/resume.out")"; return; }
    losses "$d" | cmp -s - "$WORK/ref.losses" || { bad "$1: resumed losses differ"; return; }
    ok
}
trial term TERM 143 1
trial int2 INT 130 2
if [ -z "${CAMPAIGN_QUICK:-}" ]; then
    trial int INT 130 1
    trial hup HUP 129 1
    trial term2 TERM 143 2
fi
# ulimit -f: SIGXFSZ is ignored, the write fails with a message in log.txt
d="$WORK/xfsz"
(ulimit -f 64; "$BIN" train "$CFG" --out "$d" --quiet >"$WORK/xfsz.out" 2>&1)
rc=$?
if [ "$rc" = 1 ] && grep -q "File too large" "$WORK/xfsz.out" && grep -q "File too large" "$d/log.txt"; then ok
else bad "xfsz: exit $rc, want 1 with 'File too large' on stderr and in log.txt: $(tail -1 "$WORK/xfsz.out")"; fi
summary signals "SIGINT, SIGTERM, SIGHUP once and twice, ulimit -f"
