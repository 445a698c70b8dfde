"""NIR import options: the discretisation choices, the framework presets, the result types.

NIR records neither the time step, the integration scheme nor the reset mode, and the
frameworks that export it disagree on all three (docs/nir.md#presets). This
module holds those choices as :class:`NirOptions`, the conventions of each framework as a
:class:`Preset`, and the values the importer returns. Both the importer
(:mod:`nmcompiler.frontends.nir`) and the exporter (:mod:`nmcompiler.exporters.nir`) read
them from here, so neither imports the other.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Iterator

from nmcompiler import ir
from nmcompiler.ir.errors import ToolchainMissing, UsageError

__all__ = [
    "Integration",
    "InputScale",
    "ResetMode",
    "NirOptions",
    "Preset",
    "NirImportWarning",
    "NirImport",
    "resolve_options",
    "require_nir",
]


def require_nir() -> Any:
    """The ``nir`` package, or :class:`~nmcompiler.ir.errors.ToolchainMissing` (exit code 3)."""
    try:
        import nir
    except ImportError as exc:  # pragma: no cover - nir is an extra
        raise ToolchainMissing(
            "the NIR frontend needs the 'nir' package", obj="nir", rule="toolchain",
            hint="pip install 'nmcompiler[nir]'",
        ) from exc
    return nir


class Integration(enum.Enum):
    """How a time constant becomes a per-step decay."""

    EULER = "euler"  #: forward Euler, ``lam = 1 - dt/tau`` (Norse, snnTorch, Lava)
    EXACT = "exact"  #: exact exponential, ``lam = exp(-dt/tau)`` (sinabs, Rockpool)


class InputScale(enum.Enum):
    """What one step of input ``x`` adds to a state (before any weight)."""

    EULER = "euler"  #: ``dt/tau * r * x`` (the forward-Euler term)
    EXACT = "exact"  #: ``(1 - lam) * r * x`` (input held constant over the step)
    UNIT = "unit"  #: ``r * x`` (one step adds the input: sinabs units, Norse's current)
    #: ``lam * r * x``: the input joins the state before that step's decay (Rockpool's
    #: current, ``I = beta * (I + x)``)
    DECAYED = "decayed"
    #: ``x``: one step adds the input and ``r`` is not read (Rockpool's voltage: its
    #: ``to_nir`` writes ``r = tau * exp(-dt/tau) / dt``, which its ``LIFTorch`` ignores)
    ONE = "one"


class ResetMode(enum.Enum):
    """What a spike does to the voltage."""

    ZERO = "zero"  #: set it to the node's ``v_reset`` (0 unless given): ``ir.Reset.HARD``
    SUBTRACT = "subtract"  #: subtract the threshold: ``ir.Reset.SOFT``
    NONE = "none"  #: no reset (snnTorch's ``reset_mechanism="none"``): ``ir.Reset.NONE``


@dataclass(frozen=True, slots=True, kw_only=True)
class NirOptions:
    """How a NIR graph is discretised (the defaults are the plain NIR equations, forward
    Euler at ``dt = 1e-4`` s, the time step of the NIR paper's recordings).

    Attributes:
        dt: time step in the graph's time unit (seconds for most exporters; sinabs writes
            time constants in steps, so its preset has ``dt = 1``).
        integration: decay of voltage and current (:class:`Integration`).
        input_scale: gain of the voltage's input (:class:`InputScale`).
        syn_input_scale: gain of a CubaLIF / CubaLI current's input.
        reset: :class:`ResetMode` of spiking nodes.
        reset_delay: snnTorch's default ``reset_delay=True``: the reset caused by a spike
            at step t acts in step t+1's update. ``ZERO``: the same spikes as a hard reset
            for Leaky, a one-step refractory period for Synaptic (whose next voltage is 0).
            ``SUBTRACT``: no reset in the neuron, a self-projection of weight ``-theta``
            (delay 1) and, with a current stage, ``+alpha_u*theta`` (delay 2) instead.
        fire_at_threshold: spike on ``v >= v_threshold`` (sinabs) instead of ``>``.
        graded: send integer spike counts ``floor(v / v_threshold)`` (sinabs' MultiSpike).
        graded_max: largest count of a graded spike.
        scale_voltage: keep weights as written and divide the voltage, threshold, reset
            and bias by the input gain (snnTorch's importer) instead of scaling weights.
        current_lag: the voltage integrates the current of the previous step (strict
            forward Euler): projections into CubaLIF / CubaLI nodes get one more step of
            delay. (No preset uses it: Norse 1.1.0's ``LIFCell`` uses the new current.)
        synapse_delay: smallest delay of every projection (Lava's ``Dense`` delivers in the
            next step: 1; the PyTorch frameworks: 0).
        tau_times_dt: the time constants are written as ``dt * tau`` (Norse 1.1's
            ``to_nir(dt=...)`` writes ``dt / tau_inv``: ``tau_mem_inv = 100/s`` at the
            default ``dt = 1e-3`` becomes ``1e-5``), so the true ``tau`` is the written one
            divided by ``dt``. Norse's preset sets it (its cells and ``to_nir`` take the same
            ``dt``); files in plain seconds (the NIR paper's scripts) need it off.
        batch_io: an ``Input`` / ``Output`` type may carry a leading batch axis of 1 that
            the next (previous) node does not have: drop it without a warning (Norse's
            ``to_nir`` writes its sample's shape, batch included; Rockpool's writes an
            Input ``(1, N)`` and an Output ``(1, 1, N)``: leading axes of 1 are dropped).
        reset_retest: with ``reset=SUBTRACT`` and ``reset_delay=False``, snnTorch's rule:
            after a step that leaves the voltage above threshold (input above twice the
            threshold), the next spike test subtracts the threshold once more. A helper
            population ``<name>.after_reset`` per layer reproduces it exactly.
        float32_params: round each derived decay, gain and leak to float32: the framework
            computed with float32 parameters (snnTorch's ``beta`` comes back as
            ``1 - dt/tau``, exactly as it was, instead of 1e-8 away, which flips ties).
        scalar_params: a neuron node's scalar parameters broadcast to the layer its edges
            give without a warning (Norse writes a cell's shared defaults as scalars).
    """

    dt: float = 1e-4
    integration: Integration = Integration.EULER
    input_scale: InputScale = InputScale.EULER
    syn_input_scale: InputScale = InputScale.EULER
    reset: ResetMode = ResetMode.ZERO
    reset_delay: bool = False
    fire_at_threshold: bool = False
    graded: bool = False
    graded_max: int = 2**31 - 1
    scale_voltage: bool = False
    current_lag: bool = False
    synapse_delay: int = 0
    tau_times_dt: bool = False
    batch_io: bool = False
    scalar_params: bool = False
    reset_retest: bool = False
    float32_params: bool = False

    def __post_init__(self) -> None:
        for f, typ in (("integration", Integration), ("input_scale", InputScale),
                       ("syn_input_scale", InputScale), ("reset", ResetMode)):
            val = getattr(self, f)
            if not isinstance(val, typ):
                try:
                    object.__setattr__(self, f, typ(val))
                except ValueError:
                    raise UsageError(
                        f"NIR option {f}={val!r} is not one of "
                        + ", ".join(m.value for m in typ),
                        obj=f, rule="option value", hint=f"pass a {typ.__name__}",
                    ) from None
        if not (isinstance(self.dt, (int, float)) and math.isfinite(self.dt) and self.dt > 0):
            raise UsageError(f"NIR option dt={self.dt!r} must be a positive number",
                             obj="dt", rule="dt > 0", hint="e.g. dt=1e-4 (seconds)")
        if int(self.synapse_delay) != self.synapse_delay or self.synapse_delay < 0:
            raise UsageError(f"NIR option synapse_delay={self.synapse_delay!r} must be an "
                             "integer >= 0", obj="synapse_delay", rule="delay >= 0",
                             hint="0 (PyTorch frameworks) or 1 (Lava)")
        if int(self.graded_max) != self.graded_max or self.graded_max < 1:
            raise UsageError(f"NIR option graded_max={self.graded_max!r} must be >= 1",
                             obj="graded_max", rule="graded_max >= 1", hint="e.g. 2**31-1")

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form (for network metadata)."""
        out: dict[str, object] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.value if isinstance(v, enum.Enum) else v
        return out


class Preset(enum.Enum):
    """Named conventions of the frameworks that read and write NIR (docs/nir.md).

    ``Preset.NORSE.options`` is the :class:`NirOptions`; the values are the names the CLI
    accepts (``--preset norse``).
    """

    SNNTORCH = "snntorch"
    NORSE = "norse"
    SINABS = "sinabs"
    ROCKPOOL = "rockpool"
    LAVA = "lava"

    @property
    def options(self) -> NirOptions:
        """The options of this preset."""
        return _PRESET_OPTIONS[self]


_E, _X, _U = InputScale.EULER, InputScale.EXACT, InputScale.UNIT
_PRESET_OPTIONS: dict[Preset, NirOptions] = {
    # snntorch/export_nir.py: tau = dt/(1-beta), r = tau/dt, w_in = tau_syn/dt, dt = 1e-4;
    # Leaky / Synaptic: mem = beta*mem + syn, reset_mechanism="subtract", reset_delay=True;
    # snntorch/import_nir.py divides the threshold by r*dt/tau ("hack_w_scale").
    Preset.SNNTORCH: NirOptions(dt=1e-4, integration=Integration.EULER, input_scale=_E,
                                syn_input_scale=_E, reset=ResetMode.SUBTRACT,
                                reset_delay=True, scale_voltage=True, reset_retest=True,
                                float32_params=True),
    # norse/torch/functional/lif_box.py: v += dt/tau*(v_leak - v + x), reset to 0;
    # lif.py (LIFCell, exported as CubaLIF): i += x (no dt/tau_syn), then
    # v += dt/tau_mem*(v_leak - v + i) with that same step's current, then i decays.
    # utils/export_nir.py writes tau = dt_export / tau_inv = dt_export * tau (both dts
    # default to 1e-3 s): tau_times_dt undoes it.
    Preset.NORSE: NirOptions(dt=1e-3, integration=Integration.EULER, input_scale=_E,
                             syn_input_scale=_U, reset=ResetMode.ZERO, tau_times_dt=True,
                             batch_io=True, scalar_params=True, float32_params=True),
    # sinabs/nir.py + layers/functional/lif.py: alpha = exp(-1/tau) with tau in steps,
    # v = alpha*v + (1-alpha)*x (LIF's default norm_input=True; IAF: v += x, the same
    # gain at dt = 1), MultiSpike (v >= theta), MembraneSubtract.
    Preset.SINABS: NirOptions(dt=1.0, integration=Integration.EXACT, input_scale=_X,
                              syn_input_scale=_U, reset=ResetMode.SUBTRACT,
                              fire_at_threshold=True, graded=True),
    # rockpool/nn/modules/torch/lif_torch.py (Rockpool 3.1.0), LIFTorch.forward per step:
    # I = I + x; I *= beta; v = alpha*v + I + bias; n = floor(v/theta) if v >= theta;
    # v -= n*theta, with alpha, beta = exp(-dt/tau); nn/modules/torch/nir.py writes
    # CubaLIF(r = tau_mem*alpha/dt, w_in = 1, v_leak = 0) and an Input of its sample's
    # shape (1, N) by default; LIFTorch's default dt = 1e-3 s.
    Preset.ROCKPOOL: NirOptions(dt=1e-3, integration=Integration.EXACT,
                                input_scale=InputScale.ONE, syn_input_scale=InputScale.DECAYED,
                                reset=ResetMode.SUBTRACT, fire_at_threshold=True, graded=True,
                                batch_io=True, float32_params=True),
    # NIR paper's lava importer (paper/01_lif/_lava_nir.py): dv = dt/tau, weights * dt/tau,
    # du = 1, reset to 0; Lava's Dense delivers a spike in the next step.
    Preset.LAVA: NirOptions(dt=1e-4, integration=Integration.EULER, input_scale=_E,
                            syn_input_scale=_U, reset=ResetMode.ZERO, synapse_delay=1),
}


@dataclass(frozen=True, slots=True)
class NirImportWarning:
    """A defect the lenient importer repaired: the node, the rule, what it did."""

    node: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"node '{self.node}': {self.message}" if self.node else self.message


@dataclass(frozen=True)
class NirImport:
    """What :func:`from_nir` returns; unpacks as ``net, warnings = from_nir(...)``."""

    network: ir.Network
    warnings: list[NirImportWarning] = field(default_factory=list)
    options: NirOptions = field(default_factory=NirOptions)

    def __iter__(self) -> Iterator[Any]:
        yield self.network
        yield self.warnings


def resolve_options(preset: Preset | str | None = None, options: NirOptions | None = None,
                    **overrides: Any) -> NirOptions:
    """Options from a preset (or ``options``) with keyword overrides (None = keep)."""
    if options is not None and preset is not None:
        raise UsageError("pass preset= or options=, not both", obj="preset",
                         rule="one source of options", hint="use preset=... and overrides")
    if preset is not None and not isinstance(preset, Preset):
        try:
            preset = Preset(str(preset).lower())
        except ValueError:
            raise UsageError(f"unknown NIR preset {preset!r}", obj=str(preset),
                             rule="known preset",
                             hint="one of " + ", ".join(p.value for p in Preset)) from None
    base = options if options is not None else (preset.options if preset else NirOptions())
    changes = {k: v for k, v in overrides.items() if v is not None}
    known = {f.name for f in fields(NirOptions)}
    bad = sorted(set(changes) - known)
    if bad:
        raise UsageError(f"unknown NIR option {bad[0]!r}", obj=bad[0], rule="known option",
                         hint="options: " + ", ".join(sorted(known)))
    return replace(base, **changes) if changes else base
