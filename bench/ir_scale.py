"""Scale of the IR (docs/benchmarks.md): a random sparse network of 1e6 neurons and 1e8
synapses is built, verified, saved, loaded and simulated for 10 steps.

    .venv/bin/python bench/ir_scale.py [--neurons 1000000] [--fanout 100] [--write]

Prints the wall time and the process's peak resident memory after each phase; with
``--write`` the table goes into docs/benchmarks.md. Targets on a 2-core machine:
build + verify < 20 s, peak memory < 4 GB, save and load < 10 s each, 10 steps < 10 s.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nmcompiler import ir  # noqa: E402
from nmcompiler.ir import LIF, Network, Reset, Sparse  # noqa: E402


def peak_gb() -> float:
    """Peak resident set size of this process so far, in GB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def build(n: int, fanout: int, seed: int = 0) -> Network:
    """A random sparse recurrent LIF network with an input layer of n/1000 channels."""
    rng = np.random.default_rng(seed)
    n_in = max(n // 1000, 1)
    net = Network("random-sparse")
    net.input("in", n_in)
    theta = 1.0
    net.population("pop", n, LIF(alpha_u=0.5, lam=0.9, theta=theta,
                                 bias=rng.uniform(0.0, 0.12, n).astype(np.float64),
                                 reset=Reset.HARD))
    nnz = n * fanout
    rec = Sparse(indptr=np.arange(0, nnz + 1, fanout, dtype=np.int64),
                 indices=rng.integers(0, n, nnz, dtype=np.int32),
                 weight=rng.normal(0.0, 0.05, nnz).astype(np.float32),
                 n_post=n)
    in_fan = 1000
    inp = Sparse(indptr=np.arange(0, n_in * in_fan + 1, in_fan, dtype=np.int64),
                 indices=rng.integers(0, n, n_in * in_fan, dtype=np.int32),
                 weight=np.full(n_in * in_fan, 0.8, dtype=np.float32), n_post=n)
    net.connect("in", "pop", inp, delay=1)
    net.connect("pop", "pop", rec, delay=1)
    net.output("pop")
    return net


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=1_000_000)
    ap.add_argument("--fanout", type=int, default=100)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--write", action="store_true", help="write docs/benchmarks.md")
    args = ap.parse_args()
    rows = []

    t0 = time.perf_counter()
    net = build(args.neurons, args.fanout)
    ir.verify(net)
    rows.append(("build + verify", time.perf_counter() - t0, peak_gb()))

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "net.nmir"
        t0 = time.perf_counter()
        ir.save(net, path)
        rows.append(("save", time.perf_counter() - t0, peak_gb()))
        size = path.stat().st_size
        del net
        t0 = time.perf_counter()
        net = ir.load(path)
        rows.append(("load", time.perf_counter() - t0, peak_gb()))

    rng = np.random.default_rng(1)
    n_in = net.inputs["in"].size
    x = (rng.random((args.steps, n_in)) < 0.2).astype(np.float32)
    t0 = time.perf_counter()
    res = ir.simulate(net, {"in": x}, check=False)
    rows.append((f"simulate {args.steps} steps", time.perf_counter() - t0, peak_gb()))
    spikes = int(res.outputs["pop"].sum())

    n_syn = sum(p.conn.n_synapses() for p in net.projections.values())
    lines = [
        f"{args.neurons:,} neurons, {n_syn:,} synapses (file {size / 1e9:.2f} GB), "
        f"{spikes:,} spikes in {args.steps} steps.",
        "",
        "| phase | wall time (s) | peak memory so far (GB) |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {t:.2f} | {m:.2f} |" for name, t, m in rows]
    text = "\n".join(lines)
    print(text)
    if args.write:
        sys.path.insert(0, str(Path(__file__).parent))
        from _report import write_section

        write_section("ir_scale", "IR scale: 1e6 neurons, 1e8 synapses",
                      ".venv/bin/python bench/ir_scale.py --write", text)


if __name__ == "__main__":
    main()
