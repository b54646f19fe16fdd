#!/usr/bin/python3
"""intervene_parity.py: `sinklab analyze --intervene` against the PyTorch reference model.

Trains the tiny test config, runs a set of interventions with sinklab, replays each spec on the
same probe batch (recorded in interventions.json) with tools/torch_load.py's independent
implementation through tests/reference/model.py, and requires the loss and the baseline loss
over the identical targets to agree. Exits 77 (CTest: skipped) when torch is not importable.

    python3 tests/intervene_parity.py BUILD/sinklab
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import torch  # noqa: F401
except ImportError:
    print("SKIP: PyTorch is not importable (apt-get install python3-torch); the intervention "
          "parity test needs it")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tools"))
import torch_load  # noqa: E402

SPECS = ["drop_bos", "block_key:0", "block_key:0@1.1", "zero_value:0@0.0",
         "scale_attn:0,0.25@1", "pos_swap:2,5", "isolate:3+window:6", "replace_first:65",
         "drop_bos+block_key:1@0"]
# bidirectional probe sets get sinklab's deterministic [MASK] pattern (recorded in probe_batch)
BIDIR_SPECS = ["block_key:0", "scale_attn:15,3@1", "zero_value:0@0.1", "window:4", "pos_swap:0,15"]
TOL = 2e-5


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("FAIL: %s: exit %d\n%s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
    return r.stdout


def check(binary, name, sets, specs):
    """Trains tiny.yaml with sets, runs specs with sinklab and replays them; returns failures."""
    d = tempfile.mkdtemp(prefix="intv_parity_")
    cmd = [binary, "train", os.path.join(REPO, "tests/configs/tiny.yaml"), "--out", d + "/run",
           "--quiet", "--set", "train.steps=100", "--set", "train.lr=1e-2"]
    for s in sets:
        cmd += ["--set", s]
    run(cmd)
    # a model trained past uniform attention, so the interventions change the loss visibly
    ckpt = d + "/run/checkpoints/step_0000100.ckpt"
    args = [binary, "analyze", ckpt, "--out", d + "/a", "--set", "probe.n_seq=4"]
    for s in specs:
        args += ["--intervene", s]
    run(args)
    with open(d + "/a/interventions.json") as f:
        doc = json.load(f)
    ck = doc["checkpoints"][0]
    model, ckd, cfg = torch_load.load_model(ckpt)
    batch = ck["probe_batch"]
    failures = 0
    for iv in ck["interventions"]:
        ref = torch_load.run_intervention(model, cfg, batch, iv["spec"])
        for key in ("loss", "baseline_loss"):
            err = abs(ref[key] - iv[key])
            ok = err <= TOL and ref["n_targets"] == iv["n_targets"]
            failures += not ok
            print("%-4s %-13s %-24s %-13s sinklab %.7f torch %.7f (|diff| %.2g, targets %d / %d)"
                  % ("ok" if ok else "FAIL", name, iv["spec"], key, iv[key], ref[key], err,
                     iv["n_targets"], ref["n_targets"]))
        # the effect itself, which is what a user reads
        d_ref = ref["loss"] - ref["baseline_loss"]
        ok = abs(d_ref - iv["delta_loss"]) <= TOL
        failures += not ok
        print("%-4s %-13s %-24s %-13s sinklab %+.7f torch %+.7f"
              % ("ok" if ok else "FAIL", name, iv["spec"], "delta_loss", iv["delta_loss"], d_ref))
    return failures


def main(binary):
    failures = check(binary, "causal", ["data.bos=window_start"], SPECS)
    failures += check(binary, "bidirectional", ["model.kind=bidirectional"], BIDIR_SPECS)
    if failures:
        sys.exit("FAIL: %d comparisons differ by more than %g" % (failures, TOL))
    print("intervention parity: %d specs agree within %g" % (len(SPECS) + len(BIDIR_SPECS), TOL))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "build", "sinklab"))
