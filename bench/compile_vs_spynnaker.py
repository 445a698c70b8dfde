"""nmcompiler's compile time against sPyNNaker's own mapping (docs/benchmarks.md).

The goal: nmcompiler compiles a PyNN-sized network for target "spinnaker" at least 20x
faster than sPyNNaker maps the same network on a virtual SpiNN-5 board. Run from the
repository root, with sPyNNaker installed in its own environment (never in .venv)::

    python3.11 -m venv .venv-spynnaker
    .venv-spynnaker/bin/pip install "sPyNNaker==1!7.4.1" numpy
    .venv/bin/python bench/compile_vs_spynnaker.py [--sizes 500 2000 5000 10000]
        [--pops 10] [--p 0.01] [--connector both] [--timeout 600] [--repeat-first] [--write]

For each size the script writes a plain description of the network (``--pops``
populations of ``size`` neurons; population i projects to itself and to population
i+1 mod pops, each pair connected with probability ``--p``, weight 0.1 nA, delay 1 step)
as .npz, runs ``bench/spynnaker_mapping.py`` on it under ``.venv-spynnaker/bin/python``
(a subprocess, killed after ``--timeout`` seconds: "did not finish"), and compiles the
same network, built as an ``ir.Network`` from the same connection lists, with
``nmcompiler.compile(network, "spinnaker", seed=0)`` in this process.

sPyNNaker is given the projections two ways (``--connector``): ``list``, the exact same
synapses as ``FromListConnector`` (sPyNNaker expands them on the host), and
``fixed_probability``, ``FixedProbabilityConnector(p)`` seeded per population (same
sizes and probability, not the same synapses; sPyNNaker's fast path, which leaves
synapse generation to the machine). The partition, placement and routes depend only on
population sizes and projections, so both give sPyNNaker the same mapping problem.

Times (seconds): sPyNNaker = ``setup`` + building populations and projections +
``run(1)`` (its import excluded; on a virtual board ``run(1)`` is partition, place,
route, keys, tables and data specification; nothing is executed); "mapping stage" =
sPyNNaker's own timer for partition + place + route + keys + tables only (the strictest
comparison). nmcompiler = building the ``ir.Network`` from the lists + verify +
``compile``; "compile + PyNN script written" adds the PyNN backend's lowering (the
``run_pynn.py`` + ``network.npz`` that ``nmc deploy --backend pynn`` writes, what a
sPyNNaker user runs), so the comparison stays end to end. Speed-up = sPyNNaker /
nmcompiler. Both use 256 neurons per core.
``--repeat-first`` maps the first size twice with sPyNNaker and compares the placements
(determinism). ``--write`` puts the table into docs/benchmarks.md (section "spynnaker").
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from nmcompiler import ir  # noqa: E402
from nmcompiler.ir import LIF, Network, Reset, Sparse  # noqa: E402

SPYNNAKER_PY = ROOT / ".venv-spynnaker" / "bin" / "python"
MAPPER = ROOT / "bench" / "spynnaker_mapping.py"
NEURONS_PER_CORE = 256  # hw_configs/spinnaker.toml core_budget.neurons = sPyNNaker's default

# IF_curr_exp parameters (PyNN units: ms, nF, mV, nA), PyNN's defaults except tau_refrac.
DT = 1.0
PYNN = {"tau_m": 20.0, "tau_syn_E": 5.0, "tau_syn_I": 5.0, "cm": 1.0, "v_rest": -65.0,
        "v_reset": -65.0, "v_thresh": -50.0, "tau_refrac": 0.0, "i_offset": 0.0}


def random_lists(n_pre: int, n_post: int, p: float, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (pre, post) pairs, each present with probability about ``p``, sorted."""
    total = n_pre * n_post
    k = int(rng.binomial(total, p))
    flat = np.unique(rng.integers(0, total, size=k, dtype=np.int64))
    return (flat // n_post).astype(np.int32), (flat % n_post).astype(np.int32)


def description(n_pops: int, size: int, p: float, seed: int = 0) -> dict[str, np.ndarray]:
    """The plain network description both sides build from (see spynnaker_mapping.py)."""
    rng = np.random.default_rng(seed)
    pairs = [(i, i) for i in range(n_pops)] + [(i, (i + 1) % n_pops) for i in range(n_pops)]
    if n_pops == 1:
        pairs = pairs[:1]
    pres, posts, ptr = [], [], [0]
    for _ in pairs:
        a, b = random_lists(size, size, p, rng)
        pres.append(a)
        posts.append(b)
        ptr.append(ptr[-1] + a.shape[0])
    nnz = ptr[-1]
    return {
        "pop_sizes": np.full(n_pops, size, dtype=np.int64),
        "pop_labels": np.array([f"p{i}" for i in range(n_pops)]),
        "proj_pre": np.array([a for a, _ in pairs], dtype=np.int64),
        "proj_post": np.array([b for _, b in pairs], dtype=np.int64),
        "proj_indptr": np.array(ptr, dtype=np.int64),
        "pre": np.concatenate(pres),
        "post": np.concatenate(posts),
        "weight": np.full(nnz, 0.1, dtype=np.float32),
        "delay": np.ones(nnz, dtype=np.int32),
        "neurons_per_core": np.int64(NEURONS_PER_CORE),
        "dt": np.float64(DT),
        **{k: np.float64(v) for k, v in PYNN.items()},
    }


def to_ir(desc: dict[str, np.ndarray]) -> Network:
    """The same network as an ``ir.Network`` of discretised IF_curr_exp (CUBA LIF) neurons.

    Voltage is in mV above ``v_rest``; a weight of w nA adds ``w * dt / cm`` mV per step.
    """
    q = {k: float(desc[k]) for k in PYNN}
    dt = float(desc["dt"])
    model = LIF(alpha_u=math.exp(-dt / q["tau_syn_E"]), lam=math.exp(-dt / q["tau_m"]),
                theta=q["v_thresh"] - q["v_rest"], v_reset=q["v_reset"] - q["v_rest"],
                bias=q["i_offset"] * dt / q["cm"], reset=Reset.HARD,
                refractory=int(round(q["tau_refrac"] / dt)))
    labels = [str(s) for s in desc["pop_labels"]]
    net = Network("pynn-random")
    for lab, n in zip(labels, desc["pop_sizes"], strict=True):
        net.population(lab, int(n), model)
    ptr = desc["proj_indptr"]
    scale = dt / q["cm"]
    for j, (a, b) in enumerate(zip(desc["proj_pre"], desc["proj_post"], strict=True)):
        sl = slice(int(ptr[j]), int(ptr[j + 1]))
        conn = Sparse.from_coo(pre=desc["pre"][sl], post=desc["post"][sl],
                               weight=desc["weight"][sl].astype(np.float64) * scale,
                               n_pre=int(desc["pop_sizes"][a]), n_post=int(desc["pop_sizes"][b]))
        net.connect(labels[a], labels[b], conn, delay=int(desc["delay"][sl][0]) if
                    sl.stop > sl.start else 1, name=f"{labels[a]}->{labels[b]}")
    for lab in labels:
        net.output(lab)
    return net


def _compile_fn() -> Any:
    """nmcompiler's compile entry point, or None while it does not exist yet."""
    import nmcompiler

    fn = getattr(nmcompiler, "compile", None)
    if fn is None:
        try:
            from nmcompiler import api
        except ImportError:
            return None
        fn = getattr(api, "compile", None)
    return fn


def run_nmcompiler(desc: dict[str, np.ndarray], seed: int = 0) -> dict[str, Any]:
    """Build the IR network and compile it for "spinnaker"; time both."""
    fn = _compile_fn()
    if fn is None:
        return {"status": "no compile API"}
    # Warm-up on a tiny network: the passes' lazy imports are not compile time (sPyNNaker's
    # import is not counted either).
    fn(to_ir(description(2, 16, 0.1, seed)), "spinnaker", seed=seed)
    t0 = time.perf_counter()
    net = to_ir(desc)
    ir.verify(net)
    t1 = time.perf_counter()
    cn = fn(net, "spinnaker", seed=seed)
    t2 = time.perf_counter()
    res = {"status": "ok", "time_s": t2 - t0, "build_s": t1 - t0, "compile_s": t2 - t1,
           "n_cores_used": int(cn.n_cores)}
    try:  # the PyNN backend's artifact: what a sPyNNaker user would run (end to end)
        from nmcompiler.backends.spinnaker import PyNNBackend
    except ImportError:
        return res
    with tempfile.TemporaryDirectory(prefix="nmc-pynn-") as tmp:
        t3 = time.perf_counter()
        PyNNBackend().lower(cn, Path(tmp))
        t4 = time.perf_counter()
    res["pynn_s"] = t4 - t3
    res["with_pynn_s"] = t2 - t0 + t4 - t3
    return res


def run_spynnaker(path: Path, timeout: float) -> dict[str, Any]:
    """Map the description with sPyNNaker in its own environment; None fields on failure."""
    if not SPYNNAKER_PY.exists():
        return {"status": f"missing {SPYNNAKER_PY.relative_to(ROOT)}"}
    out = path.with_suffix(".json")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([str(SPYNNAKER_PY), str(MAPPER), str(path), "--out", str(out)],
                              capture_output=True, text=True, timeout=timeout, cwd=path.parent)
    except subprocess.TimeoutExpired:
        return {"status": f"did not finish in {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not out.exists():
        err = (proc.stderr or proc.stdout).split("Exception ignored in atexit")[0]
        tail = err.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        return {"status": "failed: " + tail[0][:200]}
    res = json.loads(out.read_text())
    res["status"] = "ok"
    res["process_s"] = wall
    return res


def _fmt(x: Any, spec: str = ".2f") -> str:
    return "—" if x is None else format(x, spec)


def _t(res: dict[str, Any], key: str = "time_s", spec: str = ".2f") -> str:
    """A time, or the reason there is none."""
    return _fmt(res.get(key), spec) if res.get("status") == "ok" else str(res.get("status"))


def _ratio(num: dict[str, Any], key: str, den: dict[str, Any]) -> str:
    if num.get("status") == "ok" and den.get("status") == "ok" and den["time_s"] > 0:
        return f"{num[key] / den['time_s']:.1f}x"
    status = str(num.get("status", ""))
    if key == "time_s" and status.startswith("did not finish in ") and den.get("status") == "ok":
        return f"> {float(status.split()[4]) / den['time_s']:.0f}x"
    return "—"


def _cores(*results: dict[str, Any]) -> str:
    vals = {r.get("n_cores_used") for r in results if r.get("status") == "ok"}
    return " / ".join(str(v) for v in sorted(vals)) if vals else "—"


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the results (times in seconds)."""
    out = [
        "| populations x neurons | synapses | sPyNNaker FromList | sPyNNaker FixedProbability "
        "| of which mapping stage | nmcompiler build + compile "
        "| nmcompiler compile + PyNN script written | speed-up vs FromList "
        "| vs FixedProbability | vs mapping stage | cores sPyNNaker | cores nmcompiler |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    skipped = {"status": "skipped"}
    for r in rows:
        sl, sf, c = r.get("list", skipped), r.get("fixed_probability", skipped), r["nmcompiler"]
        out.append(
            f"| {r['pops']} x {r['size']} | {r['synapses']:,} | {_t(sl)} | {_t(sf)} "
            f"| {_t(sf, 'mapping_stage_s')} | {_t(c, spec='.3f')} "
            f"| {_t(c, 'with_pynn_s', '.3f')} | {_ratio(sl, 'time_s', c)} "
            f"| {_ratio(sf, 'time_s', c)} | {_ratio(sf, 'mapping_stage_s', c)} "
            f"| {_cores(sl, sf)} | {_cores(c)} |")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 5000, 10000])
    ap.add_argument("--pops", type=int, default=10)
    ap.add_argument("--p", type=float, default=0.01)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--connector", choices=["list", "fixed_probability", "both"],
                    default="both", help="how sPyNNaker is given the projections")
    ap.add_argument("--skip-spynnaker", action="store_true")
    ap.add_argument("--skip-nmcompiler", action="store_true")
    ap.add_argument("--repeat-first", action="store_true",
                    help="map the first size twice with sPyNNaker and compare placements")
    ap.add_argument("--write", action="store_true", help="write docs/benchmarks.md")
    ap.add_argument("--json", help="also write the raw results (a list of rows) here")
    args = ap.parse_args()
    connectors = ["list", "fixed_probability"] if args.connector == "both" else [args.connector]
    if args.skip_spynnaker:
        connectors = []

    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="nmc-vs-spynnaker-") as tmp:
        for size in args.sizes:
            desc = description(args.pops, size, args.p, args.seed)
            row: dict[str, Any] = {"pops": args.pops, "size": size,
                                   "synapses": int(desc["pre"].shape[0])}
            for conn in connectors:
                path = Path(tmp) / f"net_{args.pops}x{size}_{conn}.npz"
                np.savez(path, connector=np.str_(conn), p=np.float64(args.p),
                         seed=np.int64(args.seed), **desc)
                row[conn] = run_spynnaker(path, args.timeout)
                if args.repeat_first and size == args.sizes[0]:
                    again = run_spynnaker(path, args.timeout)
                    first = row[conn]
                    if first.get("status") == again.get("status") == "ok":
                        same = first["placements_sha256"] == again["placements_sha256"]
                        notes.append(
                            f"sPyNNaker ({conn}) mapped {args.pops} x {size} twice: placements "
                            f"{'identical' if same else 'DIFFERENT'} "
                            f"({first['time_s']:.2f} s and {again['time_s']:.2f} s).")
                path.unlink()
            row["nmcompiler"] = ({"status": "skipped"} if args.skip_nmcompiler
                                 else run_nmcompiler(desc, args.seed))
            rows.append(row)
            print(json.dumps(row, default=str), flush=True)

    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    body = table(rows)
    for r in rows:
        for conn in connectors:
            s = r.get(conn, {})
            if s.get("status") == "ok":
                notes.append(
                    f"{r['pops']} x {r['size']}, {conn}: partition {s['partition_s']:.2f} s, "
                    f"place {s['place_s']:.3f} s, route + keys + tables {s['route_s']:.2f} s, "
                    f"data specification {s['data_spec_s']:.2f} s, PyNN network build "
                    f"{s['build_s']:.2f} s; import {s['import_s']:.1f} s (not counted); "
                    f"{s['n_cores_used']} cores on {s['n_chips_used']} chips "
                    f"(+ {s['n_system_cores']} system cores).")
    if notes:
        body += "\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    print(body)
    if args.write:
        from _report import write_section

        cmd = ".venv/bin/python bench/compile_vs_spynnaker.py " + " ".join(sys.argv[1:])
        write_section("spynnaker", "Compile time against sPyNNaker's mapping (virtual board)",
                      cmd.strip(), body)


if __name__ == "__main__":
    main()
