"""Map a PyNN network with sPyNNaker on a virtual SpiNN-5 board and time it (docs/benchmarks.md).

Runs in the separate benchmark environment (sPyNNaker pins packages, so it never goes
into the main .venv)::

    .venv-spynnaker/bin/python bench/spynnaker_mapping.py NET.npz [--out RESULT.json]

``NET.npz`` is the plain network description written by ``bench/compile_vs_spynnaker.py``
(see :func:`load_description` for its fields): populations of ``IF_curr_exp`` neurons and
projections given as explicit connection lists (``FromListConnector``), so that nmcompiler
and sPyNNaker see the same synapses, or, with ``connector = "fixed_probability"``, as
``FixedProbabilityConnector`` (same sizes and probability, sPyNNaker's faster path).
The script writes a ``.spynnaker.cfg`` (virtual board, ``version = 5``, ``mode = Info``)
into a temporary folder found through ``XDG_CONFIG_HOME``, works in a temporary folder
(sPyNNaker writes ``reports/`` into the working directory), calls
``set_number_of_neurons_per_core`` before any population, builds the network and calls
``sim.run(1)``: without a board sPyNNaker runs every mapping phase (partition, place,
route, routing keys and tables) and writes the per-core data specifications (synaptic
matrices), then skips loading and execution.

It prints (and with ``--out`` writes) one JSON object: ``time_s`` (wall time of
``setup`` + building the populations and projections + ``run(1)``, the Python import of
sPyNNaker excluded and given as ``import_s``), the phases from sPyNNaker's own timers
(``global_provenance.sqlite3``), the application cores used, and a digest of the
placements for determinism checks.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CFG = """[Machine]
virtual_board = True
version = 5

[Mode]
mode = Info
"""

# sPyNNaker's timer names (global_provenance.sqlite3, table timer_provenance) per phase.
PHASES = {
    "partition_s": ("Splitter partitioner",),
    "place_s": ("Application Placer",),
    "route_s": ("Application Router", "Zoned routing info allocator",
                "Merged routing table generator"),
    "data_spec_s": ("Graph data specification writer",),
}


def load_description(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read the network description.

    Fields: ``pop_sizes`` (P,), ``pop_labels`` (P,) str; ``proj_pre``, ``proj_post`` (J,)
    population indices; ``proj_indptr`` (J+1,) offsets into the synapse arrays ``pre``,
    ``post`` (neuron indices within the populations), ``weight`` (nA, sign picks the
    receptor) and ``delay`` (time steps); ``neurons_per_core``; ``dt`` (ms) and the
    ``IF_curr_exp`` parameters ``tau_m``, ``tau_syn_E``, ``tau_syn_I``, ``cm``, ``v_rest``,
    ``v_reset``, ``v_thresh``, ``tau_refrac``, ``i_offset`` (PyNN units). Optional:
    ``connector`` = ``"list"`` (default: ``FromListConnector`` of the explicit lists) or
    ``"fixed_probability"``: ``FixedProbabilityConnector(p)``, population i seeded with
    ``seed + i`` and the first weight for all synapses, sPyNNaker's fast path (it
    generates the synapses on the machine); the lists then only give the synapse count.
    """
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _timers(report_root: Path) -> dict[str, float]:
    """Phase times in seconds from sPyNNaker's provenance database (0 if absent)."""
    dbs = sorted(glob.glob(str(report_root / "reports" / "*" / "global_provenance.sqlite3")))
    out = {k: 0.0 for k in PHASES} | {"mapping_stage_s": 0.0, "loading_stage_s": 0.0}
    if not dbs:
        return out
    con = sqlite3.connect(dbs[-1])
    try:
        for alg, ms in con.execute("SELECT algorithm, time_taken FROM timer_view"):
            for key, names in PHASES.items():
                if alg in names:
                    out[key] += ms / 1e3
        for cat, ms in con.execute("SELECT category, time_taken FROM category_timer_view"):
            if cat == "Mapping Stage":
                out["mapping_stage_s"] += (ms or 0) / 1e3
            elif cat == "Loading Stage":
                out["loading_stage_s"] += (ms or 0) / 1e3
    finally:
        con.close()
    return out


def run(desc: dict[str, np.ndarray]) -> dict[str, object]:
    """Build the network in sPyNNaker, map it with ``run(1)`` and summarise."""
    t0 = time.perf_counter()
    import pyNN.spiNNaker as sim
    from spinn_front_end_common.data import FecDataView

    import_s = time.perf_counter() - t0
    labels = [str(s) for s in desc["pop_labels"]]
    params = {k: float(desc[k]) for k in ("tau_m", "tau_syn_E", "tau_syn_I", "cm", "v_rest",
                                          "v_reset", "v_thresh", "tau_refrac", "i_offset")}
    dt = float(desc["dt"])

    t0 = time.perf_counter()
    sim.setup(timestep=dt)
    sim.set_number_of_neurons_per_core(sim.IF_curr_exp, int(desc["neurons_per_core"]))
    t1 = time.perf_counter()
    connector = str(desc.get("connector", "list"))
    # sPyNNaker seeds on-machine synapse generation through the target Population's seed
    # (it rejects an rng given to FixedProbabilityConnector).
    seeds = ({"seed": int(desc["seed"])} if connector == "fixed_probability" else {})
    pops = [sim.Population(int(n), sim.IF_curr_exp(**params), label=lab,
                           **{k: v + i for k, v in seeds.items()})
            for i, (n, lab) in enumerate(zip(desc["pop_sizes"], labels, strict=True))]
    ptr = desc["proj_indptr"]
    for j, (a, b) in enumerate(zip(desc["proj_pre"], desc["proj_post"], strict=True)):
        if connector == "fixed_probability":
            sim.Projection(pops[a], pops[b], sim.FixedProbabilityConnector(float(desc["p"])),
                           sim.StaticSynapse(weight=float(abs(desc["weight"][0])), delay=dt),
                           receptor_type="excitatory")
            continue
        sl = slice(int(ptr[j]), int(ptr[j + 1]))
        w = desc["weight"][sl].astype(np.float64)
        conn = np.column_stack([desc["pre"][sl], desc["post"][sl], np.abs(w),
                                desc["delay"][sl].astype(np.float64) * dt])
        for receptor, mask in (("excitatory", w >= 0), ("inhibitory", w < 0)):
            if mask.any():
                sim.Projection(pops[a], pops[b], sim.FromListConnector(conn[mask]),
                               receptor_type=receptor)
    t2 = time.perf_counter()
    sim.run(1 * dt)
    t3 = time.perf_counter()

    rows, system = [], 0
    for p in FecDataView.iterate_placemements():
        app = p.vertex.app_vertex
        if app is None or app.label not in labels:
            system += 1
            continue
        sl = p.vertex.vertex_slice
        rows.append((app.label, int(sl.lo_atom), int(sl.hi_atom), p.x, p.y, p.p))
    rows.sort()
    sim.end()
    t4 = time.perf_counter()

    per_pop: dict[str, int] = {}
    for r in rows:
        per_pop[r[0]] = per_pop.get(r[0], 0) + 1
    digest = hashlib.sha256(json.dumps(rows).encode()).hexdigest()
    return {
        "time_s": t3 - t0,
        "import_s": import_s,
        "setup_s": t1 - t0,
        "build_s": t2 - t1,
        "run_s": t3 - t2,
        "end_s": t4 - t3,
        **_timers(Path.cwd()),
        "n_cores_used": len(rows),
        "n_system_cores": system,
        "n_chips_used": len({(r[3], r[4]) for r in rows}),
        "cores_per_population": per_pop,
        "connector": connector,
        "n_synapses": int(desc["pre"].shape[0]),
        "placements_sha256": digest,
        "placements": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("description", help="network description (.npz)")
    ap.add_argument("--out", help="write the JSON result here as well")
    ap.add_argument("--keep-placements", action="store_true",
                    help="keep the full placement list in the JSON (default: digest only)")
    args = ap.parse_args()
    desc = load_description(args.description)
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="spynnaker-bench-") as tmp:
        cfg_home = Path(tmp) / "config"
        work = Path(tmp) / "work"
        cfg_home.mkdir()
        work.mkdir()
        (cfg_home / ".spynnaker.cfg").write_text(CFG)
        os.environ["XDG_CONFIG_HOME"] = str(cfg_home)
        os.environ.setdefault("MPLBACKEND", "Agg")
        os.chdir(work)
        try:
            result = run(desc)
        finally:
            os.chdir(cwd)
    if not args.keep_placements:
        result.pop("placements")
    text = json.dumps(result)
    if args.out:
        Path(args.out).write_text(text)
    sys.stdout.write("\n" + text + "\n")


if __name__ == "__main__":
    main()
