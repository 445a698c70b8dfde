"""The Loihi chip family: its rules for the compiler, and its fixed-point arithmetic
exactly as Lava's bit-accurate CPU models compute it.

:class:`LoihiFamily` answers the compiler's questions (number formats, spike test); the
rest of the module is the family's arithmetic reference, used by the quantizer, the
emulator and the Lava backend alike.

This module re-implements, vectorised in numpy over neurons and a leading batch axis,
the integer arithmetic of the Lava 0.10.0 process models that
``Loihi2SimCfg(select_tag="fixed_pt")`` selects. Those models define "Loihi arithmetic"
for nmcompiler (docs/loihi_arithmetic.md); every function cites the Lava source file and
lines it follows (paths relative to ``site-packages/lava/``). It imports numpy only and
runs on Python 3.10 and 3.11, under numpy 1.26 (Lava's environment) and numpy 2.x:
every intermediate dtype is explicit, so NEP 50 promotion changes nothing.

Step order (one Lava time step ``t = 1, 2, ...``; index ``i = t - 1`` in our arrays)
----------------------------------------------------------------------------------
All processes run ``run_spk`` of step ``t`` in lock-step; the order of the ports is:

1. an input ``RingBuffer`` sends column ``i`` of its data
   (``proc/io/source.py`` l.45-48: ``data[..., (time_step - 1) % buffer]``);
2. every ``Dense``/``Sparse`` sends the activation it accumulated in step ``t - 1``
   (``a_buff``), and only then receives this step's pre-synaptic spikes and computes the
   activation it will send in step ``t + 1`` (``proc/dense/models.py`` l.93-107);
3. every LIF receives the sum of its incoming activations, updates ``u`` then ``v``,
   spikes, resets, sends ``s_out`` (``proc/lif/models.py`` l.194-216).

Hence a spike emitted (or injected) at index ``i`` changes the post neuron's ``u`` at
index ``i + 1``: **every Dense/Sparse edge has a delay of exactly one step**, which is
``d_p = 1`` in the IR's equation ``a[t] = sum_p W_p . s_pre[t - d_p]``. A ``DelayDense``
/ ``DelaySparse`` synapse with delay ``k`` (0..63) arrives at ``i + 1 + k``
(IR ``d_p = 1 + k``); ``k = 0`` behaves exactly like ``Dense``.
Example timeline (input -> Dense(w=1) -> LIF, du=4095 (u has no memory), dv=0, vth=0)::

    index i       : 0    1    2    3
    input spike   : 1    0    0    0
    Dense a_out   : 0    1    0    0     (buffered one step)
    LIF u         : 0    64   0    0     (a_in << 6)
    LIF v* / v    : 0    64/0 0    0     (v* = 64 > vth << 6 = 0: spike at i=1, v reset)
    LIF spike     : 0    1    0    0     (reaches its own targets' u at i = 2)

Arithmetic of one LIF step (``PyLifModelBitAcc``, ``proc/lif/models.py`` l.72-216, 240-278)
-------------------------------------------------------------------------------------------
``u, v`` are int32 arrays holding 24-bit values. With ``a`` the int32 sum of the incoming
activations (the port adds them in int32, ``magma/core/model/py/ports.py`` l.333-351):

1. ``bias = bias_mant << bias_exp`` (arithmetic ``>> -bias_exp`` for negative exponents),
   recomputed every step (l.110-122, l.202);
2. ``u' = trunc0(u * (4096 - (du + 1)) / 4096)``: int64 product, sign * (|x| >> 12), i.e.
   rounding towards zero; note the ``+ 1`` (``ds_offset``): du = 0 still decays u by
   1/4096 and du = 4095 clears it (l.94, 145-153);
3. ``u' += a << 6`` in int32 (l.155-157);
4. ``u`` wraps **once** to 24 bits: ``u' > 2**23 -> u' - 2**24``, ``u' <= -2**23 ->
   u' + 2**24`` (so ``+2**23`` is kept as is and ``-2**23`` becomes ``+2**23``)
   (l.158-171);
5. ``v* = trunc0(v * (4096 - dv) / 4096) + u + bias`` (``dm_offset = 0``), then **clipped**
   (saturated, not wrapped) to ``[-(2**23 - 1), 2**23 - 1]`` (l.174-186);
6. spike ``s = v* > (vth << 6)`` (strictly greater) (l.268-278);
7. ``v = 0`` where ``s``; ``u`` is not reset (l.188-192).

Synapse (``PyDenseModelBitAcc`` ``proc/dense/models.py`` l.57-114; ``PySparseModelBitAcc``
``proc/sparse/models.py`` l.58-114; weight handling ``utils/weightutils.py``)
----------------------------------------------------------------------------------------
On the first step the weights are clipped to 8 bits and their low bits truncated according
to the sign mode (``mixed``: clip to [-256, 255] then clear the LSB, i.e. even values in
[-256, 254]; ``excitatory``: [0, 255]; ``inhibitory``: [-255, 0]; auto-detected from the
matrix as Lava does). Each step the activation is the sum over active pre-neurons
(binary: ``num_message_bits == 0``, any nonzero input counts as 1; graded: the integer
payload multiplies the weight, int32 dot product) **then** shifted by ``weight_exp``
(``<<`` if positive, arithmetic ``>>``, rounding towards -inf, if zero or negative). The
result is sent as int32 (wrapping). Sparse is arithmetically identical to Dense with the
absent synapses set to 0.

Lava 0.10 lacks (the emulator must treat these differently): a bit-accurate
``LIFRefractory`` (only ``PyLifRefractoryModelFloat`` exists; :func:`lif_refractory_step`
here is an integer analogue of it, *not* verified against Lava), graded-spike output of LIF
(LIF sends 0/1; graded payloads come from inputs or ``GradedVec``), and soft reset.
Resonate-and-fire exists only as ``PyRFModelFixed`` (tag ``fixed_pt``, not
``bit_accurate_loihi``); :func:`rf_step` follows it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np

from nmcompiler.parallel import each

from .base import Family

__all__ = [
    "ACT_SHIFT",
    "DECAY_SHIFT",
    "DECAY_UNITY",
    "MAX_UV",
    "UV_BITS",
    "V_MAX",
    "V_MIN",
    "VTH_SHIFT",
    "SynapseSpec",
    "LifParams",
    "bias_from_float",
    "decay_from_factor",
    "effective_bias",
    "effective_weights",
    "factor_from_decay",
    "lif_refractory_step",
    "lif_reset_due",
    "lif_step",
    "prepare_weights",
    "current_update",
    "rf_step",
    "sign_mode_of",
    "spike_test",
    "voltage_update",
    "run_spec",
    "shift_by_exp",
    "sum_activations",
    "synapse_accumulate",
    "synapse_init",
    "synapse_step",
    "weights_from_float",
    "vth_from_float",
    "wrap_u",
]

# --------------------------------------------------------------------------------------
# Bit widths (proc/lif/models.py l.94-108)
# --------------------------------------------------------------------------------------
UV_BITS = 24  #: width of u and v
MAX_UV = 2 ** (UV_BITS - 1)  #: 2**23, Lava's ``max_uv_val``
V_MIN = -MAX_UV + 1  #: lowest v after the clip
V_MAX = MAX_UV - 1  #: highest v after the clip
DECAY_SHIFT = 12  #: du, dv are 12-bit fractions of 4096
DECAY_UNITY = 2**DECAY_SHIFT
VTH_SHIFT = 6  #: effective threshold is vth << 6
ACT_SHIFT = 6  #: incoming activation is a_in << 6
DS_OFFSET = 1  #: added to du (Loihi 1 register, l.94)
DM_OFFSET = 0  #: added to dv (l.95)
MAX_DELAY = 63  #: DelayDense / DelaySparse limit (proc/dense/models.py l.330-334)

_I32 = np.int32
_I64 = np.int64


def _i32(x: Any) -> np.ndarray:
    """Cast to int32 with two's-complement wrapping (as numpy assignment into int32 does)."""
    return np.asarray(x).astype(_I32, casting="unsafe")


# ======================================================================================
# Synapse stage
# ======================================================================================
_SIGN_MODES = ("mixed", "excitatory", "inhibitory")


def sign_mode_of(weights: np.ndarray) -> str:
    """Sign mode Lava infers from a weight matrix.

    Follows ``utils/weightutils.py`` l.21-43 (``determine_sign_mode``): excitatory if the
    minimum is >= 0 (an all-zero matrix is excitatory), inhibitory if the maximum is <= 0,
    else mixed. Zeros (absent synapses of a Sparse matrix) count, as in ``csr.min()``.
    """
    w = np.asarray(weights)
    if w.size == 0 or np.min(w) >= 0:
        return "excitatory"
    if np.max(w) <= 0:
        return "inhibitory"
    return "mixed"


def prepare_weights(
    weights: np.ndarray, *, num_weight_bits: int = 8, sign_mode: str | None = None
) -> np.ndarray:
    """The int32 weights Lava's bit-accurate Dense/Sparse actually use.

    Follows ``proc/dense/models.py`` l.82-91 (first ``run_spk``), which calls
    ``clip_weights(w, sign_mode, num_bits=8)`` (``utils/weightutils.py`` l.250-295) and then
    ``truncate_weights(w, sign_mode, num_weight_bits)`` (l.204-247):

    - mixed: clip to [-256, 255], then ``(w >> (9 - nwb)) << (9 - nwb)`` (nwb = 8 clears
      the LSB: odd weights round towards -inf);
    - excitatory: clip to [0, 255], ``(w >> (8 - nwb)) << (8 - nwb)``;
    - inhibitory: negate, as excitatory, negate back (rounds towards 0).
    """
    w = np.asarray(weights).astype(_I32)
    mode = sign_mode if sign_mode is not None else sign_mode_of(w)
    if mode not in _SIGN_MODES:
        raise ValueError(f"sign_mode must be one of {_SIGN_MODES} or None, got {mode!r}")
    mixed = int(mode == "mixed")
    if mode == "inhibitory":
        w = -w
    lo = -256 * mixed
    w = np.clip(w, lo, 255).astype(_I32)
    ntrunc = 8 - int(num_weight_bits) + mixed
    w = (w >> ntrunc) << ntrunc
    if mode == "inhibitory":
        w = -w
    return w.astype(_I32)


def synapse_weights(weights: np.ndarray, *, weight_shift: int, weight_exp: int,
                    num_weight_bits: int = 8, sign_mode: str | None = None,
                    block: int = 1 << 20, pool: Executor | None = None,
                    dtype: Any = np.float64) -> tuple[np.ndarray, str]:
    """Float weights as Lava's Dense/Sparse apply them, in float64, and the sign mode:
    mantissas ``rint(w / 2**weight_shift)``, :func:`prepare_weights` (the sign mode Lava
    infers from the mantissas, :func:`sign_mode_of`, unless given), times
    ``2**weight_exp`` where it is positive (a negative exponent shifts the sum, not each
    weight). Computed ``block`` entries at a time into one output array (no full-size
    temporaries; the blocks on ``pool``'s threads where given: each writes its own
    part); the values are those of the whole-array formulas. ``dtype``: the output's
    (float32 holds every one of these whole numbers, below 2**9 x 2**weight_exp,
    exactly up to ``weight_exp`` 15)."""
    w = np.asarray(weights).reshape(-1)
    scale = 2.0 ** int(weight_shift)
    if sign_mode is None:
        # rint is monotone: the mantissas' extremes are those of the extremes
        lo_hi = (np.array([w.min(), w.max()]) if w.size else np.zeros(0)) / scale
        sign_mode = sign_mode_of(np.rint(lo_hi))
    out = np.empty(w.shape[0], dtype=dtype)

    def one(i: int) -> None:
        out[i:i + block] = prepare_weights(np.rint(w[i:i + block] / scale),
                                           num_weight_bits=num_weight_bits,
                                           sign_mode=sign_mode)

    each(one, range(0, w.shape[0], block), pool)
    if weight_exp > 0:
        out *= float(2 ** int(weight_exp))
    return out.reshape(np.shape(weights)), sign_mode


def effective_weights(weights: np.ndarray, weight_exp: int, **kw: Any) -> np.ndarray:
    """Per-synapse effective weight ``prepare_weights(w) * 2**weight_exp`` (float64).

    For reasoning only: Lava shifts the *sum* of the weights, not each weight, so with a
    negative ``weight_exp`` the activation is ``floor(sum(w) / 2**-weight_exp)``.
    """
    return prepare_weights(weights, **kw).astype(np.float64) * 2.0 ** int(weight_exp)


def shift_by_exp(x: np.ndarray, weight_exp: int) -> np.ndarray:
    """``x << weight_exp`` if ``weight_exp > 0`` else ``x >> -weight_exp`` (arithmetic).

    Follows ``proc/dense/models.py`` l.103-107. The dtype of ``x`` is kept.
    """
    e = int(weight_exp)
    return np.left_shift(x, e) if e > 0 else np.right_shift(x, -e)


@dataclass(frozen=True, slots=True)
class SynapseSpec:
    """One Dense / Sparse / DelayDense / DelaySparse connection in Lava's terms.

    Attributes:
        weights: int32 (n_post, n_pre), already passed through :func:`prepare_weights`.
        weight_exp: shared weight exponent (shift of the summed activation).
        num_message_bits: 0 = binary spikes, > 0 = graded integer payloads.
        delays: None for Dense/Sparse, else int (n_post, n_pre) synaptic delays 0..63
            (DelayDense: a spike at index i arrives at i + 1 + delay).
    """

    weights: np.ndarray
    weight_exp: int = 0
    num_message_bits: int = 0
    delays: np.ndarray | None = None

    @staticmethod
    def from_raw(
        weights: np.ndarray,
        weight_exp: int = 0,
        num_message_bits: int = 0,
        delays: np.ndarray | int | None = None,
        *,
        num_weight_bits: int = 8,
        sign_mode: str | None = None,
    ) -> SynapseSpec:
        """Build from the raw integer weights a user would give Lava's Dense."""
        w = prepare_weights(weights, num_weight_bits=num_weight_bits, sign_mode=sign_mode)
        d = None
        if delays is not None:
            d = np.broadcast_to(np.asarray(delays, dtype=_I64), w.shape).copy()
            if d.size and (d.min() < 0 or d.max() > MAX_DELAY):
                raise ValueError(f"delays must be in 0..{MAX_DELAY}")
        return SynapseSpec(w, int(weight_exp), int(num_message_bits), d)

    @property
    def max_delay(self) -> int:
        """Largest synaptic delay (0 for Dense/Sparse)."""
        return 0 if self.delays is None or self.delays.size == 0 else int(self.delays.max())


def synapse_accumulate(syn: SynapseSpec, s_in: np.ndarray) -> np.ndarray:
    """Activation one step of pre-synaptic input produces, before buffering.

    Args:
        syn: the connection.
        s_in: (..., n_pre) spikes (binary: nonzero = spike) or graded integer payloads.

    Returns:
        Without delays: int32 (..., n_post). With delays: int64 (..., n_post, max_delay+1),
        the column k holding what arrives after synaptic delay k.

    Dense path follows ``proc/dense/models.py`` l.97-107: binary ``weights[:, s].sum(1)``
    (int64 sum) or graded ``weights.dot(s_in)`` (int32 dot product, wrapping), then
    :func:`shift_by_exp`, then the int32 port cast. Sparse (``proc/sparse/models.py``
    l.97-107) computes the same numbers. Delay path follows ``AbstractPyDelayDenseModel.
    calc_act`` (``proc/dense/models.py`` l.202-241, l.340-352): per-delay weight matrices,
    elementwise int32 products ``w * s_in`` summed in int64, shifted per delay bucket.
    """
    s = np.asarray(s_in)
    w = syn.weights
    if syn.delays is None:
        if syn.num_message_bits > 0:
            acc = np.matmul(_i32(s), w.T.astype(_I32))  # int32, wraps like np.dot
            return _i32(shift_by_exp(acc, syn.weight_exp))
        acc = np.matmul((s != 0).astype(_I64), w.T.astype(_I64))
        return _i32(shift_by_exp(acc, syn.weight_exp))
    graded = syn.num_message_bits > 0
    cols = []
    for k in range(syn.max_delay + 1):  # loop over delay values, not neurons
        wk = np.where(syn.delays == k, w, 0).astype(_I32)
        if graded:
            # int32 products (wrapping per product), summed in int64
            prod = wk[None, :, :] * _i32(s).reshape(-1, 1, s.shape[-1])
            acc = prod.astype(_I64).sum(axis=-1).reshape(s.shape[:-1] + (w.shape[0],))
        else:
            acc = np.matmul((s != 0).astype(_I64), wk.T.astype(_I64))
        cols.append(shift_by_exp(acc, syn.weight_exp))
    return np.stack(cols, axis=-1).astype(_I64)


def synapse_init(syn: SynapseSpec, batch_shape: tuple[int, ...] = ()) -> np.ndarray:
    """Zero activation buffer ``a_buff``: int32 (*batch, n_post, max_delay + 1)."""
    return np.zeros(batch_shape + (syn.weights.shape[0], syn.max_delay + 1), dtype=_I32)


def synapse_step(
    syn: SynapseSpec, a_buff: np.ndarray, s_in: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One Lava step of a connection: send the buffered activation, then accumulate.

    Args:
        syn: the connection.
        a_buff: int32 (..., n_post, max_delay + 1) from :func:`synapse_init` or the
            previous call.
        s_in: (..., n_pre) pre-synaptic spikes / payloads of *this* step.

    Returns:
        ``(a_out, a_buff)``: int32 (..., n_post) activation the post neurons receive in this
        step (from spikes of earlier steps), and the new buffer.

    Follows ``proc/dense/models.py`` l.93-107 (Dense: ``a_out.send(a_buff)`` then
    ``a_buff = shift(accum)``) and l.336-352 (DelayDense: send ``a_buff[:, 0]``, zero it,
    roll by one, add the shifted per-delay accumulation, int32 in-place add).
    """
    a_out = a_buff[..., 0].copy()
    acc = synapse_accumulate(syn, s_in)
    if syn.delays is None:
        new = acc[..., None].astype(_I32)
    else:
        new = np.zeros_like(a_buff)
        new[..., :-1] = a_buff[..., 1:]
        new = _i32(new.astype(_I64) + acc)
    return a_out, new


def sum_activations(parts: Sequence[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """Sum of the activations arriving at one ``a_in`` port, in int32 (wrapping).

    Follows ``magma/core/model/py/ports.py`` l.333-351 (``PyInPortVectorDense.recv``:
    ``reduce(acc + port.recv(), ports, zeros(shape, int16))`` with int32 channels).
    """
    acc = np.zeros(shape, dtype=_I32)
    for p in parts:
        acc = acc + _i32(p)
    return acc


# ======================================================================================
# LIF neuron
# ======================================================================================
@dataclass(frozen=True, slots=True)
class LifParams:
    """Integer LIF parameters as Lava's ``LIF`` process takes them.

    Each field is an int or an int array broadcastable to (n,) (Lava accepts per-neuron
    arrays for du, dv and vth as well, although it documents them as shared).

    Attributes:
        du: current decay, 0..4095; u is multiplied by (4095 - du) / 4096.
        dv: voltage decay, 0..4095; v is multiplied by (4096 - dv) / 4096.
        vth: threshold mantissa, 0..131071 (17 bits); effective threshold vth << 6.
        bias_mant: bias mantissa, -4096..4095 (13 bits).
        bias_exp: bias exponent, 0..7 (negative: arithmetic right shift).
    """

    du: Any = 0
    dv: Any = 0
    vth: Any = 10
    bias_mant: Any = 0
    bias_exp: Any = 0


def effective_bias(bias_mant: Any, bias_exp: Any) -> np.ndarray:
    """``bias_mant << bias_exp`` (``>> -bias_exp`` if negative), int32.

    Follows ``AbstractPyLifModelFixed.scale_bias`` (``proc/lif/models.py`` l.110-122).
    """
    m = np.asarray(bias_mant).astype(_I32)
    e = np.asarray(bias_exp).astype(_I64)
    left = np.left_shift(m, np.maximum(e, 0).astype(_I32))
    right = np.right_shift(m, np.maximum(-e, 0).astype(_I32))
    return np.where(e >= 0, left, right).astype(_I32)


def _decay(x: np.ndarray, factor: Any) -> np.ndarray:
    """``sign(x * f) * (|x * f| >> 12)`` as int32: l.149-153 and l.180-184."""
    prod = x.astype(_I64) * np.asarray(factor, dtype=_I64)
    return (np.sign(prod) * np.right_shift(np.abs(prod), DECAY_SHIFT)).astype(_I32)


def wrap_u(x: np.ndarray) -> np.ndarray:
    """Lava's one-shot 24-bit wrap of the current (``proc/lif/models.py`` l.158-171).

    ``x > 2**23`` becomes ``x - 2**24``; then, where that result is ``<= -2**23``, the value
    becomes ``x + 2**24``. This is not a modulo: ``+2**23`` stays, ``-2**23`` becomes
    ``+2**23``, and values beyond 1.5 * 2**24 in magnitude stay outside 24 bits.
    """
    x = x.astype(_I32)
    w = np.where(x > MAX_UV, x - _I32(2 * MAX_UV), x)
    w = np.where(w <= -MAX_UV, x + _I32(2 * MAX_UV), w)
    return w.astype(_I32)


def current_update(u: np.ndarray, a_in: np.ndarray, du: Any) -> np.ndarray:
    """New current: decay (round to 0), ``+ a_in << 6`` in int32, one-shot 24-bit wrap.

    Follows ``AbstractPyLifModelFixed.subthr_dynamics`` (``proc/lif/models.py`` l.143-171).
    """
    uc = _decay(np.asarray(u), DECAY_UNITY - (np.asarray(du, dtype=_I64) + DS_OFFSET))
    act = np.left_shift(_i32(a_in), _I32(ACT_SHIFT))
    return wrap_u(uc + act)


def voltage_update(v: np.ndarray, u: np.ndarray, bias: np.ndarray, dv: Any) -> np.ndarray:
    """``v* = clip(decay(v) + u + bias)``, int32 sum, saturated to +-(2**23 - 1).

    Follows ``AbstractPyLifModelFixed.subthr_dynamics`` (``proc/lif/models.py`` l.172-186).
    """
    vc = _decay(np.asarray(v), DECAY_UNITY - (np.asarray(dv, dtype=_I64) + DM_OFFSET))
    return np.clip(vc + _i32(u) + _i32(bias), V_MIN, V_MAX).astype(_I32)


def spike_test(v_star: np.ndarray, vth: Any) -> np.ndarray:
    """``v* > vth << 6`` (strict), ``PyLifModelBitAcc`` l.268-278."""
    return v_star > np.left_shift(np.asarray(vth, dtype=_I64), VTH_SHIFT)


def lif_step(
    u: np.ndarray,
    v: np.ndarray,
    a_in: np.ndarray,
    p: LifParams,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step of ``PyLifModelBitAcc``; returns new ``(u, v, spikes)``.

    Args:
        u: int32 (..., n) current, 24-bit values.
        v: int32 (..., n) voltage.
        a_in: (..., n) int32 activation summed over incoming connections
            (:func:`sum_activations`), i.e. what ``a_in.recv()`` returns.
        p: integer parameters, broadcastable to (n,).

    Returns:
        ``(u, v, s)``: int32, int32, bool arrays of shape (..., n); ``v`` is after reset.

    Follows ``AbstractPyLifModelFixed.subthr_dynamics`` / ``run_spk`` and
    ``PyLifModelBitAcc.spiking_activation`` (``proc/lif/models.py`` l.138-216, 268-278).
    """
    u_new = current_update(u, a_in, p.du)
    v_star = voltage_update(v, u_new, effective_bias(p.bias_mant, p.bias_exp), p.dv)
    s = spike_test(v_star, p.vth)
    return u_new, np.where(s, _I32(0), v_star).astype(_I32), s


def lif_reset_due(time_step: int, reset_interval: int, reset_offset: int) -> bool:
    """Whether ``LIFReset`` zeroes u and v before the dynamics of Lava step ``time_step``.

    ``time_step`` is Lava's 1-based step counter (index i + 1). Follows
    ``PyLifResetModelBitAcc.run_spk`` (``proc/lif/models.py`` l.408-449):
    ``time_step % reset_interval == reset_offset % reset_interval``.
    """
    return (int(time_step) % int(reset_interval)) == (int(reset_offset) % int(reset_interval))


def lif_refractory_step(
    u: np.ndarray,
    v: np.ndarray,
    a_in: np.ndarray,
    p: LifParams,
    refractory_end: np.ndarray,
    time_step: int,
    refractory_period: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Integer analogue of ``PyLifRefractoryModelFloat`` (NOT verified: Lava has no bit-acc).

    Lava 0.10 implements ``LIFRefractory`` only in floating point (``proc/lif/models.py``
    l.452-502). Its structure, transposed to the bit-accurate LIF arithmetic here: u
    integrates as in :func:`lif_step`; v is frozen (no decay, input or bias) while
    ``refractory_end >= time_step``; the spike test runs on all neurons; a spike sets
    ``refractory_end = time_step + refractory_period`` and v = 0.

    Returns ``(u, v, s, refractory_end)``.
    """
    u_new = current_update(u, a_in, p.du)
    upd = voltage_update(v, u_new, effective_bias(p.bias_mant, p.bias_exp), p.dv)
    active = np.asarray(refractory_end) < time_step
    v_star = np.where(active, upd, np.asarray(v, dtype=_I32)).astype(_I32)
    s = spike_test(v_star, p.vth)
    v_new = np.where(s, _I32(0), v_star).astype(_I32)
    end = np.where(s, time_step + int(refractory_period), refractory_end)
    return u_new, v_new, s, end


def rf_step(
    real: np.ndarray,
    imag: np.ndarray,
    a_real: np.ndarray,
    a_imag: np.ndarray,
    *,
    sin_decay: int,
    cos_decay: int,
    decay_bits: int,
    state_exp: int,
    vth: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step of Lava's fixed-point resonate-and-fire, ``PyRFModelFixed``.

    Follows ``proc/rf/models.py`` l.89-151 (process: ``proc/rf/process.py`` l.59-80, where
    ``sin_decay``/``cos_decay`` are ``int32((1-alpha) sin|cos(2 pi/period) << decay_bits)``
    and ``vth`` is already ``vth << state_exp``): inputs are ``<< state_exp`` (int32), each
    product ``decay * state`` (int64) is rounded towards zero by ``>> decay_bits``, the new
    states are clipped to +-(2**23 - 1), and ``s = (re >= vth) & (im >= 0) & (old im < 0)``.
    This model carries tag ``fixed_pt`` only (not ``bit_accurate_loihi``).
    Returns ``(real, imag, s)``.
    """

    def scale(x: np.ndarray) -> np.ndarray:
        return np.sign(x) * np.right_shift(np.abs(x), np.int64(decay_bits))

    ar = np.left_shift(_i32(a_real), _I32(state_exp))
    ai = np.left_shift(_i32(a_imag), _I32(state_exp))
    re = np.asarray(real).astype(_I64)
    im = np.asarray(imag).astype(_I64)
    sd, cd = np.int64(sin_decay), np.int64(cos_decay)
    new_re = scale(cd * re) - scale(sd * im) + ar
    new_im = scale(sd * re) + scale(cd * im) + ai
    lim = 2 ** (2 * 12 - 1)
    new_re = np.clip(new_re, -lim + 1, lim - 1)
    new_im = np.clip(new_im, -lim + 1, lim - 1)
    s = (new_re >= np.asarray(vth)) & (new_im >= 0) & (np.asarray(imag) < 0)
    return new_re.astype(_I32), new_im.astype(_I32), s


# ======================================================================================
# Float -> Lava integer parameter conversion (helpers; not part of the bit-exact core)
# ======================================================================================
def decay_from_factor(alpha: Any, *, current: bool) -> np.ndarray:
    """12-bit ``du`` (current=True) or ``dv`` from a per-step decay factor alpha in [0, 1].

    The bit-accurate model multiplies u by ``(4095 - du) / 4096`` and v by
    ``(4096 - dv) / 4096``; so ``du = round(4095 - 4096 alpha_u)``, ``dv = round(4096 -
    4096 lambda)``, both clipped to 0..4095. Consequences: alpha_u can be at most
    4095/4096 (u always leaks), lambda = 1 (IF neuron, dv = 0) is exact, lambda = 0 is
    not reachable (dv = 4095 leaves 1/4096 of v).
    """
    a = np.asarray(alpha, dtype=np.float64)
    off = DS_OFFSET if current else DM_OFFSET
    d = np.rint(DECAY_UNITY - off - DECAY_UNITY * a)
    return np.clip(d, 0, DECAY_UNITY - 1).astype(_I64)


def factor_from_decay(d: Any, *, current: bool) -> np.ndarray:
    """Inverse of :func:`decay_from_factor`: alpha_u = (4095 - du)/4096, lambda = (4096 - dv)
    / 4096 (ignoring rounding towards zero of each product)."""
    off = DS_OFFSET if current else DM_OFFSET
    return (DECAY_UNITY - off - np.asarray(d, dtype=np.float64)) / DECAY_UNITY


def vth_from_float(theta: Any, scale: float) -> np.ndarray:
    """Threshold mantissa for a float threshold ``theta`` in units where one activation
    unit (a_in = 1) adds ``scale`` to u: v is in units of scale / 64, so
    ``vth = round(theta / scale)`` (since vth << 6 is compared with v, and a_in << 6 is
    added to u). Clipped to 0..131071 (17 bits)."""
    return np.clip(np.rint(np.asarray(theta, dtype=np.float64) / scale), 0, 2**17 - 1).astype(_I64)


def bias_from_float(bias: Any, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(bias_mant, bias_exp) for a float per-step bias, in the units of :func:`vth_from_float`.

    The bias is added to v unshifted, so in v-units it is ``bias * 64 / scale``; per neuron
    the smallest exponent 0..7 whose mantissa fits 13 bits (-4096..4095) is chosen.
    """
    b = np.asarray(bias, dtype=np.float64) * (2**ACT_SHIFT) / scale
    exp = np.full(b.shape, 7, dtype=_I64)
    open_ = np.ones(b.shape, dtype=bool)  # no exponent chosen yet
    for e in range(8):  # the first that fits (one pass per exponent: no (n, 8) array)
        m = np.rint(b / 2.0**e)
        fit = (m >= -4096) & (m <= 4095) & open_
        exp[fit] = e
        open_ &= ~fit
    mant = np.clip(np.rint(b / 2.0**exp), -4096, 4095).astype(_I64)
    return mant, exp


def weights_from_float(w: Any, *, exp_range: tuple[int, int] = (-8, 7)) -> tuple[np.ndarray, int]:
    """Integer weights and a shared ``weight_exp`` with ``w ~= w_int * 2**weight_exp``.

    ``w`` is in activation units (one unit = a_in of 1). The exponent is the smallest in
    ``exp_range`` for which the largest magnitude fits the mantissa range that survives
    :func:`prepare_weights` (255 single-sign; 254 mixed, where Lava clears the LSB, so mixed
    mantissas are rounded to even values). Compare ``utils/weightutils.py``
    ``optimize_weight_bits`` (l.53-162). A negative exponent shifts the *summed* activation
    right (floor), which is where its rounding error appears.
    """
    wf = np.asarray(w, dtype=np.float64)
    mode = sign_mode_of(np.sign(wf))
    top = 254.0 if mode == "mixed" else 255.0
    amax = float(np.max(np.abs(wf))) if wf.size else 0.0
    if amax == 0.0:
        return np.zeros(wf.shape, dtype=_I32), 0
    exp = int(np.ceil(np.log2(amax / top)))
    exp = min(max(exp, exp_range[0]), exp_range[1])
    wi = wf / 2.0**exp
    wi = 2 * np.rint(wi / 2) if mode == "mixed" else np.rint(wi)
    return np.clip(wi, -256, 255).astype(_I32), exp


# ======================================================================================
# Reference network stepper on the harness spec (backends/loihi/harness.py format)
# ======================================================================================
def run_spec(net_spec: Mapping[str, Any], steps: int) -> dict[str, np.ndarray]:
    """Run a network spec in Loihi arithmetic; same spec and result keys as ``run_on_lava``.

    ``net_spec``::

        {"populations": [{"name", "n", "du", "dv", "vth", "bias_mant", "bias_exp",
                          optional "model": "lif" | "lif_reset", "reset_interval",
                          "reset_offset", "u0", "v0"}],
         "connections": [{"pre", "post", "weights" (n_post, n_pre), optional
                          "weight_exp", "num_message_bits", "delays", "sparse",
                          "num_weight_bits", "sign_mode"}],
         "inputs": {name: int array (steps, n) or (batch, steps, n)}}

    Returns ``{f"{pop}/s", f"{pop}/u", f"{pop}/v": array (steps, n) or (batch, steps, n)}``
    with the state after each step (int32; spikes 0/1).
    """
    pops = list(net_spec["populations"])
    conns = list(net_spec.get("connections", []))
    inputs = {k: np.asarray(x) for k, x in dict(net_spec.get("inputs", {})).items()}
    batch: tuple[int, ...] = ()
    for x in inputs.values():
        if x.ndim == 3:
            batch = (x.shape[0],)
    sizes = {p["name"]: int(p["n"]) for p in pops}
    sizes.update({k: x.shape[-1] for k, x in inputs.items()})
    syns = [
        SynapseSpec.from_raw(
            np.asarray(c["weights"]),
            int(c.get("weight_exp", 0)),
            int(c.get("num_message_bits", 0)),
            c.get("delays"),
            num_weight_bits=int(c.get("num_weight_bits", 8)),
            sign_mode=c.get("sign_mode"),
        )
        for c in conns
    ]
    bufs = [synapse_init(s, batch) for s in syns]
    params = {
        p["name"]: LifParams(
            p.get("du", 0),
            p.get("dv", 0),
            p.get("vth", 10),
            p.get("bias_mant", 0),
            p.get("bias_exp", 0),
        )
        for p in pops
    }
    state = {}
    for p in pops:
        n = sizes[p["name"]]
        u = np.broadcast_to(np.asarray(p.get("u0", 0), dtype=_I32), batch + (n,)).copy()
        v = np.broadcast_to(np.asarray(p.get("v0", 0), dtype=_I32), batch + (n,)).copy()
        state[p["name"]] = (u, v)
    out = {
        f"{p['name']}/{k}": np.zeros(batch + (steps, sizes[p["name"]]), dtype=_I32)
        for p in pops
        for k in "suv"
    }
    last_s = {p["name"]: np.zeros(batch + (sizes[p["name"]],), dtype=_I32) for p in pops}
    for i in range(steps):
        t = i + 1
        parts: dict[str, list[np.ndarray]] = {p["name"]: [] for p in pops}
        outs = [b[..., 0].copy() for b in bufs]
        for c, a in zip(conns, outs, strict=True):
            parts[c["post"]].append(a)
        for p in pops:
            name = p["name"]
            u, v = state[name]
            if p.get("model", "lif") == "lif_reset" and lif_reset_due(
                t, p.get("reset_interval", 1), p.get("reset_offset", 0)
            ):
                u, v = np.zeros_like(u), np.zeros_like(v)
            a = sum_activations(parts[name], batch + (sizes[name],))
            u, v, s = lif_step(u, v, a, params[name])
            state[name] = (u, v)
            last_s[name] = s.astype(_I32)
            out[f"{name}/s"][..., i, :] = s
            out[f"{name}/u"][..., i, :] = u
            out[f"{name}/v"][..., i, :] = v
        for j, (c, syn) in enumerate(zip(conns, syns, strict=True)):
            pre = c["pre"]
            if pre in inputs:
                x = inputs[pre]
                s_in = x[..., i, :] if i < x.shape[-2] else np.zeros_like(x[..., 0, :])
            else:
                s_in = last_s[pre]
            _, bufs[j] = synapse_step(syn, bufs[j], s_in)
    return out


# ======================================================================================
# The family
# ======================================================================================
class LoihiFamily(Family):
    """Loihi 1 and 2 (``backend = "loihi"``): 8-bit weight mantissas by sign mode with a
    shared exponent, 12-bit decays, ``v* > vth << 6`` (this module's arithmetic)."""

    name = "loihi"
    number_format = "loihi"
    emulator_arithmetic = "loihi"
    spike_compare = ">"
    resets_to_zero_only = True
    no_resonate_and_fire = (
        "the Loihi arithmetic (Lava's bit-accurate LIF) has no resonate-and-fire: Lava 0.10's "
        "only RF model, PyRFModelFixed (rf_step), fires on a phase crossing "
        "(re >= vth, im turning >= 0) without reset, which is not the IR's RF "
        "(docs/passes.md#resonate-and-fire)")

    def weight_exponent_floor(self, offset: int, negative_weight_exp: bool) -> int:
        """0 (Lava's ``weight_exp`` >= 0) unless negative exponents are asked for."""
        return -offset if negative_weight_exp else 0

    def mantissa_range(self, bits: int, signed: bool, sign_mode: str
                       ) -> tuple[int, int, int] | None:
        """8-bit magnitudes by sign mode (:func:`prepare_weights`): mixed weights are even
        values in [-256, 254]. With ``num_weight_bits = bits < 8`` Lava clears the
        ``8 - bits + mixed`` low bits, so the mantissas are multiples of that power of two
        in the same 8-bit range (mixed, 4 bits: multiples of 32 in [-256, 224])."""
        bits = min(int(bits), 8)
        step = 2 ** (8 - bits + (sign_mode == "mixed"))
        top = 256 - step  # 255 / 254 for 8 bits
        if sign_mode == "mixed":
            return -256, top, step
        return (0, top, step) if sign_mode == "excitatory" else (-top, 0, step)

    def decay(self, name: str, factor: Any) -> tuple[Any, dict[str, Any]] | None:
        """12-bit ``du`` / ``dv`` (:func:`decay_from_factor`)."""
        current = name == "alpha_u"
        d = decay_from_factor(factor, current=current)
        key = "du" if current else "dv"
        return factor_from_decay(d, current=current), {key: d}

    def parameter_entries(self, entries: dict[str, Any]) -> dict[str, Any]:
        """Lava's names first: du, dv, vth, bias_mant, bias_exp, then the rest."""
        first = ("du", "dv", "theta_mant", "bias_mant", "bias_exp")
        return {"du": entries.get("du", 4095), "dv": entries.get("dv", 0),
                "vth": entries.get("theta_mant", 0), "bias_mant": entries["bias_mant"],
                "bias_exp": entries["bias_exp"],
                **{k: v for k, v in entries.items() if k not in first}}
