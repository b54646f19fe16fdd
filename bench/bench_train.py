#!/usr/bin/python3
"""bench_train.py: tokens/s and peak memory of a full training step (forward, loss, backward,
clip, AdamW), sinklab next to PyTorch, measured in one run with interleaved rounds.

    /usr/bin/python3 bench/bench_train.py [--sinklab build/sinklab] [--rounds 2] [--steps 8]
        [--threads 1,2] [--torch-model both|reference|plain] [--shape R1] [--L 4 --d 128 ...]
        [--json]

Each round runs, for each thread count, the real `sinklab train` binary on a generated config
and a PyTorch worker (a subprocess of this script) at the same shapes; the order of the sides
alternates from round to round so that slow drift of a shared machine hits both. Every number
is best-of-rounds; compare the ratios, not the absolute times (the machine is noisy).

PyTorch models:
  reference  tests/reference/model.py SinkModel (written for clarity: explicit layernorm and
             gelu, mask resolved on every forward);
  plain      a straightforward nn.Module at the same math (nanoGPT style: fused qkv Linear,
             nn.LayerNorm, F.gelu(tanh), a cached causal mask, F.cross_entropy), checked at
             start-up to give the reference model's loss and gradients on the same weights.
Peak RSS is ru_maxrss of each child process (sinklab: the `sinklab train` process; PyTorch:
the worker process, which also holds the Python interpreter and libtorch).
"""
import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHAPES = {"R1": {"L": 4, "d": 128, "H": 4, "F": 512, "T": 128, "B": 16},
          "R2": {"L": 6, "d": 256, "H": 8, "F": 1024, "T": 256, "B": 8},
          "R3": {"L": 4, "d": 128, "H": 4, "F": 512, "T": 512, "B": 4}}
# --sweep: T 64..1024 at R1's width, then d 64..512 at T 256 (heads of 32, d_ff 4d); 2048
# tokens per step throughout, so only the shape changes.
SWEEP = ([{"L": 4, "d": 128, "H": 4, "F": 512, "T": t, "B": 2048 // t} for t in (64, 128, 256, 512, 1024)] +
         [{"L": 4, "d": d, "H": d // 32, "F": 4 * d, "T": 256, "B": 8} for d in (64, 256, 512)])


def flops_per_token(s):
    """Training FLOPs per token: 6 N over the matrix products' parameters (q, k, v, o, the MLP,
    the tied LM head; embeddings and norms do no products) plus attention counted causally:
    Q K^T and P V cost 2 (i + 1) d each for query i, 4 d (T + 1) / 2 on average, times 3 for
    forward and backward."""
    n_mm = s["L"] * (4 * s["d"] * s["d"] + 2 * s["d"] * s["F"]) + s["d"] * VOCAB
    return 6 * n_mm + 3 * s["L"] * 2 * s["d"] * (s["T"] + 1)


def sgemm_worker(torch, s):
    """GFLOP/s of OpenBLAS sgemm (torch.mm, the same library both sides use) on the shape's MLP
    products: y = x W^T, dx = dy W, dW = dy^T x with x (B T, d), W (d_ff, d); best of 5 reps."""
    n, d, f = s["B"] * s["T"], s["d"], s["F"]
    g = torch.Generator().manual_seed(0)
    x, W, dy = (torch.randn(*sh, generator=g) for sh in ((n, d), (f, d), (n, f)))
    prods = [lambda: x @ W.t(), lambda: dy @ W, lambda: dy.t() @ x]
    best = float("inf")
    for rep in range(6):
        t0 = time.perf_counter()
        for fn in prods:
            fn()
        dt = time.perf_counter() - t0
        if rep > 0:
            best = min(best, dt)
    return {"sgemm_gflops": 3 * 2.0 * n * d * f / best / 1e9}

VOCAB = 262   # the byte tokenizer: 256 bytes + 6 specials


# ---- PyTorch side (runs in a worker subprocess) -------------------------------------------

def torch_model_config(s):
    """A sinklab run config (sinklab key names) for the reference model."""
    return {"model": {"kind": "causal", "n_layer": s["L"], "d_model": s["d"], "n_head": s["H"],
                      "d_ff": s["F"], "vocab_size": VOCAB, "max_seq_len": s["T"],
                      "pos_encoding": "learned", "norm": "layernorm", "norm_position": "pre",
                      "mlp": "gelu", "tie_embeddings": True},
            "data": {"seq_len": s["T"]}}


def build_plain(torch, s):
    """A straightforward GPT (pre-LN, learned PE, tied embeddings, gelu-tanh) as one module."""
    nn, F = torch.nn, torch.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            C = s["d"]
            self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
            self.qkv, self.o = nn.Linear(C, 3 * C), nn.Linear(C, C)
            self.fc, self.proj = nn.Linear(C, s["F"]), nn.Linear(s["F"], C)

        def forward(self, h, mask):
            B, T, C = h.shape
            H = s["H"]
            q, k, v = self.qkv(self.ln1(h)).split(C, dim=2)
            q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // H))
            att = att.masked_fill(mask[:T, :T], float("-inf")).softmax(-1)
            a = (att @ v).transpose(1, 2).reshape(B, T, C)
            x = h + self.o(a)
            return x + self.proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(VOCAB, s["d"])
            self.wpe = nn.Embedding(s["T"], s["d"])
            self.blocks = nn.ModuleList(Block() for _ in range(s["L"]))
            self.lnf = nn.LayerNorm(s["d"])
            upper = torch.triu(torch.ones(s["T"], s["T"], dtype=torch.bool), diagonal=1)
            self.register_buffer("mask", upper)
            for p in self.parameters():
                if p.dim() == 2:
                    nn.init.normal_(p, std=0.02)

        def forward(self, tokens, targets):
            T = tokens.shape[1]
            h = self.wte(tokens) + self.wpe(torch.arange(T))
            for b in self.blocks:
                h = b(h, self.mask)
            logits = self.lnf(h) @ self.wte.weight.t()
            return F.cross_entropy(logits.view(-1, VOCAB), targets.reshape(-1))

    return GPT()


def plain_load_reference(torch, plain, ref):
    """Copies the reference model's parameters (docs/MODEL.md names) into the plain model."""
    p = ref.state()
    with torch.no_grad():
        plain.wte.weight.copy_(p["wte"])
        plain.wpe.weight.copy_(p["wpe"])
        plain.lnf.weight.copy_(p["lnf.weight"])
        plain.lnf.bias.copy_(p["lnf.bias"])
        for l, b in enumerate(plain.blocks):
            g = lambda n: p[f"blocks.{l}.{n}"]
            for ln in ("ln1", "ln2"):
                getattr(b, ln).weight.copy_(g(ln + ".weight"))
                getattr(b, ln).bias.copy_(g(ln + ".bias"))
            b.qkv.weight.copy_(torch.cat([g(f"attn.{w}.weight") for w in "qkv"]))
            b.qkv.bias.copy_(torch.cat([g(f"attn.{w}.bias") for w in "qkv"]))
            for mine, theirs in (("o", "attn.o"), ("fc", "mlp.fc"), ("proj", "mlp.proj")):
                getattr(b, mine).weight.copy_(g(theirs + ".weight"))
                getattr(b, mine).bias.copy_(g(theirs + ".bias"))


def check_plain(torch, s):
    """|loss diff| and the max relative gradient difference (wte, a fc, a q and a layernorm
    weight, each relative to its largest entry) between the two models on the same weights and
    batch, at the benchmark's shapes with batch 2, in float64."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
    from model import SinkModel
    torch.set_default_dtype(torch.float64)
    ref = SinkModel(torch_model_config(s), dtype=torch.float64, seed=1)
    plain = build_plain(torch, s)
    plain_load_reference(torch, plain, ref)
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 256, (2, s["T"] + 1), generator=g)
    lr_ = ref(x[:, :-1], targets=x[:, 1:])["loss"]
    lp = plain(x[:, :-1], x[:, 1:])
    lr_.backward()
    lp.backward()
    C, last = s["d"], s["L"] - 1
    pairs = [(ref.p("wte").grad, plain.wte.weight.grad),
             (ref.p("blocks.0.mlp.fc.weight").grad, plain.blocks[0].fc.weight.grad),
             (ref.p(f"blocks.{last}.attn.q.weight").grad, plain.blocks[last].qkv.weight.grad[:C]),
             (ref.p(f"blocks.{last}.ln1.weight").grad, plain.blocks[last].ln1.weight.grad)]
    torch.set_default_dtype(torch.float32)
    return {"loss_reference": float(lr_), "loss_plain": float(lp),
            "loss_abs_diff": abs(float(lr_) - float(lp)),
            "grad_rel_diff": max(float((a - b).abs().max() / a.abs().max()) for a, b in pairs)}


def param_groups(model):
    """AdamW groups as sinklab's default train.decay: matrices decay, embeddings and vectors do
    not (the tied wte is an embedding)."""
    decay, rest = [], []
    for name, p in model.named_parameters():
        emb = "wte" in name or "wpe" in name
        (decay if p.dim() == 2 and not emb else rest).append(p)
    return [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}]


def blas_libraries():
    """The BLAS/LAPACK shared objects this process has mapped (which one torch really uses)."""
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if "blas" in path or "lapack" in path:
                libs.add(os.path.realpath(path))
    return sorted(libs)


def torch_worker(args):
    """One measurement: prints a JSON object with per-step seconds and ru_maxrss."""
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    import torch
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    s = json.loads(args.shape_json)
    if args.model == "sgemm":
        print(json.dumps(sgemm_worker(torch, s)))
        return 0
    if args.model == "check":
        print(json.dumps(check_plain(torch, s)))
        return 0
    torch.manual_seed(0)
    if args.model == "reference":
        sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
        from model import SinkModel
        net = SinkModel(torch_model_config(s), dtype=torch.float32, seed=0)
        step_loss = lambda x, y: net(x, targets=y)["loss"]
    else:
        net = build_plain(torch, s)
        step_loss = lambda x, y: net(x, y)
    opt = torch.optim.AdamW(param_groups(net), lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    n_steps = args.warmup + args.steps
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, 256, (n_steps, s["B"], s["T"] + 1), generator=g)
    times, losses = [], []
    started = time.perf_counter()
    for i in range(n_steps):
        if i > args.warmup and time.perf_counter() - started > args.max_run_seconds:
            break   # a collapsed run (e.g. threads fighting a loaded machine) stops early
        x, y = data[i, :, :-1], data[i, :, 1:]
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = step_loss(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
        losses.append(float(loss))
    out = {"step_seconds": times, "losses": losses, "tokens_per_step": s["B"] * s["T"],
           "n_params": sum(p.numel() for p in net.parameters()),
           "rss_start_kb": rss_start, "rss_after_import_kb": rss_import,
           "rss_peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
           "torch_threads": torch.get_num_threads(), "torch_version": torch.__version__}
    if args.show_config:
        shown = torch.__config__.show().strip().splitlines()
        keys = ("BLAS_INFO", "LAPACK_INFO", "USE_OPENMP", "USE_MKLDNN", "TORCH_VERSION")
        build = [kv.strip() for line in shown if "Build settings" in line
                 for kv in line.split("Build settings:")[-1].split(",")
                 if kv.strip().startswith(keys)]
        out["config"] = shown[:6] + ["  - (from Build settings) " + ", ".join(build)]
        out["parallel"] = [l.strip() for l in torch.__config__.parallel_info().splitlines()
                           if "get_num" in l or "backend" in l or "omp_get_max" in l]
        out["blas_libs"] = blas_libraries()
    print(json.dumps(out))
    return 0


# ---- the driver -----------------------------------------------------------------------------

EXTRA_ENV = {}   # --env KEY=VALUE, given to every measured child (both sides)


def child_env(threads):
    """The environment of a measured child: pins thread counts, adds --env settings, leaves
    OPENBLAS_CORETYPE and everything else as it is."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    env.update(EXTRA_ENV)
    return env


def run_child(cmd, env, cwd=None):
    """Runs cmd to completion; returns (exit code, stdout, stderr, peak RSS in kB of that child)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return p.returncode, out.read().decode(), err.read().decode(), ru.ru_maxrss


def sinklab_config(s, corpus):
    return f"""# generated by bench/bench_train.py
model:
  kind: causal
  n_layer: {s['L']}
  d_model: {s['d']}
  n_head: {s['H']}
  d_ff: {s['F']}
  max_seq_len: {s['T']}
  pos_encoding: learned
  norm: layernorm
  norm_position: pre
  mlp: gelu
  tie_embeddings: true
data:
  corpus: {corpus}
  seq_len: {s['T']}
train:
  batch_size: {s['B']}
  optimizer: adamw
  eval_every: 0
  log_every: 1
probe:
  every: 0
  seq_len: {min(s['T'], 64)}
checkpoint:
  every: 0
  log_spaced: false
output:
  report: false
"""


def read_sinklab_metrics(run_dir, warmup):
    """Per-step (tokens, seconds) after warm-up from metrics.jsonl (log_every 1: each line's
    tok_per_s covers exactly one step of training time), and the run's summary.json."""
    steps, final = [], None
    summary = os.path.join(run_dir, "summary.json")
    if os.path.exists(summary):
        with open(summary) as f:
            final = json.load(f)
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        prev_tokens = 0
        for line in f:
            rec = json.loads(line)
            if "final" in rec:  # runs made before summary.json
                final = rec["final"]
                continue
            if "tok_per_s" in rec and rec["step"] > warmup:
                tokens = rec["tokens"] - prev_tokens
                steps.append((tokens, tokens / rec["tok_per_s"]))
            prev_tokens = rec["tokens"]
    return steps, final


def measure_sinklab(a, s, threads, work, tag):
    cfg = os.path.join(work, "bench.yaml")
    run_dir = os.path.join(work, f"run_{tag}")
    cmd = [a.sinklab, "train", cfg, "--out", run_dir, "--force", "--set", f"train.threads={threads}",
           "--set", f"train.steps={a.warmup + a.steps}"]
    rc, out, err, rss = run_child(cmd, child_env(threads))
    if rc != 0:
        sys.exit(f"bench: sinklab train failed (exit {rc}): {' '.join(cmd)}\n{out}{err}")
    steps, final = read_sinklab_metrics(run_dir, a.warmup)
    if len(steps) != a.steps:
        sys.exit(f"bench: {run_dir}/metrics.jsonl: expected {a.steps} measured steps, "
                 f"found {len(steps)} (is train.log_every honoured?)")
    with open(os.path.join(run_dir, "run_info.json")) as f:
        info = json.load(f)
    tokens = sum(t for t, _ in steps)
    seconds = sum(d for _, d in steps)
    return {"tok_per_s": tokens / seconds, "step_seconds": [d for _, d in steps],
            "rss_peak_kb": rss, "final": final, "run_info": info}


def measure_torch(a, s, threads, model, show_config=False):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--model", model,
           "--threads", str(threads), "--steps", str(a.steps), "--warmup", str(a.warmup),
           "--max-run-seconds", str(a.max_run_seconds),
           "--shape-json", json.dumps(s)]
    if show_config:
        cmd.append("--show-config")
    rc, out, err, rss = run_child(cmd, child_env(threads), cwd=ROOT)
    if rc != 0:
        sys.exit(f"bench: PyTorch worker failed (exit {rc}): {' '.join(cmd)}\n{out}{err}")
    r = json.loads(out.strip().splitlines()[-1])
    if model in ("check", "sgemm"):
        return r
    meas = r["step_seconds"][a.warmup:]
    r["measured_steps"] = len(meas)
    r["tok_per_s"] = r["tokens_per_step"] * len(meas) / sum(meas)
    r["rss_child_kb"] = rss
    return r


def summarize(results, sides, thread_list, s, sgemm):
    """best-of-rounds tok/s per (side, threads), best over threads per side, and ratios: of the
    bests, and the median over rounds of the per-round ratio. Each side's roofline fraction:
    its achieved FLOP/s (flops_per_token) over the best sgemm GFLOP/s at that thread count."""
    best = {}
    for side in sides:
        best[side] = {}
        for th in thread_list:
            runs = results[side][th]
            best[side][th] = {"tok_per_s": max(r["tok_per_s"] for r in runs),
                              "all_tok_per_s": [round(r["tok_per_s"], 1) for r in runs],
                              "rss_peak_mb": max(r["rss_peak_kb"] for r in runs) / 1024.0}
            best[side][th]["roofline"] = (best[side][th]["tok_per_s"] * flops_per_token(s) /
                                          (max(sgemm[th]) * 1e9))
        top = max(thread_list, key=lambda th: best[side][th]["tok_per_s"])
        best[side]["best"] = {"threads": top, "tok_per_s": best[side][top]["tok_per_s"]}
    ratios = {}
    for side in sides:
        if side != "sinklab":
            ratios[f"sinklab/{side}"] = best["sinklab"]["best"]["tok_per_s"] / best[side]["best"]["tok_per_s"]
            for th in thread_list:
                ratios[f"sinklab/{side}@{th}t"] = (best["sinklab"][th]["tok_per_s"] /
                                                   best[side][th]["tok_per_s"])
            for th in thread_list:   # the same round's runs are neighbours in time
                paired = sorted(a["tok_per_s"] / b["tok_per_s"]
                                for a, b in zip(results["sinklab"][th], results[side][th]))
                ratios[f"sinklab/{side}@{th}t paired median"] = median(paired)
    return best, ratios


def median(xs):
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def print_report(a, s, best, ratios, sides, thread_list, extra, wall):
    print(f"\nshape: L={s['L']} d={s['d']} H={s['H']} d_ff={s['F']} T={s['T']} B={s['B']} "
          f"V={VOCAB}; {a.rounds} rounds x {a.steps} measured steps (+{a.warmup} warm-up); "
          f"load before/after: {extra['load_before']} / {extra['load_after']}; wall {wall:.0f} s")
    print(f"{'side':<18}" + "".join(f"{f'{th} thr tok/s':>15}" for th in thread_list) +
          f"{'best':>10}{'peak RSS MB':>13}")
    for side in sides:
        b = best[side]
        rss = max(b[th]["rss_peak_mb"] for th in thread_list)
        print(f"{side:<18}" + "".join(f"{b[th]['tok_per_s']:>15.0f}" for th in thread_list) +
              f"{b['best']['tok_per_s']:>10.0f}{rss:>13.1f}")
    for side in sides:
        print(f"  {side} per round: " + "; ".join(
            f"{th}t {best[side][th]['all_tok_per_s']}" for th in thread_list))
    print("ratios (tokens/s, > 1 means sinklab is faster; best-of-rounds, and the median over "
          "rounds of each round's own ratio):")
    for k, v in ratios.items():
        print(f"  {k:<42} {v:6.2f}")


def parse_shape(a, name):
    if name not in SHAPES:
        sys.exit(f"bench: --shape {name}: unknown (known: {', '.join(sorted(SHAPES))})")
    s = dict(SHAPES[name])
    for k in ("L", "d", "H", "F", "T", "B"):
        v = getattr(a, k)
        if v is not None:
            s[k] = v
    if s["d"] % s["H"]:
        sys.exit(f"bench: --d {s['d']} is not divisible by --H {s['H']}")
    return s


def source_state():
    """The commit and whether model/, train/ or data/ differ from it (read-only git)."""
    def git(*args):
        r = subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else "?"
    dirty = git("status", "--porcelain", "--", "model", "train", "data")
    return f"{git('rev-parse', '--short', 'HEAD')}" + (" + uncommitted model/train/data changes"
                                                       if dirty and dirty != "?" else "")


def loadavg():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def measure_shape(a, s):
    """Every side at every thread count in interleaved rounds, plus the sgemm roofline of the
    shape in each round; returns the summary (and prints progress unless --json)."""
    thread_list = [int(t) for t in a.threads.split(",")]
    models = ["reference", "plain"] if a.torch_model == "both" else [a.torch_model]
    sides = ["sinklab"] + [f"torch-{m}" for m in models]
    st = os.stat(a.sinklab)
    extra = {"sinklab_binary": f"{os.path.abspath(a.sinklab)} (built "
                               f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(st.st_mtime))})",
             "source": source_state(), "load_before": loadavg(), "nproc": os.cpu_count(), "extra_env": dict(EXTRA_ENV),
             "env": {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP"))}}
    t_start = time.time()
    work = tempfile.mkdtemp(prefix="sinklab_bench_", dir=a.workdir)
    with open(os.path.join(work, "bench.yaml"), "w") as f:
        f.write(sinklab_config(s, a.corpus))
    if "plain" in models:
        extra["plain_check"] = measure_torch(a, s, 1, "check")
    results = {side: {th: [] for th in thread_list} for side in sides}
    sgemm = {th: [] for th in thread_list}
    for r in range(a.rounds):
        for th in thread_list:
            sgemm[th].append(measure_torch(a, s, th, "sgemm")["sgemm_gflops"])
            order = sides if (r + th) % 2 == 0 else sides[::-1]   # alternate who goes first
            for side in order:
                if side == "sinklab":
                    m = measure_sinklab(a, s, th, work, f"r{r}_t{th}")
                else:
                    m = measure_torch(a, s, th, side[len("torch-"):],
                                      show_config=(r == 0 and th == thread_list[0]))
                    if "config" in m:
                        extra["torch_config_threads"] = th
                        extra["torch_config"] = m["config"]
                        extra["torch_parallel"] = m["parallel"]
                        extra["torch_blas_libs"] = m["blas_libs"]
                results[side][th].append(m)
                if not a.json:
                    short = m.get("measured_steps", a.steps)
                    note = f"  [stopped after {short} steps]" if short < a.steps else ""
                    print(f"round {r + 1}/{a.rounds} threads {th} {side:<16} "
                          f"{m['tok_per_s']:8.0f} tok/s  peak RSS {m['rss_peak_kb'] / 1024:6.1f} MB"
                          f"  (load {loadavg()}){note}", flush=True)
    extra["load_after"] = loadavg()
    first = results["sinklab"][thread_list[0]][0]
    extra["sinklab_openblas_config"] = first["run_info"]["openblas_config"]
    extra["sinklab_n_params"] = first["run_info"]["n_params"]
    for side in sides[1:]:
        t0 = results[side][thread_list[0]][0]
        extra[f"{side}_n_params"] = t0["n_params"]
        extra[f"{side}_rss_after_import_mb"] = t0["rss_after_import_kb"] / 1024.0
    best, ratios = summarize(results, sides, thread_list, s, sgemm)
    wall = time.time() - t_start
    if not a.keep:
        subprocess.run(["rm", "-rf", work], check=False)
    summary = {"shape": s, "vocab": VOCAB, "rounds": a.rounds, "steps": a.steps,
               "warmup": a.warmup, "threads": thread_list, "best": best, "ratios": ratios,
               "flops_per_token": flops_per_token(s),
               "sgemm_gflops": {th: max(v) for th, v in sgemm.items()},
               "sgemm_gflops_all": sgemm, "wall_seconds": wall, **extra}
    if not a.json:
        print_details(a, s, summary, sides, thread_list)
    return summary


def print_details(a, s, summary, sides, thread_list):
    extra, best, ratios, wall = summary, summary["best"], summary["ratios"], summary["wall_seconds"]
    print(f"\nsinklab binary: {extra['sinklab_binary']}; source tree at bench time: {extra['source']}")
    print("sinklab run_info.json openblas_config: " + extra["sinklab_openblas_config"])
    print("sinklab parameters: %d; PyTorch parameters: %s" % (extra["sinklab_n_params"], ", ".join(
        f"{sd} {extra[sd + '_n_params']}" for sd in sides[1:])))
    print("measurement env: " + ", ".join(f"{k}={v}" for k, v in sorted(extra["env"].items())) +
          "; children get OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=<threads>" +
          "".join(f", {k}={v}" for k, v in sorted(EXTRA_ENV.items())) + f"; nproc {extra['nproc']}")
    if "torch_config" in extra:
        print("torch.__config__.show() (first lines):")
        for line in extra["torch_config"]:
            print("  " + line[:150])
        print(f"torch parallel_info (a worker at {extra['torch_config_threads']} threads): " +
              "; ".join(extra["torch_parallel"]))
        print("BLAS libraries mapped in the PyTorch worker: " + ", ".join(extra["torch_blas_libs"]))
    for side in sides[1:]:
        print(f"{side}: ru_maxrss after `import torch` alone: "
              f"{extra[side + '_rss_after_import_mb']:.1f} MB")
    if "plain_check" in extra:
        c = extra["plain_check"]
        print(f"plain vs reference model (float64, same weights, B=2): |loss diff| "
              f"{c['loss_abs_diff']:.2e}, max rel grad diff {c['grad_rel_diff']:.2e}")
    print_report(a, s, best, ratios, sides, thread_list, extra, wall)
    print("sgemm roofline (torch.mm on the MLP products, best of rounds): " + ", ".join(
        f"{th} thr {summary['sgemm_gflops'][th]:.0f} GFLOP/s" for th in thread_list) +
        f"; {summary['flops_per_token'] / 1e6:.2f} MFLOP per token")
    for side in sides:
        print(f"  {side} fraction of the sgemm roofline: " + ", ".join(
            f"{th} thr {best[side][th]['roofline']:.2f}" for th in thread_list))


def machine():
    """CPU model, cores and OpenBLAS core type as this machine reports them."""
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores"


def shape_label(s):
    for name, v in SHAPES.items():
        if v == s:
            return name
    return f"L{s['L']} d{s['d']} H{s['H']} F{s['F']} T{s['T']} B{s['B']}"


def main_driver(a):
    if not os.access(a.sinklab, os.X_OK):
        sys.exit(f"bench: {a.sinklab}: not an executable (build it, or pass --sinklab PATH)")
    shapes = [parse_shape(a, name) for name in a.shape.split(",")] if a.shape else []
    if a.sweep:
        shapes += [dict(x) for x in SWEEP if x not in shapes]
    if not shapes:
        shapes = [parse_shape(a, "R1")]
    report = {"commit": source_state(), "machine": machine(),
              "command": "bench/bench_train.py " + " ".join(sys.argv[1:]),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
              "shapes": []}
    runs = report["shapes"]
    for s in shapes:
        r = measure_shape(a, s)
        r["label"] = shape_label(s)
        runs.append(r)
        if a.json_out:   # after every shape, so a long sweep that is stopped keeps what it measured
            with open(a.json_out, "w") as f:
                json.dump(report, f, indent=1, default=str)
    if a.json:
        print(json.dumps(report, indent=1, default=str))
    elif len(runs) > 1 or a.json_out:
        print()
        print(markdown_table(report))
    return 0


def markdown_table(report):
    """The README/BENCH table from a --json-out summary: tok/s per side and thread count, the
    sinklab/PyTorch ratios, sinklab's fraction of the sgemm roofline, and time per token against
    attention FLOPs for the T sweep."""
    lines = [f"commit {report['commit']}, {report['date']}, {report['machine']}, "
             f"OPENBLAS_CORETYPE={report['openblas_coretype']}",
             f"command: `{report['command']}`", "",
             "| shape | threads | sinklab tok/s | PyTorch tok/s | sinklab / PyTorch | sgemm GFLOP/s "
             "| sinklab roofline | sinklab best / PyTorch best | sinklab n thr / 1 thr |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in report["shapes"]:
        th_list = [int(t) for t in r["threads"]]
        torch_sides = [k for k in r["best"] if k != "sinklab"]
        tb = max(torch_sides, key=lambda k: r["best"][k]["best"]["tok_per_s"])
        sb = r["best"]["sinklab"]
        k1 = str(th_list[0]) if str(th_list[0]) in sb else th_list[0]
        for i, th in enumerate(th_list):
            key = str(th) if str(th) in sb else th
            sl, pt = sb[key]["tok_per_s"], max(r["best"][k][key]["tok_per_s"] for k in torch_sides)
            row = (f"| {r['label'] if i == 0 else ''} | {th} | {sl:.0f} | {pt:.0f} | {sl / pt:.2f} "
                   f"| {r['sgemm_gflops'][key]:.0f} | {sb[key]['roofline']:.2f} |")
            if i == 0:
                row += f" {sb['best']['tok_per_s'] / r['best'][tb]['best']['tok_per_s']:.2f} |"
            else:
                row += " |"
            row += f" {sl / sb[k1]['tok_per_s']:.2f} |" if i > 0 else " |"
            lines.append(row)
    tsweep = sorted((r for r in report["shapes"] if r["shape"]["d"] == 128 and r["shape"]["L"] == 4
                     and r["shape"]["T"] * r["shape"]["B"] == 2048), key=lambda r: r["shape"]["T"])
    if len(tsweep) > 1:
        base = tsweep[0]
        th = base["threads"][0]
        key = lambda r: str(th) if str(th) in r["best"]["sinklab"] else th
        tpt = lambda r: 1.0 / r["best"]["sinklab"][key(r)]["tok_per_s"]
        lines += ["", f"T scaling at d 128 ({th} thread): sinklab time per token and training FLOPs "
                      f"per token, both relative to T = {base['shape']['T']}", "",
                  "| T | time / token | FLOPs / token |", "|---|---|---|"]
        for r in tsweep:
            lines.append(f"| {r['shape']['T']} | {tpt(r) / tpt(base):.2f} | "
                         f"{r['flops_per_token'] / base['flops_per_token']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sinklab", default=os.path.join(ROOT, "build", "sinklab"),
                   help="the sinklab binary (default: build/sinklab)")
    p.add_argument("--steps", type=int, default=5, help="measured steps per run (default 5)")
    p.add_argument("--warmup", type=int, default=2, help="steps discarded per run (default 2)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--max-run-seconds", type=float, default=12.0,
                   help="a PyTorch run stops measuring after this long (at least one measured "
                        "step; default 12) so a collapsed run cannot stretch the benchmark")
    p.add_argument("--threads", default="1,2", help="thread counts, comma-separated (default 1,2)")
    p.add_argument("--torch-model", choices=("both", "reference", "plain"), default="both")
    p.add_argument("--shape", default=None,
                   help="shape preset(s), comma-separated: " + ", ".join(
                       f"{k} (L{v['L']} d{v['d']} H{v['H']} F{v['F']} T{v['T']} B{v['B']})"
                       for k, v in SHAPES.items()) + " (default R1)")
    p.add_argument("--sweep", action="store_true",
                   help="also run the T/d scaling sweep (T 64..1024 at d 128, d 64..512 at T 256)")
    p.add_argument("--json-out", metavar="FILE", help="also write the JSON summary to FILE")
    p.add_argument("--table", metavar="FILE", nargs="+",
                   help="print the markdown tables of --json-out summaries and exit")
    for k, what in (("L", "layers"), ("d", "d_model"), ("H", "heads"), ("F", "d_ff"),
                    ("T", "sequence length"), ("B", "batch size")):
        p.add_argument(f"--{k}", type=int, help=f"override the shape's {what}")
    p.add_argument("--corpus", choices=("synthetic", "fortunes"), default="synthetic")
    p.add_argument("--workdir", default=None, help="where run folders go (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the sinklab run folders")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary only")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for both sides' children, e.g. OMP_WAIT_POLICY=PASSIVE "
                        "(repeatable; OPENBLAS_CORETYPE is refused)")
    # worker mode (internal)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", default="plain", help=argparse.SUPPRESS)
    p.add_argument("--shape-json", help=argparse.SUPPRESS)
    p.add_argument("--show-config", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.steps < 1 or a.rounds < 1 or a.warmup < 0:
        p.error("--steps and --rounds must be >= 1, --warmup >= 0")
    for kv in a.env:
        key, eq, value = kv.partition("=")
        if not eq or not key:
            p.error(f"--env {kv!r}: expected KEY=VALUE")
        if key == "OPENBLAS_CORETYPE":
            p.error("--env: OPENBLAS_CORETYPE is set for this machine; leave it alone")
        EXTRA_ENV[key] = value
    if a.worker:
        a.threads = int(a.threads)
        return torch_worker(a)
    if a.table:
        reports = []
        for path in a.table:
            with open(path) as f:
                reports.append(json.load(f))
        for r in reports:
            print(markdown_table(r))
            print()
        return 0
    return main_driver(a)


if __name__ == "__main__":
    sys.exit(main())
