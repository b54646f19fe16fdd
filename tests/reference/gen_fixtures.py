#!/usr/bin/python3
"""gen_fixtures.py [--out DIR] [--check]: writes the PyTorch parity fixtures that
tests/test_parity.c compares sinklab against (default tests/fixtures). Each fixture is one small
model with random (seeded, deliberately large) weights and a batch; the reference computes logits,
loss, attention probabilities, sink mass and every parameter gradient in float64 and stores them
as float32. Deterministic: the same bytes on every run. --check verifies that DIR holds exactly
what would be written (exit 1 otherwise). File format: tests/reference/README.md."""
import argparse
import math
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import SinkModel, load_state, param_shapes  # noqa: E402

MAGIC = b"SLFX"
VERSION = 1
DT_F32, DT_I32, DT_UTF8 = 0, 1, 2
B = 2

# name, model overrides, T, input spec. Group 1 (issue 3): the family with plain softmax.
# Group 2 (issue 4): normalizer x sink x gate. Inputs: pos = arange | reset (per document) |
# nonmono (a random non-monotone array) | shift; docs = number of documents per sequence;
# pad = PAD tokens at the end of sequence 1; prefix = per-sequence prefix lengths.
FIXTURES = [
    ("causal_learned_ln_pre_gelu_tied", dict(pos_encoding="learned"), 7, {}),
    ("causal_none_rms_post_relu_untied",
     dict(pos_encoding="none", norm="rmsnorm", norm_position="post", mlp="relu",
          tie_embeddings=False, bias=False), 11, {}),
    ("causal_sinusoidal_swiglu_bias", dict(pos_encoding="sinusoidal", mlp="swiglu"), 13, {}),
    ("causal_sinusoidal_swiglu_nobias_rms",
     dict(pos_encoding="sinusoidal", mlp="swiglu", bias=False, norm="rmsnorm", n_layer=1), 9, {}),
    ("causal_rope500_docmask_reset",
     dict(pos_encoding="rope", rope_base=500.0, mask=dict(doc_mask=True)), 13,
     dict(docs=3, pos="reset")),
    ("causal_rope_nonmonotone_h4",
     dict(pos_encoding="rope", rope_base=2000.0, n_head=4, d_model=32, d_ff=48), 9,
     dict(pos="nonmono")),
    ("causal_alibi_h3_docmask_reset",
     dict(pos_encoding="alibi", n_head=3, d_model=24, d_ff=24, mask=dict(doc_mask=True)), 11,
     dict(docs=2, pos="reset")),
    ("causal_alibi_h4_nonmonotone_window",
     dict(pos_encoding="alibi", n_head=4, d_model=32, mask=dict(window=4)), 10,
     dict(pos="nonmono")),
    ("causal_learned_window3_post",
     dict(pos_encoding="learned", norm_position="post", mask=dict(window=3)), 8, dict(pos="shift")),
    ("causal_pad_docmask_learned",
     dict(pos_encoding="learned", mask=dict(doc_mask=True)), 12, dict(docs=2, pos="reset", pad=3)),
    ("causal_edits_isolate_reset",
     dict(pos_encoding="rope", mask=dict(edits=[{"isolate": 2}, {"reset": 6}])), 11, {}),
    ("causal_edit_block_key_untied",
     dict(pos_encoding="learned", tie_embeddings=False,
          mask=dict(edits=[{"block_key": 0}, {"block_key": 4}])), 10, {}),
    ("bidir_learned_ln_post_gelu",
     dict(kind="bidirectional", pos_encoding="learned", norm_position="post"), 12, {}),
    ("bidir_none_rms_pre_swiglu_untied",
     dict(kind="bidirectional", pos_encoding="none", norm="rmsnorm", mlp="swiglu",
          tie_embeddings=False, d_ff=24), 7, {}),
    ("bidir_alibi_window_docmask_pad",
     dict(kind="bidirectional", pos_encoding="alibi", mask=dict(window=3, doc_mask=True)), 13,
     dict(docs=2, pos="reset", pad=2)),
    ("bidir_rope_edits_all",
     dict(kind="bidirectional", pos_encoding="rope", rope_base=100.0,
          mask=dict(edits=[{"isolate": 1}, {"block_key": 3}, {"reset": 5}])), 9,
     dict(pos="nonmono")),
    ("bidir_sinusoidal_relu_nobias",
     dict(kind="bidirectional", pos_encoding="sinusoidal", mlp="relu", bias=False), 11, {}),
    ("prefix_learned_ln_pre",
     dict(kind="prefix_lm", pos_encoding="learned"), 10, dict(prefix=[3, 6])),
    ("prefix_rope_window_docmask",
     dict(kind="prefix_lm", pos_encoding="rope", mask=dict(window=4, doc_mask=True)), 13,
     dict(prefix=[5, 2], docs=2, pos="reset")),
    ("prefix_sinusoidal_rms_post_relu_untied",
     dict(kind="prefix_lm", pos_encoding="sinusoidal", norm="rmsnorm", norm_position="post",
          mlp="relu", tie_embeddings=False), 9, dict(prefix=[0, 4])),
    ("prefix_alibi_h2_pad_edit",
     dict(kind="prefix_lm", pos_encoding="alibi", n_head=2, mask=dict(edits=[{"isolate": 4}])),
     11, dict(prefix=[4, 7], pad=2)),
    # ---- attention variants ----
    ("v_causal_softmax1_rope", dict(pos_encoding="rope", attention=dict(normalizer="softmax1")),
     9, {}),
    ("v_causal_scaled_alibi_window",
     dict(pos_encoding="alibi", attention=dict(normalizer="scaled", scale=0.6),
          mask=dict(window=5)), 11, {}),
    ("v_causal_sigmoid_rope", dict(pos_encoding="rope", attention=dict(normalizer="sigmoid")),
     8, {}),
    ("v_causal_sigmoid_bias_explicit",
     dict(pos_encoding="learned", attention=dict(normalizer="sigmoid", sigmoid_bias=-1.25)),
     7, {}),
    ("v_causal_sigmoid_norm_alibi_edits",
     dict(pos_encoding="alibi", n_head=4, d_model=32,
          attention=dict(normalizer="sigmoid_norm"), mask=dict(edits=[{"isolate": 3}])), 10, {}),
    ("v_causal_softmax_logit", dict(pos_encoding="learned", attention=dict(sink="logit")), 9, {}),
    ("v_causal_softmax1_logit_window",
     dict(pos_encoding="rope", attention=dict(normalizer="softmax1", sink="logit"),
          mask=dict(window=3)), 11, {}),
    ("v_causal_softmax_kbias_rope", dict(pos_encoding="rope", attention=dict(sink="k_bias")),
     10, dict(pos="nonmono")),
    ("v_causal_softmax_kvbias_alibi_window",
     dict(pos_encoding="alibi", attention=dict(sink="kv_bias"), mask=dict(window=4)), 12, {}),
    ("v_causal_softmax_token_rope_pre",
     dict(pos_encoding="rope", attention=dict(sink="token")), 9, {}),
    ("v_causal_softmax_token_alibi_post",
     dict(pos_encoding="alibi", norm_position="post", attention=dict(sink="token"),
          mask=dict(doc_mask=True)), 11, dict(docs=2, pos="reset")),
    ("v_causal_gate_elementwise", dict(pos_encoding="learned", attention=dict(gate="elementwise")),
     8, {}),
    ("v_causal_softmax1_kbias_gate_headwise",
     dict(pos_encoding="rope", attention=dict(normalizer="softmax1", sink="k_bias",
                                              gate="headwise")), 10, {}),
    ("v_causal_scaled_kvbias", dict(pos_encoding="learned",
                                    attention=dict(normalizer="scaled", scale=1.5, sink="kv_bias")),
     7, {}),
    ("v_causal_sigmoid_kbias_gate_elementwise_window",
     dict(pos_encoding="rope", attention=dict(normalizer="sigmoid", sink="k_bias",
                                              gate="elementwise"), mask=dict(window=4)), 11, {}),
    ("v_causal_sigmoid_token_pad",
     dict(pos_encoding="learned", attention=dict(normalizer="sigmoid", sink="token"),
          mask=dict(doc_mask=True)), 10, dict(pad=3)),
    ("v_bidir_sigmoid_kvbias_alibi",
     dict(kind="bidirectional", pos_encoding="alibi",
          attention=dict(normalizer="sigmoid", sink="kv_bias")), 9, {}),
    ("v_bidir_sigmoid_norm_token_gate_headwise",
     dict(kind="bidirectional", pos_encoding="rope",
          attention=dict(normalizer="sigmoid_norm", sink="token", gate="headwise")), 10, {}),
    ("v_bidir_scaled_logit_gate_elementwise_edits",
     dict(kind="bidirectional", pos_encoding="learned",
          attention=dict(normalizer="scaled", scale=0.8, sink="logit", gate="elementwise"),
          mask=dict(edits=[{"isolate": 0}, {"block_key": 5}])), 9, {}),
    ("v_bidir_softmax_token_window_edits",
     dict(kind="bidirectional", pos_encoding="none",
          attention=dict(sink="token"), mask=dict(window=3, edits=[{"isolate": 2}])), 8, {}),
    ("v_bidir_softmax1_kvbias_post_docmask",
     dict(kind="bidirectional", pos_encoding="alibi", norm_position="post",
          attention=dict(normalizer="softmax1", sink="kv_bias"), mask=dict(doc_mask=True)), 11,
     dict(docs=3, pos="reset", pad=2)),
    ("v_prefix_softmax1_token_gate_headwise",
     dict(kind="prefix_lm", pos_encoding="rope",
          attention=dict(normalizer="softmax1", sink="token", gate="headwise")), 9,
     dict(prefix=[3, 5])),
    ("v_causal_scaled_token_gate_headwise_h4",
     dict(pos_encoding="alibi", n_head=4, d_model=32, d_ff=48, n_layer=1,
          attention=dict(normalizer="scaled", scale=1.3, sink="token", gate="headwise"),
          mask=dict(window=5, edits=[{"reset": 4}])), 12, dict(pos="shift")),
    ("v_causal_sigmoid_norm_kvbias_gate_headwise_rms",
     dict(pos_encoding="learned", norm="rmsnorm",
          attention=dict(normalizer="sigmoid_norm", sink="kv_bias", gate="headwise")), 13, {}),
    # ---- issue 13: ReLU attention (Guo et al. 2024), appended so earlier seeds stay put ----
    ("v_causal_relu_rope", dict(pos_encoding="rope", attention=dict(normalizer="relu")), 10, {}),
    ("v_causal_relu_kvbias_window_pad",
     dict(pos_encoding="learned", attention=dict(normalizer="relu", sink="kv_bias"),
          mask=dict(window=4, doc_mask=True)), 11, dict(docs=2, pos="reset", pad=2)),
    ("v_bidir_relu_token_gate_headwise_alibi",
     dict(kind="bidirectional", pos_encoding="alibi",
          attention=dict(normalizer="relu", sink="token", gate="headwise")), 9, {}),
    ("v_prefix_relu_kbias_init_torch",
     dict(kind="prefix_lm", pos_encoding="learned", init="torch", tie_embeddings=False,
          attention=dict(normalizer="relu", sink="k_bias")), 10, dict(prefix=[2, 5])),
]

# The initial weights of `init: torch` as PyTorch's nn modules draw them (tests/test_parity.c
# compares sinklab's distribution with these per parameter). Every Linear kind is present.
INIT_FIXTURES = [
    ("torch_init", dict(n_layer=2, d_model=32, n_head=2, d_ff=64, max_seq_len=32, init="torch",
                        tie_embeddings=False, mlp="swiglu",
                        attention=dict(gate="elementwise", sink="kv_bias"))),
]

# vocab_size 262 is the smallest sinklab's config accepts (the byte tokenizer's vocabulary).
BASE = dict(kind="causal", n_layer=2, d_model=16, n_head=2, d_ff=32, vocab_size=262,
            max_seq_len=24, pos_encoding="learned", rope_base=10000.0, norm="layernorm",
            norm_position="pre", mlp="gelu", bias=True, tie_embeddings=True)


def fixture_config(over, T, spec):
    """The full run config dict for one fixture."""
    model = dict(BASE)
    model.update({k: v for k, v in over.items() if k not in ("attention", "mask")})
    attn = dict(normalizer="softmax", scale=1.0, sink="none", gate="none")
    attn.update(over.get("attention", {}))
    mask = dict(window=0, doc_mask=False, edits=[])
    mask.update(over.get("mask", {}))
    model["attention"], model["mask"] = attn, mask
    data = {"seq_len": T}
    if model["kind"] == "prefix_lm":
        data["prefix_len"] = max(1, min(spec.get("prefix", [1])))
    return {"model": model, "data": data, "train": {"seed": 0}, "probe": {"seq_len": T}}


def _yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def to_yaml(cfg):
    """A sinklab run config as YAML (block style; edits as a flow list)."""
    lines = []

    def emit(d, indent):
        for k, v in d.items():
            pad = "  " * indent
            if isinstance(v, dict):
                lines.append(f"{pad}{k}:")
                emit(v, indent + 1)
            elif isinstance(v, list):
                items = ", ".join("{" + ", ".join(f"{a}: {b}" for a, b in e.items()) + "}"
                                  for e in v)
                lines.append(f"{pad}{k}: [{items}]")
            else:
                lines.append(f"{pad}{k}: {_yaml_scalar(v)}")
    emit(cfg, 0)
    return "\n".join(lines) + "\n"


def make_inputs(c, T, spec, g):
    """tokens, positions, doc_ids, prefix_len, targets, loss_mask for one fixture."""
    V, S = c["vocab_size"], c["max_seq_len"]
    tokens = torch.randint(0, V, (B, T), generator=g)
    targets = torch.randint(0, V, (B, T), generator=g)
    doc_ids = torch.zeros(B, T, dtype=torch.long)
    positions = torch.arange(T).repeat(B, 1)
    n_docs = spec.get("docs", 1)
    for b in range(B):
        if n_docs > 1:
            # distinct document boundaries per sequence: cut points drawn without replacement
            cuts = sorted((torch.randperm(T - 2, generator=g)[: n_docs - 1] + 1).tolist())
            for d, start in enumerate(cuts):
                doc_ids[b, start:] = d + 1
        if spec.get("pos") == "reset":
            for t in range(T):
                start = t
                while start > 0 and doc_ids[b, start - 1] == doc_ids[b, t]:
                    start -= 1
                positions[b, t] = t - start
        elif spec.get("pos") == "nonmono":
            positions[b] = torch.randint(0, S, (T,), generator=g)
        elif spec.get("pos") == "shift":
            positions[b] = torch.arange(T) + 3 + 5 * b
    pad = spec.get("pad", 0)
    if pad:
        doc_ids[1, T - pad:] = -1
        positions[1, T - pad:] = 0
    prefix_len = torch.tensor(spec.get("prefix", [0] * B), dtype=torch.long)
    if c["kind"] == "bidirectional":
        loss_mask = (torch.rand(B, T, generator=g) < 0.4).to(torch.float64)
        loss_mask[:, 0] = 1.0
    elif c["kind"] == "prefix_lm":
        loss_mask = (torch.arange(T).view(1, T) >= prefix_len.view(B, 1)).to(torch.float64)
    else:
        loss_mask = torch.ones(B, T, dtype=torch.float64)
    loss_mask[doc_ids < 0] = 0.0
    return tokens, positions, doc_ids, prefix_len, targets, loss_mask


def init_params(c, g):
    """Large, non-trivial random parameters so attention is far from uniform and every
    parameter's gradient is visible."""
    C = c["d_model"]
    out = {}
    for name, shape in param_shapes(c):
        last = name.split(".")[-1]
        n = lambda std: torch.randn(shape, generator=g, dtype=torch.float64) * std
        if name in ("wte", "lm_head.weight"):
            t = n(0.5)
        elif name == "wpe":
            t = n(0.3)
        elif name == "sink_token":
            t = n(1.0)
        elif last == "sink_logit":
            t = n(1.0)
        elif last == "sink_k":
            t = n(1.5)
        elif last == "sink_v":
            t = n(0.7)
        elif name.endswith("gate.bias"):
            t = n(0.7)
        elif last == "weight" and len(shape) == 1:
            t = 0.6 + 0.8 * torch.rand(shape, generator=g, dtype=torch.float64)
        elif last == "bias":
            t = n(0.2)
        elif name.endswith(("attn.q.weight", "attn.k.weight")):
            t = n(1.3 / math.sqrt(C))
        else:
            t = n(1.0 / math.sqrt(shape[1]))
        out[name] = t
    return out


def compute(cfg, T, spec, seed):
    g = torch.Generator().manual_seed(seed)
    model = SinkModel(cfg, dtype=torch.float64)
    c = model.cfg
    params = init_params(c, g)
    load_state(model, params)
    tokens, positions, doc_ids, prefix_len, targets, loss_mask = make_inputs(c, T, spec, g)
    out = model(tokens, positions, doc_ids, prefix_len, targets, loss_mask)
    model.zero_grad()
    out["loss"].backward()
    return model, params, (tokens, positions, doc_ids, prefix_len, targets, loss_mask), out


def _record(name, dtype, t):
    if dtype == DT_UTF8:
        data = t.encode("utf-8")
        shape = [len(data)]
    else:
        t = torch.as_tensor(t).detach().contiguous()
        shape = list(t.shape) if t.dim() else [1]
        npt = t.to(torch.float32 if dtype == DT_F32 else torch.int32).numpy()
        data = npt.astype(npt.dtype.newbyteorder("<"), copy=False).tobytes()
    nb = name.encode("utf-8")
    head = struct.pack("<I", len(nb)) + nb + struct.pack("<II", dtype, len(shape))
    return head + struct.pack(f"<{len(shape)}I", *shape) + data


def fixture_bytes(name, over, T, spec, seed):
    cfg = fixture_config(over, T, spec)
    model, params, inputs, out = compute(cfg, T, spec, seed)
    tokens, positions, doc_ids, prefix_len, targets, loss_mask = inputs
    recs = [_record("name", DT_UTF8, name), _record("config", DT_UTF8, to_yaml(cfg))]
    for key, t in (("tokens", tokens), ("positions", positions), ("doc_ids", doc_ids),
                   ("prefix_len", prefix_len), ("targets", targets)):
        recs.append(_record(key, DT_I32, t))
    recs.append(_record("loss_mask", DT_F32, loss_mask))
    recs.append(_record("allowed", DT_I32, out["allowed"].to(torch.int32)))
    for pname, p in model.named_sink_parameters():
        recs.append(_record("param:" + pname, DT_F32, p))
    recs.append(_record("logits", DT_F32, out["logits"]))
    recs.append(_record("loss", DT_F32, out["loss"].view(1)))
    for l, (a, m) in enumerate(zip(out["attn_probs"], out["sink_mass"])):
        recs.append(_record(f"attn:{l}", DT_F32, a))
        recs.append(_record(f"sink_mass:{l}", DT_F32, m))
    for pname, p in model.named_sink_parameters():
        # No grad means the loss does not depend on p (sigmoid + k_bias: a zero-value key).
        grad = p.grad if p.grad is not None else torch.zeros_like(p)
        recs.append(_record("grad:" + pname, DT_F32, grad))
    return MAGIC + struct.pack("<II", VERSION, len(recs)) + b"".join(recs), out


def init_fixture_bytes(name, over):
    cfg = fixture_config(over, 8, {})
    model = SinkModel(cfg, dtype=torch.float32, seed=0)
    recs = [_record("name", DT_UTF8, name), _record("config", DT_UTF8, to_yaml(cfg))]
    for pname, p in model.named_sink_parameters():
        recs.append(_record("param:" + pname, DT_F32, p))
    return MAGIC + struct.pack("<II", VERSION, len(recs)) + b"".join(recs)


def read_fixture(path):
    """{name: numpy array or str} from a fixture file (for debugging and tools)."""
    import numpy as np
    buf = open(path, "rb").read()
    if buf[:4] != MAGIC:
        raise ValueError(f"{path}: not a sinklab fixture (bad magic)")
    version, n = struct.unpack_from("<II", buf, 4)
    off, out = 12, {}
    for _ in range(n):
        (ln,) = struct.unpack_from("<I", buf, off)
        name = buf[off + 4: off + 4 + ln].decode()
        off += 4 + ln
        dtype, ndim = struct.unpack_from("<II", buf, off)
        shape = struct.unpack_from(f"<{ndim}I", buf, off + 8)
        off += 8 + 4 * ndim
        count = int(np.prod(shape))
        if dtype == DT_UTF8:
            out[name] = buf[off: off + count].decode()
            off += count
        else:
            arr = np.frombuffer(buf, dtype="<f4" if dtype == DT_F32 else "<i4", count=count,
                                offset=off)
            out[name] = arr.reshape(shape)
            off += 4 * count
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "fixtures"))
    ap.add_argument("--check", action="store_true",
                    help="compare with the files in --out instead of writing")
    args = ap.parse_args()
    torch.set_num_threads(1)     # one thread: bit-identical reductions on every machine
    os.makedirs(args.out, exist_ok=True)
    names = set()
    stale = 0
    for idx, (name, over, T, spec) in enumerate(FIXTURES):
        assert name not in names, name
        names.add(name)
        data, out = fixture_bytes(name, over, T, spec, seed=1000 + idx)
        path = os.path.join(args.out, name + ".bin")
        if args.check:
            if not os.path.exists(path) or open(path, "rb").read() != data:
                print(f"{path}: differs from the reference", file=sys.stderr)
                stale += 1
            continue
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    init_dir = os.path.join(args.out, "init")
    os.makedirs(init_dir, exist_ok=True)
    for name, over in INIT_FIXTURES:
        data = init_fixture_bytes(name, over)
        path = os.path.join(init_dir, name + ".bin")
        if args.check:
            if not os.path.exists(path) or open(path, "rb").read() != data:
                print(f"{path}: differs from the reference", file=sys.stderr)
                stale += 1
            continue
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)
    if args.check:
        return 1 if stale else 0
    # Fixtures dropped from the list would still be compared: remove them (top-level *.bin only;
    # subfolders belong to other tests).
    for f in sorted(os.listdir(args.out)):
        if f.endswith(".bin") and f[:-4] not in names:
            os.remove(os.path.join(args.out, f))
    print(f"gen_fixtures: wrote {len(FIXTURES)} fixtures to {os.path.normpath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
