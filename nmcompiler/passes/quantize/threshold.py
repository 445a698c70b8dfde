"""Scale choice, threshold and bias quantisation, and the emulation of the model's
spike comparison on the chip's (``>`` or ``>=``)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from nmcompiler.ir.models import Reset

from .formats import EVAL_SAMPLE, NO_GRID, Fmt
from .neurons import as_ints
from .weights import (
    SIGN_SPLIT,
    Extremes,
    quant_groups,
    quant_weights,
    sign_split_gains,
    top_magnitude,
)

# =========================================================================== scale choice
#: a magnitude split (two synapse groups) must cut the weight error by this factor
SPLIT_GAIN = 0.95
#: weights per projection the plan search looks at (a seeded sample above this)
PLAN_SAMPLE = 20_000
#: incoming synapses above which a population gets the cheap search (no aligned scales)
BIG_POPULATION = 1_000_000


def choose_scale(
    theta: np.ndarray | None, bias: np.ndarray, vreset: np.ndarray,
    inc: list[tuple[str, np.ndarray, tuple[int, int, int]]], fmt: Fmt,
    sample: np.random.Generator, cmp_err: Any = None, *,
    extremes: dict[str, Extremes], groupable: dict[str, bool] | None = None,
    worst_input: float = 0.0, alpha_u: float = 0.0, split: bool = True,
) -> tuple[float, dict, dict[str, int]]:
    """The scale from float to chip units for one population, the bound of each limit,
    and per incoming projection its magnitude split (0: one synapse group).

    Candidates (docs/passes.md#scale-choice): the largest scale every format allows, the
    12 powers of two below it, the scale that makes a shared threshold exact, and per
    projection the scales that put its largest weight exactly on the top mantissa of an
    exponent (its finest grid). Each is scored by a behavioural proxy, the error of the
    input a neuron integrates relative to its threshold: per projection the summed squared
    weight error per postsynaptic neuron (at the best of one group or a magnitude split
    into two groups ``s`` exponents apart, where the target has a weight exponent range),
    plus the squared relative threshold error (with the comparison's) and bias error.
    Ties go to a power of two, then the larger scale.
    """
    groupable = groupable or {}
    bounds: dict[str, float] = {}
    floor_bounds: list[float] = []  # the weights' bounds at the lowest exponent
    if theta is not None:
        tmax = float(np.max(theta))
        bounds["threshold"] = min(fmt.th_mant_max * 2.0**fmt.th_shift, fmt.vmax - 1) / tmax
    bmax = float(np.max(np.abs(bias))) if bias.size else 0.0
    if bmax > 0:
        bounds["bias"] = fmt.b_mant_max * 2.0**fmt.b_exp_max / bmax
    rmax = float(np.max(np.abs(vreset))) if vreset.size else 0.0
    if rmax > 0:
        bounds["v_reset"] = fmt.vmax / rmax
    evals = []
    n_syn = 0
    for name, w, (lo, hi, step) in inc:
        ext = extremes[name]
        amax = ext.amax
        top = top_magnitude(lo, hi)
        n_syn += w.size
        if amax > 0:
            bounds[f"weights of '{name}'"] = top * 2.0 ** (fmt.s0 + fmt.emax) / amax
            floor_bounds.append(top * 2.0 ** (fmt.s0 + fmt.emin) / amax)
        ws = w
        if w.size > EVAL_SAMPLE:
            idx = sample.choice(w.size, EVAL_SAMPLE, replace=False)
            ws = np.concatenate([w[idx], [w[ext.iabs]]])
        evals.append((name, ws, (lo, hi, step), amax, top))
    room = math.inf
    if fmt.exp_span > 0 and worst_input > 0:
        # state headroom: one step's largest input on top of the threshold and bias stays
        # in v's range (and u's, over its decay), never below the one-exponent scale
        ref = (float(np.max(theta)) if theta is not None else 0.0) + bmax
        room = fmt.vmax / (ref + worst_input)
        if fmt.current and alpha_u < 1:
            room = min(room, fmt.umax / (worst_input / (1 - alpha_u)))
        bounds["state headroom"] = max(room, min(floor_bounds, default=room))
    if not bounds:
        return 1.0, {"bound_by": None, "candidates": 1}, {}
    kmax = min(bounds.values())
    bound_by = min(bounds, key=bounds.get)  # type: ignore[arg-type]
    top_pow = math.floor(math.log2(kmax))
    cands = [kmax] + [2.0 ** (top_pow - j) for j in range(12)]
    if theta is not None and np.all(theta == theta.reshape(-1)[0]):
        t0 = float(theta.reshape(-1)[0])
        unit = 2.0**fmt.th_shift
        k_exact = math.floor(kmax * t0 / unit) * unit / t0
        if k_exact > 0:
            cands.append(k_exact)
    if n_syn <= BIG_POPULATION and fmt.exp_span > 0:
        for _, _, _, amax, top in evals:  # largest weight on a top mantissa
            if amax <= 0:
                continue
            for e in range(fmt.emax, fmt.emin - 1, -1):
                kk = top * 2.0 ** (fmt.s0 + e) / amax
                if kk <= kmax and kk >= kmax / 2**12:
                    cands.append(kk)
    cands = sorted(set(cands), reverse=True)
    # the cheap proxy above BIG_POPULATION incoming synapses: one group per projection
    splits = list(range(1, min(fmt.exp_span, 7) + 1)) \
        if fmt.chain == 0 and split and n_syn <= BIG_POPULATION else []
    if splits and sign_split_gains(fmt):
        splits += [SIGN_SPLIT + s for s in [0, *splits]]
    plan_ws = {}
    for name, ws, _, _, _ in evals:
        if ws.size > PLAN_SAMPLE:
            ws = ws[np.linspace(0, ws.size - 1, PLAN_SAMPLE).astype(np.int64)]
        plan_ws[name] = ws
    n_post = max(len(bias), 1)
    ref_t = float(np.mean(theta)) if theta is not None else None
    nrm = {name: float(np.sum(ws * ws)) for name, ws, _, _, _ in evals}

    fmt0 = dataclasses.replace(fmt, chain=0)  # projections that cannot be chained

    def weight_err(k: float, name: str, ws: np.ndarray, rng: tuple, amax: float,
                   split: int) -> float:
        f = fmt if groupable.get(name) else fmt0
        q, _ = quant_groups(ws, k, f, rng, amax, split, name, "", "mixed")
        d = q / k - ws
        return float(np.sum(d * d))

    def threshold_err(k: float) -> float:
        if theta is None:
            return 0.0
        tq = q_theta(theta, k, fmt)
        return float(np.max(np.abs(tq / k - theta) / theta))

    def cost(k: float) -> tuple[float, dict[str, int]]:
        e = 0.0
        qs = []
        plans: dict[str, int] = {}
        for name, ws, rng, amax, _ in evals:
            best, plan = weight_err(k, name, ws, rng, amax, 0), 0
            if groupable.get(name) and best > 0 and splits:
                pw = plan_ws[name]
                base = best if pw is ws else weight_err(k, name, pw, rng, amax, 0)
                errs = [(weight_err(k, name, pw, rng, amax, s), s) for s in splits]
                err, s = min(errs)
                if err < SPLIT_GAIN * base:
                    plan, best = s, best * err / base
            plans[name] = plan
            if ref_t is not None:  # input error per neuron relative to the threshold
                e += best / n_post / ref_t**2
            elif nrm[name] > 0:
                e += best / nrm[name]
            if cmp_err is not None:
                qs.append(quant_weights(ws, k, fmt, rng)[2])
        ref = 0.0
        if theta is not None:
            tq = q_theta(theta, k, fmt)
            if cmp_err is not None:  # the comparison's error counts as threshold error
                tq = tq + cmp_err(k, tq, qs)
            e += float(np.max(np.abs(tq / k - theta) / theta)) ** 2
            ref = float(np.max(theta))
        if bmax > 0:
            bq, _, _ = q_bias(bias, k, fmt)
            e += (float(np.max(np.abs(bq / k - bias))) / max(ref, bmax)) ** 2
        return e, plans

    scored = [cost(k) for k in cands]
    costs = [c for c, _ in scored]
    # the threshold first: its error scales every input (a gain error), so only scales
    # whose threshold is within twice the best one's error (or 2**-9) compete
    t_err = [threshold_err(k) for k in cands]
    tol = max(2 * min(t_err), 2.0**-9)
    fair = [i for i in range(len(cands)) if t_err[i] <= tol]
    best = min(costs[i] for i in fair)
    ok = [i for i in fair if costs[i] <= best * (1 + 1e-9) + 1e-300]
    pows = [i for i in ok if math.log2(cands[i]).is_integer()] or ok
    # equal scores: the largest scale whose worst one-step input fits v (and u), else the
    # smallest one (the most headroom)
    inside = [j for j in pows if cands[j] <= room * (1 + 1e-12)]
    i = max(inside, key=lambda j: cands[j]) if inside else min(pows, key=lambda j: cands[j])
    k = cands[i]
    how = {"bound_by": bound_by, "max_scale": kmax, "candidates": len(cands),
           "proxy_error": costs[i]}
    return float(k), how, {n: s for n, s in scored[i][1].items() if s}


def q_theta(theta: np.ndarray, k: float, fmt: Fmt) -> np.ndarray:
    """Threshold ``theta`` scaled by ``k`` on the chip's threshold grid."""
    unit = 2.0**fmt.th_shift
    m = np.clip(np.rint(k * theta / unit), 1, fmt.th_mant_max)
    return m * unit


def _state_grid(values: list[np.ndarray]) -> int | None:
    """The gcd ``G`` of the amounts by which an integer voltage can change (weights x
    integer payloads, bias, reset voltage, soft-reset threshold), so ``v`` stays in ``G Z``
    (it starts at 0); None when one of them is not an integer."""
    g = 0
    for x in values:
        a = np.abs(np.asarray(x, dtype=np.float64).reshape(-1))
        if a.size == 0:
            continue
        if not np.all(a == np.rint(a)) or float(a.max()) >= 2.0**53:
            return None
        g = math.gcd(g, int(np.gcd.reduce(a.astype(np.int64))))
    return g if g > 0 else NO_GRID


def chip_compare(t: np.ndarray, fmt: Fmt, grid: int | None, movable: bool
             ) -> tuple[np.ndarray, np.ndarray]:
    """Realise a threshold ``t`` of the comparison the chip does *not* have.

    ``t`` (integer state units) is the threshold in the model's comparison; returns the
    chip's threshold ``tc`` (representable: ``m << threshold_shift``, ``1 <= m <=
    2**threshold_bits - 1``) and the signed error ``err`` in state LSBs (0: exact; > 0 the
    chip fires ``err`` LSBs later, < 0 earlier). On integer state ``v > t`` is ``v >= t + 1``
    and ``v >= t`` is ``v > t - 1``; when ``v`` moves on a grid ``G`` (:func:`_state_grid`)
    every threshold of an interval is equivalent, and the pass takes the one closest to
    ``t -/+ 1`` there. ``movable`` is False for soft reset (the chip subtracts the threshold)
    and graded spikes (the payload divides by it): those keep ``t``.
    """
    t = np.rint(t).astype(np.int64)
    unit = 1 << fmt.th_shift
    if fmt.compare == ">=":  # model: v > t
        ideal = t + 1
        if grid:
            f = (t // grid) * grid
            lo, hi = f + 1, f + grid
        else:
            lo = hi = ideal
    else:  # chip ">", model: v >= t
        ideal = t - 1
        if grid:
            c = -((-t) // grid) * grid
            lo, hi = c - grid, c - 1
        else:
            lo = hi = ideal
    if movable:
        def down(x: np.ndarray) -> np.ndarray:
            return np.clip(x // unit, 1, fmt.th_mant_max) * unit

        def up(x: np.ndarray) -> np.ndarray:
            return np.clip(-((-x) // unit), 1, fmt.th_mant_max) * unit

        cands = np.stack([down(ideal), up(ideal), up(lo), down(hi)])
        dist = np.maximum(lo - cands, 0) + np.maximum(cands - hi, 0)
        best = dist == dist.min(axis=0)
        key = np.where(best, np.abs(cands - ideal), np.iinfo(np.int64).max)
        tc = np.take_along_axis(cands, np.argmin(key, axis=0)[None], axis=0)[0]
    else:
        tc = t
    return tc, tc - np.clip(tc, lo, hi)


def q_bias(bias: np.ndarray, k: float, fmt: Fmt) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bias scaled by ``k`` as (value, mantissa, exponent) in the chip's bias format."""
    b = k * np.asarray(bias, dtype=np.float64)
    if fmt.b_mant_max == 0:
        z = np.zeros_like(b)
        return z, z, z
    with np.errstate(divide="ignore"):
        need = np.ceil(np.log2(np.maximum(np.abs(b), 1e-300) / fmt.b_mant_max))
    exp = np.clip(need, 0, fmt.b_exp_max)
    mant = np.rint(b / 2.0**exp)
    over = np.abs(mant) > fmt.b_mant_max  # rounding up crossed the range: next exponent
    exp = np.where(over & (exp < fmt.b_exp_max), exp + 1, exp)
    mant = np.clip(np.rint(b / 2.0**exp), -fmt.b_mant_max - 1, fmt.b_mant_max)
    return mant * 2.0**exp, mant, exp


def grid_of(k: float, tq: np.ndarray, wqs: list[np.ndarray], *, on_grid: bool,
             bias: np.ndarray, vreset: np.ndarray, reset: Any, fmt: Fmt) -> int | None:
    """The voltage grid of a population at scale ``k`` (None: no leak-free integer grid)."""
    if not on_grid:
        return None
    vals = [*wqs, q_bias(bias, k, fmt)[0]]
    if reset is Reset.HARD:
        vals.append(np.rint(k * vreset))
    elif reset is Reset.SOFT:
        vals.append(tq)
    return _state_grid(vals)


def comparison_error(k: float, tq: np.ndarray, wqs: list[np.ndarray], *, grid_at: Any, fmt: Fmt,
             movable: bool) -> np.ndarray:
    """The comparison's error in state LSBs at scale ``k`` (for the scale's cost)."""
    return chip_compare(tq, fmt, grid_at(k, tq, wqs), movable)[1]


def comparison_report(model_ge: bool, chip: str | None, tq: np.ndarray, tc: np.ndarray,
                       err: np.ndarray, k: float, grid: int | None, movable: bool,
                       reset: Any, unit: int = 1) -> dict[str, Any]:
    """The report's ``comparison`` entry of a population whose spike test differs from
    its chip's (``unit``: state LSBs per threshold mantissa step)."""
    shift = tc - tq
    lo, hi = int(shift.min()), int(shift.max())
    exact = bool(np.all(err == 0))
    if not movable:
        why = "soft reset subtracts the threshold" if reset is Reset.SOFT else \
            "graded payloads divide by the threshold"
        action = f"kept ({why}: moving it would change every spike)"
    elif lo == hi == 0:
        action = "kept (equivalent on the voltage grid)" if exact else \
            "kept (the nearest representable threshold)"
    else:
        verb = "raised" if hi > 0 and lo >= 0 else "lowered" if hi <= 0 else "moved"
        span = f"{abs(lo)}" if lo == hi else f"{min(abs(lo), abs(hi))}..{max(abs(lo), abs(hi))}"
        action = f"{verb} by {span} LSB"
        if unit > 1:
            action += f" (the threshold mantissa's step is {unit} LSB)"
    out: dict[str, Any] = {
        "model": ">=" if model_ge else ">", "chip": chip, "action": action,
        "threshold_model_units": as_ints(tq), "threshold_chip": as_ints(tc),
        "shift_lsb": [lo, hi], "grid": grid, "exact": exact,
        "error_lsb": int(np.max(np.abs(err))) if err.size else 0,
    }
    if not exact:
        e = int(err[np.argmax(np.abs(err))])
        out["effect"] = (f"the chip fires {abs(e)} state LSB ({abs(e) / k:.3g} in float units) "
                         f"{'later' if e > 0 else 'earlier'} than the model at worst")
    return out
