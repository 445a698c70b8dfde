"""NIR export: ``ir.Network`` -> ``nir.NIRGraph`` (the inverse of
:func:`nmcompiler.frontends.nir.from_nir`; docs/nir.md#export-and-round-trips).

Every population becomes one neuron node whose parameters invert the import formulas of
:mod:`nmcompiler.frontends.nir` for the given ``dt`` and options, with ``r`` (and ``w_in``)
chosen so the input gain is 1 and the weights can be written as they are (as snnTorch's
exporter does):

* decay: ``tau = dt / (1 - lam)`` (Euler) or ``-dt / ln(lam)`` (exact); ``lam = 1`` gives
  an ``IF`` (spiking) or ``I`` (non-spiking) node, ``lam = 0`` a ``Threshold`` node;
* gain 1: ``r = tau / dt`` (Euler), ``1 / (1 - lam)`` (exact), ``1`` (unit); ``1 / dt``
  for ``IF`` / ``I``; the same for ``w_in`` of a current stage;
* bias: ``v_leak = bias / (1 - lam)``; a population without ``v_leak`` (IF, I) carries
  its bias in the ``Affine`` / ``Conv2d`` bias of its first incoming projection;
* a non-spiking readout with ``lam = 0`` (what the importer builds for
  ``Affine -> Output``) is written back as its linear nodes feeding the ``Output``;
* a projection delay beyond what the importer adds (back edges, ``synapse_delay``,
  ``current_lag``) becomes a ``Delay`` node of ``extra * dt``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from nmcompiler import ir
from nmcompiler.frontends import nir_linear as lin
from nmcompiler.frontends.nir.graph import back_edges
from nmcompiler.frontends.nir.options import (
    InputScale,
    Integration,
    NirOptions,
    Preset,
    ResetMode,
    require_nir,
    resolve_options,
)
from nmcompiler.ir.errors import UsageError

__all__ = ["to_nir", "write_nir", "networks_equivalent"]


def _nir_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """NIR shape of an IR shape: (C, 1, L) is written 1-D as (C, L) (Conv1d's layout)."""
    shape = tuple(int(x) for x in shape)
    return (shape[0], shape[2]) if len(shape) == 3 and shape[1] == 1 else shape


def _err(obj: str, msg: str, hint: str) -> UsageError:
    return UsageError(f"cannot export to NIR: {msg}", obj=obj, rule="NIR export", hint=hint)


def _bcast(v: Any, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)).copy()


def _is_readout(net: ir.Network, pop: ir.Population) -> bool:
    p = ir.models.canonical(pop.model)
    if p["spiking"] or np.any(np.asarray(p["lam"]) != 0) or np.any(np.asarray(p["alpha_u"])):
        return False
    if not any(o.source == pop.name for o in net.outputs.values()):
        return False
    return not any(pr.pre == pop.name for pr in net.projections.values())


def _is_bias_source(net: ir.Network, pop: ir.Population) -> bool:
    m = pop.model
    return (isinstance(m, ir.IF) and pop.size == 1 and m.fire_at_threshold
            and float(np.asarray(m.bias)) == 1.0 and float(np.asarray(m.theta)) == 1.0
            and not any(pr.post == pop.name for pr in net.projections.values()))


def _inv_decay(lam: np.ndarray, opts: NirOptions, obj: str, what: str) -> np.ndarray:
    if np.any(lam <= 0) and opts.integration is Integration.EXACT:
        raise _err(obj, f"{what} 0 has no time constant under exact integration",
                   "export with integration='euler'")
    if np.any(lam >= 1):
        raise _err(obj, f"{what} 1 has an infinite time constant", "use an IF population")
    if opts.integration is Integration.EULER:
        return opts.dt / (1.0 - lam)
    return -opts.dt / np.log(lam)


def _written(tau: np.ndarray, opts: NirOptions) -> np.ndarray:
    """A time constant as the options write it (Norse 1.1: ``dt * tau``)."""
    return tau * opts.dt if opts.tau_times_dt else tau


#: input scales under which an IF / I node's gain is ``r`` (or 1), not ``dt * r``
_UNIT_IF = (InputScale.UNIT, InputScale.DECAYED, InputScale.ONE)


def _unit_gain(scale: InputScale, tau: np.ndarray, lam: np.ndarray, dt: float) -> np.ndarray:
    if scale is InputScale.EULER:
        return tau / dt
    if scale is InputScale.EXACT:
        return 1.0 / (1.0 - lam)
    if scale is InputScale.DECAYED:
        return 1.0 / lam
    if scale is InputScale.ONE:  # not read back; written as Rockpool's to_nir writes it
        return tau * lam / dt
    return np.ones_like(tau)


def _neuron_node(net: ir.Network, pop: ir.Population, opts: NirOptions,
                 self_proj: set[str]) -> tuple[Any, np.ndarray | None]:
    """(nir node, bias that must go into an incoming linear node or None)."""
    nir = require_nir()
    name, n, shape = pop.name, pop.size, _nir_shape(pop.shape)
    m = pop.model
    if isinstance(m, ir.RF):
        raise _err(name, f"population '{name}' is resonate-and-fire", "NIR has no such node")
    p = ir.models.canonical(m)
    if p["noise"]:
        raise _err(name, f"population '{name}' has stochastic firing", "NIR is deterministic")
    lam, alpha, bias = (_bcast(p[k], n) for k in ("lam", "alpha_u", "bias"))

    def rs(a: np.ndarray) -> np.ndarray:
        return a.reshape(shape)

    if p["spiking"]:
        theta, v_reset = _bcast(p["theta"], n), _bcast(p["v_reset"], n)
        if p["fire_at_threshold"] != opts.fire_at_threshold or p["graded"] != opts.graded:
            raise _err(name, f"population '{name}' fires with fire_at_threshold="
                       f"{p['fire_at_threshold']}, graded={p['graded']}, but the options say "
                       f"{opts.fire_at_threshold}, {opts.graded}", "export with a matching "
                       "preset")
        reset = p["reset"]
        delayed_sub = reset is ir.Reset.NONE and name in self_proj and opts.reset_delay
        want = ir.Reset.HARD if opts.reset is ResetMode.ZERO else ir.Reset.SOFT
        if not delayed_sub and reset is not want and not (
                np.all(lam == 0) and not np.any(alpha) and reset is ir.Reset.NONE):
            raise _err(name, f"population '{name}' resets {reset.value}, but the options say "
                       f"reset={opts.reset.value}", "export with a matching reset option")
        refr_ok = p["refractory"] == 0 or (p["refractory"] == 1 and opts.reset_delay
                                           and opts.reset is ResetMode.ZERO and np.any(alpha))
        if not refr_ok:
            raise _err(name, f"population '{name}' has a refractory period", "NIR has none")
        if np.all(lam == 0) and not np.any(alpha) and reset is ir.Reset.NONE:
            if np.any(bias):
                return nir.Threshold(threshold=rs(theta)), bias
            return nir.Threshold(threshold=rs(theta)), None
        if np.all(lam == 1) and not np.any(alpha):
            r = np.ones(n) if opts.input_scale in _UNIT_IF else np.full(n, 1 / opts.dt)
            node = nir.IF(r=rs(r), v_threshold=rs(theta), v_reset=rs(v_reset))
            return node, (bias if np.any(bias) else None)
        tau = _inv_decay(lam, opts, name, "a decay of")
        r = _unit_gain(opts.input_scale, tau, lam, opts.dt)
        v_leak = bias / (1.0 - lam)
        if np.any(alpha):
            tau_s = _inv_decay(alpha, opts, name, "a current decay of")
            w_in = _unit_gain(opts.syn_input_scale, tau_s, alpha, opts.dt)
            return nir.CubaLIF(tau_syn=rs(_written(tau_s, opts)),
                               tau_mem=rs(_written(tau, opts)), r=rs(r), v_leak=rs(v_leak),
                               v_threshold=rs(theta), v_reset=rs(v_reset), w_in=rs(w_in)), None
        return nir.LIF(tau=rs(_written(tau, opts)), r=rs(r), v_leak=rs(v_leak),
                       v_threshold=rs(theta), v_reset=rs(v_reset)), None
    if np.all(lam == 1) and not np.any(alpha):
        r = np.ones(n) if opts.input_scale in _UNIT_IF else np.full(n, 1 / opts.dt)
        return nir.I(r=rs(r)), (bias if np.any(bias) else None)
    tau = _inv_decay(lam, opts, name, "a decay of")
    r = _unit_gain(opts.input_scale, tau, lam, opts.dt)
    v_leak = bias / (1.0 - lam)
    if np.any(alpha):
        tau_s = _inv_decay(alpha, opts, name, "a current decay of")
        w_in = _unit_gain(opts.syn_input_scale, tau_s, alpha, opts.dt)
        return nir.CubaLI(tau_syn=rs(_written(tau_s, opts)),
                          tau_mem=rs(_written(tau, opts)), r=rs(r), v_leak=rs(v_leak),
                          w_in=rs(w_in)), None
    return nir.LI(tau=rs(_written(tau, opts)), r=rs(r), v_leak=rs(v_leak)), None


# ---------------------------------------------------------------- linear chains, one per kind
Chain = list[tuple[str, Any]]


def _dense_chain(nir: Any, pr: ir.Projection, bias: np.ndarray | None, pre_shape: tuple,
                 post_shape: tuple, network: ir.Network) -> Chain:
    conn = pr.conn
    chain: Chain = []
    w = conn.weight if isinstance(conn, ir.Dense) else conn.to_dense()
    if len(pre_shape) > 1:
        chain.append((pr.name + ".flatten", nir.Flatten(
            input_type={"input": np.array(pre_shape)}, start_dim=0, end_dim=-1)))
    if len(post_shape) > 1:
        raise _err(pr.name, f"dense projection '{pr.name}' feeds a grid population",
                   "NIR has no reshape node")
    w = np.asarray(w, dtype=np.float64)
    chain.append((pr.name, nir.Affine(weight=w, bias=bias) if bias is not None
                  else nir.Linear(weight=w)))
    return chain


def _one_to_one_chain(nir: Any, pr: ir.Projection, bias: np.ndarray | None, pre_shape: tuple,
                      post_shape: tuple, network: ir.Network) -> Chain:
    wv = _bcast(pr.conn.weight, network.size_of(pr.post))
    if bias is not None:
        if len(post_shape) > 1:
            raise _err(pr.name, f"population '{pr.post}' needs a bias in NIR", "")
        return [(pr.name, nir.Affine(weight=np.diag(wv), bias=bias))]
    if not np.all(wv == 1.0):
        return [(pr.name, nir.Scale(scale=wv.reshape(post_shape)))]
    return []


def _conv_chain(nir: Any, pr: ir.Projection, bias: np.ndarray | None, pre_shape: tuple,
                post_shape: tuple, network: ir.Network) -> Chain:
    conn = pr.conn
    b = np.zeros(conn.weight.shape[0])
    if bias is not None:
        per = bias.reshape(post_shape)
        b = per[:, 0, 0].copy()
        if not np.array_equal(per, np.broadcast_to(b[:, None, None], per.shape)):
            raise _err(pr.name, f"population '{pr.post}' has a bias that varies inside "
                       "a channel", "NIR Conv2d biases are per channel")
    if len(pre_shape) == 2:
        ok = (conn.weight.shape[2] == 1 and lin.pair(conn.stride)[0] == 1
              and lin.pair(conn.padding)[0] == 0 and lin.pair(conn.dilation)[0] == 1)
        if not ok:
            raise _err(pr.name, f"convolution '{pr.name}' over a one-row grid is not "
                       "a Conv1d", "give the populations a height above 1")
        return [(pr.name, nir.Conv1d(
            input_shape=int(pre_shape[1]), weight=np.asarray(conn.weight)[:, :, 0, :],
            stride=lin.pair(conn.stride)[1], padding=lin.pair(conn.padding)[1],
            dilation=lin.pair(conn.dilation)[1], groups=int(conn.groups), bias=b))]
    return [(pr.name, nir.Conv2d(
        input_shape=tuple(int(x) for x in pre_shape[1:]),
        weight=np.asarray(conn.weight, dtype=np.float64),
        stride=lin.pair(conn.stride), padding=lin.pair(conn.padding),
        dilation=lin.pair(conn.dilation), groups=int(conn.groups), bias=b))]


def _pool_chain(nir: Any, pr: ir.Projection, bias: np.ndarray | None, pre_shape: tuple,
                post_shape: tuple, network: ir.Network) -> Chain:
    conn = pr.conn
    if bias is not None:
        raise _err(pr.name, f"population '{pr.post}' needs a bias but is fed by "
                   "pooling first", "add a dense or conv projection into it")
    cls = nir.SumPool2d if isinstance(conn, ir.SumPool2d) else nir.AvgPool2d
    k = lin.pair(conn.kernel)
    s = lin.pair(conn.stride if conn.stride is not None else conn.kernel)
    return [(pr.name, cls(kernel_size=np.array(k), stride=np.array(s),
                          padding=np.array(lin.pair(conn.padding))))]


#: the NIR nodes of each connectivity kind (bias folded in where NIR allows it)
CHAINS: dict[type, Callable[..., Chain]] = {
    ir.Dense: _dense_chain, ir.Sparse: _dense_chain, ir.OneToOne: _one_to_one_chain,
    ir.Conv2d: _conv_chain, ir.SumPool2d: _pool_chain, ir.AvgPool2d: _pool_chain,
}


# ---------------------------------------------------------------- the export
class _Export:
    """The state of one export: nodes and edges so far, and what later steps need."""

    def __init__(self, network: ir.Network, opts: NirOptions) -> None:
        self.nir = require_nir()
        self.network, self.opts = network, opts
        self.nodes: dict[str, Any] = {}
        self.edges: list[tuple[str, str]] = []
        self.self_proj = {pr.post for pr in network.projections.values()
                          if pr.pre == pr.post and isinstance(pr.conn, ir.OneToOne)
                          and opts.reset_delay}
        self.readouts = {p.name for p in network.populations.values()
                         if _is_readout(network, p)}
        self.sources = {p.name for p in network.populations.values()
                        if _is_bias_source(network, p)}
        self.carry: dict[str, np.ndarray] = {}
        self.used_bias: set[str] = set()
        self.out_names: dict[str, str] = {}
        self.paths: list[tuple[ir.Projection, list[tuple[str, str]], str, tuple]] = []

    def neurons(self) -> None:
        """Input and neuron nodes; biases that must ride on an incoming linear node."""
        net = self.network
        for inp in net.inputs.values():
            self.nodes[inp.name] = self.nir.Input(
                input_type={"input": np.array(_nir_shape(inp.shape))})
        for pop in net.populations.values():
            if pop.name in self.sources:
                continue
            if pop.name in self.readouts:
                self.carry[pop.name] = _bcast(pop.model.bias, pop.size)
                continue
            node, bias = _neuron_node(net, pop, self.opts, self.self_proj)
            self.nodes[pop.name] = node
            if bias is not None:
                self.carry[pop.name] = bias
        # Affine-bias sources of current-based populations: fold into incoming bias
        for pr in net.projections.values():
            if pr.pre in self.sources:
                w = np.asarray(pr.conn.weight, dtype=np.float64)[:, 0]
                self.carry[pr.post] = self.carry.get(pr.post, 0) + w

    def outputs(self) -> None:
        """Output nodes (a NIR node name is unique)."""
        for o in self.network.outputs.values():
            nm = o.name if o.name not in self.nodes else f"{o.name}.output"
            self.out_names[o.name] = nm
            shape = _nir_shape(self.network.populations[o.source].shape)
            out_node = self.nir.Output(output_type={"output": np.array(shape)})
            if nm != o.name:  # the importer names the output o.name again (docs/nir.md)
                out_node.metadata = {"nmcompiler_output_name": o.name}
            self.nodes[nm] = out_node

    def projection(self, pr: ir.Projection, out_of: dict[str, list[str]]) -> None:
        """The linear nodes of one projection and the edges to its targets."""
        net = self.network
        if getattr(pr.conn, "delays", None) is not None:
            raise _err(pr.name, f"projection '{pr.name}' has per-synapse delays",
                       "make its delay uniform")
        targets = [self.out_names[o] for o in out_of.get(pr.post, [])] \
            if pr.post in self.readouts else [pr.post]
        bias = None
        if pr.post in self.carry and pr.post not in self.used_bias:
            bias = self.carry[pr.post]
            self.used_bias.add(pr.post)
        post_shape = _nir_shape(net.shape_of(pr.post))
        chain = CHAINS[type(pr.conn)](self.nir, pr, bias, _nir_shape(net.shape_of(pr.pre)),
                                      post_shape, net)
        names = [pr.pre] + [c[0] for c in chain]
        for nm, node in chain:
            if nm in self.nodes:
                raise _err(nm, f"node name '{nm}' is used twice", "rename the projection")
            self.nodes[nm] = node
        hops = list(zip(names[:-1], names[1:], strict=True))
        self.edges.extend(hops)
        for t in targets:
            self.edges.append((names[-1], t))
            self.paths.append((pr, hops + [(names[-1], t)], t, tuple(post_shape)))

    def delays(self) -> None:
        """Delays the importer will not add by itself become Delay nodes."""
        net, opts = self.network, self.opts
        back = back_edges(list(self.nodes), self.edges, list(net.inputs))
        for pr, hops, t, post_shape in self.paths:
            nback = sum(1 for h in hops if h in back)
            lag = 1 if (opts.current_lag and t in net.populations
                        and np.any(ir.models.canonical(net.populations[t].model)["alpha_u"])
                        ) else 0
            expect = max(opts.synapse_delay, nback) + lag
            extra = int(pr.delay) - expect
            if extra < 0:
                raise _err(pr.name, f"projection '{pr.name}' has delay {pr.delay}, but NIR "
                           f"import with these options gives it at least {expect}",
                           "retime the network or change synapse_delay / current_lag")
            if extra:
                last = hops[-1]
                dname = f"{pr.name}.delay"
                self.nodes[dname] = self.nir.Delay(delay=np.full(post_shape, extra * opts.dt))
                i = self.edges.index(last)
                self.edges[i:i + 1] = [(last[0], dname), (dname, last[1])]

    def graph(self) -> Any:
        """Run every step; the ``nir.NIRGraph``."""
        net = self.network
        self.neurons()
        out_of: dict[str, list[str]] = {}
        for o in net.outputs.values():
            out_of.setdefault(o.source, []).append(o.name)
        self.outputs()
        for pr in net.projections.values():
            if pr.pre in self.sources or (pr.pre == pr.post and pr.post in self.self_proj):
                continue
            self.projection(pr, out_of)
        for pname, b in self.carry.items():
            if pname not in self.used_bias and np.any(b):
                raise _err(pname, f"population '{pname}' has a bias but no projection to "
                           "carry it", "NIR IF / I nodes have no bias")
        for o in net.outputs.values():
            if o.source not in self.readouts:
                self.edges.append((o.source, self.out_names[o.name]))
        self.delays()
        graph = self.nir.NIRGraph(nodes=self.nodes, edges=self.edges, type_check=False)
        graph.metadata = {}
        return graph


def to_nir(network: ir.Network, *, preset: Preset | str | None = None,
           options: NirOptions | None = None, dt: float | None = None,
           **overrides: Any) -> Any:
    """Write ``network`` as a ``nir.NIRGraph`` under the given time step and options.

    Raises :class:`nmcompiler.ir.errors.UsageError` naming the population or projection
    where the network uses something NIR (or the chosen options) cannot say: refractory
    periods, noise, resonate-and-fire, per-synapse delays, a reset mode other than the
    options'.
    """
    require_nir()
    opts = resolve_options(preset, options, dt=dt, **overrides)
    ir.verify(network)
    return _Export(network, opts).graph()


def write_nir(network: ir.Network, path: str | os.PathLike, **kwargs: Any) -> Path:
    """Write ``network`` to a NIR (HDF5) file readable by ``nir.read``; returns the path."""
    nir = require_nir()
    graph = to_nir(network, **kwargs)
    path = Path(path)
    nir.write(path, graph)
    return path


def _effective(net: ir.Network, pr: ir.Projection) -> np.ndarray:
    n_pre, n_post = net.size_of(pr.pre), net.size_of(pr.post)
    c = pr.conn
    if isinstance(c, ir.Dense):
        return np.asarray(c.weight, dtype=np.float64)
    if isinstance(c, ir.Sparse):
        return c.to_dense()
    if isinstance(c, ir.OneToOne):
        return np.diag(_bcast(c.weight, n_post))
    in3, out3 = net.shape_of(pr.pre), net.shape_of(pr.post)
    kind = "conv" if isinstance(c, ir.Conv2d) else "pool"
    op = lin.Op(kind, n_pre, n_post, c, tuple(in3), tuple(out3))
    return np.asarray(lin.matrix(op).toarray())


def _model_diffs(k: str, pa: ir.Population, pb: ir.Population, rtol: float, atol: float
                 ) -> list[str]:
    """Differences between the neuron models of two populations of one size."""
    diffs = []
    ca, cb = ir.models.canonical(pa.model), ir.models.canonical(pb.model)
    for name in ca:
        va, vb = ca[name], cb[name]
        if name in ir.models.ARRAY_PARAMS:
            xa, xb = _bcast(va, pa.size), _bcast(vb, pa.size)
            if not np.allclose(xa, xb, rtol=rtol, atol=atol):
                diffs.append(f"population '{k}': {name} differs (max |diff| "
                             f"{np.max(np.abs(xa - xb)):.3g})")
        elif (name != "graded_max" or ca["graded"]) and va != vb:
            diffs.append(f"population '{k}': {name} {va!r} vs {vb!r}")
    return diffs


def networks_equivalent(a: ir.Network, b: ir.Network, *, rtol: float = 1e-12,
                        atol: float = 1e-12) -> list[str]:
    """Differences between two networks (empty list: equal), the round-trip criterion.

    Equal means: the same inputs (names, sizes) and populations (names, sizes, model
    kind, every parameter of the general update broadcast per neuron and equal to
    ``rtol`` / ``atol``), the same outputs (name -> source), and for every
    (pre, post, delay) the same summed effective weight matrix (so a ``Scale`` that comes
    back as ``OneToOne`` with an array, or a pool that composed into a convolution,
    compare equal when they compute the same map).
    """
    diffs: list[str] = []
    for kind, da, db in (("input", a.inputs, b.inputs), ("population", a.populations,
                                                         b.populations)):
        if set(da) != set(db):
            diffs.append(f"{kind}s differ: {sorted(set(da) ^ set(db))}")
            continue
        for k in da:
            if da[k].size != db[k].size:
                diffs.append(f"{kind} '{k}' has size {da[k].size} vs {db[k].size}")
    if diffs:
        return diffs
    for k, pa in a.populations.items():
        diffs.extend(_model_diffs(k, pa, b.populations[k], rtol, atol))

    def grouped(net: ir.Network) -> dict[tuple, np.ndarray]:
        out: dict[tuple, np.ndarray] = {}
        for pr in net.projections.values():
            key = (pr.pre, pr.post, int(pr.delay))
            out[key] = out.get(key, 0) + _effective(net, pr)
        return out

    ga, gb = grouped(a), grouped(b)
    if set(ga) != set(gb):
        diffs.append(f"projections differ: {sorted(set(ga) ^ set(gb))}")
    else:
        for k in ga:
            if not np.allclose(ga[k], gb[k], rtol=rtol, atol=atol):
                diffs.append(f"projection {k}: weights differ (max |diff| "
                             f"{np.max(np.abs(ga[k] - gb[k])):.3g})")
    oa = {o.name: o.source for o in a.outputs.values()}
    ob = {o.name: o.source for o in b.outputs.values()}
    if sorted(oa.values()) != sorted(ob.values()):
        diffs.append(f"outputs differ: {oa} vs {ob}")
    return diffs



