#!/bin/sh
# make_seeds.sh: regenerates tests/fuzz/corpus/checkpoint/ from a 1-step run of the model the
# checkpoint harness loads into (fuzz_checkpoint.c); the text corpus seeds are committed as is.
# Usage: tests/fuzz/make_seeds.sh BUILD_DIR   (the folder holding sinklab)
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$1/sinklab" train ../configs/tiny.yaml --out "$tmp/run" --quiet \
    --set model.n_layer=1 --set model.d_model=4 --set model.n_head=1 --set model.d_ff=4 \
    --set model.max_seq_len=8 --set data.seq_len=8 --set train.steps=1 --set probe.every=0 \
    --set probe.seq_len=8 --set train.eval_every=0
cp "$tmp/run/checkpoints/step_0000001.ckpt" corpus/checkpoint/tiny.ckpt
cp "$tmp/run/checkpoints/step_0000000.ckpt" corpus/checkpoint/tiny0.ckpt
