"""Compile time at scale (docs/benchmarks.md): random and structured networks of 1e3 to 1e6
neurons (1e8 synapses at the top) on loihi2 and spinnaker.

    .venv/bin/python bench/compile_scale.py                 # all sizes, prints the table
    .venv/bin/python bench/compile_scale.py --write         # and writes docs/benchmarks.md
    .venv/bin/python bench/compile_scale.py --sizes 1000 10000 --repeat 3

Compile = the whole ``nmcompiler.api.compile(network, target, seed=0)`` (lower +
quantize + partition + place + route), timed per phase with ``timings=True``; the best of
``--repeat`` runs is kept (the machine is shared). Networks (numpy, seed 0):

* ``random`` -- one LIF population of N neurons, each with 100 random postsynaptic
  targets (fan-in ~100, no locality), and N/1000 input channels of 100 synapses each.
* ``grid`` -- a locally connected 2-D sheet: sqrt(N) x sqrt(N) LIF neurons, each
  receiving from the 10 x 10 window of neurons around it (offsets -5..4, cut at the
  border; fan-in 100 inside), and N/1000 input channels of 100 synapses each.

Targets: the one-chip ``loihi2`` and the one-board ``spinnaker`` where the network fits,
else the multi-chip variants ``loihi2:halapoint`` (1,152 chips) and
``spinnaker:spinn5x12`` (12 SpiNN-5 boards, 576 chips); the table says which. The slope
is the least-squares slope of log(total time) against log(N) over 1e4..1e6 (the 1e3
point is dominated by fixed costs).

Requirement: < 1 s at 1e4 neurons, < 60 s at 1e6, slope close to 1.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nmcompiler import ir  # noqa: E402
from nmcompiler.api import compile as nmc_compile  # noqa: E402
from nmcompiler.ir.errors import FitError  # noqa: E402

PHASES = ("lower", "quantize", "partition", "place", "route")
FALLBACK = {"loihi2": "loihi2:halapoint", "spinnaker": "spinnaker:spinn5x12"}


# ---------------------------------------------------------------------------- networks
def _inputs(net: ir.Network, n: int, rng: np.random.Generator, pop: str) -> None:
    n_in = max(n // 1000, 1)
    k = 100
    net.input("in", n_in)
    net.connect("in", pop, ir.Sparse(
        indptr=np.arange(0, n_in * k + 1, k, dtype=np.int64),
        indices=rng.integers(0, n, n_in * k).astype(np.int32),
        weight=np.full(n_in * k, 0.5, dtype=np.float32), n_post=n), delay=1)


def random_net(n: int, fan: int = 100, seed: int = 0) -> ir.Network:
    """N LIF neurons, ``fan`` random targets each (fan-in ~``fan``)."""
    rng = np.random.default_rng(seed)
    net = ir.Network(f"random{n}")
    net.population("p", n, ir.LIF(alpha_u=0.5, lam=0.9, theta=1.0))
    nnz = n * fan
    w = rng.normal(0.0, 0.1, nnz).astype(np.float32)
    net.connect("p", "p", ir.Sparse(indptr=np.arange(0, nnz + 1, fan, dtype=np.int64),
                                    indices=rng.integers(0, n, nnz).astype(np.int32),
                                    weight=w, n_post=n), delay=1)
    _inputs(net, n, rng, "p")
    net.output("p")
    return net


def grid_net(n: int, window: int = 10, seed: int = 0) -> ir.Network:
    """A sqrt(N) x sqrt(N) sheet, each neuron fed by the window x window patch around it."""
    rng = np.random.default_rng(seed)
    side = int(round(np.sqrt(n)))
    n = side * side
    net = ir.Network(f"grid{n}")
    net.population("sheet", n, ir.LIF(alpha_u=0.5, lam=0.9, theta=1.0))
    y, x = np.divmod(np.arange(n, dtype=np.int64), side)
    lo = -(window // 2)
    offs = [(dy, dx) for dy in range(lo, lo + window) for dx in range(lo, lo + window)]
    # synapses grouped by presynaptic neuron: for pre (y, x), post = (y - dy, x - dx)
    posts = np.full((n, len(offs)), -1, dtype=np.int64)
    for j, (dy, dx) in enumerate(offs):
        py, px = y - dy, x - dx
        ok = (py >= 0) & (py < side) & (px >= 0) & (px < side)
        posts[ok, j] = py[ok] * side + px[ok]
    keep = posts >= 0
    counts = keep.sum(axis=1)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    indices = posts[keep].astype(np.int32)
    del posts, keep
    w = rng.normal(0.0, 0.1, indices.shape[0]).astype(np.float32)
    net.connect("sheet", "sheet", ir.Sparse(indptr=indptr, indices=indices, weight=w,
                                            n_post=n), delay=1)
    _inputs(net, n, rng, "sheet")
    net.output("sheet")
    return net


NETWORKS = {"random": random_net, "grid": grid_net}


# ---------------------------------------------------------------------------- timing
def n_synapses(net: ir.Network) -> int:
    return int(sum(p.conn.indices.shape[0] for p in net.projections.values()))


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def time_one(net: ir.Network, target: str, repeat: int) -> tuple[str, dict, dict]:
    """Best-of-``repeat`` phase times on ``target`` (falling back to its multi-chip
    variant when the network does not fit). Returns (target used, timings, summary)."""
    used = target
    best: dict | None = None
    summary: dict = {}
    for r in range(repeat):
        gc.collect()
        cpu0 = time.process_time()
        try:
            c = nmc_compile(net, used, seed=0, timings=True)
        except FitError as exc:
            if r == 0 and used in FALLBACK and exc.rule in ("cores", "neurons"):
                used = FALLBACK[used]
                c = nmc_compile(net, used, seed=0, timings=True)
            else:
                raise
        t = dict(c.report["timings_s"], cpu=time.process_time() - cpu0)
        if best is None or t["total"] < best["total"]:
            best = t
            summary = dict(c.report["summary"])
        del c
    assert best is not None
    return used, best, summary


def slope(ns: list[int], ts: list[float]) -> float:
    x, y = np.log(np.asarray(ns, float)), np.log(np.asarray(ts, float))
    return float(np.polyfit(x, y, 1)[0]) if len(ns) >= 2 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+",
                    default=[1_000, 10_000, 100_000, 1_000_000])
    ap.add_argument("--targets", nargs="+", default=["loihi2", "spinnaker"])
    ap.add_argument("--networks", nargs="+", default=list(NETWORKS))
    ap.add_argument("--repeat", type=int, default=3, help="runs per point below 1e6")
    ap.add_argument("--repeat-top", type=int, default=1, help="runs per point at >= 1e6")
    ap.add_argument("--write", action="store_true", help="write docs/benchmarks.md")
    ap.add_argument("--rows", type=Path, help="append each result to this JSON-lines file")
    ap.add_argument("--render", type=Path, nargs="+",
                    help="no runs: render (and --write) the rows of these JSON-lines files")
    args = ap.parse_args()

    rows = []
    load0 = os.getloadavg()[0]
    if args.render:
        for f in args.render:
            rows += [json.loads(line) for line in f.read_text().splitlines() if line]
        load0 = rows[0].get("load0", load0) if rows else load0
        args.networks = []
    for kind in args.networks:
        for n in args.sizes:
            net = NETWORKS[kind](n)
            syn = n_synapses(net)
            for tgt in args.targets:
                rep = args.repeat_top if n >= 1_000_000 else args.repeat
                used, t, s = time_one(net, tgt, rep)
                row = dict(kind=kind, n=net.n_neurons, syn=syn, target=used,
                           cores=s["cores_used"], chips=s["chips_used"],
                           load=os.getloadavg()[0], peak=peak_gb(), **{
                               p: t[p] for p in PHASES}, total=t["total"])
                row["load0"] = load0
                row["cpu"] = t.get("cpu", float("nan"))
                rows.append(row)
                if args.rows is not None:
                    with args.rows.open("a") as fh:
                        fh.write(json.dumps(row) + "\n")
                print(" ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in row.items()), flush=True)
            del net
            gc.collect()
    body = render(rows, load0)
    print(body)
    if args.write:
        from bench._report import write_section

        cmd = ".venv/bin/python bench/compile_scale.py " + " ".join(sys.argv[1:])
        if args.render:  # the rows came from separate runs (one process per 1e6 point)
            cmd = ("bench/compile_scale.py --sizes 1000 10000 100000 --rows R; then, for "
                   "each network N and target T, bench/compile_scale.py --sizes 1000000 "
                   "--networks N --targets T --rows R; then bench/compile_scale.py "
                   "--render R --write")
        write_section("compile_scale", "Compile time at scale (loihi2, spinnaker)",
                      cmd.strip(), body)


def render(rows: list[dict], load0: float) -> str:
    out = [
        "Whole `compile(network, target, seed=0)` per phase, best of several runs below 1e6 "
        "(one run at 1e6), on a shared 2-core machine; `CPU s` is the process time of that "
        "run (user + system, all threads); `load` is the 1-minute load "
        f"average after the point (it was {load0:.1f} at the start). `random`: fan-in ~100, "
        "no locality; `grid`: 2-D sheet, 10 x 10 local window; `peak GB`: the process's "
        "peak resident memory so far (the points below 1e6 share one process; each 1e6 "
        "point has its own). A `:variant` target means the network does not fit the "
        "one-chip / one-board target (random fan-in 100 against Loihi 2's 4,096 input "
        "axons per core gives ~40 neurons per core). Requirement: < 1 s at 1e4, "
        "< 60 s at 1e6, log-log slope close to 1.",
        "",
        "| network | target | neurons | synapses | cores | chips | lower s | quantize s | "
        "partition s | place s | route s | total s | CPU s | load | peak GB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['kind']} | {r['target']} | {r['n']:,} | {r['syn']:,} | {r['cores']:,} | "
            f"{r['chips']:,} | " + " | ".join(f"{r[p]:.2f}" for p in PHASES) +
            f" | **{r['total']:.2f}** | {r.get('cpu', float('nan')):.2f} | {r['load']:.1f} | "
            f"{r['peak']:.1f} |")
    out += ["", "| network | base target | slope of log(total) vs log(neurons), 1e4..1e6 | "
            "all sizes |", "|---|---|---|---|"]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["kind"], r["target"].split(":")[0]), []).append(r)
    for (kind, tgt), rs in groups.items():
        top = [r for r in rs if r["n"] >= 9_000]
        s_top = slope([r["n"] for r in top], [r["total"] for r in top])
        s_all = slope([r["n"] for r in rs], [r["total"] for r in rs])
        out.append(f"| {kind} | {tgt} | {s_top:.2f} | {s_all:.2f} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
