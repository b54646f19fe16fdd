#!/bin/bash
# catalogue.sh: malformed configs and invocations, each with its expected exit code and a piece
# of the expected message; none may crash (exit >= 128), none may leave a run folder behind.
. "$(dirname "$0")/lib.sh"
CFG="$WORK/tiny.yaml"
tiny_config "$CFG"
W="$WORK"
S="train $CFG --out $W/new --quiet --set train.steps=2"
# fixtures
mkdir -p "$W/run" "$W/notrun" "$W/cyc" "$W/emptyf"
"$BIN" train "$CFG" --out "$W/run" --quiet --set train.steps=2 >/dev/null 2>&1 ||
    "$BIN" train "$CFG" --out "$W/run" --quiet --set train.steps=2 --force
echo keep > "$W/notrun/notes.txt"
touch "$W/afile" "$W/empty.txt"
mkfifo "$W/fifo"
echo "a document" > "$W/cyc/a.txt"; ln -s ../cyc "$W/cyc/self"
echo "not gzip" > "$W/bad.gz"
seq 1 20000 | gzip | head -c 2000 > "$W/trunc.gz"
{ printf 'a: '; head -c 100000 /dev/zero | tr '\0' '['; head -c 100000 /dev/zero | tr '\0' ']'; echo; } > "$W/deep_flow.yaml"
{ head -c 100000 /dev/zero | sed 's/\x0/- /g'; echo x; } > "$W/deep_dash.yaml"
head -c 1100000 /dev/zero | tr '\0' '#' > "$W/huge.yaml"
printf 'model:\n  n_layer: 2\0\n' > "$W/nul.yaml"
printf 'model:\n  n_layer: [2\n' > "$W/syntax.yaml"
printf 'model: {n_layer: 2}\n---\nmodel: {n_layer: 3}\n' > "$W/two.yaml"
printf 'model:\n  n_layer: 2\n  n_layer: 3\n' > "$W/dup.yaml"
printf -- '- model\n' > "$W/list.yaml"
printf 'model:\n  n_layer: two\n' > "$W/type.yaml"
DEEP_SET="model.n_layer=$(printf '[%.0s' $(seq 1 70))1$(printf ']%.0s' $(seq 1 70))"
CASES=0
expect() {   # rc pattern args...
    local want="$1" pat="$2"
    shift 2
    CASES=$((CASES + 1))
    "$BIN" "$@" >"$W/out" 2>&1
    local rc=$?
    if [ "$rc" = "$want" ] && grep -qF -- "$pat" "$W/out"; then ok
    else bad "case $CASES (sinklab $*): exit $rc, want $want with \"$pat\"; got: $(head -c 300 "$W/out")"; fi
    [ -e "$W/new" ] && { bad "case $CASES left $W/new behind"; rm -rf "$W/new"; }
}
expect 2 "usage" train
expect 2 "cannot open config" train "$W/missing.yaml"
expect 2 "unknown option" $S --bogus
expect 2 "expected key.path=value" $S --set model.n_layer
expect 2 "did you mean model.n_head" $S --set model.n_haed=2
expect 2 "model.n_layer" $S --set model.n_layer=0
expect 2 "model.n_layer" $S --set model.n_layer=257
expect 2 "train.batch_size" $S --set train.batch_size=2147483647
expect 2 "probe.n_seq" $S --set probe.n_seq=100000000 --set probe.every=1
expect 2 "data.synthetic_docs" $S --set data.synthetic_docs=2147483647
expect 2 "model.vocab_size" $S --set model.vocab_size=16777216
expect 2 "train.memory_limit allows 1000 bytes" $S --set train.memory_limit=1000
expect 2 "train.memory_limit" $S --set train.memory_limit=lots
expect 2 "tokens_per_step" $S --set train.tokens_per_step=100
expect 2 "exclude each other" $S --resume --force
expect 2 "no run to resume" train "$CFG" --out "$W/nothing" --resume
expect 2 "is not a folder" train "$CFG" --out "$W/afile"
expect 2 "already exists" train "$CFG" --out "$W/run" --quiet
expect 2 "will not remove it" train "$CFG" --out "$W/notrun" --force
expect 2 "cannot resume with a different config" train "$CFG" --out "$W/run" --resume --set model.d_model=64
expect 2 "is a FIFO" $S --set data.corpus=files --set data.path="$W/fifo"
expect 2 "is a character device" $S --set data.corpus=files --set data.path=/dev/zero
expect 2 "directory cycle" $S --set data.corpus=files --set data.path="$W/cyc"
expect 2 "cannot open" $S --set data.corpus=files --set data.path="$W/missing.txt"
expect 2 "empty file" $S --set data.corpus=files --set data.path="$W/empty.txt"
expect 2 "directory holds no corpus files" $S --set data.corpus=files --set data.path="$W/emptyf"
expect 2 "not a gzip stream" $S --set data.corpus=files --set data.path="$W/bad.gz"
expect 2 "corrupt gzip stream" $S --set data.corpus=files --set data.path="$W/trunc.gz"
expect 2 "nesting deeper than 64" train "$W/deep_flow.yaml" --out "$W/new"
expect 2 "nesting deeper than 64" train "$W/deep_dash.yaml" --out "$W/new"
expect 2 "nesting deeper than 64" $S --set "$DEEP_SET"
expect 2 "larger than 1 MB" train "$W/huge.yaml" --out "$W/new"
expect 2 "larger than 1 MB" train /dev/zero --out "$W/new"
expect 2 "NUL byte" train "$W/nul.yaml" --out "$W/new"
expect 2 "invalid YAML" train "$W/syntax.yaml" --out "$W/new"
expect 2 "found a second one" train "$W/two.yaml" --out "$W/new"
expect 2 "model.n_layer" train "$W/dup.yaml" --out "$W/new"
expect 2 "expected a mapping" train "$W/list.yaml" --out "$W/new"
expect 2 "expected a positive integer" train "$W/type.yaml" --out "$W/new"
expect 2 "Is a directory" train "$W" --out "$W/new"
expect 2 "--batches '2abc'" data "$CFG" --batches 2abc
expect 2 "--step '12x'" data "$CFG" --step 12x
expect 2 "--batches '0'" data "$CFG" --batches 0
expect 2 "expected train or val" data "$CFG" --split test
expect 2 "train.memory_limit" data "$CFG" --set train.memory_limit=1000
expect 2 "missing.ckpt" analyze "$W/missing.ckpt"
expect 2 "usage" report
expect 2 "unknown command" frobnicate
# a folder another process holds
flock "$W/run/.lock" sleep 3 &
holder=$!
sleep 0.3
expect 2 "is in use by" train "$CFG" --out "$W/run" --resume --quiet
expect 2 "is in use by" train "$CFG" --out "$W/run" --force --quiet
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
summary catalogue "$CASES cases"
