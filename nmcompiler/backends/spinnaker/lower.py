"""Lower a CompiledNetwork for spinnaker / spinnaker2 to a PyNN network (docs/spinnaker_backend.md).

The result, a :class:`PyNNGraph`, is plain arrays and names: PyNN 0.13 cell parameters
per neuron, synapse lists per projection (pre index, post index, weight, delay, receptor
from the weight's sign) and the mapping (every neuron's slice = the logical core our
partition gave it, every slice's chip and processor from our placement). The standalone
script ``run_pynn.py`` (:mod:`nmcompiler.backends.spinnaker.pynn_runner`) builds it with
``pyNN.nest`` or ``pyNN.spiNNaker``. Nothing here imports PyNN.

Units. The quantised network is in raw s16.15 units (a state value ``x`` reads
``x / 2**15``); PyNN gets millivolts ``mV = raw * 2**-F`` with ``F`` the target's
``state_fraction_bits`` (15), a power of two, so every raw integer is exact in mV and
sPyNNaker's own s16.15 conversion gives the raw integer back. ``dt`` is 1 ms.

Neuron model (IR CUBA LIF -> PyNN), per neuron; docs/spinnaker_backend.md derives it:

* ``alpha_u == 0`` -> ``IF_curr_delta`` (NEST ``iaf_psc_delta``): a weight of ``w`` mV
  jumps the voltage by ``w`` in the step the spike arrives, as the IR's ``u = a``.
* ``0 < alpha_u < 1`` -> ``IF_curr_exp`` (NEST ``iaf_psc_exp``) with
  ``tau_syn = -dt / ln(alpha_u)``; the weight (nA) is scaled per simulator so that one
  unit of the IR's ``u`` adds one unit to ``v`` per step (``weight_scale_*``).
* ``tau_m = -dt / ln(lam)`` (``lam = 1``: :data:`TAU_M_NO_LEAK`), ``cm = 1.024 nF``,
  ``v_rest = 0``, ``v_thresh = theta`` (sPyNNaker and NEST fire at ``v >= v_thresh``, the
  compiled comparison), ``v_reset = v_reset``, ``tau_refrac = refractory * dt``,
  ``i_offset`` such that NEST's ``P30 * I_e`` (``P30 = tau_m / C (1 - e^{-dt/tau_m})``)
  equals the bias.

NEST timing. ``iaf_psc_exp`` lets a spike change the voltage one step after it arrives
(its current is updated after the voltage), sPyNNaker and the IR in the step it arrives.
The lowering therefore retimes the NEST run (Leiserson and Saxe, "Retiming synchronous
circuitry", Algorithmica 1991): population ``P`` runs ``shift[P]`` steps late and a
synapse ``P -> Q`` of IR delay ``d`` gets the NEST delay ``d + shift[Q] - shift[P] - e_Q``
(``e_Q = 1`` for ``IF_curr_exp``), which must be >= 1; the shifts are the longest paths
of those difference constraints (Bellman-Ford). A recurrent loop of exponential
populations with delay 1 has no solution; those synapses then get NEST delay 1 (one step
late on NEST, counted in ``info["nest_late_synapses"]``); sPyNNaker needs no retiming.

Refused (:class:`~nmcompiler.ir.errors.BackendError` naming the population or projection
and what to change): soft or no reset of a spiking population, graded spikes, threshold
noise, resonate-and-fire, ``lam <= 0``, ``alpha_u >= 1``, a population mixing
``alpha_u == 0`` and ``> 0``, delay 0, unexpanded convolutions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nmcompiler.compiled import json_default
from nmcompiler.ir.errors import BackendError
from nmcompiler.ir.io import write_npz

__all__ = [
    "GRAPH_FORMAT",
    "DT_MS",
    "TAU_M_NO_LEAK",
    "NEVER_FIRES_MV",
    "PyNNGraph",
    "quantization_info",
    "lower_compiled",
    "lower_network",
    "merge_graphs",
    "write_graph",
    "read_graph",
    "nest_retiming",
]

GRAPH_FORMAT = "nmcompiler.pynn_graph/1"
#: the time step, ms (SpiNNaker's real-time step)
DT_MS = 1.0
#: tau_m of a neuron without leak (lam = 1): exp(-dt / tau_m) == 1.0 in float64, and a
#: power of two, so NEST's P30 = -tau_m / C * expm1(-dt / tau_m) is exactly dt / C
TAU_M_NO_LEAK = 2.0 ** 996
#: cm (nF) of every cell: C_m = 1024 pF, a power of two (PyNN's cm * 1000 is exact)
CM_NF = 1.024
#: v_thresh of a non-spiking readout: above any s16.15 voltage (|v| < 2**16 mV)
NEVER_FIRES_MV = 65536.0
#: per-neuron cell parameter arrays in the npz
CELL_PARAMS = ("tau_m", "cm", "v_thresh", "v_reset", "tau_refrac", "i_offset", "tau_syn",
               "bias_mv", "weight_scale_nest", "weight_scale_spinnaker")


@dataclass
class PyNNGraph:
    """A PyNN network as plain data (the script's ``network.npz``).

    Attributes:
        populations: ``[{"name", "n", "celltype": "IF_curr_delta" | "IF_curr_exp",
            "spiking", "shift" (NEST retiming, steps), "block" (n,) int64 slice index,
            and the :data:`CELL_PARAMS` arrays (n,) float64}]``.
        blocks: ``{"pop", "core", "x", "y", "p", "n"}`` int64 arrays, one row per slice
            (population, logical core): its chip (x, y) and processor p (slot + 1).
        projections: ``[{"name", "pre", "post", "pre_idx", "post_idx", "weight" (mV, the
            IR's raw weight x 2**-F; scaled per simulator by the post neuron's
            ``weight_scale_*``), "delay" (IR steps), "nest_delay" (steps)}]``.
        inputs: ``{name: {"n", "shift"}}``.
        outputs: ``{output name: "pop/s" | "pop/v"}``.
        probes: ``{"pop.var": "pop/s" | "pop/v"}``.
        records: ``["pop/s" | "pop/v", ...]``.
        info: provenance (network, target, units, neurons per core, retiming).
    """

    populations: list[dict[str, Any]] = field(default_factory=list)
    blocks: dict[str, np.ndarray] = field(default_factory=dict)
    projections: list[dict[str, Any]] = field(default_factory=list)
    inputs: dict[str, dict[str, int]] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    probes: dict[str, str] = field(default_factory=dict)
    records: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def record(self, keys: Iterable[str]) -> None:
        """Add ``"pop/s" | "pop/v"`` keys to :attr:`records` (unique, in order)."""
        for k in keys:
            if k not in self.records:
                self.records.append(k)

    def record_all(self) -> None:
        """Record the spikes of every spiking population."""
        self.record(f"{p['name']}/s" for p in self.populations if p["spiking"])


# ------------------------------------------------------------------------ quantisation
def quantization_info(net: Any) -> dict[str, Any]:
    """What the backend reads of the quantiser's record: ``{"fraction_bits", "target",
    "scales": {population: scale}}``. The one place that reads
    ``network.metadata["quantization"]`` (docs/passes.md describes it)."""
    md = net.metadata if isinstance(net.metadata, Mapping) else {}
    q = md.get("quantization")
    q = q if isinstance(q, Mapping) else {}
    pops_raw = q.get("populations")
    pops = pops_raw if isinstance(pops_raw, Mapping) else {}
    return {
        "fraction_bits": int(q.get("state_fraction_bits", 15)),
        "target": str(q.get("target", "")),
        "scales": {k: float(v.get("scale", 1.0)) for k, v in pops.items()
                   if isinstance(v, Mapping)},
    }


# ------------------------------------------------------------------------ helpers
def _refuse(obj: str, what: str, hint: str, rule: str = "PyNN standard cell") -> BackendError:
    return BackendError(f"population '{obj}' uses {what}, which PyNN's IF_curr_exp / "
                        "IF_curr_delta cannot express", obj=obj, rule=rule, hint=hint)


def _per_neuron(x: Any, n: int) -> np.ndarray:
    return np.broadcast_to(np.real(np.asarray(x, dtype=np.complex128)), (n,)).astype(
        np.float64)


def _propagator_32(tau_syn: np.ndarray, tau_m: np.ndarray, c_pf: np.ndarray,
                   h: float) -> np.ndarray:
    """NEST's ``propagator_32`` (``libnestutil/propagator_stability.cpp``), ``iaf_psc_exp``'s
    ``P21``: the voltage change (mV) after one step ``h`` per pA of exponentially decaying
    synaptic current, the same formula and the same singular branch."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        lin = 1.0 / (2.0 * c_pf * tau_m * tau_m) * h * h * (tau_syn - tau_m) * np.exp(
            -h / tau_m)
        sing = h / c_pf * np.exp(-h / tau_m)
        reg = (-tau_m / (c_pf * (1.0 - tau_m / tau_syn)) * np.exp(-h / tau_syn)
               * np.expm1(h * (1.0 / tau_syn - 1.0 / tau_m)))
    dev = np.abs(reg - sing)
    singular = (tau_m == tau_syn) | ((np.abs(tau_m - tau_syn) < 0.1) & (dev > 2.0 * np.abs(lin)))
    return np.where(singular, sing, reg)


def _exact_times_1000(pa: np.ndarray) -> np.ndarray:
    """nA values ``x`` with ``x * 1000.0 == pa`` exactly where one exists within a few
    ulps (PyNN multiplies nA by 1000.0 for NEST's pA): integer networks stay exact."""
    x = pa / 1000.0
    for _ in range(4):
        bad = x * 1000.0 != pa
        if not bad.any():
            break
        up = np.nextafter(x[bad], np.inf)
        down = np.nextafter(x[bad], -np.inf)
        x[bad] = np.where(up * 1000.0 == pa[bad], up,
                          np.where(down * 1000.0 == pa[bad], down,
                                   np.where(x[bad] * 1000.0 < pa[bad], up, down)))
    return x


def _population(name: str, pop: Any, frac: int) -> dict[str, Any]:
    """PyNN cell parameters (per neuron) of one compiled population."""
    from nmcompiler.ir.models import Reset, canonical

    p: dict[str, Any] = canonical(pop.model)
    n = int(pop.size)
    spiking = bool(p["spiking"])
    lam_c = np.asarray(p["lam"])
    if np.iscomplexobj(lam_c) and np.any(np.imag(lam_c) != 0):
        raise _refuse(name, "resonate-and-fire (complex lam)",
                      "use LIF / IF neurons for SpiNNaker (PyNN has no resonator)")
    if spiking:
        if p["reset"] != Reset.HARD:
            raise _refuse(name, f"reset '{p['reset'].value}'",
                          "use hard reset (reset=Reset.HARD, v_reset); ANN conversions: "
                          "convert with hard reset (docs/ann2snn.md)")
        if p["graded"]:
            raise _refuse(name, "graded spikes", "use binary spikes (graded=False)")
        if float(p["noise"]) > 0:
            raise _refuse(name, "threshold noise (stochastic firing)", "set noise=0")
    unit = 2.0 ** -frac
    lam = _per_neuron(lam_c, n)
    alpha = _per_neuron(p["alpha_u"], n)
    if np.any(lam <= 0) or np.any(lam > 1):
        raise _refuse(name, f"lam = {float(lam.min()):g}", "need 0 < lam <= 1 "
                      "(tau_m = -dt / ln(lam))", rule="0 < lam <= 1")
    if np.any(alpha < 0) or np.any(alpha >= 1):
        raise _refuse(name, f"alpha_u = {float(alpha.max()):g}", "need 0 <= alpha_u < 1 "
                      "(tau_syn = -dt / ln(alpha_u))", rule="0 <= alpha_u < 1")
    exp = bool(np.any(alpha > 0))
    if exp and np.any(alpha == 0):
        raise _refuse(name, "alpha_u = 0 for some neurons and > 0 for others",
                      "split the population: IF_curr_delta (alpha_u = 0) and IF_curr_exp "
                      "(alpha_u > 0) are different cell types", rule="one cell type")
    dt = DT_MS
    with np.errstate(divide="ignore"):
        tau_m = np.where(lam < 1, -dt / np.log(lam), TAU_M_NO_LEAK)
        tau_syn = np.where(alpha > 0, -dt / np.log(np.where(alpha > 0, alpha, 0.5)), 1.0)
    cm = np.full(n, CM_NF)  # nF
    c_pf = cm * 1000.0
    # NEST P30 = -tau_m / C * expm1(-h / tau_m) (mV per pA); PyNN i_offset is in nA
    p30 = -tau_m / c_pf * np.expm1(-dt / tau_m)
    bias_mv = _per_neuron(p["bias"], n) * unit
    i_offset = _exact_times_1000(bias_mv / p30)
    theta = _per_neuron(np.minimum(np.real(np.asarray(p["theta"])), 2.0 ** 40), n) * unit
    v_thresh = theta if spiking else np.full(n, NEVER_FIRES_MV)
    v_reset = _per_neuron(p["v_reset"], n) * unit
    refr = np.full(n, float(int(p["refractory"])) * dt)
    if exp:
        # one unit of u (mV per step into v) = 1 / P21 pA = 1e-3 / P21 nA (NEST);
        # sPyNNaker: I += w * init (init = tau_s / dt * (1 - e^{-dt/tau_s})), then
        # V += (1 - e^{-dt/tau_m}) * R * I with R = tau_m / cm (lam = 1: dt / cm)
        w_nest = 1e-3 / _propagator_32(tau_syn, tau_m, c_pf, dt)
        init = tau_syn / dt * (1.0 - alpha)
        gain = np.where(lam < 1, (1.0 - lam) * tau_m / cm, dt / cm)  # R = tau_m / cm
        w_spin = 1.0 / (gain * init)
    else:
        w_nest = np.ones(n)
        w_spin = np.ones(n)
    return {
        "name": name, "n": n, "spiking": spiking,
        "celltype": "IF_curr_exp" if exp else "IF_curr_delta",
        "tau_m": tau_m, "cm": cm, "v_thresh": v_thresh, "v_reset": v_reset,
        "tau_refrac": refr, "i_offset": i_offset, "tau_syn": tau_syn, "bias_mv": bias_mv,
        "weight_scale_nest": w_nest, "weight_scale_spinnaker": w_spin,
    }


def _proj_coo(net: Any, proj: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pre, post, weight, total delay) arrays of one projection."""
    from nmcompiler.ir.connectivity import Dense, OneToOne, Sparse

    conn = proj.conn
    dl = None
    if isinstance(conn, Sparse):
        pre, post, w = conn.pre_index(), conn.indices.astype(np.int64), np.asarray(conn.weight)
        if conn.delays is not None:
            dl = np.asarray(conn.delays, dtype=np.int64)
    elif isinstance(conn, Dense):
        wd = np.asarray(conn.weight)
        post, pre = np.nonzero(wd)
        w = wd[post, pre]
        if conn.delays is not None:
            dl = np.asarray(conn.delays, dtype=np.int64)[post, pre]
    elif isinstance(conn, OneToOne):
        m = net.size_of(proj.pre)
        idx = np.arange(m, dtype=np.int64)
        w = np.broadcast_to(np.asarray(conn.weight), (m,)).copy()
        if conn.delays is not None:
            dl = np.broadcast_to(np.asarray(conn.delays, dtype=np.int64), (m,))
        keep = w != 0
        pre, post, w = idx[keep], idx[keep], w[keep]
        dl = None if dl is None else dl[keep]
    else:
        raise BackendError(
            f"projection '{proj.name}': connectivity {type(conn).__name__} is not expanded",
            obj=proj.name, rule="connectivity",
            hint="compile for spinnaker first (nmc compile -t spinnaker expands "
                 "convolutions and pooling into synapse lists)")
    w = np.real(np.asarray(w, dtype=np.complex128 if np.iscomplexobj(w) else np.float64))
    d = np.full(pre.shape, int(proj.delay), dtype=np.int64)
    if dl is not None:
        d = d + dl
    return pre.astype(np.int64), post.astype(np.int64), w.astype(np.float64), d


def nest_retiming(nodes: list[str], edges: list[tuple[str, str, int, int]]
                  ) -> tuple[dict[str, int], bool]:
    """Shifts for the NEST run: ``shift[Q] >= shift[P] + 1 + e_Q - d_min`` per edge.

    Bellman-Ford longest paths from 0 (Leiserson and Saxe, "Retiming synchronous
    circuitry", Algorithmica 6, 1991: retiming as difference constraints).

    Args:
        nodes: population and input names.
        edges: ``(pre, post, min IR delay, e_post)``.

    Returns:
        ``(shift, feasible)``; infeasible (a positive cycle: a recurrent loop of
        ``IF_curr_exp`` populations with delay 1) gives all shifts 0.
    """
    s = dict.fromkeys(nodes, 0)
    if not edges:
        return s, True
    for _ in range(len(nodes) + 1):
        changed = False
        for pre, post, dmin, e in edges:
            need = s[pre] + 1 + e - dmin
            if need > s[post]:
                s[post] = need
                changed = True
        if not changed:
            return s, True
    return dict.fromkeys(nodes, 0), False


# ------------------------------------------------------------------------ lowering
def lower_network(net: Any, partition: Any = None, placement: Any = None, *,
                  target: str = "", probes: Iterable[str] = ()) -> PyNNGraph:
    """Lower a quantised network (s16.15 raw units) and its mapping to a :class:`PyNNGraph`.

    Without a partition every population is one slice on no fixed core (``x = y = p =
    -1``). Raises :class:`BackendError` for what PyNN cannot express (module docstring).
    """
    q = quantization_info(net)
    frac = q["fraction_bits"]
    g = PyNNGraph()
    for name, pop in net.populations.items():
        g.populations.append(_population(name, pop, frac))
    celltype = {p["name"]: p["celltype"] for p in g.populations}
    # ---- slices: (population, logical core), in core order within each population
    bp: list[int] = []
    bc: list[int] = []
    bx: list[int] = []
    by: list[int] = []
    bpp: list[int] = []
    bn: list[int] = []
    coords = None if placement is None else np.asarray(placement.coords, dtype=np.int64)
    for i, p in enumerate(g.populations):
        if partition is None:
            cores = np.zeros(p["n"], dtype=np.int64) - 1
        else:
            cores = np.asarray(partition.cores_of(p["name"]), dtype=np.int64)
        uniq, inv, counts = np.unique(cores, return_inverse=True, return_counts=True)
        p["block"] = (inv.astype(np.int64) + len(bp))
        for c, k in zip(uniq.tolist(), counts.tolist(), strict=True):
            bp.append(i)
            bc.append(c)
            bn.append(k)
            if coords is not None and c >= 0:
                bx.append(int(coords[c, 0]))
                by.append(int(coords[c, 1]))
                bpp.append(int(coords[c, 4]) + 1)
            else:
                bx.append(-1)
                by.append(-1)
                bpp.append(-1)
    g.blocks = {k: np.asarray(v, dtype=np.int64) for k, v in
                (("pop", bp), ("core", bc), ("x", bx), ("y", by), ("p", bpp), ("n", bn))}
    # ---- projections
    unit = 2.0 ** -frac
    raw = []
    for proj in net.projections.values():
        pre, post, w, d = _proj_coo(net, proj)
        if d.size and d.min() < 1:
            raise BackendError(
                f"projection '{proj.name}' has delay {int(d.min())}; PyNN's smallest delay "
                "is one time step", obj=proj.name, rule="delay >= 1", need=int(d.min()),
                limit=1, hint="compile for spinnaker: the lower pass retimes zero delays")
        keep = w != 0
        raw.append((proj, pre[keep], post[keep], w[keep] * unit, d[keep]))
    nodes = list(net.inputs) + [p["name"] for p in g.populations]
    edges = [(pr.pre, pr.post, int(d.min()), int(celltype[pr.post] == "IF_curr_exp"))
             for pr, _, _, _, d in raw if d.size]
    shift, feasible = nest_retiming(nodes, edges)
    late = 0
    for proj, pre, post, w, d in raw:
        e = int(celltype[proj.post] == "IF_curr_exp")
        nd = d + shift[proj.post] - shift[proj.pre] - e
        late_here = int((nd < 1).sum())
        late += late_here
        g.projections.append({
            "name": proj.name, "pre": proj.pre, "post": proj.post,
            "pre_idx": pre, "post_idx": post, "weight": w, "delay": d,
            "nest_delay": np.maximum(nd, 1).astype(np.int64), "nest_late": late_here,
        })
    for p in g.populations:
        p["shift"] = int(shift[p["name"]])
    for name, inp in net.inputs.items():
        g.inputs[name] = {"n": int(inp.size), "shift": int(shift[name])}
    spiking = {p["name"]: p["spiking"] for p in g.populations}
    for o in net.outputs.values():
        g.outputs[o.name] = f"{o.source}/{'s' if spiking[o.source] else 'v'}"
    for key in [pk.key for pk in net.probes] + list(probes):
        pop, _, var = key.rpartition(".")
        if pop not in spiking or var not in ("spikes", "v"):
            raise BackendError(
                f"probe '{key}' cannot be recorded through PyNN", obj=key, rule="probe",
                hint="probe 'population.spikes' or 'population.v' (PyNN has no 'u')")
        g.probes[key] = f"{pop}/{'s' if var == 'spikes' else 'v'}"
    g.record(list(g.outputs.values()) + list(g.probes.values()))
    g.info = {
        "network": net.name, "target": target or q["target"], "dt_ms": DT_MS,
        "fraction_bits": frac,
        "units": f"mV = raw s16.15 units x 2**-{frac}; weights mV before weight_scale_*",
        "neurons_per_core": int(g.blocks["n"].max(initial=0)),
        "nest_retiming_feasible": bool(feasible), "nest_late_synapses": int(late),
    }
    return g


def lower_compiled(compiled: Any, *, probes: Iterable[str] = ()) -> PyNNGraph:
    """Lower a :class:`~nmcompiler.compiled.CompiledNetwork` for a spinnaker target."""
    fam = getattr(compiled.target, "backend", "")
    if fam != "spinnaker":
        raise BackendError(
            f"the PyNN backend lowers spinnaker targets; this network was compiled for "
            f"'{compiled.target.name}' ({fam})", obj=compiled.target.name,
            rule="target family", hint="compile with -t spinnaker (or spinnaker2)")
    g = lower_network(compiled.network, compiled.partition, compiled.placement,
                      target=compiled.target.name, probes=probes)
    g.info["machine"] = compiled.target.base_name
    g.info["n_cores"] = int(compiled.partition.n_cores)
    return g


def merge_graphs(graphs: Mapping[str, PyNNGraph]) -> PyNNGraph:
    """Several independent graphs as one, every name prefixed with ``"{tag}:"`` (the tests
    run many small networks in one NEST process)."""
    out = PyNNGraph()
    blocks: dict[str, list[np.ndarray]] = {k: [] for k in ("pop", "core", "x", "y", "p", "n")}
    late = 0
    feasible = True
    for tag, g in graphs.items():
        def pre(name: str, tag: str = tag) -> str:
            return f"{tag}:{name}"

        pop0, blk0 = len(out.populations), sum(len(b) for b in blocks["n"])
        for p in g.populations:
            out.populations.append({**p, "name": pre(p["name"]), "block": p["block"] + blk0})
        for k in blocks:
            blocks[k].append(g.blocks[k] + (pop0 if k == "pop" else 0))
        for c in g.projections:
            out.projections.append({**c, "name": pre(c["name"]), "pre": pre(c["pre"]),
                                    "post": pre(c["post"])})
        out.inputs.update({pre(k): v for k, v in g.inputs.items()})
        out.records += [pre(r) for r in g.records]
        out.outputs.update({pre(k): pre(v) for k, v in g.outputs.items()})
        out.probes.update({pre(k): pre(v) for k, v in g.probes.items()})
        late += int(g.info.get("nest_late_synapses", 0))
        feasible &= bool(g.info.get("nest_retiming_feasible", True))
        out.info.setdefault("dt_ms", g.info.get("dt_ms", DT_MS))
    out.blocks = {k: (np.concatenate(v) if v else np.zeros(0, dtype=np.int64))
                  for k, v in blocks.items()}
    out.info.update(network="merged", target="", nest_late_synapses=late,
                    nest_retiming_feasible=feasible,
                    neurons_per_core=int(out.blocks["n"].max(initial=0)))
    return out


# ------------------------------------------------------------------------ files
def write_graph(g: PyNNGraph, path: str | Path) -> Path:
    """Write ``g`` as ``network.npz`` (deterministic bytes): a JSON ``meta`` plus arrays
    ``pop{i}.{block, <CELL_PARAMS>}``, ``block.{pop, core, x, y, p, n}`` and
    ``proj{j}.{pre, post, weight, delay, nest_delay}``; ``pynn_runner.py`` reads it."""
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {
        "format": GRAPH_FORMAT,
        "populations": [{k: p[k] for k in ("name", "n", "celltype", "spiking", "shift")}
                        for p in g.populations],
        "projections": [{k: c[k] for k in ("name", "pre", "post", "nest_late")}
                        for c in g.projections],
        "inputs": [{"name": k, **v} for k, v in g.inputs.items()],
        "outputs": dict(g.outputs), "probes": dict(g.probes), "records": list(g.records),
        "info": g.info,
    }
    for i, p in enumerate(g.populations):
        arrays[f"pop{i}.block"] = np.asarray(p["block"], dtype=np.int64)
        for k in CELL_PARAMS:
            arrays[f"pop{i}.{k}"] = np.asarray(p[k], dtype=np.float64)
    for k in ("pop", "core", "x", "y", "p", "n"):
        arrays[f"block.{k}"] = np.asarray(g.blocks[k], dtype=np.int64)
    for j, c in enumerate(g.projections):
        arrays[f"proj{j}.pre"] = np.asarray(c["pre_idx"], dtype=np.int64)
        arrays[f"proj{j}.post"] = np.asarray(c["post_idx"], dtype=np.int64)
        arrays[f"proj{j}.weight"] = np.asarray(c["weight"], dtype=np.float64)
        arrays[f"proj{j}.delay"] = np.asarray(c["delay"], dtype=np.int64)
        arrays[f"proj{j}.nest_delay"] = np.asarray(c["nest_delay"], dtype=np.int64)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_npz(path, {"meta": np.array(json.dumps(meta, default=json_default))} | arrays)
    return path


def read_graph(path: str | Path) -> PyNNGraph:
    """Read a ``network.npz`` written by :func:`write_graph`."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        if meta.get("format") != GRAPH_FORMAT:
            raise BackendError(f"'{path}' is not a PyNN graph ({meta.get('format')!r})",
                               obj=str(path), rule="format", hint="deploy again")
        g = PyNNGraph(
            inputs={d["name"]: {"n": int(d["n"]), "shift": int(d["shift"])}
                    for d in meta["inputs"]},
            outputs=dict(meta["outputs"]), probes=dict(meta["probes"]),
            records=list(meta["records"]), info=dict(meta["info"]),
        )
        for i, p in enumerate(meta["populations"]):
            g.populations.append({**p, "block": np.array(z[f"pop{i}.block"])}
                                 | {k: np.array(z[f"pop{i}.{k}"]) for k in CELL_PARAMS})
        g.blocks = {k: np.array(z[f"block.{k}"]) for k in ("pop", "core", "x", "y", "p", "n")}
        for j, c in enumerate(meta["projections"]):
            g.projections.append({**c, "pre_idx": np.array(z[f"proj{j}.pre"]),
                                  "post_idx": np.array(z[f"proj{j}.post"]),
                                  "weight": np.array(z[f"proj{j}.weight"]),
                                  "delay": np.array(z[f"proj{j}.delay"]),
                                  "nest_delay": np.array(z[f"proj{j}.nest_delay"])})
    return g
