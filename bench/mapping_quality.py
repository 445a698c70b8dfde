"""Mapping quality of partition + place: messages and hops vs baselines.

Results: docs/benchmarks_mapping.md.

Run::

    .venv/bin/python bench/mapping_quality.py            # prints the tables
    .venv/bin/python bench/mapping_quality.py --write    # and writes docs/benchmarks_mapping.md
    .venv/bin/python bench/mapping_quality.py --scale    # adds the 1e4/1e5/1e6 timing table

Networks (built here with numpy, seed 0):

* ``lsm`` -- an LSM-like reservoir on a 3-D grid (30 x 30 x 30 = 27,000 LIF neurons),
  synapses to grid neighbours within radius 3 with probability 0.3 exp(-d^2 / 1.5^2)
  (Maass et al. 2002's distance-dependent connectivity), 100 input channels.
* ``dense`` -- a multi-layer dense net 784-512-512-10.
* ``random`` -- 6,000 neurons in one population, 50 random synapses each (no locality).
* ``cnn`` -- a CNN of :class:`nmcompiler.ir.Conv2d` layers: 2x16x16 -> 8@3x3 -> 16@3x3/2 ->
  16@3x3/2 -> dense 10 (the NIR CNN importer is not used: nmcompiler.frontends.nir does
  not exist yet).

Columns: inter-core messages (one per (source neuron, destination core) and spike-round)
and mean hops per message, for (a) *sequential fill* in population order with cores
placed in order (what sPyNNaker's and Lava's open mappers do), (b) *random placement* of
the sequential partition, and (c) nmcompiler (METIS partition + heuristic placement).
The last table compares the heuristic placement with CP-SAT's proven optimum on
instances small enough for CP-SAT (<= 8 logical cores).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import tomllib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nmcompiler import hw_configs, ir  # noqa: E402
from nmcompiler.passes.partition import partition  # noqa: E402
from nmcompiler.passes.place import place  # noqa: E402
from nmcompiler.passes.route import route  # noqa: E402
from nmcompiler.targets import load_target, parse_target  # noqa: E402

DOC = ROOT / "docs" / "benchmarks_mapping.md"


# ---------------------------------------------------------------------------- networks
def lsm(side: int = 30, lam: float = 1.5, seed: int = 0, n_in: int = 100) -> ir.Network:
    rng = np.random.default_rng(seed)
    n = side ** 3
    xyz = np.stack(np.unravel_index(np.arange(n), (side,) * 3), 1)
    r = 3
    rng_ = np.arange(-r, r + 1)
    off = np.stack(np.meshgrid(rng_, rng_, rng_, indexing="ij"), -1).reshape(-1, 3)
    off = off[np.any(off != 0, axis=1)]
    p = 0.3 * np.exp(-(off ** 2).sum(1) / lam ** 2)
    pres, posts = [], []
    for k in range(off.shape[0]):  # loop over the 342 offsets, vectorised over neurons
        tgt = xyz + off[k]
        ok = np.all((tgt >= 0) & (tgt < side), axis=1) & (rng.random(n) < p[k])
        pres.append(np.flatnonzero(ok))
        posts.append(np.ravel_multi_index(tgt[ok].T, (side,) * 3))
    pre, post = np.concatenate(pres), np.concatenate(posts)
    net = ir.Network("lsm")
    net.input("in", n_in)
    net.population("reservoir", n, ir.LIF())
    net.connect("reservoir", "reservoir", ir.Sparse.from_coo(
        pre=pre, post=post, weight=np.ones(pre.size), n_pre=n, n_post=n))
    ii, jj = rng.integers(0, n_in, 2 * n), rng.integers(0, n, 2 * n)
    net.connect("in", "reservoir", ir.Sparse.from_coo(pre=ii, post=jj, weight=np.ones(ii.size),
                                                      n_pre=n_in, n_post=n))
    return net


def dense(sizes=(784, 512, 512, 10)) -> ir.Network:
    net = ir.Network("dense")
    net.input("in", sizes[0])
    prev = "in"
    for k, s in enumerate(sizes[1:]):
        net.population(f"l{k}", s, ir.LIF())
        net.connect(prev, f"l{k}", ir.Dense(weight=np.ones((s, sizes[k]))))
        prev = f"l{k}"
    return net


def random_sparse(n: int = 6_000, k: int = 50, seed: int = 0) -> ir.Network:
    rng = np.random.default_rng(seed)
    net = ir.Network("random")
    net.population("p", n, ir.LIF())
    net.connect("p", "p", ir.Sparse(indptr=np.arange(0, n * k + 1, k, dtype=np.int64),
                                    indices=rng.integers(0, n, n * k).astype(np.int32),
                                    weight=np.ones(n * k), n_post=n))
    return net


def cnn(seed: int = 0) -> ir.Network:
    rng = np.random.default_rng(seed)
    net = ir.Network("cnn")
    net.input("in", shape=(2, 16, 16))
    layers = [("c1", 8, 1), ("c2", 16, 2), ("c3", 16, 2)]
    prev, c_in, hw = "in", 2, 16
    for name, c, s in layers:
        hw = (hw + 2 - 3) // s + 1
        net.population(name, shape=(c, hw, hw), model=ir.IF())
        net.connect(prev, name, ir.Conv2d(weight=rng.normal(size=(c, c_in, 3, 3)),
                                          stride=(s, s), padding=(1, 1)))
        prev, c_in = name, c
    net.population("fc", 10, ir.IF())
    net.connect(prev, "fc", ir.Dense(weight=rng.normal(size=(10, c_in * hw * hw))))
    return net


def variant(name: str, **core_budget: int):
    doc = tomllib.loads(hw_configs.path(name).read_text())
    doc["real_chip"] = False
    for k, v in core_budget.items():
        doc["core_budget"][k] = {"value": v, "status": "synthetic", "note": "benchmark"}
    label = ", ".join(f"{k}={v}" for k, v in core_budget.items())
    return parse_target(doc, label=f"{name}({label})")


# ---------------------------------------------------------------------------- runs
def quality_rows(seed: int = 0) -> list[list[str]]:
    nets = {"lsm": lsm(), "dense": dense(), "random": random_sparse(), "cnn": cnn()}
    rows = []
    for tname in ("loihi", "spinnaker"):
        target = load_target(tname)
        for nname, net in nets.items():
            t0 = time.perf_counter()
            seq = partition(net, target, method="sequential", seed=seed)
            seq_pl = place(seq, target, method="sequential", seed=seed)
            rnd_pl = place(seq, target, method="random", seed=seed)
            ours = partition(net, target, seed=seed)
            ours_pl = place(ours, target, seed=seed)
            route(ours, ours_pl, target, seed=seed)
            dt = time.perf_counter() - t0
            red = 1 - ours.messages / max(seq.messages, 1)
            rows.append([
                tname, nname, f"{net.n_neurons:,}", f"{seq.n_cores} / {ours.n_cores}",
                f"{seq.messages:,}", f"{seq_pl.mean_hops:.2f}", f"{rnd_pl.mean_hops:.2f}",
                f"{ours.messages:,}", f"{ours_pl.mean_hops:.2f}", f"{100 * red:.0f}%",
                f"{seq_pl.cost:,} / {rnd_pl.cost:,} / {ours_pl.cost:,}", f"{dt:.1f}"])
            print(" | ".join(rows[-1]), flush=True)
    return rows


def gap_rows(seed: int = 0) -> list[list[str]]:
    cases = [
        ("lsm 12^3", lsm(side=12), variant("loihi", neurons=256)),
        ("dense 256-256-256", dense((256, 256, 256, 256)), variant("loihi", neurons=128)),
        ("random 1500", random_sparse(1500, 20), variant("loihi", neurons=200)),
        ("cnn", cnn(), variant("loihi", neurons=2048)),
        ("lsm 12^3 spinnaker", lsm(side=12), variant("spinnaker", neurons=256)),
    ]
    rows = []
    for name, net, target in cases:
        part = partition(net, target, seed=seed)
        heur = place(part, target, method="heuristic", seed=seed)
        t0 = time.perf_counter()
        exact = place(part, target, method="cpsat", seed=seed, time_limit_s=30)
        dt = time.perf_counter() - t0
        gap = heur.cost / exact.cost - 1 if exact.cost else 0.0
        rows.append([name, target.name.split("(")[0], str(part.n_cores), f"{heur.cost:,}",
                     f"{exact.cost:,}", "yes" if exact.optimal else "no",
                     f"{100 * gap:.1f}%", f"{dt:.1f}"])
        print(" | ".join(rows[-1]), flush=True)
    return rows


def scale_rows(sizes=(10_000, 100_000, 1_000_000), k: int = 100) -> list[list[str]]:
    doc = tomllib.loads(hw_configs.path("emulator").read_text())
    for key, v in (("chip_grid", [8, 8]), ("chips_per_system", 64)):
        doc["topology"][key] = {"value": v, "status": "synthetic", "source": "benchmark"}
    target = parse_target(doc, label="emulator 8x8 chips")
    rows = []
    for n in sizes:
        rng = np.random.default_rng(0)
        net = ir.Network("random")
        net.population("p", n, ir.LIF())
        net.connect("p", "p", ir.Sparse(
            indptr=np.arange(0, n * k + 1, k, dtype=np.int64),
            indices=rng.integers(0, n, n * k, dtype=np.int32),
            weight=np.ones(n * k, dtype=np.int8), n_post=n))
        t0 = time.perf_counter()
        part = partition(net, target)
        t1 = time.perf_counter()
        pl = place(part, target)
        t2 = time.perf_counter()
        route(part, pl, target)
        t3 = time.perf_counter()
        rows.append([f"{n:,}", f"{n * k:,}", str(part.n_cores), f"{t1 - t0:.2f}",
                     f"{t2 - t1:.2f}", f"{t3 - t2:.2f}", f"{t3 - t0:.2f}"])
        print(" | ".join(rows[-1]), flush=True)
        del net, part, pl
    return rows


def table(header: list[str], rows: list[list[str]]) -> str:
    out = "| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n"
    return out + "".join("| " + " | ".join(r) + " |\n" for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write docs/benchmarks_mapping.md")
    ap.add_argument("--scale", action="store_true", help="also time 1e4..1e6 neurons")
    args = ap.parse_args()
    q = quality_rows()
    g = gap_rows()
    text = ("# Mapping quality (partition + place)\n\n"
            "Generated by `.venv/bin/python bench/mapping_quality.py --write"
            + (" --scale" if args.scale else "") + "` (seed 0; 2-core machine).\n"
            "Messages: one per (source neuron, destination core) and spike-round. "
            "Mean hops: per message, router hops of the placement. Baselines: sequential "
            "fill in population order placed in core order (sPyNNaker / Lava), and random "
            "placement of that partition. See docs/mapping.md.\n\n## Messages and hops\n\n")
    text += table(["target", "network", "neurons", "cores seq / ours", "messages seq",
                   "hops seq", "hops random", "messages ours", "hops ours",
                   "fewer messages", "msg x hops seq / random / ours", "time s"], q)
    text += ("\n## Heuristic placement vs CP-SAT optimum (small instances)\n\n")
    text += table(["instance", "target", "cores", "heuristic cost", "CP-SAT cost",
                   "proved optimal", "gap", "CP-SAT s"], g)
    if args.scale:
        s = scale_rows()
        text += ("\n## Time of partition + place + route, random sparse (100 synapses per "
                 "neuron)\n\nTarget: the emulator's budgets on 8 x 8 chips (4,096 cores); "
                 "the bundled 4-chip emulator holds at most about 1.5e5 such neurons "
                 "(output axons bind).\n\n")
        text += table(["neurons", "synapses", "cores", "partition s", "place s", "route s",
                       "total s"], s)
    print()
    print(text)
    if args.write:
        DOC.write_text(text)


if __name__ == "__main__":
    main()
