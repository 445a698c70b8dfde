"""Emulation beyond one process: a compiled network's chips (or its batch) spread over
Dask workers, with the single-process run's outputs, counters and energy
(docs/scale.md, "Emulation beyond one machine").

Two splits:

* ``split="chips"`` (model parallel): the chips of the placement are cut into contiguous
  groups of about equal neuron counts, one group per worker. A worker (a Dask actor, a
  :class:`~nmcompiler.backends.emulator.worker.PartRunner`) builds only its part: the
  state of its neurons and the synapses whose post neuron is on its chips
  (:class:`~nmcompiler.backends.emulator.part.PartEngine`). The run goes in blocks of
  ``D`` steps, ``D`` the smallest delay of a synapse from one worker's neurons to
  another's: within a block no spike from elsewhere is due, so the workers step
  independently; after it, each worker's spikes that other workers need (only sources
  with a synapse there) go to them bit-packed (``np.packbits``, plus the payloads of
  graded sources) and enter their delay rings before they are due. Delays > 1 and
  recurrence across chips need nothing more; a zero-delay projection across workers is
  refused (it would need an exchange inside a step).
* ``split="batch"`` (data parallel): every worker runs the whole network on a slice of a
  ``(T, B, n)`` input's samples.

Counters are counted where the synapses are and summed here (integers, exact in any
order); the costs are then made from the summed counters by the same
:class:`~nmcompiler.backends.emulator.costs.CostStream` the single-process run uses, so
time and energy are the same numbers. One limit: where the single-process run keeps no
per-step link hops (beyond ``Engine.COUNTER_BYTES``, or very long routes), its per-step
hop energy is a float sum over the firing sources, which here is added per worker
(equal up to summation order, about 1e-16 relative).
"""

from __future__ import annotations

import contextlib
import time
from types import SimpleNamespace
from typing import Any, Callable, Mapping

import numpy as np
import scipy.sparse as sp

from nmcompiler.backend import RunResult, dask_client
from nmcompiler.ir.errors import BackendError, ConfigError, InputError

from .costs import CostStream, CostTables
from .counting import core_trees
from .engine import Engine, EngineResult, check_inputs
from .part import slot_layout
from .worker import PartRunner

__all__ = ["run_distributed", "chip_groups", "SPLITS"]

#: how a run is spread over workers
SPLITS = ("chips", "batch")


def chip_groups(compiled: Any, parts: int) -> list[np.ndarray]:
    """``parts`` (at most the chips used) groups of contiguous chips with about equal
    neuron counts, as ``(n_cores,)`` bool masks of the logical cores of each group."""
    from . import neuron_cores

    net, target = compiled.network, compiled.target
    nc, n_cores = neuron_cores(net, compiled.partition)
    cpc = max(int(target.topology.cores_per_chip), 1)
    chip = np.asarray(compiled.placement.core, dtype=np.int64) // cpc
    chips, core_chip = np.unique(chip, return_inverse=True)
    weight = np.bincount(core_chip, weights=np.bincount(nc, minlength=n_cores),
                         minlength=chips.shape[0])
    k = max(1, min(int(parts), chips.shape[0]))
    cum = np.cumsum(weight)
    cut = np.searchsorted(cum, cum[-1] * np.arange(1, k) / k, side="left") + 1
    bounds = np.unique(np.clip(np.r_[0, cut, chips.shape[0]], 0, chips.shape[0]))
    return [(core_chip >= lo) & (core_chip < hi)
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]


def _gather(calls: list) -> list:
    """Results of actor calls (``ActorFuture``) or of plain calls (values)."""
    return [c.result() if hasattr(c, "result") else c for c in calls]


def run_distributed(
    compiled: Any,
    inputs: Mapping[str, np.ndarray] | None,
    steps: int | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    client: Any = None,
    split: str = "chips",
    probes: tuple[str, ...] = (),
    count: bool = True,
    progress: Callable[[int], None] | None = None,
    in_process: bool = False,
    connect_timeout_s: float = 20.0,
) -> RunResult:
    """Run a compiled network with its chips (``split="chips"``) or its batch
    (``split="batch"``) spread over Dask workers; the result is the single-process
    :meth:`EmulatorBackend.run`'s (docs/scale.md).

    Args:
        compiled: the :class:`~nmcompiler.compiled.CompiledNetwork`.
        inputs: ``(T, n)`` or ``(T, B, n)`` per input name.
        steps: steps to run (default: the inputs').
        probes: extra recordings ``POP.spikes`` / ``.v`` / ``.u``.
        count: count the work (counters, time and energy).
        progress: called as ``progress(t)`` for every step, after each block.
        workers: parts (and local worker processes); default: the cluster's workers.
        scheduler: address of a running Dask scheduler; default: a ``LocalCluster``.
        client: an existing ``distributed.Client`` (then nothing is started).
        split: ``"chips"`` or ``"batch"``.
        in_process: run the parts as plain objects in this process (no Dask; for tests
            and for measuring the exchange without a cluster).
        connect_timeout_s: how long to try reaching ``scheduler``.
    """
    if split not in SPLITS:
        raise ConfigError(f"split '{split}' is not a way to spread a run", obj=split,
                          rule="split", hint="choose from " + ", ".join(SPLITS))
    if workers is not None and workers < 1:
        raise ConfigError(f"workers = {workers}", obj="workers", rule=">= 1",
                          hint="give at least one worker")
    from . import EmulatorBackend, neuron_cores

    net, target = compiled.network, compiled.target
    rules = getattr(target, "family", None)
    family = (rules.emulator_arithmetic if rules is not None else None) or \
        getattr(target, "backend", None) or "emulator"
    arrays, steps, batch, batched, max_in, int_in = check_inputs(net, inputs, steps, family)
    for key in probes:
        tgt_, _, var = key.rpartition(".")
        if tgt_ not in net.populations or var not in ("spikes", "v", "u"):
            raise InputError(f"probe '{key}' names no population variable", obj=key,
                             rule="known probe", hint="use 'population.spikes', '.v' or '.u'")
    nc, n_cores = neuron_cores(net, compiled.partition)
    physical = np.asarray(compiled.placement.core)
    kw = dict(family=family, formats=getattr(target, "formats", None), neuron_core=nc,
              n_cores=n_cores, target=target, physical=physical,
              time_stepped=bool(getattr(getattr(target, "capabilities", None),
                                        "time_stepped", True)))
    with contextlib.ExitStack() as stack:
        cl = None if in_process else stack.enter_context(
            dask_client(scheduler, workers, client, connect_timeout_s,
                        what="a distributed emulation"))
        addrs = [] if cl is None else sorted(cl.scheduler_info()["workers"])
        n_par = workers or max(len(addrs), 1)
        if split == "chips":
            masks = chip_groups(compiled, n_par)
            slices = [(0, batch)] * len(masks)
        else:
            k = max(1, min(n_par, batch))
            edges = np.linspace(0, batch, k + 1).round().astype(int)
            slices = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]
            masks = [np.ones(n_cores, dtype=bool)] * k
        if cl is None:
            runners: list[Any] = [PartRunner(net, own_cores=m, **kw) for m in masks]
        else:
            [net_f] = cl.scatter([net], broadcast=True)
            futs = [cl.submit(PartRunner, net_f, own_cores=m, actor=True, pure=False,
                              workers=[addrs[i % len(addrs)]], **kw)
                    for i, m in enumerate(masks)]
            runners = [f.result() for f in futs]
            del net_f  # released: the parts keep only their own state
        return _drive(compiled, runners, masks, slices, split, arrays, steps, batch, batched,
                      max_in, int_in, probes, count, progress, n_cores, physical, family,
                      EmulatorBackend.name)


def _routes(net: Any, n_cores: int, nc: np.ndarray, masks: list[np.ndarray],
            sums: list[dict]) -> tuple[list[dict], list[dict]]:
    """Per part: the global sources to send to each other part and to take from it."""
    lay = slot_layout(net)
    part_of_core = np.full(n_cores, -1, dtype=np.int64)
    for w, m in enumerate(masks):
        part_of_core[m] = w
    part_of_slot = part_of_core[np.asarray(nc, dtype=np.int64)[lay.slot_global]]
    exports: list[dict] = [{} for _ in masks]
    imports: list[dict] = [{} for _ in masks]
    for r, s in enumerate(sums):
        ids = np.asarray(s["needed"], dtype=np.int64)
        owner = part_of_slot[ids]
        for w in np.unique(owner):
            sel = ids[owner == w]
            imports[r][int(w)] = sel
            exports[int(w)][r] = sel
    return exports, imports


def _keep_link(steps: int, n_links: int, sums: list[dict], n_neurons: int, *,
               multicast: bool = False) -> bool:
    """:class:`~nmcompiler.backends.emulator.counting.Counting`'s choice of keeping the
    per-step link hops, from the parts' figures: within ``Engine.COUNTER_BYTES``, and
    on unicast routes not where the source-link matrix would be much larger than the
    counter matrix (``Engine._source_links``: its size is rebuilt here from the parts;
    multicast link hops are spikes per core x the cores' trees, never that matrix)."""
    keep = steps * n_links * 8 <= Engine.COUNTER_BYTES
    if not (keep and n_links) or multicast:
        return keep
    est = sum(s["hops_estimate"] for s in sums)
    nz = [s["nnz_parts"] for s in sums]
    noc = np.unique(np.concatenate([p["noc_sources"] for p in nz]))
    nnz = sum(p["entries"] + p["inputs"] + p["local_sources"] for p in nz) + \
        noc.shape[0] + n_neurons
    return not est > max(nnz, 100_000)


def _drive(compiled: Any, runners: list, masks: list, slices: list, split: str,
           arrays: dict, steps: int, batch: int, batched: bool, max_in: float,
           int_in: bool, probes: tuple, count: bool, progress: Any, n_cores: int,
           physical: np.ndarray, family: str, backend_name: str) -> RunResult:
    """Lay out the exchange, step the parts block by block, join their results."""
    from . import neuron_cores, run_result

    net, target = compiled.network, compiled.target

    def call(r: Any, m: str, *a: Any, **k: Any) -> Any:
        return getattr(r, m)(*a, **k)

    sums = _gather([call(r, "summary") for r in runners])
    integer = all(s["integer"] for s in sums)
    row_abs_max = max(s["row_abs_max"] for s in sums)
    unit = min(s["weight_unit"] for s in sums)  # the whole network's (inf: no weights)
    weight_unit = 1.0 if unit == float("inf") else unit
    if split == "chips":
        nc, _ = neuron_cores(net, compiled.partition)
        exports, imports = _routes(net, n_cores, nc, masks, sums)
        cross = [s["cross_delay"] for s in sums if s["cross_delay"] is not None]
    else:
        exports = imports = [{} for _ in runners]
        cross = []
    block = min((d for d, _ in cross), default=steps)
    if block < 1:
        name = min(cross)[1]
        raise BackendError(
            f"projection '{name}' has zero-delay synapses between chips on different "
            "workers; a distributed run exchanges spikes between steps",
            obj=name, rule="delay >= 1 across workers", need=1, limit=0,
            hint="run it on fewer workers, or give the projection a delay")
    # in a batch split every part has every chip: one part's figures stand for all
    fig = sums if split == "chips" else sums[:1]
    n_links = 0
    tree_e = None
    tables = None
    if target is not None:
        # the single-process engine's cost tables: with the compiled routes, whose
        # multicast trees it charges (else the trees over all the parts' core pairs)
        tables = CostTables(target, physical, n_cores,
                            routes=getattr(compiled, "routes", None))
        n_links = tables.n_links
        tree_e = core_trees(tables, lambda: np.divmod(
            np.unique(np.concatenate([np.asarray(s["pairs"]) for s in fig])), n_cores))
    _gather([call(r, "configure", integer=integer, row_abs_max=row_abs_max,
                  weight_unit=weight_unit, exports=exports[w], imports=imports[w],
                  tree_energy=tree_e)
             for w, r in enumerate(runners)])
    n_neur = sum(s["n_neurons"] for s in fig)
    keep_link = _keep_link(steps, n_links, fig, n_neur, multicast=tree_e is not None)
    hop_events = bool(count and tables is not None and n_links and not keep_link)
    if hop_events:
        _exact_hop_energy(runners, call, n_cores, masks,
                          "batch" if tree_e is not None else split)
    _gather([call(r, "start", arrays, steps, b0, b1, probes=tuple(probes), count=count,
                  max_in=max_in, int_in=int_in, batch_full=batch)
             for r, (b0, b1) in zip(runners, slices, strict=True)])
    incoming: list[list] = [[] for _ in runners]
    t0 = time.perf_counter()
    exchanged = 0
    t = 0
    while t < steps:
        n = min(block, steps - t)
        outs = _gather([call(r, "advance", t, n, incoming[w]) for w, r in enumerate(runners)])
        incoming = [[] for _ in runners]
        for w, out in enumerate(outs):
            for r, (packed, pay) in out.items():
                incoming[r].append((w, t, n, packed, pay))
                exchanged += packed.nbytes + (0 if pay is None else pay.nbytes)
        t += n
        if progress is not None:
            for k in range(t - n, t):
                progress(k)
    t_loop = time.perf_counter() - t0
    parts = _gather([call(r, "finish", incoming[w], keep_link=keep_link,
                          hop_events=hop_events) for w, r in enumerate(runners)])
    if hop_events:  # the parts' own sums are replaced by the single-process one
        for p in parts:
            p["hop_e"] = np.zeros(steps)
        parts[0]["hop_e"] = _hop_energy(net, parts, steps)
    wall = time.perf_counter() - t0
    outputs, probes_out = _join_records(net, parts, slices, split, steps, batch)
    counters, costs, per_step = {}, None, {}
    if count:
        counters, costs, keep_core = _join_counters(parts, slices, split, steps, batch,
                                                    n_cores, tables, keep_link, sums,
                                                    compiled)
        per_step = {"counters_per_step": keep_core, "link_hops_per_step": keep_link}
    res = EngineResult(outputs=outputs, probes=probes_out, counters=counters, steps=steps,
                       batched=batched, wall_s=wall,
                       synaptic_events=int(sum(p["events"] for p in parts)),
                       spikes=int(sum(p["spikes"] for p in parts)), costs=costs,
                       per_population=_join_populations(parts) if count else {}, **per_step)
    shim = SimpleNamespace(family=family, n_cores=n_cores, costs=tables,
                           _mats32=True if parts[0]["float32"] else None,
                           costs_of=lambda cnt: None)
    info = {"target": target.name, "distributed": {
        "split": split, "parts": len(runners), "block_steps": int(block),
        "exchanged_bytes": int(exchanged), "stepping_s": t_loop,
        "gather_s": wall - t_loop,
        "exchanged_bytes_per_step": exchanged / steps if steps else 0.0,
        "part_neurons": [int(s["n_neurons"]) for s in sums],
        "part_synapses": [int(s["n_synapses"]) for s in sums],
        "part_state_bytes": [int(s["state_bytes"]) for s in sums],
        "part_step_wall_s": [float(p["wall_s"]) for p in parts]}}
    return run_result(shim, res, backend_name, info)  # type: ignore[arg-type]


def _join_populations(parts: list) -> dict[str, dict[str, int]]:
    """The run's spikes, synaptic operations and messages per population and input: the
    sums of the parts' (integers, exact), in the single-process order."""
    out: dict[str, dict[str, int]] = {}
    for p in parts:
        for name, figs in p["per_population"].items():
            acc = out.setdefault(name, dict.fromkeys(figs, 0))
            for k, v in figs.items():
                acc[k] += int(v)
    return out


def _exact_hop_energy(runners: list, call: Callable, n_cores: int,
                      masks: list, split: str) -> None:
    """Send every part the terms of its own neurons' hop energy that other parts counted
    (only where the run keeps no per-step link hops: then the per-step routing energy is
    the single-process engine's float sum over the firing sources). With ``split`` =
    "batch" (and on multicast targets, where a spike's energy is its own core's tree)
    every part has all its terms."""
    if split == "batch":
        _gather([call(r, "set_hop_energy", []) for r in runners])
        return
    ents = _gather([call(r, "hop_entries") for r in runners])
    part_of_core = np.full(n_cores, -1, dtype=np.int64)
    for w, m in enumerate(masks):
        part_of_core[m] = w
    recv: list[list] = [[] for _ in runners]
    for src, key, pe in ents:
        # the source's core is the pair key's first half
        owner = part_of_core[key // n_cores]
        for w in np.unique(owner):
            sel = owner == w
            recv[int(w)].append((src[sel], key[sel], pe[sel]))
    _gather([call(r, "set_hop_energy", recv[w]) for w, r in enumerate(runners)])


def _hop_energy(net: Any, parts: list, steps: int) -> np.ndarray:
    """Per step the hop energy of the firing neurons, added in the single-process order
    (by zero-delay level, then sample, then slot: the engine's log)."""
    lay = slot_layout(net)
    ev = [p["hop_events"] for p in parts]
    j, b, slot, v = (np.concatenate([e[k] for e in ev]) for k in range(4))
    level = np.searchsorted(np.asarray(lay.level_bounds), slot, side="right") - 1
    order = np.lexsort((slot, b, level, j))
    return np.bincount(j[order], weights=v[order], minlength=steps)


def _join_records(net: Any, parts: list, slices: list, split: str, steps: int, batch: int
                  ) -> tuple[dict, dict]:
    """The outputs and probes of the whole network from the parts' columns."""
    outputs: dict[str, np.ndarray] = {}
    probes: dict[str, np.ndarray] = {}
    src_of = {o.name: o.source for o in net.outputs.values()}
    for kind, store in (("outputs", outputs), ("probes", probes)):
        for key, arr in parts[0][kind].items():
            pop = src_of[key] if kind == "outputs" else key.rsplit(".", 1)[0]
            full = np.zeros((steps, batch, net.size_of(pop)), dtype=arr.dtype)
            for p, (b0, b1) in zip(parts, slices, strict=True):
                if split == "chips":
                    full[:, :, p["index"][pop]] = p[kind][key]
                else:
                    full[:, b0:b1] = p[kind][key]
            store[key] = full
    return outputs, probes


def _join_counters(parts: list, slices: list, split: str, steps: int, batch: int,
                   n_cores: int, tables: CostTables | None, keep_link: bool, sums: list,
                   compiled: Any) -> tuple[dict, dict | None, bool]:
    """Counters and costs of the whole run from the parts' (exact integer sums)."""
    c = n_cores
    if split == "chips":
        counts = sum(p["counts"] for p in parts)
        noc = np.maximum.reduce([p["noc"] for p in parts])
    else:
        counts = np.concatenate([p["counts"] for p in parts], axis=1)
        noc = np.concatenate([p["noc"] for p in parts], axis=1)
    hop_e = sum(p["hop_e"] for p in parts)
    sl = {k: slice(i * c, (i + 1) * c) for i, k in enumerate(Engine.COUNT_BINS)}
    part = {k: counts[:, :, s] for k, s in sl.items()}
    time_stepped = bool(getattr(getattr(compiled.target, "capabilities", None),
                                "time_stepped", True))
    if time_stepped:
        from . import neuron_cores

        nc, _ = neuron_cores(compiled.network, compiled.partition)
        core_neurons = np.bincount(nc, minlength=c).astype(np.float64)
        part["updates"] = np.broadcast_to(core_neurons, (steps, batch, c))
    else:
        part["updates"] = part["sops"]
    keep_core = steps * batch * 6 * c * 8 <= Engine.COUNTER_BYTES
    costs = None
    if tables is not None:
        pairs = np.unique(np.concatenate([p["pairs"] for p in parts]))
        pair_tot = np.zeros(pairs.shape[0])
        for p in parts:
            np.add.at(pair_tot, np.searchsorted(pairs, p["pairs"]), p["pair_totals"])
        lh = totals = None
        if tables.core_link is not None:
            # multicast: spikes per core x the cores' trees (counting.Counting and
            # counting.link_totals), from the summed (exact) spike counters
            spikes = part["spikes"].sum(axis=1)
            if keep_link:
                lh = np.asarray((sp.csr_matrix(spikes) @ tables.core_link).todense())
            else:
                totals = np.asarray(tables.core_link.T @ spikes.sum(axis=0)).reshape(1, -1)
        else:
            if not keep_link:
                tables.attach_pairs(*np.divmod(pairs, c))
            if keep_link and tables.n_links:
                lh = sum(p["link_hops"] for p in parts)
        stream = CostStream(tables, steps, batch, c, keep_links=keep_link)
        stream.add(0, part, noc, hop_e, lh)
        costs = stream.finish(pair_tot, link_totals=totals)
    order = ("sops", "updates") + tuple(k for k in Engine.COUNT_BINS if k != "sops")
    if keep_core:
        cnt = {k: np.ascontiguousarray(part[k]) for k in order}
    else:
        cnt = {k: part[k].sum(axis=0, keepdims=True) for k in order}
    return cnt, costs, keep_core
