"""The *quantize* pass: put a network into the target's integer number formats.

The result is the same network in **integer state units** (weights, thresholds, biases,
reset voltages are integers stored in the IR's float arrays; decays are exact fractions
``k / 2**decay_bits``), plus ``network.metadata["quantization"]`` with what a backend or
the emulator needs to reproduce the target's integer arithmetic, and a report of the error
this caused (DESIGN.md section 6.4). docs/passes.md gives the formulas.

Scales. Multiplying a neuron's voltage, current, threshold, bias, reset voltage and all
its incoming weights by one factor ``K`` leaves its spikes unchanged, so each population
gets its own **voltage scale** ``K`` (state units per float unit), shared by its threshold,
bias and every projection into it. Each projection additionally has a **shared weight
exponent** ``e`` (Loihi's ``weight_exp``: one per synapse group, so weights into one neuron
may use different exponents): a weight becomes ``m * 2**(s0 + e)`` state units with an
integer mantissa ``m`` of the target's width (``s0`` = ``weight_exponent_offset``, 6 on
Loihi where the activation enters u shifted by 6). ``e`` is the smallest exponent whose
grid holds the projection's largest weight (finest grid, no clipping). ``K`` is chosen
among the largest scale every format allows (thresholds, biases, weights with the largest
exponent, state range: the rule of sinabs' ``discretize_conv_spike``) and the powers of
two below it, minimising the summed squared relative errors of weights (RMS per
projection), threshold and bias; ties go to a power of two, so values that are
representable round-trip exactly (:func:`dequantize`).

Formats (``target.formats``; family by ``target.backend``):

* **Loihi** (Lava ``PyLifModelBitAcc`` / ``PyDenseModelBitAcc``, see
  backends/emulator/loihi_arith.py): mantissas by sign mode (mixed: even values in
  [-256, 254]; excitatory [0, 255]; inhibitory [-255, 0]); state units are Lava's v units
  (``w = m << (6 + weight_exp)``, ``theta = vth << 6``, ``bias = bias_mant << bias_exp``),
  ``alpha_u = (4095 - du) / 4096``, ``lam = (4096 - dv) / 4096``; hard reset to 0 only.
* **fixed point** (SpiNNaker s16.15 and generic targets): signed ``weight_bits`` mantissas,
  threshold ``mantissa << threshold_shift``, bias ``mantissa << exponent``, decays on a
  ``2**-decay_bits`` grid; state units are the raw fixed-point LSB, so a value ``x`` in
  state units reads ``x / 2**state_fraction_bits`` in the chip's s16.15.
* **Speck** uses the fixed-point rules with its 8-bit weights, 16-bit state and integer
  thresholds, and no leak (``decay_bits = 0``: ``lam`` must be 1).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import numpy as np

from nmcompiler.ir.connectivity import AvgPool2d, Conv2d, Dense, OneToOne, Sparse, SumPool2d, _pair
from nmcompiler.ir.errors import FitError
from nmcompiler.ir.models import Reset, model_fields
from nmcompiler.ir.network import Network, Population, Projection
from nmcompiler.ir.simulate import simulate

__all__ = ["quantize", "dequantize", "loihi_weight_mantissas"]

_EVAL_SAMPLE = 200_000

#: the spike test of each chip family (backends/emulator/arith.py): Lava's bit-accurate LIF
#: fires on ``v* > vth << 6``; sPyNNaker's ``threshold_type_static`` and Speck's IAF on
#: ``v* >= theta``. Other families (the generic emulator) honour ``fire_at_threshold``.
_CHIP_COMPARE = {"loihi": ">", "spinnaker": ">=", "speck": ">="}
_NO_GRID = 2**62  #: grid of a voltage that never changes (every threshold is equivalent)
_STAT_SAMPLE = 1_000_000  # report's error statistics on a sample above this


# =========================================================================== formats
@dataclasses.dataclass(frozen=True, slots=True)
class _Fmt:
    family: str
    s0: int
    emin: int
    emax: int
    wbits: int
    wsigned: bool
    vmax: int
    umax: int
    th_mant_max: int
    th_shift: int
    b_mant_max: int
    b_exp_max: int
    decay_bits: int
    current: bool
    frac_bits: int
    compare: str | None  #: the chip's spike test: ">" (Loihi), ">=" (SpiNNaker, Speck), None


def _fmt(target: Any, negative_weight_exp: bool) -> _Fmt:
    f = target.formats
    fam = {"loihi": "loihi", "speck": "speck"}.get(str(target.backend), "fixed")
    s0 = f.weight_exponent_offset if f.weight_exponent_offset is not None else 0
    floor = -s0 if (fam != "loihi" or negative_weight_exp) else 0
    emin = max(int(f.weight_exponent_min), floor)
    emax = max(int(f.weight_exponent_max), emin)
    return _Fmt(
        family=fam, s0=int(s0), emin=emin, emax=emax, wbits=int(f.weight_bits),
        wsigned=bool(f.weight_signed), vmax=2 ** (int(f.voltage_bits) - 1) - 1,
        umax=2 ** (max(int(f.current_bits), 1) - 1) - 1,
        th_mant_max=2 ** int(f.threshold_bits) - 1, th_shift=int(f.threshold_shift),
        b_mant_max=(2 ** (int(f.bias_bits) - 1) - 1) if f.bias_bits else 0,
        b_exp_max=2 ** int(f.bias_exponent_bits) - 1 if f.bias_exponent_bits else 0,
        decay_bits=int(f.decay_bits), current=int(f.current_bits) > 0,
        frac_bits=int(f.state_fraction_bits or 0),
        compare=_CHIP_COMPARE.get(str(target.backend)),
    )


def _sign_mode(w: np.ndarray) -> str:
    """Lava's sign mode of a weight matrix (loihi_arith.sign_mode_of)."""
    if w.size == 0 or np.min(w) >= 0:
        return "excitatory"
    if np.max(w) <= 0:
        return "inhibitory"
    return "mixed"


def _mantissa_range(fmt: _Fmt, w: np.ndarray, obj: str, tname: str) -> tuple[int, int, int, str]:
    """(lo, hi, step, sign mode) of the integer mantissas of one projection."""
    mode = _sign_mode(w)
    if fmt.family == "loihi":
        top = 2**fmt.wbits - 1  # 255: 8-bit magnitude
        if mode == "mixed":
            return -(top + 1), top - 1, 2, mode  # even values in [-256, 254]
        return (0, top, 1, mode) if mode == "excitatory" else (-top, 0, 1, mode)
    if fmt.wsigned:
        return -(2 ** (fmt.wbits - 1)), 2 ** (fmt.wbits - 1) - 1, 1, mode
    if mode != "excitatory":
        raise FitError(
            f"projection '{obj}' has negative weights; {tname} weights are unsigned",
            obj=obj, rule="weight sign", need="negative weights", limit="unsigned",
            hint="split it into excitatory and inhibitory projections",
        )
    return 0, 2**fmt.wbits - 1, 1, mode


# =========================================================================== weights
def _top(lo: int, hi: int) -> int:
    """Largest magnitude every weight of the projection can reach (254 for Loihi's
    mixed sign mode, 127 for signed 8 bits, 255 single-sign)."""
    return hi if hi > 0 else -lo


def _weights_of(net: Network, proj: Projection) -> np.ndarray:
    conn = proj.conn
    if isinstance(conn, (Dense, Sparse, Conv2d)):
        return np.asarray(conn.weight, dtype=np.float64).reshape(-1)
    if isinstance(conn, OneToOne):
        return np.atleast_1d(np.asarray(conn.weight, dtype=np.float64))
    return np.array([conn.scale()])


def _pool_as_conv(net: Network, proj: Projection) -> Conv2d:
    conn = proj.conn
    c = net.shape_of(proj.pre)[0]
    kh, kw = _pair(conn.kernel)
    stride = conn.stride if conn.stride is not None else conn.kernel
    return Conv2d(weight=np.full((c, 1, kh, kw), conn.scale()), stride=_pair(stride),
                  padding=_pair(conn.padding), groups=c)


def _with_weight(conn: Any, w: np.ndarray) -> Any:
    if isinstance(conn, Dense):
        return Dense(weight=w.reshape(conn.weight.shape), delays=conn.delays)
    if isinstance(conn, Sparse):
        return Sparse(indptr=conn.indptr, indices=conn.indices, weight=w, n_post=conn.n_post,
                      delays=conn.delays)
    if isinstance(conn, OneToOne):
        ww = float(w[0]) if np.ndim(conn.weight) == 0 else w.reshape(np.shape(conn.weight))
        return OneToOne(weight=ww, delays=conn.delays)
    return Conv2d(weight=w.reshape(conn.weight.shape), stride=conn.stride,
                  padding=conn.padding, dilation=conn.dilation, groups=conn.groups)


def _quant_weights(w: np.ndarray, k: float, fmt: _Fmt, rng: tuple[int, int, int],
                   amax: float | None = None, mantissas: bool = True
                   ) -> tuple[np.ndarray | None, int, np.ndarray]:
    """(mantissas, exponent, quantised weights in state units) for scale ``k``
    (``amax``: ``_abs_max(w)`` when already known). ``mantissas=False`` turns the
    mantissa array into the state-unit one in place and returns None for it (one array
    of the weights' size fewer; the mantissas are ``q / 2**(s0 + e)``, exactly)."""
    lo, hi, step = rng
    top = _top(lo, hi)
    amax = _abs_max(w) if amax is None else amax
    e = fmt.emin
    if amax > 0:
        need = math.ceil(math.log2(k * amax / top)) - fmt.s0 if k * amax > 0 else fmt.emin
        e = min(max(need, fmt.emin), fmt.emax)
        while e > fmt.emin and k * amax <= top * 2.0 ** (fmt.s0 + e - 1):
            e -= 1
        while e < fmt.emax and k * amax > top * 2.0 ** (fmt.s0 + e):
            e += 1
    unit = 2.0 ** (fmt.s0 + e)
    m = np.multiply(k, w)  # the same operations as step * rint(k * w / unit / step), in place
    m /= unit
    if step != 1:
        m /= step
    np.rint(m, out=m)
    if step != 1:
        m *= step
    np.clip(m, lo, hi, out=m)
    if not mantissas:
        m *= unit  # a power of two: exact
        return None, e, m
    return m, e, m * unit


def _abs_max(w: np.ndarray) -> float:
    """``max |w|`` without an ``|w|`` temporary."""
    return float(max(np.max(w), -np.min(w))) if w.size else 0.0


class _Extremes:
    """``max(w)``, ``min(w)``, ``max |w|`` (:func:`_abs_max`) and the index of the first
    largest ``|w|`` of a flat weight array, from one ``argmax`` and one ``argmin`` (a
    projection's weights are scanned once instead of once per use)."""

    __slots__ = ("wmax", "wmin", "amax", "iabs")

    def __init__(self, w: np.ndarray) -> None:
        if w.size == 0:
            self.wmax = self.wmin = self.amax = 0.0
            self.iabs = -1
            return
        a, b = int(np.argmax(w)), int(np.argmin(w))
        hi, lo = w.flat[a], w.flat[b]
        self.wmax, self.wmin = float(hi), float(lo)
        self.amax = float(max(hi, -lo))
        self.iabs = a if abs(float(hi)) >= abs(float(lo)) else b


# =========================================================================== neurons
def _as_array(x: Any, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(x), (n,))


def _decays(pop: Population, fmt: _Fmt, tname: str, caps: Any) -> tuple[dict, dict, dict]:
    """(new model fields, integer parameters, errors) for the decays of ``pop``."""
    model = pop.model
    own = model_fields(model)
    new: dict[str, Any] = {}
    ints: dict[str, Any] = {}
    err: dict[str, float] = {}
    where = f"population '{pop.name}'"
    d = fmt.decay_bits
    for name in ("alpha_u", "lam"):
        val = np.asarray(getattr(model, name))
        if val.dtype.kind == "c":
            if not caps.resonate_and_fire:
                raise FitError(
                    f"{where} is resonate-and-fire; {tname} has no resonate-and-fire "
                    "neurons", obj=pop.name, rule="neuron model", need="RF", limit="LIF/IF",
                    hint="use LIF neurons or a target with resonate-and-fire (loihi2)")
            bits = d if d else 12
            re = np.trunc(val.real * 2**bits)
            im = np.trunc(val.imag * 2**bits)
            q = (re + 1j * im) / 2**bits
            ints[f"{name}_re"] = _ints(re)
            ints[f"{name}_im"] = _ints(im)
            ints["decay_bits"] = bits
        elif fmt.family == "loihi":
            if name == "alpha_u":
                di = np.clip(np.rint(4095.0 - 4096.0 * val), 0, 4095)
                q = (4095.0 - di) / 4096.0
                ints["du"] = _ints(di)
            else:
                di = np.clip(np.rint(4096.0 - 4096.0 * val), 0, 4095)
                q = (4096.0 - di) / 4096.0
                ints["dv"] = _ints(di)
        else:
            fixed = 0.0 if name == "alpha_u" else 1.0
            if d == 0 or (name == "alpha_u" and not fmt.current):
                if np.any(val != fixed):
                    what = "synaptic current stage" if name == "alpha_u" else "leak"
                    i = int(np.argmax(np.abs(val - fixed)))
                    worst = complex(val.reshape(-1)[i])
                    worst = worst.real if worst.imag == 0 else worst
                    raise FitError(
                        f"{where} has {name} = {worst!r} ({abs(worst - fixed)!r} away from "
                        f"{fixed:g}: a {what}); {tname} has none",
                        obj=pop.name, rule=f"no {what}", need=f"{name} != {fixed:g}",
                        limit=f"{name} = {fixed:g}",
                        hint="use IF neurons (lam=1, alpha_u=0) for this target")
                q = val.astype(np.float64)
            else:
                q = np.rint(val * 2**d) / 2**d
                ints[f"{name}_mant"] = _ints(np.rint(val * 2**d))
                ints["decay_bits"] = d
        err[name] = float(np.max(np.abs(q - val))) if val.size else 0.0
        if name in own:
            new[name] = q if np.ndim(own[name]) else (complex(q) if q.dtype.kind == "c"
                                                       else float(q))
    return new, ints, err


def _ints(x: Any) -> Any:
    a = np.asarray(x)
    if a.size == 0:
        return []
    flat = a.reshape(-1)
    if np.all(flat == flat[0]):
        return int(flat[0].real) if a.dtype.kind == "c" else int(flat[0])
    return [int(v) for v in flat]


def _check_model(pop: Population, fmt: _Fmt, target: Any) -> None:
    m = pop.model
    caps = target.capabilities
    where = f"population '{pop.name}'"
    tname = target.name
    if not m.spiking:
        return
    if m.reset.value not in caps.reset_modes:
        raise FitError(
            f"{where} uses reset '{m.reset.value}'; {tname} supports "
            f"{', '.join(caps.reset_modes)}", obj=pop.name, rule="reset mode",
            need=m.reset.value, limit=list(caps.reset_modes),
            hint="change the reset mode (ANN conversion: hard reset with threshold "
            "balancing) or pick a target that has it")
    if m.graded:
        if not caps.graded_spikes:
            raise FitError(
                f"{where} sends graded spikes; {tname} has binary spikes only",
                obj=pop.name, rule="graded spikes", need="graded", limit="binary",
                hint="use binary spikes (graded=False) or a target with graded spikes")
    if m.noise and not caps.stochastic:
        raise FitError(
            f"{where} has stochastic firing (noise {m.noise}); {tname} has none",
            obj=pop.name, rule="stochastic firing", need=m.noise, limit=0,
            hint="set noise=0 or pick a target with stochastic neurons")
    if fmt.family == "loihi" and np.any(np.asarray(m.v_reset) != 0):
        raise FitError(
            f"{where} resets to v_reset = {np.max(np.abs(m.v_reset))}; {tname} resets to 0 "
            "only", obj=pop.name, rule="reset to 0", need="v_reset != 0", limit=0,
            hint="shift the voltage: v_reset = 0 with theta and bias moved by -v_reset")


# =========================================================================== scale choice
def _choose_scale(
    theta: np.ndarray | None, bias: np.ndarray, vreset: np.ndarray,
    inc: list[tuple[str, np.ndarray, tuple[int, int, int]]], fmt: _Fmt,
    sample: np.random.Generator, cmp_err: Any = None, *,
    extremes: dict[str, _Extremes],
) -> tuple[float, dict]:
    bounds: dict[str, float] = {}
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
    for name, w, (lo, hi, step) in inc:
        ext = extremes[name]
        amax = ext.amax
        top = _top(lo, hi)
        if amax > 0:
            bounds[f"weights of '{name}'"] = top * 2.0 ** (fmt.s0 + fmt.emax) / amax
        ws = w
        if w.size > _EVAL_SAMPLE:
            idx = sample.choice(w.size, _EVAL_SAMPLE, replace=False)
            ws = np.concatenate([w[idx], [w[ext.iabs]]])
        evals.append((ws, (lo, hi, step)))
    if not bounds:
        return 1.0, {"bound_by": None, "candidates": 1}
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

    def cost(k: float) -> float:
        e = 0.0
        qs = []
        for ws, rng in evals:
            _, _, q = _quant_weights(ws, k, fmt, rng)
            qs.append(q)
            nrm = float(np.sum(ws * ws))
            if nrm > 0:
                e += float(np.sum((q / k - ws) ** 2)) / nrm
        ref = 0.0
        if theta is not None:
            tq = _q_theta(theta, k, fmt)
            if cmp_err is not None:  # the comparison's error counts as threshold error
                tq = tq + cmp_err(k, tq, qs)
            e += float(np.max(np.abs(tq / k - theta) / theta)) ** 2
            ref = float(np.max(theta))
        if bmax > 0:
            bq, _, _ = _q_bias(bias, k, fmt)
            e += (float(np.max(np.abs(bq / k - bias))) / max(ref, bmax)) ** 2
        return e

    costs = [cost(k) for k in cands]
    best = min(costs)
    ok = [k for k, c in zip(cands, costs, strict=True) if c <= best * (1 + 1e-9) + 1e-300]
    pows = [k for k in ok if math.log2(k).is_integer()]
    k = max(pows) if pows else max(ok)
    return float(k), {"bound_by": bound_by, "max_scale": kmax, "candidates": len(cands)}


def _q_theta(theta: np.ndarray, k: float, fmt: _Fmt) -> np.ndarray:
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
    return g if g > 0 else _NO_GRID


def _compare(t: np.ndarray, fmt: _Fmt, grid: int | None, movable: bool
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


def _q_bias(bias: np.ndarray, k: float, fmt: _Fmt) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _grid_at(k: float, tq: np.ndarray, wqs: list[np.ndarray], *, on_grid: bool,
             bias: np.ndarray, vreset: np.ndarray, reset: Any, fmt: _Fmt) -> int | None:
    """The voltage grid of a population at scale ``k`` (None: no leak-free integer grid)."""
    if not on_grid:
        return None
    vals = [*wqs, _q_bias(bias, k, fmt)[0]]
    if reset is Reset.HARD:
        vals.append(np.rint(k * vreset))
    elif reset is Reset.SOFT:
        vals.append(tq)
    return _state_grid(vals)


def _cmp_err(k: float, tq: np.ndarray, wqs: list[np.ndarray], *, grid_at: Any, fmt: _Fmt,
             movable: bool) -> np.ndarray:
    """The comparison's error in state LSBs at scale ``k`` (for the scale's cost)."""
    return _compare(tq, fmt, grid_at(k, tq, wqs), movable)[1]


def _comparison_report(model_ge: bool, chip: str | None, tq: np.ndarray, tc: np.ndarray,
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
        "threshold_model_units": _ints(tq), "threshold_chip": _ints(tc),
        "shift_lsb": [lo, hi], "grid": grid, "exact": exact,
        "error_lsb": int(np.max(np.abs(err))) if err.size else 0,
    }
    if not exact:
        e = int(err[np.argmax(np.abs(err))])
        out["effect"] = (f"the chip fires {abs(e)} state LSB ({abs(e) / k:.3g} in float units) "
                         f"{'later' if e > 0 else 'earlier'} than the model at worst")
    return out


# =========================================================================== the pass
def quantize(
    net: Network,
    target: Any,
    *,
    seed: int = 0,
    negative_weight_exp: bool = False,
    check_capabilities: bool = True,
    check_steps: int = 32,
    check_rate: float = 0.2,
    check_max_neurons: int = 20_000,
    check_max_synapses: int = 2_000_000,
) -> tuple[Network, dict]:
    """Quantise ``net`` to ``target``'s number formats; returns ``(network, report)``.

    Args:
        net: the (lowered) network; not modified.
        target: a :class:`nmcompiler.targets.Target`.
        seed: seeds the weight sample used to compare scales on huge projections and the
            random input of the behavioural check.
        negative_weight_exp: allow negative Loihi weight exponents (finer weights, but the
            chip floors the *summed* activation, which the IR cannot represent exactly).
        check_capabilities: refuse (:class:`FitError`) neuron features the target lacks.
        check_steps: steps of the behavioural check (0 disables it).
        check_rate: spike probability per input channel and step in the check.
        check_max_neurons, check_max_synapses: the check runs only below these sizes.

    Report: ``populations`` (scale, what bounded it, threshold / bias / decay errors),
    ``projections`` (weight exponent, unit, sign mode, relative RMS / max errors,
    clipped synapses), ``summary`` (worst errors), ``overflow`` (worst-case input per
    step against the state range) and ``behaviour`` (spike agreement float vs quantised).
    """
    fmt = _fmt(target, negative_weight_exp)
    tname = target.name
    rng = np.random.default_rng(seed)
    pops: dict[str, Population] = {}
    projs: dict[str, Projection] = dict(net.projections)
    meta_pops: dict[str, Any] = {}
    meta_projs: dict[str, Any] = {}
    rep_pops: dict[str, Any] = {}
    rep_projs: dict[str, Any] = {}
    incoming: dict[str, list[Projection]] = {n: [] for n in net.populations}
    for p in net.projections.values():
        incoming[p.post].append(p)
    pools = []
    modes: dict[str, str] = {}
    stat_rng = np.random.default_rng([seed, 1])
    for name, p in net.projections.items():
        if isinstance(p.conn, (SumPool2d, AvgPool2d)):
            projs[name] = Projection(name=name, pre=p.pre, post=p.post,
                                     conn=_pool_as_conv(net, p), delay=p.delay)
            pools.append(name)
    for pname, pop in net.populations.items():
        if check_capabilities:
            _check_model(pop, fmt, target)
        model = pop.model
        n = pop.size
        theta = _as_array(model.theta, n).astype(np.float64) if model.spiking else None
        bias = _as_array(model.bias, n).astype(np.float64)
        vreset = _as_array(model.v_reset, n).astype(np.float64)
        if fmt.b_mant_max == 0 and np.any(bias != 0):
            raise FitError(
                f"population '{pname}' has a bias; {tname} has no bias", obj=pname,
                rule="bias", need="bias", limit="none", hint="remove the bias")
        inc = []
        extremes: dict[str, _Extremes] = {}
        for p in incoming[pname]:
            w = _weights_of(net, projs[p.name]) if p.name in pools else _weights_of(net, p)
            *rng3, modes[p.name] = _mantissa_range(fmt, w, p.name, tname)
            inc.append((p.name, w, tuple(rng3)))
            extremes[p.name] = _Extremes(w)
        new_fields, ints, derr = _decays(pop, fmt, tname, target.capabilities)
        own = model_fields(model)
        # the spike test: the chip's comparison where the model asks for the other one
        model_ge = bool(model.fire_at_threshold)
        differs = (theta is not None and fmt.compare is not None
                   and (fmt.compare == ">=") != model_ge)
        movable = model.reset is not Reset.SOFT and not model.graded
        q_alpha = np.asarray(new_fields.get("alpha_u", model.alpha_u))
        q_lam = np.asarray(new_fields.get("lam", model.lam))
        on_grid = bool(np.all(q_alpha == 0) and np.all(q_lam == 1))
        grid_at = functools.partial(_grid_at, on_grid=on_grid, bias=bias, vreset=vreset,
                                    reset=model.reset, fmt=fmt)
        cmp_err = functools.partial(_cmp_err, grid_at=grid_at, fmt=fmt, movable=movable)
        k, how = _choose_scale(theta, bias, vreset, inc, fmt, rng,
                               cmp_err if differs else None, extremes=extremes)
        prep: dict[str, Any] = {"scale": k, **how, "decay_error": derr}
        # projections into this population, on its scale
        wqs = []
        for (name, w, rng3) in inc:
            p = projs[name]
            ext = extremes[name]
            _, e, q = _quant_weights(w, k, fmt, rng3, ext.amax, mantissas=False)
            wqs.append(q)
            mode = modes[name]
            projs[name] = Projection(name=name, pre=p.pre, post=p.post,
                                     conn=_with_weight(p.conn, q), delay=p.delay)
            unit = 2.0 ** (fmt.s0 + e)
            ws, wq = w, q
            if w.size > _STAT_SAMPLE:  # error statistics on a seeded sample + the largest
                idx = np.append(stat_rng.choice(w.size, _STAT_SAMPLE, replace=False),
                                ext.iabs)
                ws, wq = w[idx], q[idx]
            nrm = float(np.sqrt(np.sum(ws * ws)))
            diff = wq / k - ws
            amax = ext.amax
            # rounding moves a mantissa by at most step / 2: only clipping moves it by more
            lo3, hi3, step3 = rng3
            clipped = 0
            if w.size and (k * ext.wmax / unit > hi3 + step3
                           or k * ext.wmin / unit < lo3 - step3):
                clipped = int(np.count_nonzero(np.abs(k * w / unit - q / unit) > step3))
            rep_projs[name] = {
                "post": pname, "weight_exp": int(e), "unit": unit,
                "sign_mode": mode, "scale": k,
                "rel_rms_error": float(np.sqrt(np.sum(diff * diff)) / nrm) if nrm else 0.0,
                "max_rel_error": float(np.max(np.abs(diff)) / amax) if amax else 0.0,
                "error_sample": int(ws.size),
                "clipped": clipped,
                "converted_from_pool": name in pools,
            }
            meta_projs[name] = {"post": pname, "scale": k, "weight_exp": int(e),
                                "weight_shift": int(fmt.s0 + e), "sign_mode": mode,
                                "num_weight_bits": fmt.wbits}
        model_cmp = None
        if theta is not None:
            tq = _q_theta(theta, k, fmt)
            tc, err = tq, np.zeros(n, dtype=np.int64)
            if differs:
                grid = grid_at(k, tq, wqs)
                tc, err = _compare(tq, fmt, grid, movable)
                tc = tc.astype(np.float64)
                prep["comparison"] = _comparison_report(
                    model_ge, fmt.compare, tq, tc, err, k, grid, movable, model.reset,
                    1 << fmt.th_shift)
                model_cmp = {"fire_at_threshold": model_ge, "theta": _ints(tq)}
            else:
                prep["comparison"] = {
                    "model": ">=" if model_ge else ">", "chip": fmt.compare or "model's",
                    "action": "none (the chip compares as the model does)", "exact": True,
                    "error_lsb": 0}
            new_fields["theta"] = tc if np.ndim(own["theta"]) else float(tc[0])
            if fmt.compare is not None and "fire_at_threshold" in own:
                new_fields["fire_at_threshold"] = fmt.compare == ">="
            # the threshold the chip realises, in the model's comparison: tq + err
            prep["threshold_rel_error"] = float(np.max(np.abs((tq + err) / k - theta) / theta))
            ints["theta_mant"] = _ints(tc / 2.0**fmt.th_shift)
        bq, bm, be = _q_bias(bias, k, fmt)
        if "bias" in own:
            new_fields["bias"] = bq if np.ndim(own["bias"]) else float(bq[0])
        ints["bias_mant"], ints["bias_exp"] = _ints(bm), _ints(be)
        prep["bias_max_error"] = float(np.max(np.abs(bq / k - bias))) if n else 0.0
        if "v_reset" in own:
            rq = np.clip(np.rint(k * vreset), -fmt.vmax, fmt.vmax)
            new_fields["v_reset"] = rq if np.ndim(own["v_reset"]) else float(rq[0])
            prep["v_reset_max_error"] = float(np.max(np.abs(rq / k - vreset)))
        if model.spiking and model.graded and target.capabilities.graded_spikes:
            # payloads above what the chip carries are clamped (sinabs' MultiSpike says
            # 2**31 - 1 but never sends that much); the report says so
            top = 2 ** int(target.capabilities.graded_spike_bits) - 1
            if int(model.graded_max) > top:
                new_fields["graded_max"] = top
                prep["graded_max_clamped"] = {"from": int(model.graded_max), "to": top}
        pops[pname] = Population(name=pname, shape=pop.shape,
                                 model=dataclasses.replace(model, **new_fields))
        if fmt.family == "loihi":
            ints = {"du": ints.get("du", 4095), "dv": ints.get("dv", 0),
                    "vth": ints.get("theta_mant", 0), "bias_mant": ints["bias_mant"],
                    "bias_exp": ints["bias_exp"],
                    **{kk: v for kk, v in ints.items()
                       if kk not in ("du", "dv", "theta_mant", "bias_mant", "bias_exp")}}
        meta_pops[pname] = {"scale": k, **ints}
        if model_cmp is not None:
            meta_pops[pname]["model_comparison"] = model_cmp
        rep_pops[pname] = prep
    meta = {
        "version": 1,
        "target": tname,
        "family": fmt.family,
        "units": "integer state units: x_float = x / scale of the population (weights: "
                 "of the post population); weight = mantissa * 2**weight_shift",
        "state_fraction_bits": fmt.frac_bits,
        "threshold_shift": fmt.th_shift,
        "comparison": fmt.compare or "model",
        "populations": meta_pops,
        "projections": meta_projs,
    }
    metadata = dict(net.metadata)
    metadata["quantization"] = meta
    qnet = net.replace(populations=pops, projections=projs, metadata=metadata)
    report: dict[str, Any] = {
        "target": tname, "family": fmt.family, "populations": rep_pops,
        "projections": rep_projs,
        "summary": {
            "max_weight_rel_rms_error": max(
                [v["rel_rms_error"] for v in rep_projs.values()], default=0.0),
            "max_weight_rel_error": max(
                [v["max_rel_error"] for v in rep_projs.values()], default=0.0),
            "max_threshold_rel_error": max(
                [v.get("threshold_rel_error", 0.0) for v in rep_pops.values()], default=0.0),
            "max_bias_error": max(
                [v["bias_max_error"] for v in rep_pops.values()], default=0.0),
            "clipped_synapses": sum(v["clipped"] for v in rep_projs.values()),
            "inexact_threshold_comparisons": [
                name for name, v in rep_pops.items()
                if not v.get("comparison", {}).get("exact", True)],
        },
        "pools_as_depthwise_conv": pools,
        "overflow": _overflow(qnet, fmt),
    }
    report["behaviour"] = _behaviour(net, qnet, meta_pops, seed, check_steps, check_rate,
                                     check_max_neurons, check_max_synapses)
    return qnet, report


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


def _overflow(qnet: Network, fmt: _Fmt) -> dict[str, Any]:
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
    tot = 0
    for p in net.projections.values():
        c = p.conn
        if isinstance(c, (Dense, Sparse)):
            tot += c.n_synapses()
        elif isinstance(c, OneToOne):
            tot += net.size_of(p.post)
        elif isinstance(c, Conv2d):
            tot += c.n_synapses(net.shape_of(p.post))  # type: ignore[arg-type]
        else:
            k = _pair(c.kernel)
            tot += net.size_of(p.post) * k[0] * k[1]
    return tot


def _behaviour(net: Network, qnet: Network, meta_pops: dict, seed: int, steps: int,
               rate: float, max_neurons: int, max_syn: int) -> dict[str, Any]:
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


# =========================================================================== inverse
def dequantize(qnet: Network) -> Network:
    """The float network a quantised one stands for: divide thresholds, biases, reset
    voltages and incoming weights by each population's scale (decays stay as they are).

    ``dequantize(quantize(net, t)[0])`` equals ``net`` exactly when every value of ``net``
    is representable in the target's formats at the chosen scales.
    """
    meta = qnet.metadata.get("quantization")
    if not isinstance(meta, dict):
        raise FitError(
            f"network '{qnet.name}' carries no quantization metadata", obj=qnet.name,
            rule="quantized network", hint="run the quantize pass first")
    scales = {n: float(v["scale"]) for n, v in meta["populations"].items()}
    pops = {}
    for name, pop in qnet.populations.items():
        k = scales[name]
        own = model_fields(pop.model)
        ch: dict[str, Any] = {f: (own[f] / k) for f in ("theta", "bias", "v_reset")
                              if f in own}
        mc = meta["populations"][name].get("model_comparison")
        if isinstance(mc, dict) and "theta" in own:  # undo the chip's comparison
            t = np.broadcast_to(np.asarray(mc["theta"], dtype=np.float64),
                                np.shape(own["theta"]))
            ch["theta"] = t / k
            ch["fire_at_threshold"] = bool(mc["fire_at_threshold"])
        for f, v in ch.items():
            if isinstance(v, np.ndarray) and v.ndim == 0:
                ch[f] = float(v)
            elif not isinstance(v, (np.ndarray, bool)):
                ch[f] = float(v)
        pops[name] = Population(name=name, shape=pop.shape,
                                model=dataclasses.replace(pop.model, **ch))
    projs = {}
    for name, p in qnet.projections.items():
        k = scales[p.post]
        w = _weights_of(qnet, p) / k
        projs[name] = Projection(name=name, pre=p.pre, post=p.post,
                                 conn=_with_weight(p.conn, w), delay=p.delay)
    md = {k: v for k, v in qnet.metadata.items() if k != "quantization"}
    return qnet.replace(populations=pops, projections=projs, metadata=md)


def loihi_weight_mantissas(qnet: Network, projection: str) -> tuple[np.ndarray, int]:
    """Lava's integer weights and ``weight_exp`` of one projection of a network quantised
    for a Loihi target: ``mantissa = weight / 2**(6 + weight_exp)`` (exact integers)."""
    meta = qnet.metadata["quantization"]["projections"][projection]
    w = _weights_of(qnet, qnet.projections[projection])
    return np.rint(w / 2.0 ** meta["weight_shift"]).astype(np.int32), int(meta["weight_exp"])

