"""Run a network given as plain integer arrays on Lava's bit-accurate CPU models.

This file runs INSIDE a Python 3.10 environment with lava-nc 0.10 (``.venv-lava``). It
imports nothing of nmcompiler -- only Lava, numpy and scipy (a Lava dependency) -- so the
Loihi backend ships it, unchanged, as the standalone ``run_lava.py`` next to the lowered
``network.npz`` (``nmc deploy``, ``LoihiBackend.lower``)::

    python run_lava.py --steps 100 --input spikes.npz [--network network.npz] [--out OUT]

``spikes.npz`` holds one array per input name, shape ``(T, n)`` or ``(T, B, n)`` (spikes
0/1 or integer payloads); missing inputs get zeros. The run prints the spike count of
every output and writes ``OUT`` (default ``lava_out.npz``); ``--fuse`` runs every
population as one LIF process (:func:`fuse_network`: same numbers, fewer OS processes,
faster). The output holds one int32 array ``(T, B, n)``
per recorded variable, keyed ``"population/s"``, ``"/u"`` or ``"/v"`` (state after each
step), a JSON ``meta`` string mapping output names and probe keys to those keys, and
``lava_seconds``. With ``(T, n)`` inputs the arrays are ``(T, n)``.

Two input formats:

* ``network.npz`` from ``backends/loihi/lower.py`` (``meta["format"] ==
  "nmcompiler.lava_graph/1"``): ``meta`` JSON with ``populations`` [{name, n, spiking}],
  ``connections`` [{name, pre, post, shape, weight_exp, num_message_bits,
  num_weight_bits, sign_mode, sparse, delays}], ``inputs`` [{name, n}], ``records``,
  ``outputs``, ``probes``; arrays ``pop{i}.{du,dv,vth,bias_mant,bias_exp}`` and
  ``conn{j}.{row,col,w[,delay]}`` (COO mantissas; Lava synaptic delay = IR delay - 1).
* the test-harness spec of ``harness.write_spec`` (``IN.npz OUT.npz`` positional form):
  ``meta`` with ``steps``; ``pop{i}.{du,dv,vth,bias_mant,bias_exp,u0,v0}``,
  ``conn{j}.weights`` (n_post, n_pre) and optional ``conn{j}.delays``, ``in{k}`` (T, n);
  every population's s, u and v is recorded, output arrays ``(T, n)``.

Lava processes (``site-packages/lava/``): inputs ``proc.io.source.RingBuffer``
(``proc/io/source.py`` l.45-48: sends ``data[:, (t-1) % T]``), connections ``Dense`` /
``Sparse`` / ``DelayDense`` / ``DelaySparse`` (``proc/dense/models.py`` l.57-114,
330-352; ``proc/sparse/models.py``), populations ``LIF`` / ``LIFReset`` (bit-accurate
model ``PyLifModelBitAcc``, ``proc/lif/models.py`` l.72-278); every recorded variable has
one ``proc.monitor.process.Monitor`` (a Monitor probes one Var or port). The run uses
``Loihi2SimCfg(select_tag="fixed_pt")`` and ``RunSteps(T)``. A batch of B samples is run as
B copies of the graph in one Lava run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

GRAPH_FORMAT = "nmcompiler.lava_graph/1"
PARAMS = ("du", "dv", "vth", "bias_mant", "bias_exp")


def _scalar_or_array(x: np.ndarray):
    """A Python int when all neurons share the value (Lava's documented form), else the
    int64 array (Lava's int-typed Vars accept it and broadcast per neuron)."""
    x = np.asarray(x, dtype=np.int64)
    if x.size and np.all(x == x.flat[0]):
        return int(x.flat[0])
    return x


def _components(names: list[str], edges: list[tuple[str, str]]) -> list[list[str]]:
    parent = {n: n for n in names}

    def find(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in edges:
        parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(find(n), []).append(n)
    return list(groups.values())


# ---------------------------------------------------------------------------- reading
def load_network(z) -> dict:
    """The network of an opened ``.npz`` in one internal form (either input format)."""
    meta = json.loads(str(z["meta"]))
    net = {"populations": [], "connections": [], "inputs": {}, "records": [],
           "outputs": {}, "probes": {}, "legacy": meta.get("format") != GRAPH_FORMAT}
    for i, p in enumerate(meta["populations"]):
        pop = {"name": p["name"], "n": int(p["n"]), "model": p.get("model", "lif"),
               "reset_interval": int(p.get("reset_interval", 1)),
               "reset_offset": int(p.get("reset_offset", 0))}
        for k in PARAMS + ("u0", "v0"):
            key = f"pop{i}.{k}"
            pop[k] = np.asarray(z[key], dtype=np.int64) if key in z.files else None
        net["populations"].append(pop)
    sizes = {p["name"]: p["n"] for p in net["populations"]}
    for d in meta["inputs"]:
        net["inputs"][d["name"]] = int(d["n"])
        sizes[d["name"]] = int(d["n"])
    for j, c in enumerate(meta["connections"]):
        conn = {k: c.get(k) for k in ("pre", "post", "sign_mode")}
        conn.update(
            weight_exp=int(c.get("weight_exp", 0)),
            num_message_bits=int(c.get("num_message_bits", 0)),
            num_weight_bits=int(c.get("num_weight_bits", 8)),
            sparse=bool(c.get("sparse", False)),
        )
        if net["legacy"]:
            w = np.asarray(z[f"conn{j}.weights"], dtype=np.int64)
            conn["shape"] = w.shape
            conn["row"], conn["col"] = np.nonzero(w) if conn["sparse"] else np.indices(
                w.shape).reshape(2, -1)
            conn["w"] = w[conn["row"], conn["col"]]
            conn["delay"] = None
            if c.get("delays"):
                conn["delay"] = np.asarray(z[f"conn{j}.delays"], dtype=np.int64)[
                    conn["row"], conn["col"]]
        else:
            conn["shape"] = tuple(int(s) for s in c["shape"])
            conn["row"] = np.asarray(z[f"conn{j}.row"], dtype=np.int64)
            conn["col"] = np.asarray(z[f"conn{j}.col"], dtype=np.int64)
            conn["w"] = np.asarray(z[f"conn{j}.w"], dtype=np.int64)
            conn["delay"] = (np.asarray(z[f"conn{j}.delay"], dtype=np.int64)
                             if c.get("delays") else None)
        if conn["shape"] != (sizes[conn["post"]], sizes[conn["pre"]]):
            raise ValueError(f"connection {j}: shape {conn['shape']} does not match "
                             f"{conn['post']!r} x {conn['pre']!r}")
        net["connections"].append(conn)
    if net["legacy"]:
        net["records"] = [f"{p['name']}/{x}" for p in net["populations"] for x in "suv"]
        net["steps"] = int(meta["steps"])
    else:
        net["records"] = list(meta["records"])
        net["outputs"] = dict(meta.get("outputs", {}))
        net["probes"] = dict(meta.get("probes", {}))
    return net


def normalise_inputs(net: dict, given: dict, steps: int) -> tuple[dict, int, bool]:
    """``{name: int64 (B, T, n)}`` for every input, the batch size, and whether batched."""
    batch, batched = 1, False
    for name, x in given.items():
        if name not in net["inputs"]:
            raise ValueError(f"input {name!r} is not an input of the network "
                             f"(inputs: {', '.join(net['inputs']) or 'none'})")
        x = np.asarray(x)
        if x.ndim == 3:
            if batched and batch != 1 and batch != x.shape[1]:
                raise ValueError(f"input {name!r}: batch {x.shape[1]} != {batch}")
            batched, batch = True, x.shape[1]
    out = {}
    for name, n in net["inputs"].items():
        x = np.asarray(given.get(name, np.zeros((steps, n))))
        if x.ndim == 2:
            x = x[:, None, :]
        if x.ndim != 3 or x.shape[2] != n or x.shape[0] < steps:
            raise ValueError(f"input {name!r}: need (T >= {steps}, n = {n}) or (T, B, n), "
                             f"got {x.shape}")
        if not np.all(np.equal(np.mod(x, 1), 0)):
            raise ValueError(f"input {name!r}: Loihi takes integer spikes or payloads")
        x = np.broadcast_to(x[:steps], (steps, batch, n))
        out[name] = np.ascontiguousarray(np.transpose(x, (1, 0, 2))).astype(np.int64)
    return out, batch, batched


# ---------------------------------------------------------------------------- fusing
FUSED_POP, FUSED_IN = "__neurons__", "__inputs__"


def fuse_network(net: dict, inputs: dict) -> tuple[dict, dict, dict]:
    """The same network as ONE LIF process, one input RingBuffer and few connections.

    Lava's CPU runtime starts one OS process per process (and per Monitor) and
    synchronises them every step, so its speed falls with their number. Fusing is exact:
    LIF neurons are independent (``du``, ``dv``, ``vth``, bias are per-neuron arrays),
    ``a_in`` sums its connections in int32 (associative, so any grouping gives the same
    sum), and connections are merged only where Lava computes the same numbers: equal
    ``weight_exp``, ``num_message_bits``, ``num_weight_bits`` and sign mode, each
    (post, pre) pair at most once per merged matrix (Lava clips each matrix entry), and,
    for a negative ``weight_exp`` (which floors the *sum*), the same post population.

    Returns:
        (fused network, fused inputs, ``{population: (offset, n)}``).
    """
    pops = net["populations"]
    if any(p["model"] != "lif" for p in pops):
        raise ValueError("only plain LIF populations can be fused")
    off, k = {}, 0
    for p in pops:
        off[p["name"]] = (k, p["n"])
        k += p["n"]
    n_all = k
    ioff, k = {}, 0
    for name, n in net["inputs"].items():
        ioff[name] = (k, n)
        k += n
    n_in = k
    fused_pop = {"name": FUSED_POP, "n": n_all, "model": "lif", "reset_interval": 1,
                 "reset_offset": 0}
    for key in PARAMS + ("u0", "v0"):
        if key in ("u0", "v0") and all(p[key] is None for p in pops):
            fused_pop[key] = None
            continue
        fused_pop[key] = np.concatenate(
            [np.zeros(p["n"], np.int64) if p[key] is None else np.broadcast_to(p[key], (p["n"],))
             for p in pops]).astype(np.int64)
    groups: list[dict] = []
    for c in net["connections"]:
        from_input = c["pre"] in ioff
        pre_off = (ioff if from_input else off)[c["pre"]][0]
        post_off = off[c["post"]][0]
        key = (from_input, c["weight_exp"], c["num_message_bits"], c["num_weight_bits"],
               c["sign_mode"], c["delay"] is not None,
               c["post"] if c["weight_exp"] < 0 else None)
        pair = (c["pre"], c["post"])
        grp = next((g for g in groups if g["key"] == key and pair not in g["pairs"]), None)
        if grp is None:
            grp = {"key": key, "pairs": set(), "row": [], "col": [], "w": [], "delay": [],
                   "conn": {"pre": FUSED_IN if from_input else FUSED_POP, "post": FUSED_POP,
                            "weight_exp": c["weight_exp"],
                            "num_message_bits": c["num_message_bits"],
                            "num_weight_bits": c["num_weight_bits"],
                            "sign_mode": c["sign_mode"], "sparse": True,
                            "shape": (n_all, n_in if from_input else n_all)}}
            groups.append(grp)
        grp["pairs"].add(pair)
        grp["row"].append(np.asarray(c["row"]) + post_off)
        grp["col"].append(np.asarray(c["col"]) + pre_off)
        grp["w"].append(np.asarray(c["w"]))
        if c["delay"] is not None:
            grp["delay"].append(np.asarray(c["delay"]))
    conns = []
    for g in groups:
        conn = dict(g["conn"])
        conn["row"] = np.concatenate(g["row"]).astype(np.int64)
        conn["col"] = np.concatenate(g["col"]).astype(np.int64)
        conn["w"] = np.concatenate(g["w"]).astype(np.int64)
        conn["delay"] = np.concatenate(g["delay"]).astype(np.int64) if g["delay"] else None
        conns.append(conn)
    vars_needed = sorted({r.rpartition("/")[2] for r in net["records"]}, key="suv".index)
    fused = {"populations": [fused_pop], "connections": conns,
             "inputs": {FUSED_IN: n_in} if n_in else {},
             "records": [f"{FUSED_POP}/{x}" for x in vars_needed]}
    fused_inputs = {}
    if n_in:
        fused_inputs[FUSED_IN] = np.concatenate([inputs[name] for name in net["inputs"]],
                                                axis=2)
    return fused, fused_inputs, off


def run_fused(net: dict, inputs: dict, steps: int, batch: int = 1) -> dict:
    """:func:`run_network` on :func:`fuse_network`'s graph; results split per population."""
    fused, fused_inputs, off = fuse_network(net, inputs)
    raw = run_network(fused, fused_inputs, steps, batch)
    out = {"lava_seconds": raw["lava_seconds"]}
    for rec in net["records"]:
        name, _, x = rec.rpartition("/")
        o, n = off[name]
        out[rec] = raw[f"{FUSED_POP}/{x}"][:, :, o:o + n]
    return out


# ---------------------------------------------------------------------------- running
def run_network(net: dict, inputs: dict, steps: int, batch: int = 1) -> dict:
    """Build the Lava process graph (``batch`` copies) and run it for ``steps`` steps.

    Args:
        net: from :func:`load_network`.
        inputs: ``{name: int64 (batch, steps, n)}`` from :func:`normalise_inputs`.

    Returns:
        ``{record key: int32 (steps, batch, n)}`` and ``"lava_seconds"``.
    """
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF, LIFReset
    from lava.proc.monitor.process import Monitor
    from lava.proc.sparse.process import DelaySparse, Sparse
    from lava.utils.weightutils import SignMode
    from scipy.sparse import csr_matrix

    t0 = time.perf_counter()
    if steps < 1:
        raise ValueError("steps must be >= 1")
    if not net["populations"]:
        raise ValueError("the network has no population")
    modes = {"mixed": SignMode.MIXED, "excitatory": SignMode.EXCITATORY,
             "inhibitory": SignMode.INHIBITORY}
    procs = {}  # (name, b) -> (process, n)
    pop_keys = []
    edges = []
    monitors = {}  # (record, b) -> (monitor, process, var name)
    for b in range(batch):
        sfx = "" if batch == 1 else f"@{b}"  # process names: Lava needs them unique
        for name, n in net["inputs"].items():
            data = inputs[name][b].T.astype(np.int32).copy()  # (n, T)
            procs[(name, b)] = (RingBuffer(data=data), n)
        for p in net["populations"]:
            n = p["n"]
            zeros = np.zeros(n, dtype=np.int64)
            kw = dict(
                shape=(n,),
                u=zeros if p["u0"] is None else p["u0"],
                v=zeros if p["v0"] is None else p["v0"],
                du=_scalar_or_array(p["du"]),
                dv=_scalar_or_array(p["dv"]),
                vth=_scalar_or_array(p["vth"]),
                bias_mant=np.asarray(p["bias_mant"], dtype=np.int64),
                bias_exp=np.asarray(p["bias_exp"], dtype=np.int64),
                name=f"pop_{p['name']}{sfx}",
            )
            if p["model"] == "lif":
                proc = LIF(**kw)
            elif p["model"] == "lif_reset":
                proc = LIFReset(reset_interval=p["reset_interval"],
                                reset_offset=p["reset_offset"], **kw)
            else:
                raise ValueError(f"population {p['name']!r}: unknown model {p['model']!r}")
            procs[(p["name"], b)] = (proc, n)
            pop_keys.append((p["name"], b))
        for c in net["connections"]:
            kw = dict(weight_exp=c["weight_exp"], num_message_bits=c["num_message_bits"],
                      num_weight_bits=c["num_weight_bits"])
            if c["sign_mode"]:
                kw["sign_mode"] = modes[c["sign_mode"]]
            rows, cols, w = c["row"], c["col"], c["w"]
            if c["sparse"]:
                wm = csr_matrix((w, (rows, cols)), shape=c["shape"])
                if c["delay"] is not None:
                    dm = csr_matrix((c["delay"], (rows, cols)), shape=c["shape"])
                    conn = DelaySparse(weights=wm, delays=dm, **kw)
                else:
                    conn = Sparse(weights=wm, **kw)
            else:
                wd = np.zeros(c["shape"], dtype=np.int64)
                wd[rows, cols] = w
                if c["delay"] is not None:
                    dd = np.zeros(c["shape"], dtype=np.int64)
                    dd[rows, cols] = c["delay"]
                    conn = DelayDense(weights=wd, delays=dd, **kw)
                else:
                    conn = Dense(weights=wd, **kw)
            procs[(c["pre"], b)][0].s_out.connect(conn.s_in)
            conn.a_out.connect(procs[(c["post"], b)][0].a_in)
            edges.append(((c["pre"], b), (c["post"], b)))
        for rec in net["records"]:
            name, _, x = rec.rpartition("/")
            proc = procs[(name, b)][0]
            var = {"s": "s_out", "u": "u", "v": "v"}[x]
            m = Monitor()
            m.probe(getattr(proc, var), steps)
            monitors[(rec, b)] = (m, proc, var)

    # Lava compiles only what is connected to the process run() is called on: link the
    # components of the graph with all-zero Dense connections (they add 0 to a_in).
    comps = _components(list(procs), edges)
    pop_set = set(pop_keys)
    anchors = [next(k for k in comp if k in pop_set) for comp in comps if set(comp) & pop_set]
    for a, b in zip(anchors[:-1], anchors[1:], strict=True):
        (pa, na), (pb, nb) = procs[a], procs[b]
        link = Dense(weights=np.zeros((nb, na), dtype=np.int64))
        pa.s_out.connect(link.s_in)
        link.a_out.connect(pb.a_in)

    root = procs[pop_keys[0]][0]
    root.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    out = {}
    try:
        for rec in net["records"]:
            cols = []
            for b in range(batch):
                m, proc, var = monitors[(rec, b)]
                arr = np.asarray(m.get_data()[proc.name][var], dtype=np.float64)
                cols.append(np.rint(arr).astype(np.int64).astype(np.int32))
            out[rec] = np.stack(cols, axis=1)  # (T, B, n)
    finally:
        root.stop()
    out["lava_seconds"] = np.array(time.perf_counter() - t0)
    return out


# ---------------------------------------------------------------------------- CLIs
def run_legacy(in_path: str, out_path: str) -> None:
    """The harness form: inputs inside ``IN.npz``; ``(T, n)`` results in ``OUT.npz``."""
    with np.load(in_path, allow_pickle=False) as z:
        net = load_network(z)
        steps = net["steps"]
        given = {name: np.asarray(z[f"in{k}"]) for k, name in enumerate(net["inputs"])}
    inputs, batch, _ = normalise_inputs(net, given, steps)
    out = run_network(net, inputs, steps, batch)
    res = {k: (v[:, 0] if k != "lava_seconds" else v) for k, v in out.items()}
    np.savez(out_path, **res)


def main(argv: list[str]) -> int:
    """``run_lava.py --steps N [--input X.npz] [--network N.npz] [--out O.npz]``."""
    if len(argv) == 3 and not argv[1].startswith("-"):
        run_legacy(argv[1], argv[2])
        return 0
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(
        description="Run an nmcompiler-lowered network on Lava's bit-accurate CPU models "
        "(Loihi2SimCfg(select_tag='fixed_pt')).")
    ap.add_argument("--network", default=str(here / "network.npz"),
                    help="the lowered network (default: network.npz beside this script)")
    ap.add_argument("--input", default=None,
                    help=".npz with one (T, n) or (T, B, n) array per input name")
    ap.add_argument("--steps", type=int, default=None, help="steps (default: the input's T)")
    ap.add_argument("--out", default="lava_out.npz", help="where to save the recordings")
    ap.add_argument("--quiet", action="store_true", help="print nothing")
    ap.add_argument("--fuse", action="store_true",
                    help="run all populations as one LIF process (faster; same numbers)")
    a = ap.parse_args(argv[1:])
    with np.load(a.network, allow_pickle=False) as z:
        net = load_network(z)
    given = {}
    if a.input:
        with np.load(a.input, allow_pickle=False) as f:
            given = {k: np.asarray(f[k]) for k in f.files}
    steps = a.steps
    if steps is None:
        steps = min((int(x.shape[0]) for x in given.values()), default=0)
        if steps < 1:
            ap.error("give --steps N (or an --input file with T >= 1 steps)")
    inputs, batch, batched = normalise_inputs(net, given, steps)
    out = (run_fused if a.fuse else run_network)(net, inputs, steps, batch)
    res = {k: (v if batched or k == "lava_seconds" else v[:, 0]) for k, v in out.items()}
    meta = {"outputs": net["outputs"], "probes": net["probes"], "steps": steps,
            "batch": batch if batched else None}
    np.savez(a.out, meta=np.array(json.dumps(meta)), **res)
    if not a.quiet:
        print(f"ran {steps} steps (batch {batch}) on Lava fixed_pt in "
              f"{float(out['lava_seconds']):.2f} s; wrote {a.out}")
        for oname, rec in net["outputs"].items():
            arr = out[rec]
            what = "spikes" if rec.endswith("/s") else "final v"
            val = int(arr.sum()) if rec.endswith("/s") else arr[-1, 0].tolist()
            print(f"output {oname} ({rec}): {what} {val}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
