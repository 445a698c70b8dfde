"""Emulator speed: synaptic events per second from 1e3 to 1e6 neurons, and wall time
against NEST (through PyNN, one thread) and Brian2 on the same network, in one run.

The network (identical in all simulators, built from one seeded numpy connectivity):
``N`` integrate-and-fire neurons, no leak, threshold 100.5, reset to 0, an integer bias
of 1..5 per neuron and step, ``K`` (= 100, or N/10 for small N) random outgoing synapses
per neuron of weight +2 (80 %) or -8 (20 %), delay 1 step. Every value is an integer, so
all three simulators compute the same numbers and must produce the same spike counts
(checked and printed; NEST's iaf_psc_delta has a leak, made negligible with
tau_m = 1e12 ms). Synaptic events = spikes x K. The emulator runs the generic
``emulator`` target on one core (float32 accumulation, exact here), with its counters on
and off.

Run: ``.venv/bin/python bench/emulator_speed.py [--write] [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ir  # noqa: E402
from backends.emulator import engine_for  # noqa: E402
from nmcompiler.targets import load_target  # noqa: E402

THETA = 100.5


def connectivity(n: int, k: int, seed: int = 0):
    """(pre, post, weight, bias) of the benchmark network."""
    rng = np.random.default_rng(seed)
    pre = np.repeat(np.arange(n, dtype=np.int64), k)
    post = rng.integers(0, n, n * k)
    w = np.where(rng.random(n * k) < 0.8, 2.0, -8.0)
    bias = rng.integers(1, 6, n).astype(float)
    return pre, post, w, bias


def ir_network(n, k, pre, post, w, bias) -> ir.Network:
    net = ir.Network(f"bench{n}")
    net.population("p", n, ir.IF(theta=THETA, bias=bias))
    net.connect("p", "p", ir.Sparse.from_coo(pre=pre, post=post, weight=w, n_pre=n, n_post=n),
                delay=1)
    return net


def run_emulator(net, steps, repeats=3):
    """Build once; best of ``repeats`` runs with counters on and off (wall seconds)."""
    t0 = time.perf_counter()
    eng = engine_for(net, load_target("emulator"), check=False)
    build = time.perf_counter() - t0
    best = {}
    spikes = set()
    for count in (True, False):
        for _ in range(repeats):
            res = eng.run({}, steps, count=count)
            best[count] = min(best.get(count, np.inf), res.wall_s)
            spikes.add(res.spikes)
    assert len(spikes) == 1, spikes
    return build, best[True], best[False], spikes.pop()


def run_nest(n, k, pre, post, w, bias, steps):
    try:
        import pyNN.nest as sim
    except Exception as exc:  # pragma: no cover - optional toolchain
        return None, f"PyNN/NEST not importable: {exc}"
    import pyNN.nest.populations as pops_mod

    if not getattr(pops_mod.nest, "_nmc_patched", False):
        # PyNN 0.13 hands NEST 3.10 numpy scalars (numpy.bool) for native cell types,
        # which NEST's dictionary conversion rejects: convert them to Python scalars.
        real_create = pops_mod.nest.Create

        def _plain(v):
            return v.item() if isinstance(v, np.generic) else v

        def create(model, n=1, params=None, **kw):
            if isinstance(params, dict):
                params = {k: _plain(v) for k, v in params.items()}
            elif isinstance(params, list):
                params = [{k: _plain(v) for k, v in d.items()} for d in params]
            return real_create(model, n, params=params, **kw)

        pops_mod.nest = type("NestShim", (), {"__getattr__": lambda self, a: getattr(
            __import__("nest"), a), "Create": staticmethod(create), "_nmc_patched": True})()
    t0 = time.perf_counter()
    sim.setup(timestep=1.0, min_delay=1.0, max_delay=2.0, threads=1)
    # PyNN's IF_curr_delta maps to NEST's precise-timing iaf_psc_delta_ps; the grid-based
    # iaf_psc_delta is the model with the IR's step semantics, used as a native cell type.
    model = sim.native_cell_type("iaf_psc_delta")
    cells = sim.Population(n, model(
        tau_m=1e12, C_m=1.0, E_L=0.0, V_reset=0.0, V_th=THETA, t_ref=0.0, I_e=bias,
        V_min=-1e9))
    cells.initialize(V_m=0.0)
    # the synapses go in with one array call of NEST's own Connect (PyNN's
    # FromListConnector takes minutes at 1e7 synapses); weights are mV jumps of V_m
    import nest

    ids = np.asarray(cells.node_collection.tolist(), dtype=np.int64)
    nest.Connect(ids[pre].tolist(), ids[post].tolist(), "one_to_one",
                 syn_spec={"synapse_model": "static_synapse", "weight": w,
                           "delay": np.ones_like(w)})
    cells.record("spikes")
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    # PyNN's NEST backend simulates one step more than asked (checked: 100 ms asked gives
    # the spikes of 101 IR steps), so ask for steps - 1 to run exactly ``steps`` steps
    sim.run(float(steps - 1))
    run = time.perf_counter() - t0
    spikes = int(sum(cells.get_spike_counts().values()))
    sim.end()
    return (build, run, spikes), None


def run_brian2(n, k, pre, post, w, bias, steps):
    try:
        import brian2 as b2
    except Exception as exc:  # pragma: no cover - optional toolchain
        return None, f"brian2 not importable: {type(exc).__name__}: {exc}"
    b2.prefs.codegen.target = "numpy"
    t0 = time.perf_counter()
    b2.start_scope()
    b2.defaultclock.dt = 1 * b2.ms
    g = b2.NeuronGroup(n, "v : 1\nb : 1\nnspk : integer", threshold=f"v > {THETA}",
                       reset="v = 0\nnspk += 1")
    g.b = bias
    g.run_regularly("v += b", when="groups")
    s = b2.Synapses(g, g, "w : 1", on_pre="v_post += w", delay=0 * b2.ms)
    s.connect(i=pre, j=post)
    s.w = w
    s.pre.when = "start"  # deliver step t-1's spikes before this step's update
    net = b2.Network(g, s)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    net.run(steps * b2.ms)
    run = time.perf_counter() - t0
    return (build, run, int(np.sum(g.nspk[:]))), None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true", help="write docs/benchmarks.md")
    ap.add_argument("--quick", action="store_true", help="small sizes only")
    args = ap.parse_args()
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000, 1_000_000]
    compare_up_to = 10_000 if args.quick else 100_000
    rows, cmp_rows, notes = [], [], []
    load0 = os.getloadavg()[0]
    for n in sizes:
        k = min(100, n // 10)
        steps = 100
        pre, post, w, bias = connectivity(n, k)
        net = ir_network(n, k, pre, post, w, bias)
        b_on, t_on, t_off, spk = run_emulator(net, steps)
        ev = spk * k
        rows.append((n, k, steps, spk, ev, b_on, t_on, t_off))
        print(f"N={n:>8} K={k} steps={steps} spikes={spk} events={ev:.3g} "
              f"emu {t_on:.3f}s ({ev / t_on:.3g} ev/s) no-count {t_off:.3f}s "
              f"({ev / t_off:.3g} ev/s)", flush=True)
        if n <= compare_up_to:
            nest, why_n = run_nest(n, k, pre, post, w, bias, steps)
            br, why_b = run_brian2(n, k, pre, post, w, bias, steps)
            for why in (why_n, why_b):
                if why and why not in notes:
                    notes.append(why)
            cmp_rows.append((n, steps, spk, t_on, nest, br))
            print(f"   NEST {nest}  Brian2 {br if br else why_b}", flush=True)
    body = ["Synaptic events per second of the emulator (one core, generic target, counters "
            "on / off; best of 3 runs; events = spikes x synapses per neuron; the first "
            "~20 steps are a silent transient while the biases charge the neurons):", "",
            "| neurons | synapses / neuron | steps | spikes | synaptic events | build (s) | "
            "run, counters on (s) | events/s | run, counters off (s) | events/s |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for n, k, steps, spk, ev, b_on, t_on, t_off in rows:
        body.append(f"| {n:,} | {k} | {steps} | {spk:,} | {ev:,} | {b_on:.2f} | {t_on:.3f} | "
                    f"{ev / t_on:.3g} | {t_off:.3f} | {ev / t_off:.3g} |")
    body += ["", "Wall time against NEST 3.10 (through PyNN 0.13: native `iaf_psc_delta`, "
             "1 thread) and Brian2 on the same network (run phase; build = network "
             "construction):", "",
             "| neurons | steps | emulator spikes | emulator run (s) | NEST spikes | NEST build "
             "(s) | NEST run (s) | Brian2 spikes | Brian2 run (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for n, steps, spk, t_on, nest, br in cmp_rows:
        ns = ("-", "-", "-") if nest is None else (f"{nest[2]:,}", f"{nest[0]:.2f}",
                                                    f"{nest[1]:.3f}")
        bs = ("-", "-") if br is None else (f"{br[2]:,}", f"{br[1]:.3f}")
        body.append(f"| {n:,} | {steps} | {spk:,} | {t_on:.3f} | {ns[0]} | {ns[1]} | {ns[2]} | "
                    f"{bs[0]} | {bs[1]} |")
    if notes:
        body += ["", "Not run: " + "; ".join(notes)]
    body += ["", f"Load average at start / end: {load0:.2f} / {os.getloadavg()[0]:.2f} "
             f"({os.cpu_count()} cores; other work on the machine slows every column)."]
    text = "\n".join(body)
    print(text)
    if args.write:
        from _report import write_section

        write_section("emulator_speed", "Emulator speed (synaptic events per second)",
                      ".venv/bin/python bench/emulator_speed.py --write", text)


if __name__ == "__main__":
    os.environ.setdefault("PYNN_OMP_NUM_THREADS", "1")
    main()
