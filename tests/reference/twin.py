#!/usr/bin/python3
"""twin.py: a test of training dynamics, beyond one-step parity. Trains sinklab for N steps, then
trains the PyTorch reference model (tests/reference/model.py) from sinklab's own step-0
checkpoint on sinklab's own batches (`sinklab data --json`) with the same optimiser, schedule,
weight-decay groups and clipping, and compares the two trajectories step by step: the training
loss at every step and alpha_0 of every head on the probe set (`sinklab data --probe --json`) at
every probe step. Both run in float32, so they agree to float noise that grows slowly with steps.

    /usr/bin/python3 tests/reference/twin.py --sinklab build/sinklab \\
        --config tests/configs/twin.yaml --steps 300

Exit 0 when every difference is within tolerance (--loss-tol relative, --alpha-tol absolute),
1 when not, 2 on bad usage, 77 (CTest's skip code) when torch is not importable.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

try:
    import torch
except ImportError:
    print("twin.py: SKIPPED: torch is not importable by %s (scripts/setup.sh --with-test-deps "
          "installs python3-torch)" % sys.executable)
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tools"))

import sinklab_ckpt  # noqa: E402
from model import SinkModel, load_state  # noqa: E402

BATCH_KEYS = ("tokens", "targets", "positions", "doc_ids", "loss_mask", "prefix_len")


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("twin.py: %s failed (exit %d):\n%s" % (" ".join(cmd), r.returncode, r.stderr))
    return r.stdout


def read_batches(text):
    """`sinklab data --json` lines grouped by their "step" into batches of tensors."""
    by_step = {}
    for line in text.splitlines():
        if line.strip():
            d = json.loads(line)
            by_step.setdefault(d["step"], []).append(d)
    out = []
    for step in sorted(by_step):
        rows = by_step[step]
        b = {k: torch.tensor([r[k] for r in rows]) for k in BATCH_KEYS}
        b["loss_mask"] = b["loss_mask"].to(torch.float32)
        out.append(b)
    return out


def param_group(name):
    """sinklab's ParamGroup of a parameter (README "Parameters and conventions")."""
    last = name.rsplit(".", 1)[-1]
    if name in ("wte", "wpe"):
        return "embedding"
    if name == "sink_token" or last in ("sink_logit", "sink_k", "sink_v"):
        return "sink"
    if last == "bias" or name.endswith(("ln1.weight", "ln2.weight", "lnf.weight", "mlm.ln.weight")):
        return "vector"
    return "matrix"


def decays(groups, g):
    return {"matrices": g == "matrix", "matrices_embeddings": g in ("matrix", "embedding"),
            "all_but_sinks": g != "sink", "all": True}[groups]


def f32(x):
    return float(torch.tensor(x, dtype=torch.float32))


def lr_at(t, step):
    """optim_lr of train/optim.c: linear warm-up, then constant, cosine or linear decay."""
    lr, lo, w, steps = t["lr"], t["min_lr"], t["warmup_steps"], t["steps"]
    if step < w:
        return f32(lr * (step + 1) / w)
    if t["schedule"] == "constant":
        return f32(lr)
    span = steps - w
    if span <= 0 or step >= steps:
        return f32(lo)
    r = (step - w) / span
    if t["schedule"] == "linear":
        return f32(lr + (lo - lr) * r)
    return f32(lo + (lr - lo) * 0.5 * (1.0 + math.cos(math.pi * r)))


def clip(params, max_norm):
    """optim_clip_grad: the global norm in double; gradients scaled by float(max / norm)."""
    norm = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in params if p.grad is not None))
    if max_norm > 0 and math.isfinite(norm) and norm > max_norm:
        scale = f32(max_norm / norm)
        for p in params:
            if p.grad is not None:
                p.grad.mul_(scale)
    return norm


def alpha0(model, probe):
    """alpha_0 per (layer, head): per sequence the mean of A[i, 0] over non-PAD queries allowed to
    see key 0, then the mean over sequences where that set is non-empty (metrics_alpha)."""
    with torch.no_grad():
        out = model(probe["tokens"], probe["positions"], probe["doc_ids"], probe["prefix_len"])
    allowed = out["allowed"][:, :, 0] & (probe["doc_ids"] >= 0)          # (B, T) queries seeing key 0
    res = []
    for A in out["attn_probs"]:                                           # (B, H, T, T)
        col = A[:, :, :, 0].double() * allowed.unsqueeze(1)
        cnt = allowed.sum(-1).double()                                   # (B)
        per_seq = col.sum(-1) / cnt.clamp(min=1).unsqueeze(1)             # (B, H)
        ok = cnt > 0
        res.append((per_seq[ok].mean(0)).tolist())
    return res


def sinklab_run(args, work):
    cfg_text = open(args.config).read()
    run_dir = os.path.join(work, "run")
    sets = ["train.steps=%d" % args.steps, "train.log_every=1", "probe.every=%d" % args.probe_every,
            "checkpoint.log_spaced=true", "checkpoint.every=0", "output.report=false",
            "train.eval_every=0"]
    cmd = [args.sinklab, "train", args.config, "--out", run_dir, "--force"]
    for s in sets + args.set:
        cmd += ["--set", s]
    run(cmd)
    return run_dir, cfg_text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sinklab", required=True, help="the sinklab binary")
    ap.add_argument("--config", required=True)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--probe-every", type=int, default=10)
    ap.add_argument("--set", action="append", default=[], help="extra --set for both sides")
    ap.add_argument("--loss-tol", type=float, default=1e-4, help="max relative loss difference")
    ap.add_argument("--alpha-tol", type=float, default=1e-4, help="max absolute alpha_0 difference")
    ap.add_argument("--work", default=None, help="keep the run here (default: a temp dir)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.work:
        return twin(args, args.work)
    with tempfile.TemporaryDirectory(prefix="sinklab_twin_") as work:
        return twin(args, work)


def twin(args, work):
    run_dir, _ = sinklab_run(args, work)
    ck = sinklab_ckpt.load(os.path.join(run_dir, "checkpoints", "step_0000000.ckpt"))
    cfg = sinklab_ckpt.parse_config(ck["config"])
    t = cfg["train"]
    if int(t.get("grad_accum", 1)) != 1:
        sys.exit("twin.py: train.grad_accum must be 1")
    resolved = os.path.join(run_dir, "config.yaml")
    batches = read_batches(run([args.sinklab, "data", resolved, "--batches", str(args.steps), "--json"]))
    probe = read_batches(run([args.sinklab, "data", resolved, "--probe", "--json"]))[0]
    logged = {}
    for line in open(os.path.join(run_dir, "metrics.jsonl")):
        d = json.loads(line)
        if "step" in d:
            logged[d["step"]] = d

    model = SinkModel(cfg, dtype=torch.float32)
    load_state(model, ck["params"], strict=True)
    named = model.named_sink_parameters()
    groups = [{"params": [], "weight_decay": 0.0}, {"params": [], "weight_decay": float(t["weight_decay"])}]
    for name, p in named:
        groups[decays(t["decay"], param_group(name))]["params"].append(p)
    if t["optimizer"] == "adamw":
        opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=float(t["lr"]),
                                betas=(float(t["beta1"]), float(t["beta2"])), eps=float(t["eps"]),
                                foreach=False)
    else:
        opt = torch.optim.SGD([g for g in groups if g["params"]], lr=float(t["lr"]),
                              momentum=float(t["momentum"]), foreach=False)
    params = [p for _, p in named]
    worst_loss, worst_alpha, at_loss, at_alpha = 0.0, 0.0, 0, 0
    rows = []
    for step in range(args.steps + 1):
        if step % args.probe_every == 0 or step == args.steps:
            ref = logged.get(step, {}).get("probe", {}).get("alpha0")
            if ref is not None:
                ours = alpha0(model, probe)
                d = max(abs(a - b) for ra, rb in zip(ours, ref) for a, b in zip(ra, rb))
                if d > worst_alpha:
                    worst_alpha, at_alpha = d, step
                rows.append((step, max(max(r) for r in ref), max(max(r) for r in ours), d))
        if step == args.steps:
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(t, step)
        opt.zero_grad(set_to_none=False)
        b = batches[step]
        out = model(b["tokens"], b["positions"], b["doc_ids"], b["prefix_len"], b["targets"], b["loss_mask"])
        out["loss"].backward()
        clip(params, float(t["grad_clip"]))
        opt.step()
        want = logged.get(step + 1, {}).get("loss")
        if want is not None:
            rel = abs(float(out["loss"]) - want) / max(abs(want), 1e-12)
            if rel > worst_loss:
                worst_loss, at_loss = rel, step + 1
    print("twin: %d steps of %s; sinklab vs PyTorch reference from the same step-0 checkpoint and "
          "batches" % (args.steps, args.config))
    print("  step   max alpha0 sinklab   max alpha0 torch   max |diff| over heads")
    for step, a, b, d in rows:
        print("  %5d   %18.4f   %16.4f   %.2e" % (step, a, b, d))
    print("  worst relative loss difference %.2e (step %d), tolerance %.1e" % (worst_loss, at_loss, args.loss_tol))
    print("  worst alpha0 difference %.2e (step %d), tolerance %.1e" % (worst_alpha, at_alpha, args.alpha_tol))
    ok = worst_loss <= args.loss_tol and worst_alpha <= args.alpha_tol and rows
    print("twin: %s" % ("agree" if ok else "DIFFER"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
