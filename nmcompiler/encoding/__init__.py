"""Spike encoders and decoders: rate, temporal (time to first spike), phase and direct.

These turn analog values ``x`` (normalised to ``[0, 1]``) into the per-step input arrays
that :func:`nmcompiler.ir.simulate` takes, and spike trains back into values. Every encoder maps an
array ``x`` of any shape ``S`` (typically ``(B, n)`` or ``(n,)``) to an array of shape
``(T, *S)``: time first, as the simulator expects (``(T, B, n)`` or ``(T, n)``). All of
them are vectorised numpy; the stochastic ones take a ``seed`` (an int or a
``np.random.Generator``) and are reproducible.

The codes (docs/encoders.md):

* **rate** -- Bernoulli: one spike per step with probability ``p = x * max_rate``
  (the "Poisson" generator of most ANN-to-SNN work, e.g. Diehl et al. 2015, Rueckauer et
  al. 2017 section 2.4, which is in fact Bernoulli per step); and Poisson counts:
  ``Poisson(x * max_rate)`` spikes per step, sent as graded (integer) payloads, the
  exact discrete-time Poisson process.
* **temporal** -- time to first spike (TTFS, latency code): one spike at
  ``t = round((1 - x) * (T - 1))``; larger values fire earlier; ``x <= min_value`` never
  fires (Thorpe et al. 2001; Rueckauer & Liu 2018).
* **phase** -- Kim et al. 2018 ("Deep neural networks with weighted spikes"): ``x`` is
  quantised to ``K`` bits and bit ``k`` (most significant first) is sent as a spike in
  phase ``k`` of a period of ``K`` steps, repeated; phase ``k`` carries the weight
  ``2^-(k+1)``. Kim et al. put that weight on the receiving synapse, which changes every
  step; the IR has fixed weights, so :func:`phase` can instead return the weighted spikes
  (``weighted=True``: analog payloads ``s * 2^-(k+1)``) to feed an input directly.
* **direct** -- the analog value as an input current every step (Rueckauer et al. 2017
  section 2.4 "analog input"; the first layer does the encoding).

Decoders: :func:`spike_count`, :func:`rate_decode`, :func:`first_spike_time`,
:func:`ttfs_decode`, :func:`phase_decode`.
"""

from __future__ import annotations

import numbers

import numpy as np

from nmcompiler.ir.errors import InputError, UsageError

__all__ = [
    "rate",
    "poisson",
    "ttfs",
    "phase",
    "direct",
    "spike_count",
    "rate_decode",
    "first_spike_time",
    "ttfs_decode",
    "phase_decode",
    "phase_weights",
]

_TOL = 1e-9


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise UsageError(
            f"seed {seed!r} is not a non-negative integer or a numpy Generator",
            obj="seed",
            rule="seed type",
            hint="pass seed=0 or np.random.default_rng(0)",
        )
    return np.random.default_rng(int(seed))


def _steps(steps: object, encoder: str, least: int = 1) -> int:
    if not isinstance(steps, numbers.Integral) or isinstance(steps, bool) or steps < least:
        raise UsageError(
            f"encoder '{encoder}': steps={steps!r}, expected an integer >= {least}",
            obj=encoder,
            rule=f"steps >= {least}",
            need=f">= {least}",
            limit=steps,
            hint="give the number of simulation steps, e.g. steps=100",
        )
    return int(steps)


def _values(x: object, encoder: str, *, unit: bool = True) -> np.ndarray:
    """``x`` as float64, checked finite (and within [0, 1] when ``unit``)."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise InputError(
            f"encoder '{encoder}': values have dtype {arr.dtype}, expected real numbers",
            obj=encoder,
            rule="numeric input",
            hint="pass a numpy array of floats",
        )
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise InputError(
            f"encoder '{encoder}': values contain {int(np.count_nonzero(~np.isfinite(arr)))} "
            "NaN or infinite entries",
            obj=encoder,
            rule="finite values",
            hint="clean the data before encoding",
        )
    if unit and arr.size and (arr.min() < -_TOL or arr.max() > 1 + _TOL):
        raise InputError(
            f"encoder '{encoder}': values span [{arr.min():.4g}, {arr.max():.4g}], expected "
            "[0, 1]",
            obj=encoder,
            rule="0 <= x <= 1",
            need="[0, 1]",
            limit=(float(arr.min()), float(arr.max())),
            hint="normalise first, e.g. x / x.max() (or np.clip(x, 0, 1))",
        )
    return np.clip(arr, 0.0, 1.0) if unit else arr


def _max_rate(max_rate: object, encoder: str, upper: float | None) -> float:
    ok = isinstance(max_rate, numbers.Real) and np.isfinite(max_rate) and max_rate > 0
    if ok and upper is not None:
        ok = max_rate <= upper
    if not ok:
        rng = f"(0, {upper}]" if upper is not None else "> 0"
        raise UsageError(
            f"encoder '{encoder}': max_rate={max_rate!r} is out of range {rng}",
            obj=encoder,
            rule=f"max_rate in {rng}",
            limit=max_rate,
            hint="max_rate is the spike probability per step at x = 1"
            if upper is not None
            else "max_rate is the mean number of spikes per step at x = 1",
        )
    return float(max_rate)


# ---------------------------------------------------------------------------- encoders
def rate(
    x: np.ndarray,
    steps: int,
    *,
    max_rate: float = 1.0,
    seed: int | np.random.Generator = 0,
    dtype: type = np.uint8,
) -> np.ndarray:
    """Bernoulli rate code: ``s[t] ~ Bernoulli(x * max_rate)`` independently per step.

    Args:
        x: values in ``[0, 1]``, any shape ``S``.
        steps: number of steps ``T``.
        max_rate: spike probability per step at ``x = 1``, in ``(0, 1]``.
        seed: int or ``np.random.Generator``.
        dtype: output dtype (uint8 spikes by default; float64 also works).

    Returns:
        ``(T, *S)`` array of 0/1.
    """
    steps = _steps(steps, "rate")
    p = _values(x, "rate") * _max_rate(max_rate, "rate", 1.0)
    u = _rng(seed).random((steps,) + p.shape)
    return (u < p).astype(dtype)


def poisson(
    x: np.ndarray,
    steps: int,
    *,
    max_rate: float = 1.0,
    seed: int | np.random.Generator = 0,
    dtype: type = np.uint8,
) -> np.ndarray:
    """Poisson counts: ``s[t] ~ Poisson(x * max_rate)`` spikes per step (graded payloads).

    Unlike :func:`rate`, a step may carry more than one spike (a graded payload, which the
    IR's inputs accept); the count over ``T`` steps is exactly ``Poisson(T x max_rate)``.
    Use :func:`rate` where the target takes binary spikes only.

    Returns:
        ``(T, *S)`` array of non-negative integers.
    """
    steps = _steps(steps, "poisson")
    lam = _values(x, "poisson") * _max_rate(max_rate, "poisson", None)
    counts = _rng(seed).poisson(np.broadcast_to(lam, (steps,) + lam.shape))
    if np.issubdtype(dtype, np.integer) and counts.size:
        top = np.iinfo(dtype).max
        if counts.max() > top:
            raise UsageError(
                f"encoder 'poisson': a count of {int(counts.max())} does not fit {np.dtype(dtype)}",
                obj="poisson",
                rule="dtype range",
                need=int(counts.max()),
                limit=top,
                hint="pass dtype=np.int32 or lower max_rate",
            )
    return counts.astype(dtype)


def ttfs(
    x: np.ndarray,
    steps: int,
    *,
    min_value: float = 0.0,
    dtype: type = np.uint8,
) -> np.ndarray:
    """Time-to-first-spike (latency) code: one spike at ``t = round((1 - x) (T - 1))``.

    ``x = 1`` fires at step 0, ``x`` just above ``min_value`` fires last; values
    ``<= min_value`` send no spike. Deterministic. Decode with :func:`ttfs_decode`
    (exact to ``1 / (2 (T - 1))``).

    Returns:
        ``(T, *S)`` array with at most one 1 per channel.
    """
    steps = _steps(steps, "ttfs", least=2)
    v = _values(x, "ttfs")
    t_fire = np.rint((1.0 - v) * (steps - 1)).astype(np.int64)
    fires = v > min_value
    out = np.zeros((steps,) + v.shape, dtype=dtype)
    idx = np.nonzero(fires)
    out[(t_fire[idx],) + idx] = 1
    return out


def phase_weights(steps: int, bits: int = 8) -> np.ndarray:
    """The weight of each step in the phase code: ``2^-(1 + t mod K)``, shape ``(T,)``."""
    steps = _steps(steps, "phase")
    bits = _bits(bits)
    return 2.0 ** -(1 + np.arange(steps) % bits)


def _bits(bits: object) -> int:
    if not isinstance(bits, numbers.Integral) or isinstance(bits, bool) or not 1 <= bits <= 52:
        raise UsageError(
            f"encoder 'phase': bits={bits!r}, expected an integer in 1..52",
            obj="phase",
            rule="1 <= bits <= 52",
            limit=bits,
            hint="8 bits (Kim et al. 2018) resolve x to 2^-8",
        )
    return int(bits)


def phase(
    x: np.ndarray,
    steps: int,
    *,
    bits: int = 8,
    weighted: bool = False,
    dtype: type | None = None,
) -> np.ndarray:
    """Phase code (Kim et al. 2018): bit ``k`` of ``x`` (MSB first) spikes in phase ``k``.

    ``x`` is rounded down to ``K = bits`` bits, ``q = floor(x 2^K)`` (``x = 1`` saturates
    at ``1 - 2^-K``). Step ``t`` is phase ``k = t mod K`` and sends a spike iff bit ``k``
    of ``q`` (counting from the most significant) is set; the pattern repeats every ``K``
    steps. Phase ``k`` weighs ``2^-(k+1)`` (:func:`phase_weights`), so one period of
    weighted spikes sums to ``q 2^-K``, within ``2^-K`` of ``x``.

    Args:
        x: values in ``[0, 1]``, any shape ``S``.
        steps: number of steps ``T``.
        bits: ``K``, the bits per value (and the period in steps).
        weighted: return ``s[t] * 2^-(k+1)`` (float payloads; feed them to an input whose
            synapses then need fixed weights only) instead of 0/1 spikes.
        dtype: output dtype (default uint8, or float64 when weighted).

    Returns:
        ``(T, *S)`` array.
    """
    steps = _steps(steps, "phase")
    bits = _bits(bits)
    v = _values(x, "phase")
    q = np.minimum(np.floor(v * 2.0**bits), 2.0**bits - 1).astype(np.int64)
    k = np.arange(steps) % bits  # phase of each step
    shift = (bits - 1 - k).reshape((steps,) + (1,) * v.ndim)
    spikes = (q[None] >> shift) & 1
    if weighted:
        w = (2.0 ** -(1 + k)).reshape(shift.shape)
        return (spikes * w).astype(dtype or np.float64)
    return spikes.astype(dtype or np.uint8)


def direct(x: np.ndarray, steps: int, *, scale: float = 1.0) -> np.ndarray:
    """Direct (analog) input: ``scale * x`` as an input current every step.

    The first layer of the network does the encoding (Rueckauer et al. 2017 section 2.4).
    Any finite values are allowed. Returns a read-only ``(T, *S)`` float64 broadcast view
    (no copy); call ``.copy()`` to write into it.
    """
    steps = _steps(steps, "direct")
    v = _values(x, "direct", unit=False) * float(scale)
    return np.broadcast_to(v, (steps,) + v.shape)


# ---------------------------------------------------------------------------- decoders
def _spikes(spikes: object, decoder: str) -> np.ndarray:
    arr = np.asarray(spikes)
    if arr.ndim < 1 or arr.dtype.kind not in "biuf":
        raise InputError(
            f"decoder '{decoder}': expected a numeric (T, ...) spike array, got dtype "
            f"{arr.dtype} and shape {arr.shape}",
            obj=decoder,
            rule="spike array",
            hint="pass the (T, B, n) output of ir.simulate",
        )
    return arr


def spike_count(spikes: np.ndarray) -> np.ndarray:
    """Number of spikes (sum of payloads) per channel: ``(T, *S) -> S``."""
    return _spikes(spikes, "spike_count").sum(axis=0)


def rate_decode(spikes: np.ndarray, *, max_rate: float = 1.0) -> np.ndarray:
    """Estimate of ``x`` from a rate code: ``count / (T * max_rate)``."""
    s = _spikes(spikes, "rate_decode")
    return s.sum(axis=0) / (s.shape[0] * _max_rate(max_rate, "rate_decode", None))


def first_spike_time(spikes: np.ndarray, *, no_spike: float = np.inf) -> np.ndarray:
    """Step of the first spike per channel (float), ``no_spike`` where there is none."""
    s = _spikes(spikes, "first_spike_time") != 0
    t = np.argmax(s, axis=0).astype(np.float64)
    return np.where(s.any(axis=0), t, no_spike)


def ttfs_decode(spikes: np.ndarray) -> np.ndarray:
    """Inverse of :func:`ttfs`: ``x = 1 - t_first / (T - 1)``; 0 where no spike."""
    s = _spikes(spikes, "ttfs_decode")
    steps = s.shape[0]
    if steps < 2:
        raise InputError(
            f"decoder 'ttfs_decode': {steps} step(s), need at least 2",
            obj="ttfs_decode",
            rule="T >= 2",
            hint="decode the whole window the encoder produced",
        )
    t = first_spike_time(s, no_spike=np.nan)
    return np.where(np.isnan(t), 0.0, 1.0 - np.nan_to_num(t) / (steps - 1))


def phase_decode(spikes: np.ndarray, *, bits: int = 8) -> np.ndarray:
    """Inverse of :func:`phase`: weighted spike sum averaged over the periods seen.

    Uses whole periods only (the first ``K * floor(T / K)`` steps); binary or weighted
    spikes are both accepted (weighted ones are recognised by their non-integer values).
    """
    s = _spikes(spikes, "phase_decode").astype(np.float64)
    bits = _bits(bits)
    periods = s.shape[0] // bits
    if periods < 1:
        raise InputError(
            f"decoder 'phase_decode': {s.shape[0]} steps is less than one period of {bits}",
            obj="phase_decode",
            rule="T >= bits",
            hint="record at least `bits` steps",
        )
    s = s[: periods * bits]
    w = phase_weights(s.shape[0], bits).reshape((-1,) + (1,) * (s.ndim - 1))
    binary = np.all((s == 0) | (s == 1))
    total = (s * w).sum(axis=0) if binary else s.sum(axis=0)
    return total / periods
