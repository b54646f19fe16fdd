#!/usr/bin/python3
"""Load a sinklab checkpoint into the PyTorch reference model and evaluate it.

The reference model (tests/reference/model.py, SinkModel) is an independent PyTorch
implementation of the README ("Parameters and conventions"); with a checkpoint's weights it computes the same loss as the C
model, so results can be checked, and models studied, with the whole PyTorch toolbox.

    import sys; sys.path.insert(0, "tools")
    import torch_load
    model, ck, cfg = torch_load.load_model("runs/quickstart/checkpoints/step_0002000.ckpt")
    batches = torch_load.read_batches(open("val.jsonl"))     # from `sinklab data ... --json`
    print(torch_load.evaluate(model, batches)["val_loss"])

Command line (run from the repo root with the Python that has torch, /usr/bin/python3):

    # the validation loss exactly as `sinklab train` computes it (train.eval_batches val batches):
    python3 tools/torch_load.py runs/q/checkpoints/step_0002000.ckpt --sinklab build/sinklab
    # or on batches dumped beforehand (one JSON object per sequence; "-" reads stdin):
    sinklab data runs/q/config.yaml --split val --batches 8 --json > val.jsonl
    python3 tools/torch_load.py runs/q/checkpoints/step_0002000.ckpt --batches val.jsonl

Sequences are grouped into batches by their "step" field (`sinklab data` numbers batches that
way); the reported val_loss is the mean over batches of each batch's mean loss over positions with
loss_mask = 1, which is what the trainer logs as val_loss in metrics.jsonl. The token-weighted
mean is printed too. Exit 0, or 2 with a message on bad input.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "reference"))

import sinklab_ckpt  # noqa: E402

BATCH_KEYS = ("tokens", "targets", "positions", "doc_ids", "loss_mask")


def load_model(path, dtype=torch.float32):
    """(SinkModel with the checkpoint's parameters, the checkpoint dict, the config dict).
    Raises sinklab_ckpt.CheckpointError on a damaged file and ValueError when the checkpoint's
    parameters do not fit the model its config describes."""
    from model import SinkModel, load_state
    ck = sinklab_ckpt.load(path)
    cfg = sinklab_ckpt.parse_config(ck["config"])
    model = SinkModel(cfg, dtype=dtype)
    load_state(model, ck["params"], strict=True)
    model.eval()
    return model, ck, cfg


def read_batches(lines):
    """Batches from `sinklab data --json` output (one JSON object per sequence, or a JSON list of
    them): a list of dicts of tensors tokens/targets/positions/doc_ids/loss_mask (B, T) and
    prefix_len (B), one per distinct "step" value, in order of first appearance."""
    text = "".join(lines)
    stripped = text.strip()
    if stripped.startswith("["):
        seqs = json.loads(stripped)
    else:
        seqs = []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    seqs.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError("line %d: not JSON (%s)" % (i, e))
    groups = {}
    for i, s in enumerate(seqs):
        missing = [k for k in BATCH_KEYS if k not in s]
        if missing:
            raise ValueError("sequence %d lacks %s (expected `sinklab data --json` output)"
                             % (i, ", ".join(missing)))
        groups.setdefault((s.get("split"), s.get("step", 0)), []).append(s)
    batches = []
    for key, group in groups.items():
        lengths = set(len(s["tokens"]) for s in group)
        if len(lengths) != 1:
            raise ValueError("batch %s: sequences of different lengths %s" % (key, sorted(lengths)))
        b = {k: torch.tensor([s[k] for s in group], dtype=torch.long) for k in BATCH_KEYS
             if k != "loss_mask"}
        b["loss_mask"] = torch.tensor([s["loss_mask"] for s in group], dtype=torch.float32)
        b["prefix_len"] = torch.tensor([int(s.get("prefix_len", 0)) for s in group], dtype=torch.long)
        b["name"] = "%s step %s" % key
        batches.append(b)
    return batches


def evaluate(model, batches):
    """Per-batch mean losses, their mean (val_loss, as the trainer computes it) and the
    token-weighted mean over all counted positions."""
    losses, weighted, count = [], 0.0, 0.0
    with torch.no_grad():
        for b in batches:
            out = model(b["tokens"], b["positions"], b["doc_ids"], b["prefix_len"],
                        b["targets"], b["loss_mask"])
            loss = float(out["loss"])
            n = float((b["loss_mask"] != 0).sum())
            losses.append(loss)
            weighted += loss * n
            count += n
    return {"batch_losses": losses,
            "val_loss": float(np.mean(losses)) if losses else float("nan"),
            "token_mean_loss": weighted / count if count else float("nan"),
            "positions": int(count)}


def sinklab_batches(binary, config_text, n_batches, split="val"):
    """Runs `BINARY data CONFIG --split SPLIT --batches N --json` on the checkpoint's config."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(config_text)
        cfg_path = f.name
    try:
        r = subprocess.run([binary, "data", cfg_path, "--split", split, "--batches", str(n_batches),
                            "--json"], capture_output=True, text=True)
    finally:
        os.unlink(cfg_path)
    if r.returncode != 0:
        raise ValueError("%s data failed (exit %d): %s" % (binary, r.returncode, r.stderr.strip()))
    return read_batches(r.stdout.splitlines(keepends=True))


# ---- interventions (README "Interventions"): the same specs as `sinklab analyze --intervene`,
# implemented here independently on the reference model, for parity and for Python users ----

BOS = 256
HEAD_EDITS = ("block_key", "zero_value", "scale_attn")
SEQUENCE_EDITS = ("drop_bos", "add_bos", "replace_first", "fixed_token", "pos_swap", "pos_shift",
                  "pos_as")


def parse_intervention(spec):
    """'block_key:0@1.2+drop_bos' -> [{"kind", "args": [...], "targets": [(layer, head|None)]}].
    randomize_first and perturb are not replayed here (they draw from sinklab's own RNG)."""
    ops = []
    for part in spec.split("+"):
        name = "".join(ch for ch in part.split(":")[0].split("@")[0])
        rest = part[len(name):]
        args, targets = "", ""
        if rest.startswith(":"):
            args = rest[1:]
            if name != "fixed_token" and "@" in args:
                args, targets = args.split("@", 1)
        elif rest.startswith("@"):
            targets = rest[1:]
        if name not in HEAD_EDITS + SEQUENCE_EDITS + ("isolate", "reset", "window"):
            raise ValueError("%r: %s is not replayed by torch_load" % (spec, name))
        if targets and name not in HEAD_EDITS:
            raise ValueError("%r: %s takes no @L.H target" % (spec, name))
        tl = []
        for t in filter(None, targets.replace(",", "@").split("@")):
            l, _, h = t.partition(".")
            tl.append((int(l), int(h) if h else None))
        vals = [a for a in args.replace("@", ",").replace("=", ",").split(",") if a]
        ops.append({"kind": name, "args": [float(v) if "." in v else int(v) for v in vals],
                    "targets": tl})
    return ops


def _shift(x, drop):
    return x[:, 1:] if drop else torch.cat([x[:, :1], x[:, :-1]], 1)


def apply_intervention(spec, batch, cfg):
    """The edited batch (with "orig": each position's flat index in batch, -1 if added), the mask
    to use and the per-layer edits of spec, as sinklab applies them (analysis/intervene.c)."""
    from model import resolve_config
    m = resolve_config(cfg)
    L, H, C = m["n_layer"], m["n_head"], m["d_model"]
    D = C // H
    b = {k: torch.as_tensor(batch[k]).clone() for k in BATCH_KEYS + ("prefix_len",)}
    B, T = b["tokens"].shape
    b["orig"] = torch.arange(B * T).view(B, T)
    mask = {"window": m["mask"]["window"], "doc_mask": m["mask"]["doc_mask"],
            "edits": list(m["mask"]["edits"])}
    ops = parse_intervention(spec)
    for op in [o for o in ops if o["kind"] in SEQUENCE_EDITS]:
        k, a = op["kind"], op["args"]
        if k in ("drop_bos", "add_bos"):
            drop = k == "drop_bos"
            first_doc = b["doc_ids"][:, :1].clone()
            old_tokens = b["tokens"].clone()
            old_lm0 = b["loss_mask"][:, :1].clone()
            for key in BATCH_KEYS + ("orig",):
                b[key] = _shift(b[key], drop)
            pos = b["positions"]
            if drop:
                dec = (b["doc_ids"] == first_doc) & (pos > 0)
                b["positions"] = pos - dec.long()
                b["prefix_len"] = torch.where(b["prefix_len"] > 0, b["prefix_len"] - 1, b["prefix_len"])
            else:
                T1 = b["tokens"].shape[1]
                inc = b["doc_ids"] == first_doc
                inc[:, 0] = False
                b["positions"] = pos + inc.long()
                b["positions"][:, 0] = 0
                b["tokens"][:, 0] = BOS
                b["targets"][:, 0] = old_tokens[:, 0]
                b["doc_ids"][:, 0] = first_doc[:, 0]
                b["loss_mask"][:, :1] = old_lm0
                b["orig"][:, 0] = -1
                grow = (b["prefix_len"] > 0) & (b["prefix_len"] < T1)
                b["prefix_len"] = b["prefix_len"] + grow.long()
        elif k == "replace_first":
            b["tokens"][:, 0] = a[0]
        elif k == "fixed_token":
            b["tokens"][:, a[1]] = a[0]
        elif k == "pos_swap":
            i, j = a
            b["positions"][:, [i, j]] = b["positions"][:, [j, i]]
        elif k == "pos_shift":
            b["positions"] = b["positions"] + a[0]
        elif k == "pos_as":
            j, i = a
            b["positions"][:, j] = b["positions"][:, i]
    T = b["tokens"].shape[1]
    kw = torch.ones(L, H, T, dtype=torch.float64)
    vs = torch.ones(L, T, C, dtype=torch.float64)
    used_kw, used_vs = set(), set()
    for op in [o for o in ops if o["kind"] not in SEQUENCE_EDITS]:
        k, a = op["kind"], op["args"]
        if k == "window":
            mask["window"] = a[0]
            continue
        if k in ("isolate", "reset") or (k == "block_key" and not op["targets"]):
            mask["edits"].append((k, a[0]))
            continue
        heads = [(l, h) for l in range(L) for h in range(H)]
        if op["targets"]:
            heads = [(l, h) for (l, hh) in op["targets"]
                     for h in (range(H) if hh is None else [hh])]
        for l, h in heads:
            if k == "zero_value":
                vs[l, a[0], h * D:(h + 1) * D] = 0.0
                used_vs.add(l)
            else:
                kw[l, h, a[0]] = 0.0 if k == "block_key" else kw[l, h, a[0]] * float(a[1])
                used_kw.add(l)
    edits = [{"key_weight": kw[l].float() if l in used_kw else None,
              "value_scale": vs[l].float() if l in used_vs else None} for l in range(L)]
    return b, mask, edits


def run_intervention(model, cfg, batch, spec):
    """{"loss", "baseline_loss", "n_targets"}: the mean loss with spec and without it over the
    identical targets, as `sinklab analyze --intervene` reports them."""
    base = {k: torch.as_tensor(batch[k]) for k in BATCH_KEYS + ("prefix_len",)}
    b, mask, edits = apply_intervention(spec, batch, cfg)
    with torch.no_grad():
        nb = model(base["tokens"], base["positions"], base["doc_ids"], base["prefix_len"],
                   base["targets"], base["loss_mask"])["nll"].double()
        ni = model(b["tokens"], b["positions"], b["doc_ids"], b["prefix_len"], b["targets"],
                   b["loss_mask"], mask=mask, edits=edits)["nll"].double()
    orig = b["orig"]
    base_lm = base["loss_mask"].reshape(-1)
    sel = (b["loss_mask"] != 0) & (orig >= 0)
    sel &= base_lm[orig.clamp(min=0)] != 0
    n = int(sel.sum())
    return {"loss": float(ni[sel].mean()) if n else float("nan"),
            "baseline_loss": float(nb.reshape(-1)[orig[sel]].mean()) if n else float("nan"),
            "n_targets": n}


def main(argv):
    ap = argparse.ArgumentParser(description="Evaluate a sinklab checkpoint with the PyTorch "
                                 "reference model (tests/reference/model.py).")
    ap.add_argument("checkpoint")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--batches", metavar="FILE", help="`sinklab data --json` output ('-' = stdin)")
    src.add_argument("--sinklab", metavar="BIN", help="run BIN data on the checkpoint's config")
    ap.add_argument("--eval-batches", type=int, default=0,
                    help="with --sinklab: how many val batches (default: train.eval_batches)")
    ap.add_argument("--split", default="val", choices=["train", "val"], help="with --sinklab")
    ap.add_argument("--float64", action="store_true", help="evaluate in float64")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON object")
    a = ap.parse_args(argv)
    try:
        model, ck, cfg = load_model(a.checkpoint, torch.float64 if a.float64 else torch.float32)
        if a.batches:
            if a.batches == "-":
                batches = read_batches(sys.stdin.readlines())
            else:
                with open(a.batches) as f:
                    batches = read_batches(f.readlines())
        else:
            n = a.eval_batches or int(cfg.get("train", {}).get("eval_batches", 8))
            batches = sinklab_batches(a.sinklab, ck["config"], n, a.split)
    except (OSError, ValueError, sinklab_ckpt.CheckpointError) as e:
        print("torch_load: %s" % e, file=sys.stderr)
        return 2
    if not batches:
        print("torch_load: no sequences to evaluate", file=sys.stderr)
        return 2
    res = evaluate(model, batches)
    res["step"] = ck["state"]["step"]
    res["checkpoint"] = a.checkpoint
    if a.json:
        print(json.dumps(res))
    else:
        print("%s: step %d, %d batches, %d positions" % (a.checkpoint, res["step"], len(batches),
                                                         res["positions"]))
        for b, l in zip(batches, res["batch_losses"]):
            print("  %-16s loss %.6f" % (b["name"], l))
        print("val_loss %.6f (mean of batch means; token-weighted %.6f)"
              % (res["val_loss"], res["token_mean_loss"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
