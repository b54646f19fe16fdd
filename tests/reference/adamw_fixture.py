#!/usr/bin/python3
"""Writes tests/fixtures/optim/torch_optim.txt: parameter trajectories of torch.optim.AdamW and
torch.optim.SGD over 5 steps, which tests/test_optim.c must reproduce to 1e-6 relative.

Run from the repo root with the Python that has torch:  /usr/bin/python3 tests/reference/adamw_fixture.py
Every hyperparameter, learning rate and gradient is rounded to float32 first, so the C side sees
exactly the numbers torch saw. Decay groups follow train/optim.h: a parameter decays when its
group is in the policy (matrices: PARAM_MATRIX only; all: every group)."""
import os
import sys

import numpy as np
import torch

OUT = os.path.join("tests", "fixtures", "optim", "torch_optim.txt")

# name, group (as model/tensor.h ParamGroup, lower case), shape
PARAMS = [("w", "matrix", (3, 4)), ("b", "vector", (5,)), ("emb", "embedding", (4, 3)),
          ("sink", "sink", (2,))]
DECAYS = {"matrices": {"matrix"}, "matrices_embeddings": {"matrix", "embedding"},
          "all_but_sinks": {"matrix", "vector", "embedding"},
          "all": {"matrix", "vector", "embedding", "sink"}}

SCENARIOS = [
    dict(name="adamw_default", optimizer="adamw", beta1=0.9, beta2=0.95, eps=1e-8, wd=0.1,
         momentum=0.0, decay="matrices", lrs=[1e-3, 2e-3, 3e-3, 1.5e-3, 5e-4]),
    dict(name="adamw_all_decay", optimizer="adamw", beta1=0.8, beta2=0.999, eps=1e-6, wd=0.5,
         momentum=0.0, decay="all", lrs=[1e-2, 1e-2, 5e-3, 5e-3, 1e-3]),
    dict(name="sgd_momentum", optimizer="sgd", beta1=0.9, beta2=0.95, eps=1e-8, wd=0.01,
         momentum=0.9, decay="matrices", lrs=[1e-1, 1e-1, 5e-2, 5e-2, 1e-2]),
]


def f32(x):
    return float(np.float32(x))


def fmt(a):
    return " ".join("%.9g" % float(v) for v in np.asarray(a, dtype=np.float32).ravel())


def gradients(rng, shape, step):
    g = rng.standard_normal(shape).astype(np.float32) * np.float32(10.0 ** rng.integers(-3, 1))
    flat = g.reshape(-1)
    flat[0] = 0.0                      # a zero gradient: moments decay, sign step is 0
    if flat.size > 2:
        flat[1] = np.float32(1e-9)     # smaller than sqrt(eps) territory: eps matters
    return g


def run(sc, out):
    rng = np.random.default_rng(1234)
    tensors, groups = [], {"decay": [], "no_decay": []}
    out.append("scenario %s" % sc["name"])
    out.append("optimizer %s" % sc["optimizer"])
    out.append("hyper %.9g %.9g %.9g %.9g %.9g" % tuple(
        f32(sc[k]) for k in ("beta1", "beta2", "eps", "wd", "momentum")))
    out.append("decay %s" % sc["decay"])
    for name, group, shape in PARAMS:
        init = rng.uniform(-1, 1, shape).astype(np.float32)
        t = torch.nn.Parameter(torch.from_numpy(init.copy()))
        tensors.append((name, t))
        groups["decay" if group in DECAYS[sc["decay"]] else "no_decay"].append(t)
        out.append("param %s %s %d" % (name, group, init.size))
        out.append("init %s %s" % (name, fmt(init)))
    wd = f32(sc["wd"])
    pg = [dict(params=groups["decay"], weight_decay=wd),
          dict(params=groups["no_decay"], weight_decay=0.0)]
    pg = [g for g in pg if g["params"]]
    if sc["optimizer"] == "adamw":
        opt = torch.optim.AdamW(pg, lr=1.0, betas=(f32(sc["beta1"]), f32(sc["beta2"])),
                                eps=f32(sc["eps"]), foreach=False)
    else:
        opt = torch.optim.SGD(pg, lr=1.0, momentum=f32(sc["momentum"]), foreach=False)
    for step, lr in enumerate(sc["lrs"], start=1):
        lr = f32(lr)
        for g in opt.param_groups:
            g["lr"] = lr
        out.append("step %d %.9g" % (step, lr))
        for name, t in tensors:
            g = gradients(rng, tuple(t.shape), step)
            t.grad = torch.from_numpy(g)
            out.append("grad %s %s" % (name, fmt(g)))
        opt.step()
        for name, t in tensors:
            out.append("want %s %s" % (name, fmt(t.detach().numpy())))
    out.append("end")


def main():
    torch.use_deterministic_algorithms(True)
    out = ["# torch.optim trajectories for tests/test_optim.c; written by "
           "tests/reference/adamw_fixture.py (torch %s, numpy %s); do not edit by hand"
           % (torch.__version__, np.__version__)]
    for sc in SCENARIOS:
        run(sc, out)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write("\n".join(out) + "\n")
    print("wrote %s (%d scenarios)" % (OUT, len(SCENARIOS)), file=sys.stderr)


if __name__ == "__main__":
    main()
