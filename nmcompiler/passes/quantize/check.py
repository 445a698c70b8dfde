"""Checks of a quantised network: overflow headroom and behaviour against the float
network (``ir.simulate`` on a sample)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nmcompiler.ir.network import Network
from nmcompiler.ir.simulate import simulate

from ...helpers import helper_populations
from .formats import Fmt
from .weights import row_abs_max


# =========================================================================== checks
def overflow_report(qnet: Network, fmt: Fmt) -> dict[str, Any]:
    """Worst-case input per step (every presynaptic neuron at its largest payload) and
    the resulting bound on |u| against the current range (a conservative bound)."""
    out = {}
    for pname, pop in qnet.populations.items():
        worst = 0.0
        for p in qnet.projections.values():
            if p.post != pname:
                continue
            src = qnet.populations.get(p.pre)
            pay = int(src.model.graded_max) if src is not None and src.model.graded else 1
            worst += row_abs_max(p.conn) * pay
        a = float(np.max(np.abs(np.asarray(pop.model.alpha_u))))
        bound = worst / (1 - a) if a < 1 else math.inf
        out[pname] = {"max_input_per_step": worst, "u_bound": bound,
                      "may_overflow": bool(bound > fmt.umax if fmt.current else
                                           worst > fmt.vmax)}
    return out


def _n_synapses(net: Network) -> int:
    return sum(p.conn.n_synapses(net.shape_of(p.pre), net.shape_of(p.post))
               for p in net.projections.values())


#: the check's inputs are bounded: steps x samples x neurons entries recorded per run
CHECK_MAX_ENTRIES = 50_000_000


def spike_figures(ref: np.ndarray, got: np.ndarray) -> dict[str, Any]:
    """The agreement of compiled spikes ``got`` with float spikes ``ref`` (same shape,
    time first), every figure named for what it counts (docs/passes.md#fidelity):

    * ``entries_agree``: share of (step, [sample,] neuron) entries that are equal (a
      silent entry in both agrees, so sparse activity inflates it);
    * ``float_spikes_kept``: share of the float spikes the compiled network also emits at
      the same step and neuron (None without float spikes; ``kept_spikes`` the count);
    * ``spurious_spikes``: compiled spikes where the float network has none (a count), and
      ``spurious_per_float_spike`` that count over the float spikes (None without);
    * ``first_difference``: the first step with an unequal entry (None: none).
    """
    a, b = np.asarray(ref), np.asarray(got)
    eq = a == b
    fa, fb = a != 0, b != 0
    n_float = int(np.count_nonzero(fa))
    kept = int(np.count_nonzero(fa & fb))
    spurious = int(np.count_nonzero(fb & ~fa))
    steps = a.shape[0] if a.ndim else 0
    diff_t = np.flatnonzero(~eq.reshape(steps, -1).all(axis=1)) if steps else np.zeros(0)
    return {
        "entries_agree": float(eq.mean()) if eq.size else 1.0,
        "float_spikes": n_float,
        "compiled_spikes": int(np.count_nonzero(fb)),
        "kept_spikes": kept,
        "float_spikes_kept": kept / n_float if n_float else None,
        "spurious_spikes": spurious,
        "spurious_per_float_spike": spurious / n_float if n_float else None,
        "first_difference": int(diff_t[0]) if diff_t.size else None,
    }


def _pooled(parts: list[dict[str, Any]], entries: list[int]) -> dict[str, Any]:
    """:func:`spike_figures` of several populations taken together."""
    n_float = sum(p["float_spikes"] for p in parts)
    kept = sum(p["kept_spikes"] for p in parts)
    spurious = sum(p["spurious_spikes"] for p in parts)
    total = sum(entries)
    agree = sum(p["entries_agree"] * n for p, n in zip(parts, entries, strict=True))
    return {
        "entries_agree": agree / total if total else 1.0,
        "float_spikes": n_float,
        "compiled_spikes": sum(p["compiled_spikes"] for p in parts),
        "kept_spikes": kept,
        "float_spikes_kept": kept / n_float if n_float else None,
        "spurious_spikes": spurious,
        "spurious_per_float_spike": spurious / n_float if n_float else None,
    }


def _pad(x: np.ndarray, extra: int) -> np.ndarray:
    """``x`` (time first) followed by ``extra`` steps of zeros."""
    x = np.asarray(x, dtype=np.float64)
    if extra <= 0:
        return x
    return np.concatenate([x, np.zeros((extra,) + x.shape[1:])], axis=0)


def behaviour_check(net: Network, qnet: Network, meta_pops: dict, seed: int, steps: int,
                    rate: float, max_neurons: int, max_syn: int, *,
                    reference: Network | None = None,
                    lower_report: dict[str, Any] | None = None,
                    inputs: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Simulate the float reference and the quantised ``qnet`` on the same input and
    compare their spikes per population (docs/passes.md#fidelity).

    The reference is ``reference``, the network before lowering, when given (so the
    figures include the lowering's own error, retiming above all), else ``net``, the
    lowered float network. ``qnet`` runs ``max lag`` steps longer on a zero-padded input,
    and each population's spikes are read its retiming lag later (``lower_report``), so
    step ``t`` of both is the response to input step ``t``. The input is ``inputs`` (the
    user's own, ``(T, n)`` or ``(T, B, n)`` per input) or ``steps`` steps of seeded
    Bernoulli spikes of probability ``rate``. Helper populations
    (:mod:`nmcompiler.helpers`) are left out; populations the lowering split or renamed
    have no counterpart and are left out too (their outputs are compared).
    """
    ref_net = reference if reference is not None else net
    if inputs is None and steps <= 0:
        return {"skipped": "check_steps = 0"}
    n_syn = _n_synapses(net)
    if net.n_neurons > max_neurons or n_syn > max_syn:
        return {"skipped": f"network too large for the check ({net.n_neurons} neurons, "
                           f"{n_syn} synapses; limits {max_neurons}, {max_syn})"}
    rep = lower_report or {}
    ret = rep.get("retiming") or {}
    lags = {str(k): int(v) for k, v in (ret.get("lags") or {}).items()} \
        if reference is not None else {}
    inexact = dict.fromkeys(ret.get("inexact_populations") or [], "starts early")
    inexact.update(ret.get("inexact_reasons") or {})
    if inputs is not None:
        source = "the user's input"
        t_len = {int(np.shape(v)[0]) for v in inputs.values()}
        steps = min(t_len) if t_len else 0
        if steps < 1:
            return {"skipped": "the check input has no steps"}
        batch = max((int(np.shape(v)[1]) for v in inputs.values() if np.ndim(v) == 3),
                    default=1)
        entries = steps * batch * (ref_net.n_neurons + qnet.n_neurons)
        if entries > CHECK_MAX_ENTRIES:
            return {"skipped": f"the check input is too large ({steps} steps x {batch} "
                               f"samples x {ref_net.n_neurons + qnet.n_neurons} neurons; "
                               f"limit {CHECK_MAX_ENTRIES:,} entries)"}
        base = {k: np.asarray(v, dtype=np.float64)[:steps] for k, v in inputs.items()}
    else:
        source = f"seeded Bernoulli spikes, rate {rate}"
        rng = np.random.default_rng([seed, 1])
        base = {name: (rng.random((steps, inp.size)) < rate).astype(np.float64)
                for name, inp in ref_net.inputs.items()}
    helpers = set(helper_populations(ref_net)) | set(helper_populations(qnet, rep))
    pops = [n for n, p in ref_net.populations.items()
            if n not in helpers and n in qnet.populations
            and qnet.populations[n].size == p.size]
    out_src = {o.name: o.source for o in ref_net.outputs.values()}
    q_out = {o.name: o.source for o in qnet.outputs.values()}
    shifts = {k: int(v) for k, v in (rep.get("output_shift") or {}).items()} \
        if reference is not None else {}
    for name, src in out_src.items():  # an output whose population was renamed
        if src not in pops and q_out.get(name) in qnet.populations and \
                qnet.populations[q_out[name]].size == ref_net.populations[src].size:
            pops.append(src)
            lags.setdefault(src, shifts.get(name, 0))
    pad = max([lags.get(n, 0) for n in pops], default=0)
    q_name = {src: q_out.get(name, src) for name, src in out_src.items()
              if src not in qnet.populations}

    def key(n: str, nets: Network) -> str:
        return f"{n}.spikes" if nets.populations[n].model.spiking else f"{n}.v"

    rkeys = tuple(key(n, ref_net) for n in pops)
    qkeys = tuple(key(q_name.get(n, n), qnet) for n in pops)
    rf = simulate(ref_net, base, steps, probes=rkeys, check=False)
    rq = simulate(qnet, {k: _pad(v, pad) for k, v in base.items()}, steps + pad,
                  probes=qkeys, check=False)
    out: dict[str, Any] = {"steps": steps, "input": source, "seed": seed,
                           "reference": "the network before lowering" if reference is not None
                           else "the lowered float network",
                           "aligned_by_lag": bool(pad), "populations": {}}
    if inputs is None:
        out["input_rate"] = rate
    elif any(np.ndim(v) == 3 for v in base.values()):
        out["batch"] = batch
    entries_of: dict[str, int] = {}
    for n, rk, qk in zip(pops, rkeys, qkeys, strict=True):
        lag = lags.get(n, 0)
        a = rf.probes[rk]
        b = rq.probes[qk][lag:lag + steps]
        entry: dict[str, Any] = {"lag": lag}
        if rk.endswith(".spikes"):
            entry.update(spike_figures(a, b))
            entries_of[n] = int(a.size)
        else:
            k = (meta_pops.get(q_name.get(n, n)) or {}).get("scale", 1.0)
            ref = float(np.max(np.abs(a.real))) if a.size else 0.0
            entry["voltage_rel_error"] = float(
                np.max(np.abs(b.real / k - a.real)) / (ref or 1.0)) if a.size else 0.0
        if n in inexact:
            entry["lowering_inexact"] = inexact[n]
        out["populations"][n] = entry
    spiking_outputs = [s for s in dict.fromkeys(out_src.values()) if s in entries_of]
    scope = spiking_outputs or list(entries_of)
    out["outputs"] = {name: src for name, src in out_src.items() if src in out["populations"]}
    out["summary_scope"] = "outputs" if spiking_outputs else "all populations"
    if scope:
        out["summary"] = _pooled([out["populations"][n] for n in scope],
                                 [entries_of[n] for n in scope])
    out["inexact_populations"] = sorted(
        n for n, e in out["populations"].items()
        if "lowering_inexact" in e or e.get("entries_agree", 1.0) < 1.0)
    return out
