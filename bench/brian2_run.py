"""Run the emulator-speed benchmark network in Brian2 (bench/emulator_speed.py calls this).

Brian2 2.9 does not import with the main environment's numpy 2.4, so this script runs in
its own environment ``.venv-brian2`` (``python3.11 -m venv .venv-brian2;
.venv-brian2/bin/pip install "brian2==2.9.*" "numpy<2.4"``) and imports nothing of
nmcompiler. It reads the network from an ``.npz`` and writes a JSON result::

    .venv-brian2/bin/python bench/brian2_run.py NET.npz OUT.json [--target numpy|cython]

The ``.npz`` holds: ``n`` (neurons), ``steps``, ``theta``, ``v_reset``, ``bias`` (n,),
recurrent synapses as CSR over presynaptic neurons ``indptr`` (n+1,), ``indices`` (post),
``weights``; optionally an input layer ``in_n``, ``in_indptr`` / ``in_indices`` /
``in_weights`` (CSR over input channels) and input spikes ``in_t`` (step), ``in_i``
(channel). Every synapse has a delay of one step.

Semantics, the IR's step (``ir/simulate.py``) with exact integer values in float64: at
step ``t`` the spikes of step ``t - 1`` arrive (``a``), ``v* = v + a + bias``, spike on
``v* > theta``, reset to ``v_reset``: no leak (an exact-decay IF neuron, as the NEST
comparison's ``iaf_psc_delta`` with ``tau_m = 1e12 ms``). Brian2's schedule per time step
is ``start, groups, thresholds, synapses, resets, end``: the pathways run at ``start``, so
they deliver the spikes found by the previous step's threshold (delay one step), then the
group adds ``bias``, thresholds and resets. The JSON gives ``spikes`` (total) and
``counts`` (per neuron), ``import_s``, ``build_s`` (construction), ``codegen_s`` (code
generation / compilation: a zero-length run), ``run_s`` (the simulation) and versions.
Brian2's cython target writes compiled extensions to a cache directory: it is pointed at
a temporary folder (``--cache-dir``, default: a fresh one, removed afterwards).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("net", help="input .npz")
    ap.add_argument("out", help="output .json")
    ap.add_argument("--target", default="numpy", choices=("numpy", "cython"))
    ap.add_argument("--cache-dir", default=None, help="cython cache (default: temporary)")
    args = ap.parse_args(argv)
    tmp = None
    cache = args.cache_dir
    if cache is None:
        tmp = cache = tempfile.mkdtemp(prefix="brian2-cython-")
    # Cython's own cache (~/.cython) and Brian2's extension cache both go to ``cache``
    os.environ["CYTHON_CACHE_DIR"] = cache
    try:
        return _run(args, cache)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _run(args: argparse.Namespace, cache: str) -> int:
    t0 = time.perf_counter()
    import brian2 as b2
    import numpy as np

    import_s = time.perf_counter() - t0
    b2.prefs.codegen.target = args.target
    b2.prefs.codegen.runtime.cython.cache_dir = os.path.join(cache, "brian_extensions")
    b2.prefs.logging.file_log = False
    b2.prefs.logging.delete_log_on_exit = True
    d = np.load(args.net)
    n, steps = int(d["n"]), int(d["steps"])
    theta, v_reset = float(d["theta"]), float(d["v_reset"])
    t0 = time.perf_counter()
    b2.start_scope()
    b2.defaultclock.dt = 1 * b2.ms
    g = b2.NeuronGroup(n, "v : 1\nb : 1 (constant)\nnspk : integer",
                       threshold=f"v > {theta!r}", reset=f"v = {v_reset!r}\nnspk += 1",
                       name="cells")
    g.b = np.asarray(d["bias"], dtype=np.float64)
    g.run_regularly("v += b", when="groups", name="bias")
    objs: list = [g]

    def csr_synapses(src, indptr, indices, weights, name):
        counts = np.diff(np.asarray(indptr, dtype=np.int64))
        pre = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
        s = b2.Synapses(src, g, "w : 1 (constant)", on_pre="v_post += w", delay=0 * b2.ms,
                        name=name)
        s.connect(i=pre, j=np.asarray(indices, dtype=np.int64))
        s.w = np.asarray(weights, dtype=np.float64)
        s.pre.when = "start"  # deliver step t-1's spikes before this step's update
        return s

    objs.append(csr_synapses(g, d["indptr"], d["indices"], d["weights"], "rec"))
    if "in_n" in d.files and int(d["in_n"]) > 0:
        # input spike of step t sits at t ms; delivered at the start of step t + 1
        gen = b2.SpikeGeneratorGroup(int(d["in_n"]), np.asarray(d["in_i"], dtype=np.int64),
                                     np.asarray(d["in_t"], dtype=np.float64) * b2.ms,
                                     name="inputs")
        objs += [gen, csr_synapses(gen, d["in_indptr"], d["in_indices"], d["in_weights"],
                                   "inp")]
    net = b2.Network(*objs)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    net.run(0 * b2.ms)  # code generation (and compilation for cython) only
    codegen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    net.run(steps * b2.ms)
    run_s = time.perf_counter() - t0
    counts = np.asarray(g.nspk[:], dtype=np.int64)
    out = {
        "target": args.target, "n": n, "steps": steps, "spikes": int(counts.sum()),
        "counts": counts.tolist(), "import_s": import_s, "build_s": build_s,
        "codegen_s": codegen_s, "run_s": run_s, "brian2": b2.__version__,
        "numpy": np.__version__, "python": sys.version.split()[0],
    }
    with open(args.out, "w") as fh:
        json.dump(out, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
