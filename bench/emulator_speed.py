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

Brian2 2.9 does not import with numpy 2.4 (the main environment's), so it runs in its own
environment through ``bench/brian2_run.py`` (the network goes over as an ``.npz``: CSR
weights, biases, threshold; spike counts and timings come back as JSON). Create it once::

    python3.11 -m venv .venv-brian2
    .venv-brian2/bin/pip install "brian2==2.9.*" "numpy<2.4"

Without it the Brian2 columns say why they are empty. Its numpy target starts fast; the
cython target compiles (into a temporary cache shared by the sizes of one run, never
``~/.cython``). The per-neuron spike counts of NEST and Brian2 are compared with the
emulator's. The load average is printed at the start, after each size and at the end.

Run: ``.venv/bin/python bench/emulator_speed.py [--write] [--quick] [--sizes N ...]
[--compare-up-to N] [--brian2-targets numpy cython] [--targets loihi2 spinnaker]
[--compiled-sizes N ...] [--compiled-steps T] [--compiled-steps-large T] [--repeats R]
[--repeats-large R] [--nest-up-to N] [--generic-build N] [--only-compiled]
[--threads T] [--one-thread-too]``.

The compiled rows take the user's path (``compile`` for ``loihi2`` / ``spinnaker``, their
multi-chip variants ``loihi2:halapoint`` / ``spinnaker:spinn5x12`` where the network does
not fit, then the emulator engine of the compiled network with counters and the cost
model on and off, interleaved), each row in a child process (a row that runs out of
memory is reported, not fatal), then NEST on the same network and steps with the
per-neuron spike counts compared; they go into their own section of docs/benchmarks.md
(``--only-compiled`` runs only them). The 1e6 rows need about 10 GB (the compile's
peak): run them alone on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from nmcompiler import ir  # noqa: E402
from nmcompiler.backends.emulator import engine_for  # noqa: E402
from nmcompiler.backends.emulator.delivery import default_threads  # noqa: E402
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


def ir_network(n, k, pre, post, w, bias, output: bool = False) -> ir.Network:
    net = ir.Network(f"bench{n}")
    net.population("p", n, ir.IF(theta=THETA, bias=bias))
    net.connect("p", "p", ir.Sparse.from_coo(pre=pre, post=post, weight=w, n_pre=n, n_post=n),
                delay=1)
    if output:
        net.output("p")
    return net


def emulator_counts(net_out, steps) -> np.ndarray:
    """Spikes per neuron on the emulator (an untimed run with the output recorded)."""
    res = engine_for(net_out, load_target("emulator"), check=False).run({}, steps, count=False)
    return np.asarray(res.outputs["p"]).reshape(steps, -1).sum(axis=0).astype(np.int64)


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


FALLBACK = {"loihi2": "loihi2:halapoint", "spinnaker": "spinnaker:spinn5x12"}


def _faults() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def run_compiled(n, target, steps, repeats=2, counts_path=None):
    """The user's path: ``compile`` for ``target`` (its multi-chip variant where the
    network does not fit), build the engine from the compiled network (its routes
    included), run with counters and the cost model on and off, interleaved (on, off, on,
    off, ...: the machine's load hits both alike), each run timed in wall and CPU
    seconds, ``EmulatorBackend``'s conversion of counters into Counters, time and energy
    included in the "on" time. Build: wall time and the minor page faults it took
    (first-touch memory). Writes the per-neuron spike counts to ``counts_path``."""
    import gc
    import resource

    from nmcompiler.api import compile as nmc_compile
    from nmcompiler.backends.emulator import _result
    from nmcompiler.ir.errors import FitError

    k = min(100, n // 10)
    pre, post, w, bias = connectivity(n, k)
    net = ir_network(n, k, pre, post, w, bias, output=True)
    del pre, post, w
    name = target
    t0 = time.perf_counter()
    try:
        cn = nmc_compile(net, target, seed=0)
    except FitError:
        name = FALLBACK[target]
        t0 = time.perf_counter()
        cn = nmc_compile(net, name, seed=0)
    t_compile = time.perf_counter() - t0
    del net
    gc.collect()
    f0 = _faults()
    t0 = time.perf_counter()
    eng = engine_for(cn.network, cn.target, partition=cn.partition, placement=cn.placement,
                     routes=cn.routes, check=False)
    t_engine = time.perf_counter() - t0
    eng.prepare_counting()  # the counters' folding (a counted run's first call builds it)
    t_build = time.perf_counter() - t0
    faults = _faults() - f0
    from nmcompiler.backends.emulator.engine import Engine

    # (counters on, threads: 0 = the engine's default, 1 = one thread with --one-thread-too)
    modes = [(True, 0), (False, 0)]
    if os.environ.get("NMC_BENCH_ONE_THREAD"):
        modes += [(True, 1), (False, 1)]
    runs: dict = {m: [] for m in modes}
    info = {}
    counts = None
    for _ in range(repeats):
        for count, th in modes:
            Engine.THREADS = th
            t0, c0 = time.perf_counter(), time.process_time()
            res = eng.run({}, steps, count=count)
            rr = _result(eng, res, "emulator", {})
            runs[(count, th)].append((time.perf_counter() - t0, time.process_time() - c0,
                                      res.synaptic_events, res.spikes))
            if counts is None:
                counts = np.asarray(res.outputs["p"]).reshape(steps, -1).sum(axis=0)
            if count:
                info = {"energy_j": rr.counters.energy_j.get("total", 0.0),
                        "per_step": bool(res.counters_per_step),
                        "links_per_step": bool(res.link_hops_per_step)}
            del res, rr
    Engine.THREADS = 0
    assert len({r[2:] for v in runs.values() for r in v}) == 1, \
        "counters or threads changed the run"
    if counts_path is not None:
        np.save(counts_path, counts.astype(np.int64))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    # the same build again in this process, the first engine freed: memory the machine
    # has just given this process is cheap to take again, so the difference from the
    # first build is the machine's part (fresh memory), the rest is the build's own work
    del eng
    gc.collect()
    t0 = time.perf_counter()
    eng = engine_for(cn.network, cn.target, partition=cn.partition, placement=cn.placement,
                     routes=cn.routes, check=False)
    eng.prepare_counting()
    t_again = time.perf_counter() - t0
    del eng
    best = {m: (min(r[0] for r in v), min(r[1] for r in v)) for m, v in runs.items()}
    one = {"on1": best[(True, 1)][0], "off1": best[(False, 1)][0]} if (True, 1) in best \
        else {}
    return {"target": name, "cores": int(cn.partition.n_cores), "compile": t_compile,
            "build": t_build, "build_engine": t_engine, "build_faults": faults,
            "build_again": t_again,
            "on": best[(True, 0)][0], "off": best[(False, 0)][0],
            "on_cpu": best[(True, 0)][1], "off_cpu": best[(False, 0)][1],
            "events": runs[(True, 0)][0][2], "spikes": runs[(True, 0)][0][3],
            "peak_gb": peak, **one, **info}


def compiled_child(n, target, steps, repeats, out: Path) -> dict:
    """:func:`run_compiled` in a child process (a row that runs out of memory is reported
    as such instead of ending the benchmark): figures as JSON, counts as .npy."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(n), target,
           str(steps), str(repeats), str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    js = out.with_suffix(".json")
    if r.returncode != 0 or not js.exists():
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or [f"exit {r.returncode}"]
        return {"target": target, "failed": f"exit {r.returncode}: {tail[0]}"}
    return json.loads(js.read_text())


def generic_build(n: int) -> dict:
    """Engine build of the generic one-core network (wall, page faults), and once more
    in the same process with the first engine freed (warm memory)."""
    import gc

    k = min(100, n // 10)
    pre, post, w, bias = connectivity(n, k)
    net = ir_network(n, k, pre, post, w, bias)
    del pre, post, w
    gc.collect()
    f0 = _faults()
    t0 = time.perf_counter()
    eng = engine_for(net, load_target("emulator"), check=False)
    t = time.perf_counter() - t0
    faults = _faults() - f0
    syn = int(sum(m.nnz for *_, m in eng.groups))
    del eng
    gc.collect()
    t0 = time.perf_counter()
    engine_for(net, load_target("emulator"), check=False)
    return {"n": n, "build": t, "faults": faults, "synapses": syn,
            "again": time.perf_counter() - t0}


def first_touch(n_bytes: int) -> tuple[float, float, int]:
    """Seconds to write ``n_bytes`` of fresh memory (page faults: the machine's part),
    to write the same memory again, and the minor page faults of the first write (a
    fault maps a 4 KiB page, or a 2 MiB one where numpy's large arrays get transparent
    huge pages, so the cost per fault is measured, not assumed per 4 KiB)."""
    a = np.empty(n_bytes // 8)
    f0 = _faults()
    t0 = time.perf_counter()
    a.fill(1.0)
    t1 = time.perf_counter()
    faults = _faults() - f0
    a.fill(2.0)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, max(faults, 1)


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
    # numpy id arrays take NEST's array path (no Python list of 1e8 ids)
    nest.Connect(ids[pre], ids[post], "one_to_one",
                 syn_spec={"synapse_model": "static_synapse", "weight": w,
                           "delay": np.ones_like(w)})
    cells.record("spikes")
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    # PyNN's NEST backend simulates one step more than asked (checked: 100 ms asked gives
    # the spikes of 101 IR steps), so ask for steps - 1 to run exactly ``steps`` steps
    sim.run(float(steps - 1))
    run = time.perf_counter() - t0
    got = cells.get_spike_counts()
    counts = np.array([got.get(i, 0) for i in cells.all_cells], dtype=np.int64)
    sim.end()
    return (build, run, int(counts.sum()), counts), None


BRIAN2_PY = ROOT / ".venv-brian2" / "bin" / "python"
BRIAN2_SETUP = ('python3.11 -m venv .venv-brian2 && .venv-brian2/bin/pip install '
                '"brian2==2.9.*" "numpy<2.4"')


def write_npz(path: Path, n, pre, post, w, bias, steps) -> None:
    """The benchmark network for bench/brian2_run.py: CSR over presynaptic neurons."""
    order = np.lexsort((post, pre))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(pre, minlength=n), out=indptr[1:])
    np.savez(path, n=n, steps=steps, theta=THETA, v_reset=0.0, bias=bias, indptr=indptr,
             indices=post[order], weights=w[order])


def run_brian2(n, k, pre, post, w, bias, steps, target="numpy", cache=None):
    """Brian2 in its own environment (it needs numpy < 2.4), through bench/brian2_run.py:
    ((build, run, spikes, codegen, import, counts), None) or (None, why). ``cache``: the
    cython cache folder (shared by the sizes of one bench run: the code does not depend
    on the size, so only the first size compiles)."""
    if not BRIAN2_PY.exists():
        return None, f"Brian2 not run: no .venv-brian2 (create it: {BRIAN2_SETUP})"
    with tempfile.TemporaryDirectory(prefix="nmc-brian2-") as tmp:
        net, out = Path(tmp) / "net.npz", Path(tmp) / "out.json"
        write_npz(net, n, pre, post, w, bias, steps)
        env = dict(os.environ, HOME=tmp, XDG_CACHE_HOME=tmp, OMP_NUM_THREADS="1")
        cmd = [str(BRIAN2_PY), str(ROOT / "bench" / "brian2_run.py"), str(net), str(out),
               "--target", target, "--cache-dir", str(cache or Path(tmp) / "cython")]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp)
        if r.returncode != 0 or not out.exists():
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
            return None, f"Brian2 ({target}) failed: {tail[0]}"
        res = json.loads(out.read_text())
    return (res["build_s"], res["run_s"], res["spikes"], res["codegen_s"],
            res["import_s"], np.asarray(res["counts"])), None


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def compiled_section(args) -> None:
    """The compiled-target rows, NEST on the same network, the 1e6 engine build; printed
    and (``--write``) written into their own section of docs/benchmarks.md."""
    load0 = _load()
    ft_bytes = 800_000_000
    ft = first_touch(ft_bytes)
    per_gb = max(ft[0] - ft[1], 0.0) / (ft_bytes / 1e9)
    print(f"load at start {load0}; first touch of {ft_bytes / 1e9:.1f} GB: {ft[0]:.2f} s, "
          f"again {ft[1]:.2f} s ({ft[2]} page faults, {per_gb:.2f} s per GB)", flush=True)
    comp_rows, nest_rows, notes = [], [], []
    csizes = args.compiled_sizes or ([10_000] if args.quick else [10_000, 100_000, 1_000_000])
    tmp = tempfile.TemporaryDirectory(prefix="nmc-emuspeed-")
    for n in csizes:
        k = min(100, n // 10)
        big = n > 100_000
        steps_c = args.compiled_steps_large if big else args.compiled_steps
        counts = {}
        for tgt in args.targets:
            out = Path(tmp.name) / f"{tgt.replace(':', '_')}_{n}"
            r = compiled_child(n, tgt, steps_c,
                               min(args.repeats, args.repeats_large) if big else args.repeats,
                               out)
            r.update(n=n, k=k, steps=steps_c, load=_load())
            comp_rows.append(r)
            if "failed" in r:
                print(f"N={n:>8} {tgt}: not run ({r['failed']})", flush=True)
                continue
            counts[r["target"]] = np.load(out.with_suffix(".npy"))
            print(f"N={n:>8} {r['target']}: {r['cores']} cores, compile {r['compile']:.1f}s "
                  f"build {r['build']:.2f}s (again {r['build_again']:.2f}s), counters on "
                  f"{r['on']:.3f}s off {r['off']:.3f}s ({100 * (r['on'] / r['off'] - 1):+.0f}% "
                  f"wall, {100 * (r['on_cpu'] / r['off_cpu'] - 1):+.0f}% CPU), "
                  f"{r['events'] / r['on']:.3g} ev/s on, peak {r['peak_gb']:.1f} GB, "
                  f"load {r['load']}", flush=True)
        if n <= args.nest_up_to:
            pre, post, w, bias = connectivity(n, k)
            nest, why = run_nest(n, k, pre, post, w, bias, steps_c)
            del pre, post, w
            if nest is None:
                notes.append(why)
                continue
            same = {t: bool(np.array_equal(nest[3], c)) for t, c in counts.items()}
            nest_rows.append((n, steps_c, nest, same, _load()))
            print(f"   NEST build {nest[0]:.1f}s run {nest[1]:.2f}s spikes {nest[2]}; "
                  f"per-neuron counts equal: {same}", flush=True)
    gb = generic_build(args.generic_build) if args.generic_build else None
    if gb:
        print(f"generic engine build N={gb['n']}: {gb['build']:.2f}s, {gb['faults']} page "
              f"faults; again {gb['again']:.2f}s", flush=True)
    yn = {True: "yes", False: "totals"}
    body = [
        "The user's path on compiled multi-core targets: the benchmark network above (output "
        "recorded) compiled with `compile(net, target, seed=0)` (the multi-chip variant "
        "where it does not fit one chip / board), the emulator engine built from the "
        "compiled network (its partition, placement and routes), then runs with counters "
        "and the cost model on (time and energy per step, link hops, the backend's "
        "Counters) and off, interleaved (on, off, on, off, ...), "
        f"{args.repeats} of each (at most {args.repeats_large} above 1e5 neurons); best wall "
        "and best CPU "
        "seconds of each; each row in its "
        "own process. Overhead = on / off - 1 (wall; CPU: the process's own CPU time, "
        "which other work on the shared machine inflates less). Events/s = synaptic "
        "events / best wall time with counters and costs on. Build: the engine of the "
        "compiled network, with its counters' folding into the synapse walk "
        "(`Engine.prepare_counting`, docs/emulator.md, \"Counters\"; otherwise the first "
        "counted run builds it), in a fresh process; build again: the same build once "
        "more at the end of the row, in the same process with the first engine freed "
        "(memory the machine has just given the process is cheap to take again: the "
        "difference is the machine's part, fresh memory, which costs "
        f"{per_gb:.2f} s per GB here at the start: writing {ft_bytes / 1e9:.1f} GB of fresh "
        f"memory took {ft[0]:.2f} s, writing it again {ft[1]:.2f} s). Per step: whether per-step, "
        "per-core counters / link hops were kept or only run totals (docs/emulator.md). "
        f"Delivery threads: {default_threads()} (docs/emulator.md, \"Threads\"; "
        "`NMC_THREADS`, `--threads`; a row whose accumulator fits a core's L2 cache "
        "runs on one); \"1 thread\": the same row on one thread (`--one-thread-too`, "
        "best of as many runs, interleaved with the others). NEST runs on one thread.",
        "",
        "| neurons | target | cores | steps | spikes | synaptic events | compile (s) | engine "
        "build (s) | of which counter folding (s) | build again, warm memory (s) | on (s) | "
        "off (s) | overhead | on CPU (s) | "
        "off CPU (s) | overhead CPU | events/s (on) | 1 thread: on / off (s) | "
        "per-step counters / link hops | energy (J) | peak GB | load |",
        "|---" * 22 + "|"]
    for r in comp_rows:
        if "failed" in r:
            body.append(f"| {r['n']:,} | {r['target']} | not run: {r['failed']} |"
                        + " |" * 19 + f" {r['load']} |")
            continue
        body.append(
            f"| {r['n']:,} | {r['target']} | {r['cores']:,} | {r['steps']} | "
            f"{r['spikes']:,} | {r['events']:,} | {r['compile']:.1f} | {r['build']:.2f} | "
            f"{r['build'] - r['build_engine']:.2f} | {r['build_again']:.2f} | "
            f"{r['on']:.3f} | {r['off']:.3f} | "
            f"{100 * (r['on'] / r['off'] - 1):+.0f}% | {r['on_cpu']:.3f} | "
            f"{r['off_cpu']:.3f} | {100 * (r['on_cpu'] / r['off_cpu'] - 1):+.0f}% | "
            f"{r['events'] / r['on']:.3g} | "
            + (f"{r['on1']:.3f} / {r['off1']:.3f} | " if "on1" in r else "- | ")
            + f"{yn[r['per_step']]} / "
            f"{yn[r['links_per_step']]} | {r['energy_j']:.3g} | {r['peak_gb']:.1f} | "
            f"{r['load']} |")
    if nest_rows:
        tg = sorted({t for *_, same, _ in nest_rows for t in same})
        body += ["", "NEST 3.10 (PyNN 0.13, native `iaf_psc_delta`, 1 thread) on the same "
                 "network and steps, in the same run; \"same\": its per-neuron spike counts "
                 "equal the compiled emulator run's on that target.", "",
                 "| neurons | steps | NEST spikes | NEST build (s) | NEST run (s) | NEST "
                 "events/s | " + " | ".join(f"same as {t}" for t in tg) + " | load |",
                 "|---|---|---|---|---|---|" + "---|" * len(tg) + "---|"]
        yes = {True: "yes", False: "**no**", None: "-"}
        for n, steps_c, nest, same, ld in nest_rows:
            k = min(100, n // 10)
            body.append(f"| {n:,} | {steps_c} | {nest[2]:,} | {nest[0]:.1f} | {nest[1]:.2f} | "
                        f"{nest[2] * k / nest[1]:.3g} | "
                        + " | ".join(yes[same.get(t)] for t in tg) + f" | {ld} |")
    if gb:
        body += ["", f"Engine build of the generic one-core network of {gb['n']:,} neurons "
                 f"({gb['synapses']:,} synapses): {gb['build']:.2f} s, {gb['faults']:,} page "
                 f"faults; built again in the same process (warm memory): {gb['again']:.2f} s."]
    if notes:
        body += ["", "Not run: " + "; ".join(notes)]
    body += ["", f"Load average (1 / 5 / 15 min) at start: {load0}; at end: {_load()} "
             f"({os.cpu_count()} cores shared with other work; the \"load\" column is taken "
             "after each row)."]
    text = "\n".join(body)
    print(text)
    if args.write:
        from _report import write_section

        cap = os.environ.get("NMC_BENCH_MEM_GB")
        write_section("emulator_compiled", "Emulator speed on compiled targets",
                      (f"NMC_BENCH_MEM_GB={cap} " if cap else "")
                      + "nice -n 10 .venv/bin/python bench/emulator_speed.py "
                      + " ".join(sys.argv[1:]), text)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true", help="write docs/benchmarks.md")
    ap.add_argument("--quick", action="store_true", help="small sizes only")
    ap.add_argument("--sizes", type=int, nargs="+", default=None,
                    help="neuron counts (default 1e3 1e4 1e5 1e6)")
    ap.add_argument("--compare-up-to", type=int, default=None,
                    help="run NEST and Brian2 up to this size (default 1e5; --quick: 1e4)")
    ap.add_argument("--brian2-targets", nargs="+", default=["numpy", "cython"],
                    choices=("numpy", "cython"), help="Brian2 code generation targets")
    ap.add_argument("--targets", nargs="*", default=["loihi2", "spinnaker"],
                    help="compiled targets of the user's-path rows (none: skip them)")
    ap.add_argument("--compiled-sizes", type=int, nargs="+", default=None,
                    help="neuron counts of the compiled rows (default 1e4 1e5 1e6; --quick: "
                    "1e4)")
    ap.add_argument("--compiled-steps", type=int, default=1000,
                    help="steps of the compiled rows up to 1e5 neurons")
    ap.add_argument("--compiled-steps-large", type=int, default=200,
                    help="steps of the compiled rows above 1e5 neurons")
    ap.add_argument("--repeats", type=int, default=3,
                    help="interleaved on / off run pairs per compiled row")
    ap.add_argument("--repeats-large", type=int, default=3,
                    help="at most this many run pairs per compiled row above 1e5 neurons")
    ap.add_argument("--nest-up-to", type=int, default=100_000,
                    help="run NEST on the compiled rows' network up to this size")
    ap.add_argument("--only-compiled", action="store_true",
                    help="only the compiled rows (their own section of docs/benchmarks.md)")
    ap.add_argument("--generic-build", type=int, default=1_000_000,
                    help="also time the generic one-core engine build at this size (0: no)")
    ap.add_argument("--threads", type=int, default=None,
                    help="delivery threads of the emulator rows (NMC_THREADS; default: "
                         "the engine's, the CPUs)")
    ap.add_argument("--one-thread-too", action="store_true",
                    help="also run each compiled row on one thread (NMC_THREADS=1), "
                         "interleaved with the others")
    ap.add_argument("--child", nargs=5, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads is not None:
        os.environ["NMC_THREADS"] = str(args.threads)  # this process and its rows' children
    if args.one_thread_too:
        os.environ["NMC_BENCH_ONE_THREAD"] = "1"
    if args.child:
        import resource

        # a row that needs more than this much address space fails with MemoryError
        # (reported) instead of pushing the shared machine into the OOM killer
        cap = int(float(os.environ.get("NMC_BENCH_MEM_GB", "14")) * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        n, tgt, steps, reps, out = args.child
        out = Path(out)
        r = run_compiled(int(n), tgt, int(steps), int(reps), out.with_suffix(".npy"))
        out.with_suffix(".json").write_text(json.dumps(r))
        return
    if args.targets:
        compiled_section(args)
    if args.only_compiled:
        return
    sizes = args.sizes or ([1_000, 10_000] if args.quick else
                           [1_000, 10_000, 100_000, 1_000_000])
    compare_up_to = args.compare_up_to if args.compare_up_to is not None else (
        10_000 if args.quick else 100_000)
    rows, cmp_rows, notes = [], [], []
    load0 = _load()
    cython_cache = tempfile.TemporaryDirectory(prefix="nmc-brian2-cython-")
    print(f"load average (1 / 5 / 15 min) at start: {load0}, {os.cpu_count()} cores",
          flush=True)
    for n in sizes:
        k = min(100, n // 10)
        steps = 100
        pre, post, w, bias = connectivity(n, k)
        net = ir_network(n, k, pre, post, w, bias)
        b_on, t_on, t_off, spk = run_emulator(net, steps)
        del net
        ev = spk * k
        rows.append((n, k, steps, spk, ev, b_on, t_on, t_off, _load()))
        print(f"N={n:>8} K={k} steps={steps} spikes={spk} events={ev:.3g} "
              f"emu {t_on:.3f}s ({ev / t_on:.3g} ev/s) no-count {t_off:.3f}s "
              f"({ev / t_off:.3g} ev/s) load {_load()}", flush=True)
        if n > compare_up_to:
            continue
        counts = emulator_counts(ir_network(n, k, pre, post, w, bias, output=True), steps)
        assert int(counts.sum()) == spk
        nest, why_n = run_nest(n, k, pre, post, w, bias, steps)
        brs = {}
        for tgt in args.brian2_targets:
            brs[tgt], why_b = run_brian2(n, k, pre, post, w, bias, steps, target=tgt,
                                         cache=cython_cache.name)
            if why_b and why_b not in notes:
                notes.append(why_b)
        if why_n and why_n not in notes:
            notes.append(why_n)
        same = {"NEST": None if nest is None else bool(np.array_equal(nest[3], counts))}
        for tgt, br in brs.items():
            same[f"Brian2 {tgt}"] = None if br is None else bool(np.array_equal(br[5], counts))
        cmp_rows.append((n, steps, spk, t_on, nest, brs, same, _load()))
        print(f"   NEST {nest[:3] if nest else why_n}", flush=True)
        for tgt, br in brs.items():
            print(f"   Brian2 {tgt}: " + ("-" if br is None else
                  f"build {br[0]:.2f}s codegen {br[3]:.2f}s run {br[1]:.3f}s "
                  f"spikes {br[2]} (import {br[4]:.2f}s)"), flush=True)
        print(f"   per-neuron spike counts equal to the emulator's: {same}", flush=True)
    ft_bytes = 800_000_000
    ft = first_touch(ft_bytes)
    body = ["Synaptic events per second of the emulator (one core, generic target, counters "
            "on / off; best of 3 runs; events = spikes x synapses per neuron; the first "
            "~20 steps are a silent transient while the biases charge the neurons):", "",
            "| neurons | synapses / neuron | steps | spikes | synaptic events | build (s) | "
            "run, counters on (s) | events/s | run, counters off (s) | events/s | load |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for n, k, steps, spk, ev, b_on, t_on, t_off, ld in rows:
        body.append(f"| {n:,} | {k} | {steps} | {spk:,} | {ev:,} | {b_on:.2f} | {t_on:.3f} | "
                    f"{ev / t_on:.3g} | {t_off:.3f} | {ev / t_off:.3g} | {ld} |")
    tg = list(args.brian2_targets)
    body += ["", "Wall time against NEST 3.10 (through PyNN 0.13: native `iaf_psc_delta`, "
             "1 thread) and Brian2 2.9 (its own environment `.venv-brian2`, numpy < 2.4, run "
             "through `bench/brian2_run.py`; " + " and ".join(tg) + " code generation) on "
             "the same network: run = the simulation; build = network construction (Brian2: "
             "construction + code generation / compilation, a zero-length run; the cython "
             "cache is shared by the sizes of one run, so only the first size compiles). "
             "\"same\": the per-neuron spike counts equal the emulator's (all three use "
             "float64 or integers on integer values with threshold 100.5, so no comparison "
             "or rounding can differ; NEST's leak with tau_m = 1e12 ms moves v by < 1e-9).",
             "",
             "| neurons | steps | emulator spikes | emulator run (s) | NEST spikes | same | "
             "NEST build (s) | NEST run (s) | "
             + " | ".join(f"Brian2 {t} spikes | same | Brian2 {t} build (s) | Brian2 {t} "
                          f"run (s)" for t in tg) + " | load |",
             "|---|---|---|---|---|---|---|---|" + "---|---|---|---|" * len(tg) + "---|"]
    yes = {True: "yes", False: "**no**", None: "-"}
    for n, steps, spk, t_on, nest, brs, same, ld in cmp_rows:
        ns = ("-", "-", "-") if nest is None else (f"{nest[2]:,}", f"{nest[0]:.2f}",
                                                    f"{nest[1]:.3f}")
        cells = [f"{n:,}", str(steps), f"{spk:,}", f"{t_on:.3f}", ns[0], yes[same["NEST"]],
                 ns[1], ns[2]]
        for t in tg:
            br = brs.get(t)
            cells += (["-"] * 4 if br is None else
                      [f"{br[2]:,}", yes[same[f"Brian2 {t}"]], f"{br[0] + br[3]:.2f}",
                       f"{br[1]:.3f}"])
        body.append("| " + " | ".join(cells + [ld]) + " |")
    body += ["", f"First-touch memory on this machine: writing {ft_bytes / 1e9:.1f} GB of "
             f"fresh memory takes {ft[0]:.2f} s, writing it again {ft[1]:.2f} s (the "
             "difference is the kernel's page faults, which every build of large arrays "
             "pays)."]
    if notes:
        body += ["", "Not run: " + "; ".join(notes)]
    body += ["", f"Load average (1 / 5 / 15 min) at start: {load0}; at end: {_load()}; the "
             "\"load\" columns are taken after each row "
             f"({os.cpu_count()} cores; other work on the machine slows every column)."]
    text = "\n".join(body)
    print(text)
    if args.write:
        from _report import write_section

        write_section("emulator_speed", "Emulator speed (synaptic events per second)",
                      "nice -n 10 .venv/bin/python bench/emulator_speed.py "
                      + " ".join(sys.argv[1:]), text)


if __name__ == "__main__":
    os.environ.setdefault("PYNN_OMP_NUM_THREADS", "1")
    main()
