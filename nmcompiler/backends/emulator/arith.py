"""Per-family integer arithmetic of the emulator's neurons (docs/emulator.md).

Every family updates a flat vector of neurons ("slots") at once, vectorised over a batch
axis; the engine (:mod:`nmcompiler.backends.emulator.engine`) hands it the summed synaptic input of
one step and gets the spikes (integer payloads) back. Per-neuron parameters are arrays
over the slots, so populations of different models share one update and the arithmetic
of a neuron never depends on where it is mapped (docs/architecture.md#fidelity).

Arithmetics (named by the target's chip family, ``target.family.emulator_arithmetic``):

* ``emulator`` (:class:`GenericArith`) -- the reference semantics of ``ir/simulate.py``
  in float64 (complex128 for resonate-and-fire), operation for operation in the same
  order, so integer-valued networks give exactly the reference's numbers; state is
  saturated (or wrapped) to the target's ``voltage_bits`` / ``current_bits``.
* ``loihi`` (:class:`LoihiArith`) -- Lava 0.10's bit-accurate LIF, through
  :mod:`nmcompiler.targets.families.loihi` (int32 holding 24-bit u and v; u wraps once, v
  saturates; decays rounded towards zero; ``a << 6``; strict ``v* > vth << 6``; hard
  reset to 0). Extensions Lava lacks are integer analogues, documented there.
* ``spinnaker`` (:class:`SpinnakerArith`) -- sPyNNaker's s16.15 ``accum`` fixed point
  (``neural_modelling/src/neuron/models/neuron_model_lif_impl.h``,
  ``synapse_types/synapse_types_exponential_impl.h``): state as int64 bits of value x 2**15;
  the voltage decay is ``MULT_ROUND_NEAREST_ACCUM`` (``(a*b + 2**14) >> 15``), the current
  decay is ``decay_s1615`` (``(x * d) >> 32`` with ``d`` an unsigned 0.32 fraction),
  threshold ``v >= theta`` (``threshold_type_static``), hard reset to ``v_reset`` and a
  refractory timer (``neuron_model_has_spiked``).
* ``speck`` (:class:`SpeckArith`) -- DYNAP-CNN integrate-and-fire as sinabs discretises
  it: 16-bit signed integer state, saturating at ``[-2**15, 2**15 - 1]`` (sinabs'
  ``min_v_mem = -2**15``), no leak, spike at ``v >= theta``, reset by subtraction
  (``MembraneSubtract``) or to zero (``MembraneReset``), one spike per step or
  ``floor(v / theta)`` (``MultiSpike``) for graded populations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nmcompiler.ir.errors import BackendError
from nmcompiler.targets.families import loihi as la

__all__ = [
    "FAMILIES",
    "SlotParams",
    "Arith",
    "GenericArith",
    "LoihiArith",
    "SpinnakerArith",
    "SpeckArith",
    "make_arith",
    "RESET_HARD",
    "RESET_SOFT",
    "RESET_NONE",
]

RESET_HARD, RESET_SOFT, RESET_NONE = 0, 1, 2


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SlotParams:
    """Per-slot (per-neuron) parameters in the network's units, arrays of length n.

    ``graded_max`` is 0 for binary spikes; ``reset`` holds :data:`RESET_HARD` /
    :data:`RESET_SOFT` / :data:`RESET_NONE`; ``extra`` holds family-specific integer
    parameters from ``network.metadata["quantization"]`` (Loihi: du, dv, vth, bias_mant,
    bias_exp).
    """

    alpha_u: np.ndarray
    lam: np.ndarray
    theta: np.ndarray
    bias: np.ndarray
    v_reset: np.ndarray
    reset: np.ndarray
    refractory: np.ndarray
    graded_max: np.ndarray
    fire_at_threshold: np.ndarray
    spiking: np.ndarray
    extra: dict[str, np.ndarray]


def _fmt_range(bits: int | None) -> tuple[float, float] | None:
    if not bits:
        return None
    return (-(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1)


def _limit(x: np.ndarray, rng: tuple[float, float] | None, mode: str) -> np.ndarray:
    """Saturate or wrap to a two's-complement range (None: no limit)."""
    if rng is None:
        return x
    lo, hi = rng
    if mode == "wrap":
        span = hi - lo + 1
        out = np.where((x < lo) | (x > hi), np.mod(x - lo, span) + lo, x)
        return out.astype(x.dtype, copy=False)
    return np.clip(x, lo, hi, out=x)


class Arith:
    """Base: state arrays over (B, n) slots and a ``step`` on a contiguous slot range."""

    family = ""
    #: whether synaptic sums are integers (so float32/float64 accumulation is exact)
    integer = True

    def __init__(self, p: SlotParams, formats: Any = None) -> None:
        self.p = p
        self.formats = formats
        self.n = int(p.theta.shape[0])
        self.has_refr = bool(np.any(p.refractory > 0))

    # state ------------------------------------------------------------------------
    def init(self, batch: int) -> None:
        """Allocate zero state for ``batch`` samples."""
        raise NotImplementedError

    def state(self, var: str) -> np.ndarray:
        """``(B, n)`` view of ``u`` or ``v`` in the family's units."""
        return getattr(self, var)

    #: bool (B, len) of the neurons that fired in the last step, where the family sets it
    fired: np.ndarray | None = None
    #: with one sample, the indices (in the step's slot range) of the neurons that fired,
    #: where the family sets it (then ``flatnonzero(fired[0])``, already computed)
    fired_idx: np.ndarray | None = None
    #: keep ``u`` up to date even where the update does not need it (a probe reads it)
    keep_u: bool = True

    def step(self, a: np.ndarray, sl: slice, noise: np.ndarray | None) -> np.ndarray | None:
        """Update slots ``sl`` with synaptic input ``a`` (B, len); return payloads, or None
        for binary spikes given by the bool array ``fired``."""
        raise NotImplementedError

    def fired_entries(self, s: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """``(sample, slot in the step's range)`` of the neurons that fired in the last
        step, which returned ``s`` (payloads, or None: ``fired`` / ``fired_idx``)."""
        src = self.fired if s is None else s
        if src.shape[0] == 1:
            i = np.flatnonzero(src[0]) if s is not None or self.fired_idx is None \
                else self.fired_idx
            return np.zeros(i.shape[0], dtype=np.int64), i
        return np.nonzero(src)


# -------------------------------------------------------------------------- generic
class GenericArith(Arith):
    """The reference semantics (``ir/simulate.py`` ``_PopState.step``), op for op."""

    family = "emulator"

    def __init__(self, p: SlotParams, formats: Any = None, *, integer: bool = True) -> None:
        super().__init__(p, formats)
        self.complex_v = np.asarray(p.lam).dtype.kind == "c"
        self.integer = integer
        self.v_rng = _fmt_range(getattr(formats, "voltage_bits", None))
        self.u_rng = _fmt_range(getattr(formats, "current_bits", None))
        self.v_mode = getattr(formats, "voltage_overflow", "saturate")
        self.u_mode = getattr(formats, "current_overflow", "saturate")
        self.any_soft = bool(np.any(p.reset == RESET_SOFT))
        self.any_hard = bool(np.any(p.reset == RESET_HARD))
        self.all_hard = bool(np.all(p.reset == RESET_HARD))
        self.any_graded = bool(np.any(p.graded_max > 0))
        self.any_fat = bool(np.any(p.fire_at_threshold))
        self.all_fat = bool(np.all(p.fire_at_threshold))
        self.any_alpha = bool(np.any(p.alpha_u != 0))
        #: bound on |a| (set by the engine); lets the current skip its range check
        self.a_bound = np.inf
        lam = np.asarray(p.lam)
        self.lam_one = bool(np.all(lam == 1))
        self.bias_zero = bool(np.all(p.bias == 0))
        th = p.theta
        self.theta_s = float(th[0]) if th.size and np.all(th == th[0]) else None
        vr = p.v_reset
        self.fast = (not self.complex_v and not self.has_refr and self.all_hard
                     and not self.any_graded and (self.all_fat or not self.any_fat)
                     and vr.size > 0 and bool(np.all(vr == vr[0])))
        self.v_reset_s = float(vr[0]) if vr.size else 0.0

    def init(self, batch: int) -> None:  # noqa: D102
        self.u = np.zeros((batch, self.n))
        self.v = np.zeros((batch, self.n), dtype=np.complex128 if self.complex_v else np.float64)
        self.refr = np.zeros((batch, self.n), dtype=np.int64) if self.has_refr else None
        self._fire = np.zeros((batch, self.n), dtype=bool) if self.fast else None

    def _fast_step(self, a: np.ndarray, sl: slice, noise: np.ndarray | None) -> None:
        """Same operations as :meth:`step` for the common case (hard reset to one value,
        binary spikes, no refractory period), in place: x * 1.0 and x + 0.0 are skipped
        because they are exact. ``a`` may be float32 (exact integer sums): ``v += a``
        converts each element exactly, as the float64 copy did. The spike mask goes into
        a buffer reused every step; with one sample the reset writes only the neurons
        that fired, through their indices (``fired_idx``, handed on to the engine)."""
        p = self.p
        if self.any_alpha:
            u = self.u[:, sl] * p.alpha_u[sl] + a
        else:
            u = a
        if self.u_rng is not None and (self.any_alpha or self.a_bound > self.u_rng[1]):
            u = _limit(np.asarray(u, dtype=np.float64), self.u_rng, self.u_mode)
        if self.any_alpha or self.keep_u:
            self.u[:, sl] = u
        v = self.v[:, sl]  # a view: updated in place
        if not self.lam_one:
            v *= p.lam[sl]
        v += u
        if not self.bias_zero:
            v += p.bias[sl]
        if self.v_rng is not None:
            if self.v_mode == "wrap":
                v[...] = _limit(v, self.v_rng, self.v_mode)
            else:
                np.clip(v, self.v_rng[0], self.v_rng[1], out=v)
        x = v if noise is None else v + noise
        theta = self.theta_s if self.theta_s is not None else p.theta[sl]
        fire = self._fire[:, sl]
        (np.greater_equal if self.all_fat else np.greater)(x, theta, out=fire)
        if fire.shape[0] == 1:
            idx = np.flatnonzero(fire[0])
            v[0, idx] = self.v_reset_s
            self.fired_idx = idx
        else:
            v[fire] = self.v_reset_s
        self.fired = fire
        return None  # binary spikes: the engine reads ``fired`` (and ``fired_idx``)

    def step(self, a: np.ndarray, sl: slice, noise: np.ndarray | None
             ) -> np.ndarray | None:  # noqa: D102
        if self.fast:
            return self._fast_step(a, sl, noise)
        p = self.p
        alpha = p.alpha_u[sl]
        u = self.u[:, sl] * alpha + a if self.any_alpha else a.astype(np.float64, copy=True)
        if self.u_rng is not None and self.complex_v is False:
            u = _limit(u, self.u_rng, self.u_mode)
        self.u[:, sl] = u
        v_old = self.v[:, sl]
        v_star = v_old * p.lam[sl] + u + p.bias[sl]
        if not self.complex_v:
            v_star = _limit(v_star, self.v_rng, self.v_mode)
        in_ref = None
        if self.refr is not None:
            in_ref = self.refr[:, sl] > 0
            v_star = np.where(in_ref, v_old, v_star)
        x = v_star.real if self.complex_v else v_star
        if noise is not None:
            x = x + noise
        theta = p.theta[sl]
        with np.errstate(invalid="ignore"):
            if self.all_fat:
                fire = x >= theta
            elif self.any_fat:
                fire = np.where(p.fire_at_threshold[sl], x >= theta, x > theta)
            else:
                fire = x > theta
        if in_ref is not None:
            fire &= ~in_ref
        if self.any_graded:
            gmax = p.graded_max[sl]
            with np.errstate(invalid="ignore", divide="ignore"):
                n = np.clip(np.floor(x / theta), 1, np.maximum(gmax, 1))
            s = np.where(fire, np.where(gmax > 0, n, 1.0), 0.0)
        else:
            s = fire.astype(np.float64)
        if self.all_hard:
            v_new = np.where(fire, p.v_reset[sl], v_star)
        else:
            rs = p.reset[sl]
            v_new = v_star
            if self.any_soft:
                with np.errstate(invalid="ignore"):
                    v_new = np.where(rs == RESET_SOFT, v_star - theta * s, v_new)
            if self.any_hard:
                v_new = np.where((rs == RESET_HARD) & fire, p.v_reset[sl], v_new)
        self.v[:, sl] = v_new
        if self.refr is not None:
            r = self.refr[:, sl]
            self.refr[:, sl] = np.where(fire, p.refractory[sl], np.maximum(r - 1, 0))
        return s


# -------------------------------------------------------------------------- loihi
class LoihiArith(Arith):
    """Lava's bit-accurate LIF (``loihi_arith.current_update`` / ``voltage_update`` /
    ``spike_test``), int32 u and v in Lava's units (v = 64 x activation units), which are the units
    of a network quantised for Loihi (``nmcompiler.passes.quantize``).

    Lava has only hard reset to 0, binary spikes and no refractory period in its
    bit-accurate models; for the other IR features the emulator uses integer analogues:
    soft reset ``v* - (vth << 6) n``, reset none, ``v_reset`` (hard reset to
    ``v_reset``, in v units), graded payload ``n = clip(v* // (vth << 6), 1, graded_max)`` and the
    IR's refractory rule (v held, u integrates; ``loihi_arith.lif_refractory_step``).
    """

    family = "loihi"

    def __init__(self, p: SlotParams, formats: Any = None) -> None:
        super().__init__(p, formats)
        ex = p.extra
        self.du = ex["du"].astype(np.int64)
        self.dv = ex["dv"].astype(np.int64)
        self.vth = ex["vth"].astype(np.int64)
        self.bias_eff = la.effective_bias(ex["bias_mant"], ex["bias_exp"]).astype(np.int32)
        self.th64 = np.left_shift(self.vth, la.VTH_SHIFT)
        self.vres64 = np.rint(np.real(p.v_reset)).astype(np.int32)
        self.all_plain = bool(
            np.all(p.reset == RESET_HARD) and not np.any(self.vres64) and not np.any(
                p.graded_max > 0))
        self._short: dict[tuple, tuple[bool, bool, bool]] = {}

    def init(self, batch: int) -> None:  # noqa: D102
        self.u = np.zeros((batch, self.n), dtype=np.int32)
        self.v = np.zeros((batch, self.n), dtype=np.int32)
        self.refr = np.zeros((batch, self.n), dtype=np.int64) if self.has_refr else None

    def _shortcuts(self, sl: slice) -> tuple[bool, bool, bool]:
        """Per slot range, whether every current decays fully (``du`` factor 0), every
        voltage keeps its value (factor 4096) and every neuron spikes: then
        :func:`~nmcompiler.targets.families.loihi.current_update`'s decay is 0 and
        :func:`~nmcompiler.targets.families.loihi.voltage_update`'s is the identity,
        exactly, and the steps that compute them are skipped."""
        key = (sl.start, sl.stop)
        got = self._short.get(key)
        if got is None:
            fu = la.DECAY_UNITY - (self.du[sl] + la.DS_OFFSET)
            fv = la.DECAY_UNITY - (self.dv[sl] + la.DM_OFFSET)
            got = (bool(np.all(fu == 0)), bool(np.all(fv == la.DECAY_UNITY)),
                   bool(np.all(self.p.spiking[sl])))
            self._short[key] = got
        return got

    def step(self, a: np.ndarray, sl: slice, noise: np.ndarray | None) -> np.ndarray | None:  # noqa: D102
        p = self.p
        a32 = a.astype(np.int64).astype(np.int32) if a.dtype != np.int32 else a
        u_zero, v_keep, all_spike = self._shortcuts(sl)
        if u_zero:  # wrap_u(0 + a << 6); no value can wrap while |a << 6| < 2**23
            act = np.left_shift(a32, np.int32(la.ACT_SHIFT))
            u_new = act if self.a_bound * 2**la.ACT_SHIFT < la.MAX_UV else la.wrap_u(act)
        else:
            u_new = la.current_update(self.u[:, sl], a32, self.du[sl])
        v_old = self.v[:, sl]
        if v_keep and self.refr is None and self.all_plain and u_new.dtype == v_old.dtype:
            # v is updated in place (its old value is not needed again): same int32 ops
            v_star = v_old
            v_star += u_new
            v_star += self.bias_eff[sl]
            np.clip(v_star, la.V_MIN, la.V_MAX, out=v_star)
        elif v_keep:
            v_star = v_old + u_new
            v_star += self.bias_eff[sl]
            np.clip(v_star, la.V_MIN, la.V_MAX, out=v_star)
        else:
            v_star = la.voltage_update(v_old, u_new, self.bias_eff[sl], self.dv[sl])
        in_ref = None
        if self.refr is not None:
            in_ref = self.refr[:, sl] > 0
            v_star = np.where(in_ref, v_old, v_star).astype(np.int32)
        fire = v_star > self.th64[sl]  # la.spike_test
        if not all_spike:
            fire &= p.spiking[sl]
        if in_ref is not None:
            fire &= ~in_ref
        if not (u_zero and not self.keep_u):  # u of a zero decay is not read again
            self.u[:, sl] = u_new
        if self.all_plain:  # binary spikes: the engine reads ``fired`` / ``fired_idx``
            if fire.shape[0] == 1:
                idx = np.flatnonzero(fire[0])
                v_star[0, idx] = 0
                self.fired_idx = idx
            else:
                v_star[fire] = 0
            if v_star is not v_old:
                self.v[:, sl] = v_star
            self.fired = fire
            s = None
        else:
            th = self.th64[sl]
            gmax = p.graded_max[sl]
            n = np.clip(v_star.astype(np.int64) // np.maximum(th, 1), 1, np.maximum(gmax, 1))
            s_int = np.where(fire, np.where(gmax > 0, n, 1), 0)
            rs = p.reset[sl]
            v_new = np.where(rs == RESET_SOFT, v_star - th * s_int, v_star.astype(np.int64))
            v_new = np.where((rs == RESET_HARD) & fire, self.vres64[sl], v_new)
            self.v[:, sl] = np.clip(v_new, la.V_MIN, la.V_MAX).astype(np.int32)
            s = s_int.astype(np.float64)
        if self.refr is not None:
            r = self.refr[:, sl]
            self.refr[:, sl] = np.where(fire, p.refractory[sl], np.maximum(r - 1, 0))
        return s


# -------------------------------------------------------------------------- spinnaker
Q = 15  #: fraction bits of s16.15


def _smul_round_nearest(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``__stdfix_smul_k_round_nearest``: (a*b + 2**14) >> 15, saturated to int32."""
    prod = (a.astype(np.int64) * b.astype(np.int64) + (1 << (Q - 1))) >> Q
    return np.clip(prod, -(2**31), 2**31 - 1)


class SpinnakerArith(Arith):
    """sPyNNaker LIF in s16.15 fixed point, state as int64 holding the 32-bit ``accum`` bits.

    The quantised network is in the raw LSB units of s16.15 (the quantize pass: a value
    ``x`` reads ``x / 2**15``); decays are fractions on the ``2**-decay_bits`` grid. Per
    step, per neuron (IR order; ``neuron_impl_standard.h``: inputs are added to the
    synaptic buffer, the neuron integrates, the buffer decays):
    ``u = decay_s1615(u, D_u) + a`` with ``D_u = round(alpha_u * 2**32)`` and
    ``decay_s1615(x, d) = (x * d) >> 32`` (floor); ``v* = MULT_ROUND_NEAREST_ACCUM(lam, v)
    + u + bias`` (``lam`` as s16.15, ``(lam * v + 2**14) >> 15``); 32-bit overflow as the
    target's formats say (``wrap`` or ``saturate``); spike ``v* >= theta``
    (``threshold_type_static``); hard reset to ``v_reset`` and v held while the
    refractory timer runs (``neuron_model_has_spiked``, ``neuron_model_state_update``).
    """

    family = "spinnaker"

    def __init__(self, p: SlotParams, formats: Any = None) -> None:
        super().__init__(p, formats)
        self.du = np.clip(np.rint(np.real(p.alpha_u) * 2.0**32), 0, 2**32 - 1).astype(np.int64)
        self.lam = np.rint(np.real(p.lam) * float(1 << Q)).astype(np.int64)
        self.theta = np.rint(np.minimum(np.real(p.theta), 2.0**40)).astype(np.int64)
        self.bias = np.rint(np.real(p.bias)).astype(np.int64)
        self.vres = np.rint(np.real(p.v_reset)).astype(np.int64)
        self.mode = getattr(formats, "voltage_overflow", "wrap")
        self._short: dict[tuple, tuple[bool, bool, bool]] = {}

    def init(self, batch: int) -> None:  # noqa: D102
        self.u = np.zeros((batch, self.n), dtype=np.int64)
        self.v = np.zeros((batch, self.n), dtype=np.int64)
        self.refr = np.zeros((batch, self.n), dtype=np.int64) if self.has_refr else None

    def _wrap(self, x: np.ndarray) -> np.ndarray:
        """32-bit overflow (``wrap`` or ``saturate``); values already in range, the
        common case, are returned as they are (both rules leave them unchanged)."""
        if x.size and (int(x.min()) < -(2**31) or int(x.max()) > 2**31 - 1):
            if self.mode == "wrap":
                return ((x + 2**31) % 2**32) - 2**31
            return np.clip(x, -(2**31), 2**31 - 1)
        return x

    def _shortcuts(self, sl: slice) -> tuple[bool, bool, bool]:
        """Per slot range, whether every current decays fully (``D_u = 0``: the decayed
        current is 0), every ``lam`` is 1 (``2**15`` in s16.15: the rounded product is
        ``v`` itself, exactly) and every neuron spikes."""
        key = (sl.start, sl.stop)
        got = self._short.get(key)
        if got is None:
            lam_one = bool(np.all(self.lam[sl] == 1 << Q)) and bool(
                np.all(np.abs(self.vres[sl]) < 2**31))  # stored v stays within int32
            got = (bool(np.all(self.du[sl] == 0)), lam_one, bool(np.all(self.p.spiking[sl])))
            self._short[key] = got
        return got

    def step(self, a: np.ndarray, sl: slice, noise: np.ndarray | None) -> None:  # noqa: D102
        p = self.p
        du_zero, lam_one, all_spike = self._shortcuts(sl)
        if du_zero and lam_one and self.refr is None:
            self._step_in_place(a, sl, all_spike)
            return None
        aq = np.rint(a).astype(np.int64)
        if du_zero:
            u = self._wrap(aq)
        else:
            u = self._wrap(((self.u[:, sl] * self.du[sl]) >> 32) + aq)
        self.u[:, sl] = u
        v_old = self.v[:, sl]
        if lam_one:
            x = v_old + u
        else:
            x = _smul_round_nearest(self.lam[sl], v_old)
            x += u
        x += self.bias[sl]
        v_star = self._wrap(x)
        in_ref = None
        if self.refr is not None:
            in_ref = self.refr[:, sl] > 0
            v_star = np.where(in_ref, v_old, v_star)
        fire = v_star >= self.theta[sl]
        if not all_spike:
            fire &= p.spiking[sl]
        if in_ref is not None:
            fire &= ~in_ref
        self._reset(v_star, fire, sl)
        self.v[:, sl] = v_star
        if self.refr is not None:
            r = self.refr[:, sl]
            self.refr[:, sl] = np.where(fire, p.refractory[sl], np.maximum(r - 1, 0))
        self.fired = fire
        return None  # binary spikes: the engine reads ``fired`` (and ``fired_idx``)

    def _step_in_place(self, a: np.ndarray, sl: slice, all_spike: bool) -> None:
        """:meth:`step` where every current decays fully, every ``lam`` is 1 and no
        neuron has a refractory period: the same numbers, computed in the state arrays
        themselves (``u = a``, ``v = wrap(v + u + bias)``, reset where ``v >= theta``)
        with no temporaries of the slots' size but the spike mask; ``u``'s overflow
        check is skipped where the sums' bound (``a_bound``) keeps it within 32 bits."""
        u = self.u[:, sl]
        np.rint(a, out=u, casting="unsafe")  # whole numbers: exact in int64
        if not self.a_bound < 2**31:
            w = self._wrap(u)
            if w is not u:
                u[...] = w
        v = self.v[:, sl]
        v += u
        v += self.bias[sl]
        w = self._wrap(v)
        if w is not v:
            v[...] = w
        fire = v >= self.theta[sl]
        if not all_spike:
            fire &= self.p.spiking[sl]
        self._reset(v, fire, sl)
        self.fired = fire

    def _reset(self, v: np.ndarray, fire: np.ndarray, sl: slice) -> None:
        """Hard reset of the firing slots' ``v`` (in place) to ``v_reset``; with one
        sample, their indices as ``fired_idx``."""
        if fire.shape[0] == 1:
            idx = np.flatnonzero(fire[0])
            v[0, idx] = self.vres[sl][idx]
            self.fired_idx = idx
        else:
            v[fire] = np.broadcast_to(self.vres[sl], fire.shape)[fire]


# -------------------------------------------------------------------------- speck
class SpeckArith(Arith):
    """DYNAP-CNN integrate-and-fire (sinabs' discretised ``IAFSqueeze`` conventions)."""

    family = "speck"

    def __init__(self, p: SlotParams, formats: Any = None) -> None:
        super().__init__(p, formats)
        bits = int(getattr(formats, "voltage_bits", 16) or 16)
        self.lo, self.hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        if np.any(np.real(p.lam) != 1) or np.any(p.alpha_u != 0):
            raise BackendError(
                "speck arithmetic has no leak and no current stage",
                obj="speck", rule="IAF neurons (lam = 1, alpha_u = 0)",
                hint="use IF neurons for Speck targets",
            )
        # a readout's threshold is infinite: beyond the voltage range, it never fires
        theta = np.real(p.theta)
        self.theta = np.where(np.isfinite(theta), np.rint(np.nan_to_num(theta)),
                              self.hi + 1).astype(np.int64)
        self.bias = np.rint(np.real(p.bias)).astype(np.int64)

    def init(self, batch: int) -> None:  # noqa: D102
        self.u = np.zeros((batch, self.n), dtype=np.int64)
        self.v = np.zeros((batch, self.n), dtype=np.int64)

    def step(self, a: np.ndarray, sl: slice, noise: np.ndarray | None) -> np.ndarray:  # noqa: D102
        p = self.p
        ai = np.rint(a).astype(np.int64)
        self.u[:, sl] = ai
        v_star = np.clip(self.v[:, sl] + ai + self.bias[sl], self.lo, self.hi)
        th = np.maximum(self.theta[sl], 1)
        fire = (v_star >= th) & p.spiking[sl]
        gmax = p.graded_max[sl]
        n = np.clip(v_star // th, 1, np.maximum(gmax, 1))
        s = np.where(fire, np.where(gmax > 0, n, 1), 0)
        rs = p.reset[sl]
        v_new = np.where(rs == RESET_SOFT, v_star - th * s, v_star)
        v_new = np.where((rs == RESET_HARD) & fire, 0, v_new)
        self.v[:, sl] = v_new
        return s.astype(np.float64)


def make_arith(family: str, p: SlotParams, formats: Any = None, *, integer: bool = True
               ) -> Arith:
    """The arithmetic named ``family`` (a chip family's ``emulator_arithmetic``)."""
    cls = ARITHMETICS.get(family)
    if cls is None:
        raise BackendError(
            f"the emulator has no arithmetic for target family '{family}'",
            obj=family, rule="family", hint="families: " + ", ".join(FAMILIES),
        )
    if cls is GenericArith:
        return GenericArith(p, formats, integer=integer)
    return cls(p, formats)


#: arithmetic name (a chip family's ``emulator_arithmetic``) -> its class; a new
#: arithmetic is one class here, whose ``family`` attribute is its name
ARITHMETICS: dict[str, type[Arith]] = {
    cls.family: cls for cls in (GenericArith, LoihiArith, SpinnakerArith, SpeckArith)
}

#: the arithmetic names, in registry order
FAMILIES = tuple(ARITHMETICS)
