"""Retiming exactness: output spike mismatches of the lowered float network against the
original float network (``ir.simulate`` on both, outputs read ``output_shift`` steps later)
on seeded random networks with biases, leaks, current stages, recurrence and zero-delay
edges, for a minimum delay of 1 (loihi2).

Two lowerings are compared: the retiming pass as it is (a lagged population's bias comes
from a bias source that starts at its lag, docs/passes.md#retiming-bias) and the same
lowering with each bias left on its population (it then runs its lag's worth of steps
early, as retiming did before the bias source).

    .venv/bin/python bench/retime_exactness.py [N_NETWORKS] [STEPS]
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np

from nmcompiler import ir
from nmcompiler.passes.lower import lower
from nmcompiler.targets import load_target


def random_net(seed: int) -> ir.Network:
    """A seeded random network: LIF (soft reset), CUBA LIF, IF, biases of both signs,
    zero-delay edges from the input, self-recurrence."""
    rng = np.random.default_rng(seed)
    net = ir.Network(f"r{seed}")
    net.input("in", 6)
    names: list[str] = []
    for i in range(int(rng.integers(2, 5))):
        n = int(rng.integers(3, 8))
        kind = int(rng.integers(0, 3))
        bias = rng.normal(0.05, 0.1, n)
        lam = float(rng.uniform(0.7, 0.99))
        if kind == 0:
            m = ir.LIF(lam=lam, theta=1.0, bias=bias, reset=ir.Reset.SOFT)
        elif kind == 1:
            m = ir.LIF(alpha_u=float(rng.uniform(0.3, 0.9)), lam=lam, theta=1.0, bias=bias)
        else:
            m = ir.IF(theta=1.0, bias=bias)
        name = f"p{i}"
        net.population(name, n, m)
        pre = "in" if i == 0 else names[int(rng.integers(0, len(names)))]
        net.connect(pre, name, ir.Dense(weight=rng.normal(0.4, 0.5, (n, net.size_of(pre)))),
                    delay=int(rng.integers(0, 2)), name=f"{pre}->{name}")
        if i > 0 and rng.random() < 0.5:
            net.connect("in", name, ir.Dense(weight=rng.normal(0.3, 0.4, (n, 6))), delay=0,
                        name=f"in->{name}")
        if rng.random() < 0.5:
            net.connect(name, name, ir.Dense(weight=rng.normal(0, 0.3, (n, n))),
                        delay=int(rng.integers(1, 3)), name=f"{name}->{name}")
        names.append(name)
    for nm in names:
        net.output(nm, name=nm + "_out")
    return net


def bias_left_in_place(net: ir.Network, low: ir.Network, moved: dict[str, str]) -> ir.Network:
    """``low`` with each moved bias back on its population and the bias source removed."""
    pops = {k: (dataclasses.replace(p.model, bias=net.populations[k].model.bias)
                if k in moved else p.model) for k, p in low.populations.items()}
    sources = set(moved.values()) - set(net.populations)
    keep = {k: p for k, p in low.projections.items() if p.pre not in set(moved.values())
            or p.pre in net.populations}
    new_pops = {k: ir.Population(name=k, shape=low.populations[k].shape, model=m)
                for k, m in pops.items() if k not in sources}
    return low.replace(populations=new_pops, projections=keep)


def main(n: int = 20, steps: int = 200) -> None:
    tgt = load_target("loihi2")
    totals = {"bias source": 0, "bias early": 0, "spikes": 0}
    print(f"{'net':>4} {'float spikes':>12} {'bias source':>12} {'bias early':>11}")
    for seed in range(n):
        net = random_net(seed)
        low, rep = lower(net, tgt)
        old = bias_left_in_place(net, low, rep["retiming"].get("bias_sources", {}))
        shift = rep["output_shift"]
        pad = max(shift.values())
        x = (np.random.default_rng(100 + seed).random((steps, 6)) < 0.3).astype(np.float64)
        xp = np.vstack([x, np.zeros((pad, 6))])
        ref = ir.simulate(net, {"in": x}).outputs
        row = {"spikes": sum(int(v.sum()) for v in ref.values())}
        for label, lnet in (("bias source", low), ("bias early", old)):
            out = ir.simulate(lnet, {"in": xp}).outputs
            row[label] = sum(int(np.sum(ref[k] != out[k][shift[k]:shift[k] + steps]))
                             for k in ref)
        for k in totals:
            totals[k] += row[k]
        print(f"{seed:>4} {row['spikes']:>12} {row['bias source']:>12} {row['bias early']:>11}")
    print(f"total over {n} networks x {steps} steps: {totals['spikes']} float output spikes; "
          f"mismatches: bias source {totals['bias source']}, bias early {totals['bias early']}")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
