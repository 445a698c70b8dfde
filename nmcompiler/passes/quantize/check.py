"""Checks of a quantised network: overflow headroom and behaviour against the float
network (``ir.simulate`` on a sample)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nmcompiler.ir.connectivity import (
    Dense,
    OneToOne,
    Sparse,
)
from nmcompiler.ir.network import Network, Projection
from nmcompiler.ir.simulate import simulate

from .formats import Fmt


# =========================================================================== checks
def _row_abs_max(net: Network, p: Projection) -> float:
    conn = p.conn
    if isinstance(conn, Dense):
        return float(np.max(np.abs(conn.weight).sum(axis=1))) if conn.weight.size else 0.0
    if isinstance(conn, Sparse):
        s = np.bincount(conn.indices, weights=np.abs(conn.weight), minlength=conn.n_post)
        return float(s.max()) if s.size else 0.0
    if isinstance(conn, OneToOne):
        return float(np.max(np.abs(conn.weight)))
    w = np.abs(conn.weight)
    return float(w.reshape(w.shape[0], -1).sum(axis=1).max())


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
            worst += _row_abs_max(qnet, p) * pay
        a = float(np.max(np.abs(np.asarray(pop.model.alpha_u))))
        bound = worst / (1 - a) if a < 1 else math.inf
        out[pname] = {"max_input_per_step": worst, "u_bound": bound,
                      "may_overflow": bool(bound > fmt.umax if fmt.current else
                                           worst > fmt.vmax)}
    return out


def _n_synapses(net: Network) -> int:
    return sum(p.conn.n_synapses(net.shape_of(p.pre), net.shape_of(p.post))
               for p in net.projections.values())


def behaviour_check(net: Network, qnet: Network, meta_pops: dict, seed: int, steps: int,
               rate: float, max_neurons: int, max_syn: int) -> dict[str, Any]:
    """Simulate ``net`` and its quantised ``qnet`` on random inputs and compare spikes."""
    if steps <= 0:
        return {"skipped": "check_steps = 0"}
    n_syn = _n_synapses(net)
    if net.n_neurons > max_neurons or n_syn > max_syn:
        return {"skipped": f"network too large for the check ({net.n_neurons} neurons, "
                           f"{n_syn} synapses; limits {max_neurons}, {max_syn})"}
    rng = np.random.default_rng([seed, 1])
    inputs = {name: (rng.random((steps, inp.size)) < rate).astype(np.float64)
              for name, inp in net.inputs.items()}
    keys = tuple(f"{n}.spikes" if p.model.spiking else f"{n}.v"
                 for n, p in net.populations.items())
    rf = simulate(net, inputs, steps, probes=keys, check=False)
    rq = simulate(qnet, inputs, steps, probes=keys, check=False)
    out: dict[str, Any] = {"steps": steps, "input_rate": rate, "seed": seed,
                           "populations": {}}
    agree_all = []
    for key in keys:
        pop, var = key.rsplit(".", 1)
        a, b = rf.probes[key], rq.probes[key]
        if var == "spikes":
            eq = a == b
            diff_t = np.flatnonzero(~eq.reshape(steps, -1).all(axis=1))
            out["populations"][pop] = {
                "agreement": float(eq.mean()), "spikes_float": int(np.sum(a)),
                "spikes_quantized": int(np.sum(b)),
                "first_difference": int(diff_t[0]) if diff_t.size else None,
            }
            agree_all.append(float(eq.mean()))
        else:
            k = meta_pops[pop]["scale"]
            ref = float(np.max(np.abs(a.real))) or 1.0
            out["populations"][pop] = {
                "voltage_rel_error": float(np.max(np.abs(b.real / k - a.real)) / ref)}
    out["spike_agreement"] = min(agree_all) if agree_all else None
    return out
