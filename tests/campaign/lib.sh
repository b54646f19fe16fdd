# lib.sh: shared by the reliability campaign scripts (tests/campaign/*.sh, README "Reliability").
# Each script checks an expected outcome per trial, prints one summary line
# "campaign NAME: P passed, F failed[, S skipped] (figure...)" and exits 1 if any trial failed.
# Environment: SINKLAB_BIN (default build/sinklab), CAMPAIGN_TMP (default a fresh mktemp -d).
set -u
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${SINKLAB_BIN:-$ROOT/build/sinklab}"
[ -x "$BIN" ] || { echo "campaign: $BIN not built (run scripts/setup.sh)" >&2; exit 1; }
WORK="${CAMPAIGN_TMP:-$(mktemp -d)}"
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
PASS=0
FAIL=0
SKIP=0

# The tiny run every script uses: 2 layers, d 32, T 64, synthetic corpus, checkpoints every 10,
# CAMPAIGN_STEPS steps (default 200).
tiny_config() {
    sed "s/STEPS/${CAMPAIGN_STEPS:-200}/" > "$1" <<'YAML'
model: {n_layer: 2, d_model: 32, n_head: 2, d_ff: 64, max_seq_len: 64}
data: {corpus: synthetic, seq_len: 64, synthetic_docs: 200}
train: {steps: STEPS, batch_size: 4, threads: 1, log_every: 1, eval_every: 50, eval_batches: 2}
probe: {every: 50, n_seq: 8, seq_len: 16, jacobian_seq: 2, jacobian_samples: 2}
checkpoint: {every: 10, log_spaced: true}
YAML
}

ok() { PASS=$((PASS + 1)); }
bad() { FAIL=$((FAIL + 1)); echo "FAIL: $*" >&2; }
skip() { SKIP=$((SKIP + 1)); echo "skip: $*" >&2; }

# The losses of a run folder, one "step loss" per line: what must be bit-identical.
losses() { sed -n 's/^{"step":\([0-9]*\),.*"loss":\([^,]*\),.*/\1 \2/p' "$1/metrics.jsonl"; }

# Resumes DIR to its end (a folder without a checkpoint starts again from 0).
finish_run() {
    "$BIN" train "$CFG" --out "$1" --resume --quiet "${@:2}" >"$WORK/resume.out" 2>&1
}

# Waits (at most 30 s) until the run in DIR has logged step >= STEP or process PID has ended:
# signals are sent at a training step, not after a guessed delay (a fast machine finished the
# run before a 0.3-1.0 s sleep ended).
wait_for_step() {   # dir step pid
    for _ in $(seq 1 3000); do
        kill -0 "$3" 2>/dev/null || return 1
        local last
        last=$(sed -n 's/^{"step":\([0-9]*\),.*/\1/p' "$1/metrics.jsonl" 2>/dev/null | tail -1)
        [ -n "$last" ] && [ "$last" -ge "$2" ] && return 0
        sleep 0.01
    done
    return 1
}

# A random integer in [0, $1).
rand() { awk -v n="$1" -v s="$(od -An -N4 -tu4 /dev/urandom)" 'BEGIN { srand(s); print int(rand() * n) }'; }

summary() {
    local extra="${2:-}"
    echo "campaign $1: $PASS passed, $FAIL failed$([ "$SKIP" -gt 0 ] && echo ", $SKIP skipped")${extra:+ ($extra)}"
    [ "$FAIL" -eq 0 ]
}
