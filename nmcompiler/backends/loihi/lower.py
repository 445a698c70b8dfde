"""Lower a CompiledNetwork for loihi / loihi2 to a Lava process graph (docs/loihi_backend.md).

The result, a :class:`LavaGraph`, is plain integer arrays and names: exactly the arguments
of Lava 0.10's process constructors, in the format ``lava_runner.py`` (shipped as the
standalone ``run_lava.py``) reads. Nothing here imports Lava; the graph is built inside
the Python 3.10 Lava environment by the runner.

How each IR piece becomes a Lava process (paths relative to ``site-packages/lava/``):

* **Population** (LIF / IF / LI, hard reset to 0, no refractory period, binary spikes)
  -> ``proc.lif.process.LIF`` with the quantiser's ``du``, ``dv``, ``vth``, ``bias_mant``,
  ``bias_exp`` (``network.metadata["quantization"]``, docs/passes.md), per neuron where
  they differ. Its bit-accurate model is ``PyLifModelBitAcc`` (``proc/lif/models.py``
  l.72-216, 240-278). A non-spiking readout (LI) gets ``vth = 2**17``: the effective
  threshold ``vth << 6 = 2**23`` lies above the largest voltage ``2**23 - 1`` (the clip of
  l.174-186), so it never fires and, as in the IR, is never reset.
* **Projection** -> ``proc.dense.process.Dense`` (IR Dense) or ``proc.sparse.process.Sparse``
  (IR Sparse, OneToOne, expanded convolutions / pooling), with the integer mantissas
  ``weight >> weight_shift``, the shared ``weight_exp``, ``num_weight_bits``, the
  quantiser's ``sign_mode`` passed explicitly (so Lava's ``clip_weights`` /
  ``truncate_weights``, ``utils/weightutils.py`` l.204-295, act exactly as the emulator's
  ``loihi_arith.prepare_weights``), and ``num_message_bits`` (0 = binary; 8 from a graded
  source or where the metadata says so, the emulator's rule). Lava's Dense delivers a
  spike one step later (``proc/dense/models.py`` l.93-107), which is the IR's delay 1.
  A total delay ``D > 1`` (projection delay plus per-synapse delay) becomes
  ``DelayDense`` / ``DelaySparse`` with synaptic delay ``D - 1`` (0..63, l.330-352).
  Delay 0 does not exist on Loihi: the compiler retimes it away; if one is left,
  lowering fails naming the projection.
* **Input** -> ``proc.io.source.RingBuffer`` (``proc/io/source.py`` l.45-48; its
  ``fixed_pt`` model sends int32) holding the input's ``(n, T)`` data, given at run time.
* **Outputs and probes** -> one ``proc.monitor.process.Monitor`` per recorded variable
  (``s_out`` of a spiking output, ``v`` of a readout, ``u`` / ``v`` / ``s_out`` of a probe).

What Lava 0.10 has no bit-accurate model for (soft reset or no reset of a spiking neuron,
``v_reset != 0``, refractory periods, graded spikes sent by a neuron, threshold noise,
resonate-and-fire's complex voltage) raises :class:`~nmcompiler.ir.errors.BackendError` naming the
population; such networks run on the emulator (docs/loihi_arithmetic.md, last section).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nmcompiler.compiled import CompiledNetwork, json_default
from nmcompiler.ir.errors import BackendError
from nmcompiler.ir.expand import projection_coo
from nmcompiler.ir.io import write_npz
from nmcompiler.ir.network import Network, Projection
from nmcompiler.quantization import PopulationQuant, ProjectionQuant, QuantizationInfo
from nmcompiler.targets.families import loihi as la

__all__ = [
    "GRAPH_FORMAT",
    "NEVER_FIRES_VTH",
    "LavaGraph",
    "lower_compiled",
    "lower_network",
    "merge_graphs",
    "read_graph",
    "write_graph",
]

#: ``format`` entry of network.npz's meta
GRAPH_FORMAT = "nmcompiler.lava_graph/1"
#: vth of a non-spiking population: ``vth << 6 = 2**23`` > the largest v, ``2**23 - 1``
NEVER_FIRES_VTH = 2**17
_VARS = {"spikes": "s", "v": "v", "u": "u"}


@dataclass
class LavaGraph:
    """A Lava process graph as plain data (the runner's ``network.npz``).

    Attributes:
        populations: ``[{"name", "n", "du", "dv", "vth", "bias_mant", "bias_exp",
            "spiking"}]``; parameters are int64 arrays of shape (n,).
        connections: ``[{"name", "pre", "post", "shape": (n_post, n_pre), "row", "col",
            "w", "delay" (None or int64 synaptic delays, Lava's ``D - 1``), "weight_exp",
            "num_message_bits", "num_weight_bits", "sign_mode", "sparse"}]``, the weights
            as COO mantissas.
        inputs: ``{name: n}``.
        records: ``["pop/s" | "pop/u" | "pop/v", ...]``: what the run monitors.
        outputs: ``{output name: "pop/s" or "pop/v"}``.
        probes: ``{"pop.var": "pop/x"}``.
        info: provenance (target, network name, scales).
    """

    populations: list[dict[str, Any]] = field(default_factory=list)
    connections: list[dict[str, Any]] = field(default_factory=list)
    inputs: dict[str, int] = field(default_factory=dict)
    records: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    probes: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def record(self, keys: Iterable[str]) -> None:
        """Add ``"pop/x"`` keys to :attr:`records` (kept unique, in order)."""
        for k in keys:
            if k not in self.records:
                self.records.append(k)

    def record_all(self) -> None:
        """Record s, u and v of every population (the fidelity tests do)."""
        self.record(f"{p['name']}/{x}" for p in self.populations for x in "suv")


# ------------------------------------------------------------------------------ helpers
def _per_neuron(x: Any, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(x, dtype=np.int64), (n,)).copy()


def _unsupported(pop: str, what: str) -> BackendError:
    return BackendError(
        f"population '{pop}' uses {what}, which Lava 0.10 has no bit-accurate model for",
        obj=pop,
        rule="Lava bit-accurate LIF",
        hint="run it on the emulator (nmc run), or use hard reset to 0, no refractory "
        "period, binary spikes and no noise (docs/loihi_backend.md)",
    )


def _population(name: str, pop: Any, q: QuantizationInfo) -> dict[str, Any]:
    """Lava LIF parameters of one population; mirrors ``Engine._build_params`` (loihi)."""
    from nmcompiler.ir.models import Reset, canonical

    p = canonical(pop.model)
    n = pop.size
    spiking = bool(p["spiking"])
    if np.iscomplexobj(np.asarray(p["lam"])) and np.any(np.imag(p["lam"]) != 0):
        raise _unsupported(name, "resonate-and-fire (complex lam)")
    if spiking:
        if p["reset"] != Reset.HARD:
            raise _unsupported(name, f"reset '{p['reset'].value}'")
        if np.any(np.asarray(p["v_reset"]) != 0):
            raise _unsupported(name, "v_reset != 0")
        if int(p["refractory"]) > 0:
            raise _unsupported(name, f"a refractory period of {int(p['refractory'])} steps")
        if p["graded"]:
            raise _unsupported(name, "graded spikes")
        if float(p["noise"]) > 0:
            raise _unsupported(name, "threshold noise")
    e = q.population(name) or PopulationQuant(scale=1.0)
    alpha_u, lam = np.real(p["alpha_u"]), np.real(p["lam"])
    derived: dict[str, Any] = {
        "du": la.decay_from_factor(alpha_u, current=True),
        "dv": la.decay_from_factor(lam, current=False),
        "vth": np.rint(np.minimum(np.real(p["theta"]) / 64.0, 2**17 - 1))
        if spiking
        else 0,
    }
    bm, be = la.bias_from_float(np.real(p["bias"]), 64.0)
    derived.update(bias_mant=bm, bias_exp=be)
    out: dict[str, Any] = {"name": name, "n": int(n), "spiking": spiking}
    for k in ("du", "dv", "vth", "bias_mant", "bias_exp"):
        val = getattr(e, k)
        out[k] = _per_neuron(derived[k] if val is None else val, n)
    if not spiking:
        out["vth"] = _per_neuron(NEVER_FIRES_VTH, n)
    return out


def _proj_coo(net: Network, proj: Projection
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(pre, post, weight, per-synapse delays or None): zero weights dropped
    (:func:`nmcompiler.ir.expand.projection_coo`)."""
    pre, post, w, dl = projection_coo(proj.conn, net.shape_of(proj.pre), keep_zeros=False)
    return pre, post, w, None if dl is None else dl.astype(np.int64)


def _projection(
    net: Network, proj: Projection, q: QuantizationInfo, graded_pops: set[str]
) -> list[dict[str, Any]]:
    """One or more Lava connections for one projection (more only for duplicate synapses)."""
    from nmcompiler.ir.connectivity import Dense

    e = q.projection(proj.name) or ProjectionQuant()
    exp = e.weight_exp or 0
    nmb = e.num_message_bits
    if nmb is None:
        nmb = 8 if proj.pre in graded_pops else 0
    shift = la.ACT_SHIFT + exp if e.weight_shift is None else e.weight_shift
    pre, post, w, dl = _proj_coo(net, proj)
    w = np.real(np.asarray(w, dtype=np.result_type(np.asarray(w).dtype, np.float64)))
    mant = np.rint(w / 2.0**shift)
    if mant.size and np.abs(mant).max() >= 2**31:
        raise BackendError(
            f"projection '{proj.name}' has weights beyond Lava's int32 mantissas",
            obj=proj.name, rule="weight range", need=float(np.abs(mant).max()), limit=2**31,
            hint="compile the network for loihi / loihi2 first (nmc compile)",
        )
    mode = e.sign_mode or la.sign_mode_of(mant)
    d_total = np.full(pre.shape, int(proj.delay), dtype=np.int64)
    if dl is not None:
        d_total = d_total + dl
    if d_total.size and d_total.min() < 1:
        raise BackendError(
            f"projection '{proj.name}' has delay 0, which Loihi cannot deliver",
            obj=proj.name, rule="Loihi delay >= 1", need=int(d_total.min()), limit=1,
            hint="compile for loihi / loihi2: the lower pass retimes zero delays away",
        )
    if d_total.size and d_total.max() - 1 > la.MAX_DELAY:
        raise BackendError(
            f"projection '{proj.name}' needs a delay of {int(d_total.max())} steps; "
            f"Lava's DelayDense allows at most {la.MAX_DELAY + 1}",
            obj=proj.name, rule="Lava synaptic delay", need=int(d_total.max()),
            limit=la.MAX_DELAY + 1, hint="compile for a target whose max_delay is <= 64",
        )
    keep = mant != 0
    pre, post, mant, d_total = pre[keep], post[keep], mant[keep], d_total[keep]
    n_post, n_pre = net.size_of(proj.post), net.size_of(proj.pre)
    # duplicate (post, pre) pairs: Lava would clip their sum, the emulator each synapse,
    # so every repeat goes into a connection of its own
    key = post * n_pre + pre
    order = np.argsort(key, kind="stable")
    ks = key[order]
    first = np.r_[True, ks[1:] != ks[:-1]] if ks.size else np.zeros(0, dtype=bool)
    start = np.maximum.accumulate(np.where(first, np.arange(ks.size), 0))
    rank = np.empty(ks.size, dtype=np.int64)
    rank[order] = np.arange(ks.size) - start
    delayed = bool(d_total.size and d_total.max() > 1)
    conns = []
    for r in range(int(rank.max()) + 1 if rank.size else 1):
        sel = rank == r
        conns.append(
            {
                "name": proj.name if r == 0 else f"{proj.name}#dup{r}",
                "pre": proj.pre,
                "post": proj.post,
                "shape": (int(n_post), int(n_pre)),
                "row": post[sel].astype(np.int64),
                "col": pre[sel].astype(np.int64),
                "w": mant[sel].astype(np.int64),
                "delay": (d_total[sel] - 1).astype(np.int64) if delayed else None,
                "weight_exp": exp,
                "num_message_bits": int(nmb),
                "num_weight_bits": e.num_weight_bits or 8,
                "sign_mode": str(mode),
                "sparse": not isinstance(proj.conn, Dense),
            }
        )
    return conns


# ------------------------------------------------------------------------------ lowering
def lower_network(net: Any, *, target: str = "", probes: Iterable[str] = ()) -> LavaGraph:
    """Lower a quantised :class:`nmcompiler.ir.Network` (Loihi units) to a :class:`LavaGraph`.

    Args:
        net: the network of a CompiledNetwork for loihi / loihi2.
        target: the target's name (provenance only).
        probes: extra ``"pop.var"`` keys to record besides the network's own probes.

    Raises:
        BackendError: a feature Lava 0.10 cannot run bit-accurately, a delay of 0 or > 64.
    """
    from nmcompiler.ir.models import canonical

    q = QuantizationInfo.of(net) or QuantizationInfo()
    g = LavaGraph()
    g.info = {"network": net.name, "target": target or q.target,
              "units": "Lava integer units: v, u in 1/64 of a weight-mantissa unit"}
    for name, inp in net.inputs.items():
        g.inputs[name] = int(inp.size)
    graded = set()
    for name, pop in net.populations.items():
        c = canonical(pop.model)
        if c["graded"] and c["spiking"]:
            graded.add(name)
        g.populations.append(_population(name, pop, q))
    for proj in net.projections.values():
        g.connections.extend(_projection(net, proj, q, graded))
    spiking = {p["name"]: p["spiking"] for p in g.populations}
    for o in net.outputs.values():
        g.outputs[o.name] = f"{o.source}/{'s' if spiking[o.source] else 'v'}"
    for key in [p.key for p in net.probes] + list(probes):
        pop, _, var = key.rpartition(".")
        if pop not in spiking or var not in _VARS:
            raise BackendError(
                f"probe '{key}' names no population variable", obj=key, rule="known probe",
                hint="use 'population.spikes', '.v' or '.u'",
            )
        g.probes[key] = f"{pop}/{_VARS[var]}"
    g.record(list(g.outputs.values()) + list(g.probes.values()))
    return g


def lower_compiled(compiled: CompiledNetwork, *, probes: Iterable[str] = ()) -> LavaGraph:
    """Lower a :class:`~nmcompiler.compiled.CompiledNetwork` (family ``loihi``)."""
    family = getattr(compiled.target, "backend", None)
    if family != "loihi":
        raise BackendError(
            f"the network was compiled for '{compiled.target.name}' (family '{family}'); "
            "the Lava backend lowers loihi / loihi2 networks only",
            obj=compiled.target.name, rule="target family", need="loihi", limit=family,
            hint="compile with --target loihi2",
        )
    g = lower_network(compiled.network, target=compiled.target.name, probes=probes)
    g.info["seed"] = int(compiled.seed)
    g.info["output_shift_steps"] = dict(
        compiled.report.get("summary", {}).get("output_shift_steps", {}) or {}
    )
    return g


def merge_graphs(graphs: Mapping[str, LavaGraph]) -> LavaGraph:
    """One graph holding several, every name prefixed with ``"{tag}:"``.

    Lava starts one OS process per process model, so the tests run many small networks
    as one Lava run; the parts stay independent (no connection between them).
    """
    out = LavaGraph()
    for tag, g in graphs.items():
        def pre(name: str, tag: str = tag) -> str:
            return f"{tag}:{name}"

        for p in g.populations:
            out.populations.append({**p, "name": pre(p["name"])})
        for c in g.connections:
            out.connections.append(
                {**c, "name": pre(c["name"]), "pre": pre(c["pre"]), "post": pre(c["post"])}
            )
        out.inputs.update({pre(k): v for k, v in g.inputs.items()})
        out.records += [pre(r) for r in g.records]
        out.outputs.update({pre(k): pre(v) for k, v in g.outputs.items()})
        out.probes.update({pre(k): pre(v) for k, v in g.probes.items()})
    return out


# ------------------------------------------------------------------------------ files
def write_graph(g: LavaGraph, path: str | Path) -> Path:
    """Write ``g`` as ``network.npz``: a JSON ``meta`` string plus integer arrays.

    Arrays: ``pop{i}.{du,dv,vth,bias_mant,bias_exp}`` (n,) and ``conn{j}.{row,col,w}``
    (nnz,) plus ``conn{j}.delay`` for delayed connections; all int64. ``lava_runner.py``
    documents the format it reads.
    """
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {
        "format": GRAPH_FORMAT,
        "populations": [],
        "connections": [],
        "inputs": [{"name": k, "n": int(v)} for k, v in g.inputs.items()],
        "records": list(g.records),
        "outputs": dict(g.outputs),
        "probes": dict(g.probes),
        "info": g.info,
    }
    for i, p in enumerate(g.populations):
        meta["populations"].append(
            {"name": p["name"], "n": int(p["n"]), "model": "lif", "spiking": bool(p["spiking"])}
        )
        for k in ("du", "dv", "vth", "bias_mant", "bias_exp"):
            arrays[f"pop{i}.{k}"] = np.asarray(p[k], dtype=np.int64)
    for j, c in enumerate(g.connections):
        meta["connections"].append(
            {k: c[k] for k in ("name", "pre", "post", "weight_exp", "num_message_bits",
                               "num_weight_bits", "sign_mode", "sparse")}
            | {"shape": list(c["shape"]), "delays": c["delay"] is not None}
        )
        for k in ("row", "col", "w"):
            arrays[f"conn{j}.{k}"] = np.asarray(c[k], dtype=np.int64)
        if c["delay"] is not None:
            arrays[f"conn{j}.delay"] = np.asarray(c["delay"], dtype=np.int64)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # deterministic npz (numpy.savez stamps the time): same graph, same bytes
    write_npz(path, {"meta": np.array(json.dumps(meta, default=json_default))} | arrays)
    return path




def read_graph(path: str | Path) -> LavaGraph:
    """Read a ``network.npz`` written by :func:`write_graph`."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        g = LavaGraph(
            inputs={d["name"]: int(d["n"]) for d in meta["inputs"]},
            records=list(meta["records"]),
            outputs=dict(meta["outputs"]),
            probes=dict(meta["probes"]),
            info=dict(meta.get("info", {})),
        )
        for i, p in enumerate(meta["populations"]):
            g.populations.append(
                {"name": p["name"], "n": p["n"], "spiking": p["spiking"]}
                | {k: np.array(z[f"pop{i}.{k}"]) for k in
                   ("du", "dv", "vth", "bias_mant", "bias_exp")}
            )
        for j, c in enumerate(meta["connections"]):
            g.connections.append(
                {**{k: v for k, v in c.items() if k != "delays"}, "shape": tuple(c["shape"]),
                 "row": np.array(z[f"conn{j}.row"]), "col": np.array(z[f"conn{j}.col"]),
                 "w": np.array(z[f"conn{j}.w"]),
                 "delay": np.array(z[f"conn{j}.delay"]) if c["delays"] else None}
            )
    return g
