#!/usr/bin/python3
"""selfcheck.py: checks the PyTorch reference itself (before anything is compared with it):
gradients by gradcheck, the mask rules on hand-worked tables, causality, permutation
equivariance, relative position invariance of RoPE/ALiBi, the normaliser and sink identities of
the README ("Parameters and conventions"), and the loss at initialisation. Fast (a few seconds); exit 1 on any failure."""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import (SinkModel, alibi_slopes, attend, load_state, param_shapes,  # noqa: E402
                   resolve_config, resolve_mask)

DT = torch.float64
FAILS = []


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL:", msg)


def cfg(**over):
    m = dict(kind="causal", n_layer=2, d_model=16, n_head=2, d_ff=24, vocab_size=40,
             max_seq_len=16, pos_encoding="learned", norm="layernorm", norm_position="pre",
             mlp="gelu", bias=True, tie_embeddings=True)
    attn = over.pop("attention", {})
    mask = over.pop("mask", {})
    m.update(over)
    m["attention"], m["mask"] = attn, mask
    return {"model": m, "data": {"seq_len": 8}}


def randomize(model, seed=0, std=0.4):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_sink_parameters():
            gain = 1.0 if name.endswith("weight") and p.dim() == 1 else 0.0   # norm weights
            p.copy_(torch.randn(p.shape, generator=g, dtype=DT) * std + gain)
    return model


def batch(V, B=2, T=7, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, V, (B, T), generator=g), torch.randint(0, V, (B, T), generator=g))


# ---- the mask resolver on hand-worked tables ------------------------------------------------
def rows(*s):
    return torch.tensor([[c == "1" for c in r] for r in s]).unsqueeze(0)


def test_mask_tables():
    d0 = torch.zeros(1, 5, dtype=torch.long)
    p0 = torch.zeros(1, dtype=torch.long)
    got = resolve_mask("causal", 2, False, [], d0, p0, 5)
    check(torch.equal(got, rows("10000", "11000", "01100", "00110", "00011")), "causal window 2")
    got = resolve_mask("bidirectional", 2, False, [], d0, p0, 5)
    check(torch.equal(got, rows("11000", "11100", "01110", "00111", "00011")), "bidir window 2")
    got = resolve_mask("prefix_lm", 0, False, [], d0, torch.tensor([3]), 5)
    check(torch.equal(got, rows("11100", "11100", "11100", "11110", "11111")), "prefix 3")
    docs = torch.tensor([[0, 0, 1, 1, -1]])
    got = resolve_mask("bidirectional", 0, True, [], docs, p0, 5)
    check(torch.equal(got, rows("11000", "11000", "00110", "00110", "00001")), "doc mask + PAD")
    got = resolve_mask("bidirectional", 0, False, [], docs, p0, 5)
    check(torch.equal(got, rows("11110", "11110", "11110", "11110", "00001")), "PAD keys off")
    got = resolve_mask("causal", 0, False, [("isolate", 2), ("reset", 3)], d0, p0, 5)
    check(torch.equal(got, rows("10000", "11000", "00100", "00010", "00011")), "isolate+reset")
    got = resolve_mask("bidirectional", 0, False, [("block_key", 0)], d0, p0, 5)
    check(torch.equal(got, rows("11111", "01111", "01111", "01111", "01111")), "block_key 0")


def test_alibi_slopes():
    check(alibi_slopes(8) == [2.0 ** -(i + 1) for i in range(8)], "alibi slopes H=8")
    check(alibi_slopes(3) == [2.0 ** -4, 2.0 ** -8, 2.0 ** -2], f"alibi H=3 {alibi_slopes(3)}")
    want6 = [2.0 ** -2, 2.0 ** -4, 2.0 ** -6, 2.0 ** -8, 2.0 ** -1, 2.0 ** -3]
    check(alibi_slopes(6) == want6, f"alibi H=6 {alibi_slopes(6)}")


# ---- gradients ------------------------------------------------------------------------------
def test_gradcheck():
    variants = [
        dict(pos_encoding="rope", attention=dict(normalizer="softmax1", sink="logit")),
        dict(pos_encoding="alibi", attention=dict(normalizer="sigmoid_norm", sink="kv_bias",
                                                  gate="headwise"), norm_position="post"),
        dict(kind="bidirectional", pos_encoding="learned", mlp="swiglu", norm="rmsnorm",
             attention=dict(normalizer="scaled", scale=0.7, sink="token", gate="elementwise")),
        dict(kind="prefix_lm", pos_encoding="sinusoidal", mlp="relu", tie_embeddings=False,
             attention=dict(normalizer="sigmoid", sink="k_bias"), mask=dict(window=3)),
    ]
    for v in variants:
        m = randomize(SinkModel(cfg(n_layer=1, **dict(v)), dtype=DT))
        names = [n for n, _ in m.named_sink_parameters()]
        tok, tgt = batch(40, T=5)
        pre = torch.tensor([2, 3])

        def f(*ps):
            load = {"_p." + n.replace(".", "__"): p for n, p in zip(names, ps)}
            out = torch.nn.utils.stateless.functional_call(m, load, (tok, None, None, pre, tgt))
            return out["loss"]
        ps = tuple(p.detach().clone().requires_grad_(True) for _, p in m.named_sink_parameters())
        ok = torch.autograd.gradcheck(f, ps, eps=1e-6, atol=1e-6, rtol=1e-4, raise_exception=False,
                                     fast_mode=True)
        check(ok, f"gradcheck {v}")


# ---- invariants -----------------------------------------------------------------------------
def test_causal_ignores_future():
    for pe in ("learned", "rope", "alibi", "sinusoidal"):
        m = randomize(SinkModel(cfg(pos_encoding=pe, attention=dict(sink="token")), dtype=DT))
        tok, _ = batch(40, T=9)
        a = m(tok)["logits"]
        tok2 = tok.clone()
        tok2[:, 5:] = (tok2[:, 5:] + 7) % 40
        b = m(tok2)["logits"]
        check(torch.equal(a[:, :5], b[:, :5]), f"causal {pe}: logits at t<5 changed bitwise")
        check(not torch.allclose(a[:, 5:], b[:, 5:]), f"causal {pe}: later logits unchanged?")


def test_bidirectional_permutation_equivariant():
    m = randomize(SinkModel(cfg(kind="bidirectional", pos_encoding="none",
                                attention=dict(sink="kv_bias")), dtype=DT))
    tok, _ = batch(40, T=9)
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(3))
    a = m(tok)["logits"][:, perm]
    b = m(tok[:, perm])["logits"]
    check(torch.allclose(a, b, atol=1e-12), "bidirectional NoPE: not permutation-equivariant")


def test_relative_pe_shift_invariant():
    for pe in ("rope", "alibi"):
        m = randomize(SinkModel(cfg(pos_encoding=pe, n_head=4, d_model=16), dtype=DT))
        tok, _ = batch(40, T=7)
        pos = torch.tensor([[0, 3, 1, 5, 2, 2, 6], [4, 0, 0, 1, 2, 3, 9]])
        a = m(tok, pos)["logits"]
        b = m(tok, pos + 11)["logits"]
        check(torch.allclose(a, b, atol=1e-10), f"{pe}: logits change under a position shift")


def test_kv_bias_zero_is_softmax1():
    base = randomize(SinkModel(cfg(pos_encoding="rope", attention=dict(normalizer="softmax1")),
                               dtype=DT))
    kv = SinkModel(cfg(pos_encoding="rope", attention=dict(sink="kv_bias")), dtype=DT)
    st = {n: t for n, t in base.state().items()}
    for l in range(2):
        st[f"blocks.{l}.attn.sink_k"] = torch.zeros(2, 8, dtype=DT)
        st[f"blocks.{l}.attn.sink_v"] = torch.zeros(2, 8, dtype=DT)
    load_state(kv, st)
    tok, _ = batch(40)
    a, b = base(tok), kv(tok)
    check(torch.allclose(a["logits"], b["logits"], atol=1e-12), "kv_bias(0, 0) != softmax1")
    check(torch.allclose(a["sink_mass"][1], b["sink_mass"][1], atol=1e-12),
          "kv_bias(0, 0) sink mass != softmax1's")


def test_logit_sink_is_softmax_with_extra_column():
    g = torch.Generator().manual_seed(5)
    q, k, v = (torch.randn(2, 3, 6, 4, generator=g, dtype=DT) for _ in range(3))
    allowed = resolve_mask("causal", 0, False, [], torch.zeros(2, 6, dtype=torch.long),
                           torch.zeros(2, dtype=torch.long), 6)
    b = torch.randn(3, generator=g, dtype=DT) * 3
    spec = dict(normalizer="softmax", scale=1.0, sigmoid_bias=0.0)
    out, A, mass = attend(spec, q, k, v, allowed, sink_logit=b)
    s = (q @ k.transpose(-1, -2) / 2).masked_fill(~allowed.unsqueeze(1), float("-inf"))
    full = torch.softmax(torch.cat([s, b.view(1, 3, 1, 1).expand(2, 3, 6, 1)], -1), -1)
    check(torch.allclose(A, full[..., :6], atol=1e-14), "logit sink: A != softmax with column")
    check(torch.allclose(mass, full[..., 6], atol=1e-14), "logit sink: mass != extra column")
    check(torch.allclose(out, full[..., :6] @ v, atol=1e-14), "logit sink: output")
    # k_bias never adds value mass: the output is exactly A @ v with rows summing below 1
    sk = torch.randn(3, 4, generator=g, dtype=DT)
    out, A, mass = attend(spec, q, k, v, allowed, sink_k=sk)
    check(torch.allclose(out, A @ v, atol=1e-14), "k_bias adds value mass")
    check(torch.allclose(A.sum(-1) + mass, torch.ones_like(mass), atol=1e-14),
          "k_bias: data mass + sink mass != 1")
    # scaled: rows sum to scale
    out, A, _ = attend(dict(spec, normalizer="scaled", scale=0.6), q, k, v, allowed)
    check(torch.allclose(A.sum(-1), torch.full_like(A.sum(-1), 0.6)), "scaled rows != scale")
    # sigmoid_norm rows (with a sink key) sum to one
    out, A, mass = attend(dict(spec, normalizer="sigmoid_norm", sigmoid_bias=-1.0), q, k, v,
                          allowed, sink_k=sk, sink_v=sk)
    check(torch.allclose(A.sum(-1) + mass, torch.ones_like(mass)), "sigmoid_norm rows != 1")


def test_large_gate_is_ungated():
    base = randomize(SinkModel(cfg(pos_encoding="alibi"), dtype=DT))
    for gate in ("elementwise", "headwise"):
        m = SinkModel(cfg(pos_encoding="alibi", attention=dict(gate=gate)), dtype=DT)
        st = base.state()
        G = 16 if gate == "elementwise" else 2
        for l in range(2):
            st[f"blocks.{l}.attn.gate.weight"] = torch.zeros(G, 16, dtype=DT)
            st[f"blocks.{l}.attn.gate.bias"] = torch.full((G,), 40.0, dtype=DT)
        load_state(m, st)
        tok, _ = batch(40)
        check(torch.allclose(base(tok)["logits"], m(tok)["logits"], atol=1e-12),
              f"gate {gate} with logits 40 differs from the ungated model")


def test_token_sink_sees_through_every_mask():
    m = randomize(SinkModel(cfg(kind="bidirectional", attention=dict(sink="token"),
                                mask=dict(doc_mask=True, edits=[{"isolate": 1}])), dtype=DT))
    tok, _ = batch(40, T=5)
    docs = torch.tensor([[0, 0, 1, -1, -1], [0, 1, 1, 1, 1]])
    out = m(tok, doc_ids=docs)
    for l, mass in enumerate(out["sink_mass"]):
        check(bool((mass > 1e-6).all()), f"token sink: a query got no sink mass at layer {l}")
        tot = out["attn_probs"][l].sum(-1) + mass
        check(torch.allclose(tot, torch.ones_like(tot)), f"token sink rows != 1 at layer {l}")


def test_loss_at_init_near_ln_v():
    for kind in ("causal", "bidirectional", "prefix_lm"):
        m = SinkModel(cfg(kind=kind, vocab_size=64, d_model=32, n_head=4), dtype=DT, seed=7)
        tok, tgt = batch(64, B=4, T=12)
        loss = float(m(tok, None, None, torch.full((4,), 3), tgt)["loss"])
        check(abs(loss - math.log(64)) < 0.05, f"{kind}: loss at init {loss} vs ln V "
                                               f"{math.log(64)}")


def test_param_names_match_model_md():
    c = resolve_config(cfg(kind="bidirectional", tie_embeddings=False, mlp="swiglu",
                           attention=dict(sink="kv_bias", gate="headwise")))
    names = [n for n, _ in param_shapes(c)]
    want_start = ["wte", "wpe", "blocks.0.ln1.weight", "blocks.0.ln1.bias",
                  "blocks.0.attn.q.weight", "blocks.0.attn.k.weight", "blocks.0.attn.v.weight",
                  "blocks.0.attn.o.weight", "blocks.0.attn.q.bias"]
    check(names[:len(want_start)] == want_start, f"parameter order {names[:9]}")
    for n in ("blocks.1.attn.gate.weight", "blocks.1.attn.sink_v", "blocks.1.mlp.up.bias",
              "lnf.weight", "mlm.dense.bias", "mlm.ln.bias", "lm_head.weight"):
        check(n in names, f"missing {n}")
    check(dict(param_shapes(c))["blocks.0.attn.gate.weight"] == (2, 16), "headwise gate shape")


def main():
    torch.set_num_threads(1)
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_")]
    for t in tests:
        t()
    print(f"selfcheck: {len(tests)} checks, {len(FAILS)} failures")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
