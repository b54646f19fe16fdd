"""model.py: an independent PyTorch implementation of sinklab's transformer family, written from
the math in the README ("Parameters and conventions") (not from the C code), so parity fixtures test the C model against the
contract. Parameters carry exactly the names of the README ("Parameters and conventions"); see tests/reference/README.md.

    cfg = {"model": {...}, "data": {"seq_len": 64}}     # a sinklab run config (or just "model")
    m = SinkModel(cfg, dtype=torch.float64)
    load_state(m, {name: numpy_array, ...})            # e.g. from a checkpoint's npz
    out = m(tokens, positions, doc_ids, prefix_len, targets, loss_mask)
    out["logits"], out["loss"], out["attn_probs"][l], out["sink_mass"][l]
"""
import math
import struct

import torch
import torch.nn as nn

NORM_EPS = 1e-5

# The defaults DESIGN.md documents; a checkpoint's resolved config always sets every key.
MODEL_DEFAULTS = {
    "kind": "causal", "n_layer": 4, "d_model": 128, "n_head": 4, "d_ff": 512,
    "vocab_size": 262, "max_seq_len": 256, "pos_encoding": "learned", "rope_base": 10000.0,
    "norm": "layernorm", "norm_position": "pre", "mlp": "gelu", "bias": True,
    "tie_embeddings": True, "init_std": 0.02, "init": "gpt2",
}
ATTN_DEFAULTS = {"normalizer": "softmax", "scale": 1.0, "sink": "none", "gate": "none"}
MASK_DEFAULTS = {"window": 0, "doc_mask": False, "edits": []}

KINDS = ("causal", "bidirectional", "prefix_lm")
PES = ("none", "learned", "sinusoidal", "rope", "alibi")
NORMALIZERS = ("softmax", "softmax1", "scaled", "sigmoid", "sigmoid_norm", "relu")
INITS = ("gpt2", "torch")
SINKS = ("none", "logit", "k_bias", "kv_bias", "token")
GATES = ("none", "elementwise", "headwise")
EDIT_KINDS = ("isolate", "reset", "block_key")


def _as_bool(v):
    if isinstance(v, str):
        return v.strip().lower() in ("true", "yes", "on", "1")
    return bool(v)


def parse_edits(edits):
    """[{isolate: 3}, {reset: 6}] or [("isolate", 3)] -> [("isolate", 3), ...]."""
    out = []
    for e in edits or []:
        if isinstance(e, dict):
            if len(e) != 1:
                raise ValueError(f"mask edit {e!r}: expected one key")
            (kind, pos), = e.items()
        else:
            kind, pos = e
        if kind not in EDIT_KINDS:
            raise ValueError(f"mask edit {kind!r}: expected one of {EDIT_KINDS}")
        out.append((kind, int(pos)))
    return out


def resolve_config(config):
    """A flat, fully defaulted model config from a run config ({"model":..., "data":...}) or a
    bare model section. sigmoid_bias defaults to -ln(data.seq_len) as in config_validate."""
    if "model" in config and isinstance(config["model"], dict):
        model, data = config["model"], config.get("data", {}) or {}
    else:
        model, data = config, {}
    c = dict(MODEL_DEFAULTS)
    c.update({k: v for k, v in model.items() if k not in ("attention", "mask")})
    a = dict(ATTN_DEFAULTS)
    a.update(model.get("attention", {}) or {})
    mk = dict(MASK_DEFAULTS)
    mk.update(model.get("mask", {}) or {})
    for k in ("n_layer", "d_model", "n_head", "d_ff", "vocab_size", "max_seq_len"):
        c[k] = int(c[k])
    c["rope_base"] = float(c["rope_base"])
    c["bias"] = _as_bool(c["bias"])
    c["tie_embeddings"] = _as_bool(c["tie_embeddings"])
    a["scale"] = float(a["scale"])
    if a.get("sigmoid_bias") is None:
        seq_len = data.get("seq_len")
        if seq_len is None and a["normalizer"] in ("sigmoid", "sigmoid_norm"):
            raise ValueError("sigmoid attention needs model.attention.sigmoid_bias or data.seq_len")
        a["sigmoid_bias"] = -math.log(float(seq_len)) if seq_len else 0.0
    # sinklab stores config floats as float32; use exactly the value it computes with.
    a["sigmoid_bias"] = _f32(a["sigmoid_bias"])
    a["scale"] = _f32(a["scale"])
    mk["window"] = int(mk["window"])
    mk["doc_mask"] = _as_bool(mk["doc_mask"])
    mk["edits"] = parse_edits(mk["edits"])
    c["attention"], c["mask"] = a, mk
    for key, allowed in (("kind", KINDS), ("pos_encoding", PES), ("norm", ("layernorm", "rmsnorm")),
                         ("norm_position", ("pre", "post")), ("mlp", ("gelu", "relu", "swiglu")),
                         ("init", INITS)):
        if c[key] not in allowed:
            raise ValueError(f"model.{key}: {c[key]!r}, expected one of {allowed}")
    for key, allowed in (("normalizer", NORMALIZERS), ("sink", SINKS), ("gate", GATES)):
        if a[key] not in allowed:
            raise ValueError(f"model.attention.{key}: {a[key]!r}, expected one of {allowed}")
    if a["sink"] == "logit" and a["normalizer"] in ("sigmoid", "sigmoid_norm", "relu"):
        raise ValueError("model.attention.sink: logit needs a softmax-type normalizer")
    if c["d_model"] % c["n_head"]:
        raise ValueError("model.d_model must be a multiple of model.n_head")
    if c["pos_encoding"] == "rope" and (c["d_model"] // c["n_head"]) % 2:
        raise ValueError("rope needs an even head size")
    if c["pos_encoding"] == "sinusoidal" and c["d_model"] % 2:
        raise ValueError("sinusoidal needs an even d_model")
    return c


def param_shapes(c):
    """[(name, shape)] in the storage order of the README ("Parameters and conventions"), skipping parameters that are off."""
    C, H, F, V, S = c["d_model"], c["n_head"], c["d_ff"], c["vocab_size"], c["max_seq_len"]
    D = C // H
    a = c["attention"]
    bias = c["bias"]
    ln_bias = bias and c["norm"] == "layernorm"
    out = [("wte", (V, C))]
    if c["pos_encoding"] == "learned":
        out.append(("wpe", (S, C)))
    if a["sink"] == "token":
        out.append(("sink_token", (C,)))
    for l in range(c["n_layer"]):
        p = f"blocks.{l}."
        out.append((p + "ln1.weight", (C,)))
        if ln_bias:
            out.append((p + "ln1.bias", (C,)))
        for w in "qkvo":
            out.append((p + f"attn.{w}.weight", (C, C)))
        if bias:
            for w in "qkvo":
                out.append((p + f"attn.{w}.bias", (C,)))
        if a["gate"] != "none":
            G = C if a["gate"] == "elementwise" else H
            out += [(p + "attn.gate.weight", (G, C)), (p + "attn.gate.bias", (G,))]
        if a["sink"] == "logit":
            out.append((p + "attn.sink_logit", (H,)))
        if a["sink"] in ("k_bias", "kv_bias"):
            out.append((p + "attn.sink_k", (H, D)))
        if a["sink"] == "kv_bias":
            out.append((p + "attn.sink_v", (H, D)))
        out.append((p + "ln2.weight", (C,)))
        if ln_bias:
            out.append((p + "ln2.bias", (C,)))
        out.append((p + "mlp.fc.weight", (F, C)))
        if bias:
            out.append((p + "mlp.fc.bias", (F,)))
        if c["mlp"] == "swiglu":
            out.append((p + "mlp.up.weight", (F, C)))
            if bias:
                out.append((p + "mlp.up.bias", (F,)))
        out.append((p + "mlp.proj.weight", (C, F)))
        if bias:
            out.append((p + "mlp.proj.bias", (C,)))
    if c["norm_position"] == "pre":
        out.append(("lnf.weight", (C,)))
        if ln_bias:
            out.append(("lnf.bias", (C,)))
    if c["kind"] == "bidirectional":
        out += [("mlm.dense.weight", (C, C)), ("mlm.dense.bias", (C,)), ("mlm.ln.weight", (C,))]
        if ln_bias:
            out.append(("mlm.ln.bias", (C,)))
    if not c["tie_embeddings"]:
        out.append(("lm_head.weight", (V, C)))
    return out


def alibi_slopes(n_head):
    """Press et al.'s slopes (their reference code, including the non-power-of-two case)."""
    def pow2(n):
        start = 2.0 ** (-(2.0 ** -(math.log2(n) - 3)))
        return [start * start ** i for i in range(n)]
    if math.log2(n_head).is_integer():
        return pow2(n_head)
    n = 2 ** math.floor(math.log2(n_head))
    return pow2(n) + alibi_slopes(2 * n)[0::2][: n_head - n]


def resolve_mask(kind, window, doc_mask, edits, doc_ids, prefix_len, T):
    """allowed (B, T, T) bool, the rules of model/mask.h applied in their order."""
    B = doc_ids.shape[0]
    i = torch.arange(T).view(T, 1)
    j = torch.arange(T).view(1, T)
    if kind == "causal":
        allowed = (j <= i).expand(B, T, T).clone()
    elif kind == "bidirectional":
        allowed = torch.ones(B, T, T, dtype=torch.bool)
    else:
        allowed = (j <= i).view(1, T, T) | (j.view(1, 1, T) < prefix_len.view(B, 1, 1))
    if window > 0:
        # |i - j| < W is i - j < W on the causal part, so one rule serves every kind.
        allowed &= ((i - j).abs() < window).view(1, T, T)
    if doc_mask:
        allowed &= doc_ids.view(B, T, 1) == doc_ids.view(B, 1, T)
    eye = torch.eye(T, dtype=torch.bool).view(1, T, T)
    pad = doc_ids < 0
    allowed &= ~pad.view(B, 1, T)
    allowed = torch.where(pad.view(B, T, 1), eye.expand(B, T, T), allowed)
    for ek, p in edits:
        if not 0 <= p < T:
            continue
        if ek == "isolate":
            allowed[:, p, :] = False
            allowed[:, p, p] = True
        elif ek == "reset":
            allowed[:, p:, :p] = False
        else:
            keep = allowed[:, p, p].clone()
            allowed[:, :, p] = False
            allowed[:, p, p] = keep
    empty = ~allowed.any(dim=2, keepdim=True)
    return allowed | (empty & eye)


def sinusoidal_table(positions, C, dtype):
    """PE[p, 2i] = sin(p / 10000^(2i/C)), PE[p, 2i+1] = cos(...), at the given positions."""
    p = positions.to(torch.float64).unsqueeze(-1)
    i2 = torch.arange(0, C, 2, dtype=torch.float64)
    ang = p / torch.pow(torch.tensor(10000.0, dtype=torch.float64), i2 / C)
    pe = torch.zeros(*positions.shape, C, dtype=torch.float64)
    pe[..., 0::2] = torch.sin(ang)
    pe[..., 1::2] = torch.cos(ang)
    return pe.to(dtype)


def apply_rope(x, positions, base):
    """x (B, H, T, D); rotate-half pairing: dims i and i + D/2 rotate by p * base^(-2i/D)."""
    D = x.shape[-1]
    half = D // 2
    inv = torch.pow(torch.tensor(base, dtype=torch.float64),
                    -torch.arange(half, dtype=torch.float64) * 2.0 / D)
    ang = positions.to(torch.float64).unsqueeze(-1) * inv          # (B, T, D/2)
    cos = torch.cos(ang).to(x.dtype).unsqueeze(1)
    sin = torch.sin(ang).to(x.dtype).unsqueeze(1)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def attend(spec, q, k, v, allowed, bias=None, sink_k=None, sink_v=None, sink_logit=None,
           key_weight=None):
    """The one attention kernel. q, k, v (B, H, T, D) (already rotated); allowed (B, T, T);
    bias (B, H, T, T) ALiBi or None; sink_k/sink_v (H, D) the extra key and value (sink_v None:
    value 0); sink_logit (H) an extra denominator term; key_weight (H, T) or None, an
    intervention: key j's unnormalised weight in head h times key_weight[h, j] for every query
    but j itself, before normalisation. Returns out (B, H, T, D), the data-key probabilities A
    (B, H, T, T) and the sink mass (B, H, T)."""
    B, H, T, D = q.shape
    W = None
    if key_weight is not None:
        eye = torch.eye(T, dtype=torch.bool).view(1, 1, T, T)
        W = torch.where(eye, torch.ones((), dtype=q.dtype),
                        key_weight.to(q.dtype).view(1, H, 1, T).expand(1, H, T, T))
    s = q @ k.transpose(-1, -2) / math.sqrt(D)
    if bias is not None:
        s = s + bias
    ok = allowed.unsqueeze(1)                                      # (B, 1, T, T)
    s_sink = None
    if sink_k is not None:
        s_sink = (q * sink_k.view(1, H, 1, D)).sum(-1) / math.sqrt(D)   # zero ALiBi distance
    norm = spec["normalizer"]
    w_sink = None                                                  # weight of the sink value
    if norm in ("softmax", "softmax1", "scaled"):
        extras = []                                                # (B, H, T) extra logits
        if norm == "softmax1":
            extras.append(torch.zeros(B, H, T, dtype=q.dtype))
        if sink_logit is not None:
            extras.append(sink_logit.view(1, H, 1).expand(B, H, T))
        if s_sink is not None:
            extras.append(s_sink)
        masked = s.masked_fill(~ok, float("-inf"))
        m = masked.amax(-1)
        for e in extras:
            m = torch.maximum(m, e)
        m = m.detach()                                             # cancels exactly; stability only
        ex = torch.exp(masked - m.unsqueeze(-1))
        if W is not None:
            ex = ex * W
        z = ex.sum(-1)
        ez = [torch.exp(e - m) for e in extras]
        for e in ez:
            z = z + e
        A = ex / z.unsqueeze(-1)
        mass = sum(ez) / z if ez else torch.zeros(B, H, T, dtype=q.dtype)
        if s_sink is not None:
            w_sink = ez[-1] / z
        if norm == "scaled":
            A = A * spec["scale"]
            mass = mass * spec["scale"]
            if w_sink is not None:
                w_sink = w_sink * spec["scale"]
    elif norm == "relu":
        # Guo et al. 2024: relu(s) / n, n = the keys the mask allows (the sink key counts as one)
        if sink_logit is not None:
            raise ValueError("sink: logit needs a softmax-type normalizer")
        n = ok.to(q.dtype).sum(-1) + (1.0 if s_sink is not None else 0.0)       # (B, 1, T)
        n = torch.where(n > 0, n, torch.ones_like(n))
        A = torch.relu(s) * ok.to(q.dtype) / n.unsqueeze(-1)
        if s_sink is not None:
            w_sink = torch.relu(s_sink) / n
        mass = w_sink if w_sink is not None else torch.zeros(B, H, T, dtype=q.dtype)
    else:
        if sink_logit is not None:
            raise ValueError("sink: logit needs a softmax-type normalizer")
        b = spec["sigmoid_bias"]
        A = torch.sigmoid(s + b) * ok.to(q.dtype)
        if W is not None:
            A = A * W
        if s_sink is not None:
            w_sink = torch.sigmoid(s_sink + b)
        if norm == "sigmoid_norm":
            r = A.sum(-1) + (w_sink if w_sink is not None else 0.0)
            A = A / r.unsqueeze(-1)
            if w_sink is not None:
                w_sink = w_sink / r
        mass = w_sink if w_sink is not None else torch.zeros(B, H, T, dtype=q.dtype)
    out = A @ v
    if w_sink is not None and sink_v is not None:
        out = out + w_sink.unsqueeze(-1) * sink_v.view(1, H, 1, D)
    return out, A, mass


class SinkModel(nn.Module):
    """sinklab's transformer in PyTorch. config: a run config dict ({"model": ..., "data": ...})
    or a bare model section, with sinklab's key names. Parameters are initialised as in
    the README ("Parameters and conventions") (with torch's generator, so values differ from sinklab's) and usually replaced
    with load_state()."""

    def __init__(self, config, dtype=torch.float32, seed=0):
        super().__init__()
        self.cfg = c = resolve_config(config)
        self.dtype = dtype
        self.names = []
        self._p = nn.ParameterDict()
        g = torch.Generator().manual_seed(seed)
        std = float(c["init_std"])
        resid_std = std / math.sqrt(2 * c["n_layer"])
        # init torch draws from torch's global generator, as nn modules do: seeded, and restored
        rng_state = torch.get_rng_state()
        torch.manual_seed(seed)
        for name, shape in param_shapes(c):
            last = name.rsplit(".", 1)[-1]
            t = _torch_default(name, shape) if c["init"] == "torch" else None
            if t is not None:
                pass
            elif name.endswith(("attn.o.weight", "mlp.proj.weight")):
                t = torch.randn(shape, generator=g, dtype=torch.float64) * resid_std
            elif last == "bias" or name.endswith("sink_logit"):
                t = torch.zeros(shape, dtype=torch.float64)
            elif _is_norm_weight(name):
                t = torch.ones(shape, dtype=torch.float64)
            else:
                t = torch.randn(shape, generator=g, dtype=torch.float64) * std
            self.names.append(name)
            self._p[_key(name)] = nn.Parameter(t.to(dtype))
        torch.set_rng_state(rng_state)
        _TORCH_LINEAR.clear()
        if c["pos_encoding"] == "alibi":
            self.register_buffer("slopes", torch.tensor(alibi_slopes(c["n_head"]), dtype=dtype))

    def p(self, name):
        """The parameter called `name` in the README ("Parameters and conventions"), or None when that option is off."""
        k = _key(name)
        return self._p[k] if k in self._p else None

    def named_sink_parameters(self):
        """(name, parameter) in the README ("Parameters and conventions") storage order."""
        return [(n, self._p[_key(n)]) for n in self.names]

    def state(self):
        """{name: tensor} (detached)."""
        return {n: t.detach() for n, t in self.named_sink_parameters()}

    # ---- pieces --------------------------------------------------------------------------
    def _norm(self, x, prefix):
        w, b = self.p(prefix + ".weight"), self.p(prefix + ".bias")
        if self.cfg["norm"] == "layernorm":
            mu = x.mean(-1, keepdim=True)
            var = ((x - mu) ** 2).mean(-1, keepdim=True)
            y = (x - mu) / torch.sqrt(var + NORM_EPS) * w
        else:
            y = x / torch.sqrt((x * x).mean(-1, keepdim=True) + NORM_EPS) * w
        return y + b if b is not None else y

    def _linear(self, x, prefix):
        y = x @ self.p(prefix + ".weight").t()
        b = self.p(prefix + ".bias")
        return y + b if b is not None else y

    def _mlp(self, x, p):
        a = self._linear(x, p + "mlp.fc")
        kind = self.cfg["mlp"]
        if kind == "gelu":
            a = gelu_tanh(a)
        elif kind == "relu":
            a = torch.relu(a)
        else:
            a = a * torch.sigmoid(a) * self._linear(x, p + "mlp.up")
        return self._linear(a, p + "mlp.proj")

    def _qkv(self, x, p):
        """x (B, T, C) -> q, k, v (B, H, T, D), unrotated."""
        B, T, C = x.shape
        H = self.cfg["n_head"]
        split = lambda t: t.view(B, T, H, C // H).transpose(1, 2)
        return tuple(split(self._linear(x, p + f"attn.{w}")) for w in "qkv")

    def _finish_attn(self, o, x, p):
        """o (B, H, T, D) -> gated, merged, projected (B, T, C); the gate reads x."""
        B, H, T, D = o.shape
        gate = self.cfg["attention"]["gate"]
        if gate == "headwise":
            o = o * torch.sigmoid(self._linear(x, p + "attn.gate")).transpose(1, 2).unsqueeze(-1)
        o = o.transpose(1, 2).reshape(B, T, H * D)
        if gate == "elementwise":
            o = o * torch.sigmoid(self._linear(x, p + "attn.gate"))
        return self._linear(o, p + "attn.o")

    def _attn(self, x, p, ctx, sink_kv, edit=None):
        c = self.cfg
        q, k, v = self._qkv(x, p)
        edit = edit or {}
        if edit.get("value_scale") is not None:
            # (T, C) factors, the same for every sequence: head h's columns at P zero v_P
            B, H, T, D = v.shape
            v = v * edit["value_scale"].to(v.dtype).view(T, H, D).transpose(0, 1).unsqueeze(0)
        if c["pos_encoding"] == "rope":
            q = apply_rope(q, ctx["positions"], c["rope_base"])
            k = apply_rope(k, ctx["positions"], c["rope_base"])
        sink = c["attention"]["sink"]
        sk = sv = sl = None
        if sink in ("k_bias", "kv_bias"):
            sk = self.p(p + "attn.sink_k")
            sv = self.p(p + "attn.sink_v")
        elif sink == "logit":
            sl = self.p(p + "attn.sink_logit")
        elif sink == "token":
            sk, sv = sink_kv
        o, A, mass = attend(c["attention"], q, k, v, ctx["allowed"], ctx["alibi"], sk, sv, sl,
                            edit.get("key_weight"))
        return self._finish_attn(o, x, p), A, mass

    def _sink_attn(self, xs, p):
        """The sink token's own attention: a one-token sequence that sees only itself. Returns
        its output (1, 1, C) and its key and value (H, D) for the data queries."""
        q, k, v = self._qkv(xs, p)
        allowed = torch.ones(1, 1, 1, dtype=torch.bool)
        o, _, _ = attend(self.cfg["attention"], q, k, v, allowed)
        return self._finish_attn(o, xs, p), k[0, :, 0, :], v[0, :, 0, :]

    def _block(self, h, hs, l, ctx):
        p = f"blocks.{l}."
        pre = self.cfg["norm_position"] == "pre"
        if hs is not None:
            xs = self._norm(hs, p + "ln1") if pre else hs
            os_, sk, sv = self._sink_attn(xs, p)
            sink_kv = (sk, sv)
        else:
            sink_kv = None
        x_in = self._norm(h, p + "ln1") if pre else h
        edits = ctx.get("edits")
        a, A, mass = self._attn(x_in, p, ctx, sink_kv, edits[l] if edits else None)
        h = self._residual(h, a, p, pre)
        if hs is not None:
            hs = self._residual(hs, os_, p, pre)
        return h, hs, A, mass

    def _residual(self, h, a, p, pre):
        if pre:
            x = h + a
            return x + self._mlp(self._norm(x, p + "ln2"), p)
        x = self._norm(h + a, p + "ln1")
        return self._norm(x + self._mlp(x, p), p + "ln2")

    # ---- the forward pass ----------------------------------------------------------------
    def forward(self, tokens, positions=None, doc_ids=None, prefix_len=None, targets=None,
                loss_mask=None, mask=None, edits=None):
        """tokens, positions, doc_ids, targets (B, T) int; prefix_len (B) int; loss_mask (B, T)
        (positions with loss_mask != 0 count, each once). Missing inputs default to positions
        0..T-1, one document, prefix 0, all positions in the loss. Returns {"logits" (B, T, V),
        "loss" (scalar; None without targets), "nll" (B, T) per position (None without targets),
        "attn_probs" [l] (B, H, T, T), "sink_mass" [l]
        (B, H, T), "allowed" (B, T, T) bool, "hidden" [l] (B, T, C)}."""
        c = self.cfg
        tokens = torch.as_tensor(tokens, dtype=torch.long)
        B, T = tokens.shape
        positions = (torch.arange(T).expand(B, T) if positions is None
                     else torch.as_tensor(positions, dtype=torch.long))
        doc_ids = (torch.zeros(B, T, dtype=torch.long) if doc_ids is None
                   else torch.as_tensor(doc_ids, dtype=torch.long))
        prefix_len = (torch.zeros(B, dtype=torch.long) if prefix_len is None
                      else torch.as_tensor(prefix_len, dtype=torch.long))
        if int(tokens.min()) < 0 or int(tokens.max()) >= c["vocab_size"]:
            raise ValueError("token id out of range [0, vocab_size)")
        # interventions (tools/torch_load.py): a replacement mask {"window", "doc_mask",
        # "edits"} and per-layer {"key_weight" (H, T), "value_scale" (T, C)} edits
        mk = mask if mask is not None else c["mask"]
        allowed = resolve_mask(c["kind"], mk["window"], mk["doc_mask"], mk["edits"], doc_ids,
                               prefix_len, T)
        alibi = None
        if c["pos_encoding"] == "alibi":
            dist = (positions.unsqueeze(2) - positions.unsqueeze(1)).abs().to(self.dtype)
            alibi = -self.slopes.view(1, -1, 1, 1) * dist.unsqueeze(1)
        ctx = {"positions": positions, "allowed": allowed, "alibi": alibi, "edits": edits}

        h = self.p("wte")[tokens]
        if c["pos_encoding"] == "learned":
            if int(positions.max()) >= c["max_seq_len"] or int(positions.min()) < 0:
                raise ValueError("position id out of range [0, max_seq_len)")
            h = h + self.p("wpe")[positions]
        elif c["pos_encoding"] == "sinusoidal":
            h = h + sinusoidal_table(positions, c["d_model"], self.dtype)
        hs = self.p("sink_token").view(1, 1, -1) if c["attention"]["sink"] == "token" else None
        hidden, probs, masses = [h], [], []
        for l in range(c["n_layer"]):
            h, hs, A, mass = self._block(h, hs, l, ctx)
            hidden.append(h)
            probs.append(A)
            masses.append(mass)
        if c["norm_position"] == "pre":
            h = self._norm(h, "lnf")
        if c["kind"] == "bidirectional":
            h = self._norm(gelu_tanh(self._linear(h, "mlm.dense")), "mlm.ln")
        E = self.p("wte") if c["tie_embeddings"] else self.p("lm_head.weight")
        logits = h @ E.t()
        loss = nll = None
        if targets is not None:
            targets = torch.as_tensor(targets, dtype=torch.long)
            if loss_mask is None:
                sel = torch.ones(B, T, dtype=torch.bool)
            else:
                sel = torch.as_tensor(loss_mask) != 0
            nll = -torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            n = int(sel.sum())
            loss = (nll * sel.to(logits.dtype)).sum() / n if n else logits.sum() * 0.0
        return {"logits": logits, "loss": loss, "nll": nll, "attn_probs": probs, "sink_mass": masses,
                "allowed": allowed, "hidden": hidden}


_TORCH_LINEAR = {}


def _torch_default(name, shape):
    """init: torch. What PyTorch's own modules draw (global generator, torch.manual_seed): an
    nn.Linear(in, out) for every linear weight and its bias (the bias is drawn with its weight),
    nn.Embedding for wte and wpe; None for parameters nn has no default for (norms, sinks), which
    keep the gpt2 rule."""
    linear = ("attn." in name or "mlp." in name or "mlm.dense" in name or name == "lm_head.weight") \
        and not name.endswith(("sink_k", "sink_v", "sink_logit"))
    if name in ("wte", "wpe"):
        return nn.Embedding(shape[0], shape[1]).weight.detach().to(torch.float64)
    if not linear:
        return None
    base = name.rsplit(".", 1)[0]
    if name.endswith(".weight"):
        lin = nn.Linear(shape[1], shape[0])
        _TORCH_LINEAR[base] = lin
        return lin.weight.detach().to(torch.float64)
    if name.endswith(".bias") and base in _TORCH_LINEAR:
        return _TORCH_LINEAR.pop(base).bias.detach().to(torch.float64)
    return None


def _f32(x):
    return struct.unpack("<f", struct.pack("<f", float(x)))[0]


def _is_norm_weight(name):
    parts = name.split(".")
    return len(parts) >= 2 and parts[-1] == "weight" and parts[-2] in ("ln1", "ln2", "lnf", "ln")


def _key(name):
    # ParameterDict keys may not contain '.'.
    return name.replace(".", "__")


def load_state(model, state, strict=True):
    """Copies {name: array or tensor} (names of the README ("Parameters and conventions")) into model's parameters. With
    strict, a missing, unexpected or mis-shaped name raises ValueError listing every problem."""
    problems = []
    have = dict(model.named_sink_parameters())
    for name, value in state.items():
        if name not in have:
            if strict:
                problems.append(f"unexpected parameter {name!r}")
            continue
        t = torch.as_tensor(value)
        if tuple(t.shape) != tuple(have[name].shape):
            problems.append(f"{name}: shape {tuple(t.shape)}, expected {tuple(have[name].shape)}")
            continue
        with torch.no_grad():
            have[name].copy_(t.to(have[name].dtype))
    if strict:
        problems += [f"missing parameter {n!r}" for n in have if n not in state]
    if problems:
        raise ValueError("load_state: " + "; ".join(problems))
    return model
