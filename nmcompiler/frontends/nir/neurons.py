"""NIR neuron nodes -> IR neuron models: the discretisation of docs/nir.md#discretisation.

With ``x = dt / tau`` a time constant becomes the per-step decay ``lam = 1 - x`` (forward
Euler) or ``exp(-x)`` (exact); the input gain is ``x * r``, ``(1 - lam) * r`` or ``r``
(:class:`~nmcompiler.frontends.nir.InputScale`); the leak voltage becomes the per-step
bias ``(1 - lam) * v_leak``. :data:`DYNAMICS` holds one function per neuron node type.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable

import numpy as np

from nmcompiler import ir
from nmcompiler.ir.errors import ImportFormatError

from .graph import FlatNode
from .options import InputScale, Integration, NirOptions, ResetMode
from .shapes import as_array, chw

__all__ = ["Pop", "make_population", "build_model", "DYNAMICS"]

#: the neuron node types that spike (the others are integrators read as outputs)
SPIKING = ("LIF", "IF", "CubaLIF")


@dataclass
class Pop:
    """A population being built: IR model class and parameters, input gain, extras."""

    name: str
    shape: tuple[int, ...]
    cls: type
    params: dict[str, Any]
    gain: np.ndarray  # per-neuron gain of the input (NIR units -> voltage)
    cuba: bool
    lag: int = 0
    bias_in: np.ndarray | None = None  # summed bias reaching the neuron (NIR input units)
    self_proj: list = field(default_factory=list)


def param(fn: FlatNode, name: str, n: int, shape: tuple, default: float | None = None
          ) -> np.ndarray:
    """Parameter ``name`` of a node as ``n`` finite float64 values (scalars broadcast)."""
    val = getattr(fn.obj, name, None)
    if val is None:
        val = default
    a = as_array(val).astype(np.float64)
    if a.size == 1:
        a = np.full(n, float(a.reshape(-1)[0]))
    else:
        a = a.reshape(-1)
    if a.shape != (n,):
        raise ImportFormatError(f"node '{fn.name}': parameter '{name}' has {a.size} values "
                                f"for {n} neurons (wrong array shapes)", obj=fn.name,
                                rule="parameter shape", hint=f"give {shape} values")
    if not np.all(np.isfinite(a)):
        raise ImportFormatError(f"node '{fn.name}': parameter '{name}' has NaN or infinite "
                                "values", obj=fn.name, rule="finite parameters",
                                hint="the exporter wrote invalid values")
    return a


def _cannot(fn: FlatNode, what: str, opts: NirOptions, hint: str) -> ImportFormatError:
    return ImportFormatError(
        f"node '{fn.name}' ({fn.typ}) cannot be discretised with dt={opts.dt:g}, "
        f"integration={opts.integration.value}: {what}", obj=fn.name, rule="discretisation",
        hint=hint,
    )


def _decay(fn: FlatNode, tau: np.ndarray, pname: str, opts: NirOptions
           ) -> tuple[np.ndarray, np.ndarray]:
    """(lam, dt/tau) of a time constant."""
    if np.any(tau <= 0):
        raise _cannot(fn, f"{pname} has a value <= 0 ({tau[tau <= 0][0]:g})", opts,
                      "time constants must be positive")
    if opts.tau_times_dt:  # Norse 1.1 writes dt * tau: the true tau is tau / dt
        tau = tau / opts.dt
    x = opts.dt / tau
    if opts.integration is Integration.EULER:
        lam = 1.0 - x
        if np.any(lam < 0):
            raise _cannot(fn, f"forward Euler needs dt <= {pname}, but {pname} = "
                          f"{tau.min():g}, so the decay 1 - dt/{pname} is "
                          "negative", opts,
                          "the exporting framework's dt and time-constant unit decide "
                          "the right import: use its preset (Norse writes tau times its "
                          "dt: preset='norse'), or pass the dt it simulated "
                          "with; integration='exact' gives other dynamics than the "
                          "framework's Euler step")
    else:
        lam = np.exp(-x)
    return lam, x


def _gain(scale: InputScale, x: np.ndarray, lam: np.ndarray, r: np.ndarray) -> np.ndarray:
    if scale is InputScale.EULER:
        return x * r
    if scale is InputScale.EXACT:
        return (1.0 - lam) * r
    if scale is InputScale.DECAYED:
        return lam * r
    if scale is InputScale.ONE:
        return np.ones_like(r)
    return r.copy()


# ---------------------------------------------------------------- dynamics, one per type
#: (decay lam, input gain, per-step leak bias, current decay alpha or None)
Dynamics = tuple[np.ndarray, np.ndarray, np.ndarray, "np.ndarray | None"]


def _integrator(fn: FlatNode, n: int, shape: tuple, opts: NirOptions, r: np.ndarray
                ) -> Dynamics:
    """IF and I: no decay, gain ``dt * r`` (``r`` under ``InputScale.UNIT`` and ``DECAYED``,
    1 under ``ONE``)."""
    if opts.input_scale is InputScale.ONE:
        gain = np.ones_like(r)
    elif opts.input_scale in (InputScale.UNIT, InputScale.DECAYED):
        gain = r.copy()
    else:
        gain = opts.dt * r
    return np.ones(n), gain, np.zeros(n), None


def _leaky(fn: FlatNode, n: int, shape: tuple, opts: NirOptions, r: np.ndarray,
           tau_name: str = "tau") -> Dynamics:
    """LIF and LI: decay of ``tau``, leak bias ``(1 - lam) * v_leak``."""
    tau = param(fn, tau_name, n, shape)
    lam, x = _decay(fn, tau, tau_name, opts)
    gain = _gain(opts.input_scale, x, lam, r)
    leak = (1.0 - lam) * param(fn, "v_leak", n, shape)
    return lam, gain, leak, None


def _cuba(fn: FlatNode, n: int, shape: tuple, opts: NirOptions, r: np.ndarray) -> Dynamics:
    """CubaLIF and CubaLI: the voltage of ``tau_mem`` behind a current stage of ``tau_syn``."""
    lam, gain, leak, _ = _leaky(fn, n, shape, opts, r, "tau_mem")
    tau_s = param(fn, "tau_syn", n, shape)
    alpha, xs = _decay(fn, tau_s, "tau_syn", opts)
    w_in = param(fn, "w_in", n, shape, 1.0)
    return lam, gain * _gain(opts.syn_input_scale, xs, alpha, w_in), leak, alpha


#: the state dynamics of each neuron node type with a voltage (Threshold has none)
DYNAMICS: dict[str, Callable[..., Dynamics]] = {
    "IF": _integrator, "I": _integrator, "LIF": _leaky, "LI": _leaky,
    "CubaLIF": _cuba, "CubaLI": _cuba,
}


def _threshold_population(fn: FlatNode, shape: tuple, opts: NirOptions) -> Pop:
    n = int(np.prod(shape))
    theta = param(fn, "threshold", n, shape)
    if np.any(theta <= 0):
        raise _cannot(fn, "the IR needs a positive threshold", opts,
                      "shift the threshold with a bias before it")
    return Pop(fn.name, chw(shape), ir.LIF, dict(lam=0.0, theta=theta, reset=ir.Reset.NONE),
               np.ones(n), False)


def _spiking(fn: FlatNode, n: int, shape: tuple, opts: NirOptions, params: dict[str, Any]
             ) -> None:
    """Threshold, reset voltage and firing rule of a spiking node, into ``params``."""
    theta = param(fn, "v_threshold", n, shape)
    v_reset = param(fn, "v_reset", n, shape, 0.0)
    if np.any(theta <= 0):
        raise _cannot(fn, f"the IR needs a positive threshold, found {theta.min():g}",
                      opts, "shift voltages so the threshold is positive")
    params.update(theta=theta, v_reset=v_reset, fire_at_threshold=opts.fire_at_threshold,
                  graded=opts.graded, graded_max=int(opts.graded_max))


def _reset(cls: type, cuba: bool, opts: NirOptions, params: dict[str, Any]) -> type:
    """The IR reset of :class:`ResetMode` and ``reset_delay`` (may turn IF into LIF)."""
    if opts.reset is ResetMode.NONE:
        params["reset"] = ir.Reset.NONE
    elif opts.reset is ResetMode.ZERO:
        params["reset"] = ir.Reset.HARD
        if opts.reset_delay and cuba:
            params["refractory"] = 1
    elif opts.reset_delay:
        params["reset"] = ir.Reset.NONE
        if cls is ir.IF:
            cls = ir.LIF
    else:
        params["reset"] = ir.Reset.SOFT
    return cls


def make_population(fn: FlatNode, shape: tuple, opts: NirOptions) -> Pop:
    """The population of a neuron node of NIR shape ``shape`` under ``opts``."""
    if fn.typ == "Threshold":
        return _threshold_population(fn, shape, opts)
    n = int(np.prod(shape))
    r = param(fn, "r", n, shape)
    lam, gain, leak, alpha = DYNAMICS[fn.typ](fn, n, shape, opts, r)
    if opts.float32_params:  # the framework's own decays and gains are float32 numbers
        lam, gain, leak = (np.asarray(a, dtype=np.float32).astype(np.float64)
                           for a in (lam, gain, leak))
        if alpha is not None:
            alpha = np.asarray(alpha, dtype=np.float32).astype(np.float64)
    if np.any(gain == 0) and opts.scale_voltage:
        raise _cannot(fn, "scale_voltage needs a non-zero input gain (r = 0?)", opts,
                      "use scale_voltage=False")
    cuba = alpha is not None
    spiking = fn.typ in SPIKING
    params: dict[str, Any] = dict(lam=lam, bias=leak)
    if cuba:
        params["alpha_u"] = alpha
    cls: type = ir.LI
    if spiking:
        _spiking(fn, n, shape, opts, params)
        cls = ir.IF if fn.typ == "IF" else ir.LIF
    if opts.scale_voltage:
        for k in ("theta", "v_reset", "bias"):
            if k in params:
                params[k] = params[k] / gain
    if spiking:
        cls = _reset(cls, cuba, opts, params)
    pop = Pop(fn.name, chw(shape), cls, params, gain, cuba,
              lag=1 if (cuba and opts.current_lag) else 0)
    if spiking and opts.reset is ResetMode.SUBTRACT and opts.reset_delay:
        pop.self_proj.append((-params["theta"], 1))
        if cuba:
            pop.self_proj.append((alpha * params["theta"], 2))
    return pop


def build_model(pop: Pop) -> Any:
    """The IR neuron model of a finished population (parameters its class does not take
    are dropped; arrays become float64)."""
    allowed = {f.name for f in fields(pop.cls)}
    model_kw = {}
    for k, v in pop.params.items():
        if k not in allowed:
            continue
        if isinstance(v, np.ndarray):
            v = v.astype(np.float64)
        model_kw[k] = v
    return pop.cls(**model_kw)
