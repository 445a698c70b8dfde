"""Distributed emulation: a multi-chip network on 1, 2 and 4 local Dask workers.

The network: ``--neurons`` LIF neurons in one population on a ring, each with ``--fanout``
synapses onto neurons within ``--window`` of it (delays 1..3), compiled for
``loihi2:halapoint`` with ``--cap`` neurons per core (so it spans many chips); random
input spikes into the first ``--inputs`` neurons. It runs once in one process
(``EmulatorBackend.run``) and then with its chips spread over 1, 2 and 4 workers of a
``LocalCluster`` (``run_distributed``), each checked equal to the single-process run
(outputs, counters, energy). Per run: steps per second (stepping and exchange; the
parts' build and the final gathering of recordings and counters apart), bytes exchanged
per step, and the engine state of each part, from which the state per worker of a
network of 1e7 neurons is extrapolated (docs/scale.md).

    nice -n 10 .venv/bin/python bench/distributed_emulation.py --neurons 1000000
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import time

import numpy as np

from nmcompiler import ir


def network(n: int, fanout: int, window: int, n_in: int, seed: int = 0) -> ir.Network:
    """A ring of LIF neurons with local random synapses (so chips talk to neighbours)."""
    rng = np.random.default_rng(seed)
    pre = np.repeat(np.arange(n, dtype=np.int64), fanout)
    post = (pre + rng.integers(-window, window + 1, pre.shape[0])) % n
    w = np.where(rng.random(pre.shape[0]) < 0.8, 24.0, -48.0)
    d = rng.integers(0, 3, pre.shape[0])
    net = ir.Network(f"ring{n}")
    net.input("in", n_in)
    net.population("p", n, ir.LIF(alpha_u=0.5, lam=0.75, theta=64.0, bias=8.0))
    order = np.lexsort((post, pre))
    conn = ir.Sparse.from_coo(pre=pre[order], post=post[order], weight=w[order], n_pre=n,
                              n_post=n)
    conn = ir.Sparse(indptr=conn.indptr, indices=conn.indices, weight=conn.weight,
                     n_post=n, delays=d[:conn.weight.shape[0]])
    net.connect("p", "p", conn, delay=1)
    net.connect("in", "p", ir.Sparse.from_coo(pre=np.arange(n_in), post=np.arange(n_in),
                                             weight=np.full(n_in, 64.0), n_pre=n_in,
                                             n_post=n), delay=1)
    net.output("p")
    return ir.verify(net)


def same(ref, got) -> bool:
    """Outputs, counters and energy identical."""
    ok = all(np.array_equal(ref.outputs[k], got.outputs[k]) for k in ref.outputs)
    for f in ("sops", "messages", "link_hops", "step_energy_j", "step_time_s"):
        a, b = getattr(ref.counters, f), getattr(got.counters, f)
        ok = ok and (a is None) == (b is None) and (a is None or np.array_equal(a, b))
    return bool(ok and ref.counters.energy_j == got.counters.energy_j)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=1_000_000)
    ap.add_argument("--fanout", type=int, default=10)
    ap.add_argument("--window", type=int, default=2000)
    ap.add_argument("--inputs", type=int, default=1000)
    ap.add_argument("--cap", type=int, default=1024, help="neurons per core")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = ap.parse_args()

    import distributed

    from nmcompiler.api import compile as nmc_compile
    from nmcompiler.api import resolve_target
    from nmcompiler.backends.emulator import EmulatorBackend
    from nmcompiler.backends.emulator.distributed import run_distributed
    from nmcompiler.compare import derive_target

    t0 = time.perf_counter()
    net = network(args.neurons, args.fanout, args.window, args.inputs)
    n_syn = sum(p.conn.weight.shape[0] for p in net.projections.values())
    tgt = derive_target(resolve_target("loihi2:halapoint")[0], max_neurons_per_core=args.cap)
    cn = nmc_compile(net, tgt, seed=0, partition_method="sequential",
                     place_method="sequential")
    t_compile = time.perf_counter() - t0
    cpc = tgt.topology.cores_per_chip
    chips = int(np.unique(np.asarray(cn.placement.core) // cpc).shape[0])
    rng = np.random.default_rng(1)
    x = {"in": (rng.random((args.steps, args.inputs)) < 0.2).astype(float)}
    print(f"{args.neurons:,} neurons, {n_syn:,} synapses, {cn.partition.n_cores} cores, "
          f"{chips} chips; built and compiled in {t_compile:.1f} s", flush=True)
    t0 = time.perf_counter()
    ref = EmulatorBackend().run(cn, x, args.steps)
    t_one = time.perf_counter() - t0
    print(f"one process: {args.steps / ref.info['wall_s']:.2f} steps/s stepping "
          f"({t_one:.1f} s with the engine build), {ref.info['spikes']:,} spikes, "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB",
          flush=True)
    rows = []
    for w in args.workers:
        with distributed.LocalCluster(n_workers=w, threads_per_worker=1, processes=True,
                                      dashboard_address=None,
                                      silence_logs=logging.ERROR) as lc, \
                distributed.Client(lc) as cl:
            t0 = time.perf_counter()
            got = run_distributed(cn, x, args.steps, client=cl, workers=w)
            t_all = time.perf_counter() - t0
            mem = cl.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6)
        d = got.info["distributed"]
        rows.append((w, args.steps / d["stepping_s"], t_all, d["exchanged_bytes_per_step"],
                     d["block_steps"], d["part_state_bytes"], max(mem.values()),
                     same(ref, got)))
        print(f"{w} workers: {rows[-1][1]:.2f} steps/s stepping and exchange, "
              f"{d['gather_s']:.1f} s gathering the recordings and counters, "
              f"{t_all:.1f} s in all (with the parts' build), "
              f"{rows[-1][3]:,.0f} B exchanged/step (blocks of {d['block_steps']} steps), "
              f"part state {[round(b / 1e6, 1) for b in d['part_state_bytes']]} MB, "
              f"worker peak RSS {rows[-1][6]:.2f} GB, equal: {rows[-1][7]}", flush=True)
    state = sum(rows[0][5])
    per_chip = state / chips
    chips_1e7 = chips * 1e7 / args.neurons
    print(f"state per chip: {per_chip / 1e6:.1f} MB ({state / args.neurons:.0f} B/neuron); "
          f"1e7 neurons (same density): {chips_1e7:.0f} chips, "
          + ", ".join(f"{w} workers: {per_chip * chips_1e7 / w / 1e9:.2f} GB/worker"
                      for w in (1, 2, 4, 16, 64)))
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
