"""The quantizer's number formats: one :class:`Fmt` per target, built from
``target.formats`` and the chip family's rules (:mod:`nmcompiler.targets.families`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from nmcompiler.ir.errors import FitError, UsageError

from ...targets import Target
from ...targets.families import Family, loihi

EVAL_SAMPLE = 200_000

NO_GRID = 2**62  #: grid of a voltage that never changes (every threshold is equivalent)
STAT_SAMPLE = 1_000_000  # report's error statistics on a sample above this


# =========================================================================== formats
@dataclasses.dataclass(frozen=True, slots=True)
class Fmt:
    """The number formats of one target, as the quantiser uses them."""
    family: str
    rules: Family  #: the chip family (nmcompiler.targets.families)
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
    #: extra synapse groups per projection that carry the residual of the first one
    #: (``weight_bits`` above the chip's width, :func:`weight_bits_plan`)
    chain: int = 0

    @property
    def exp_span(self) -> int:
        """Number of weight exponents above the lowest (0: one exponent only)."""
        return self.emax - self.emin


#: bits a chained synapse group adds per group: the residual of a rounded mantissa fits
#: a group whose unit is ``2**CHAIN_SHIFT`` times finer (docs/passes.md#weight-groups)
CHAIN_SHIFT = 7


def chain_shift(fmt: Fmt) -> int:
    """Exponent step between chained synapse groups: the residual of a mantissa rounded on
    a grid of ``step`` is at most ``step / 2`` units, and must fit the next group's
    ``top`` mantissas (``top = min(|lo|, hi)`` of the mixed range)."""
    lo, hi, step = fmt.rules.mantissa_range(fmt.wbits, fmt.wsigned, "mixed") or (0, 0, 1)
    top = min(-lo, hi)
    k = 0
    while (step / 2) * 2 ** (k + 1) <= top:
        k += 1
    return max(k, 1)


def weight_bits_limits(target: Target) -> tuple[int, int, int]:
    """``(lowest, native, highest)`` weight widths a compile for ``target`` may ask for.

    Below the chip's width the mantissas keep fewer bits (on Loihi Lava's
    ``num_weight_bits``: the low bits are cleared); above it, on a target with a weight
    exponent range (one exponent per synapse group), each projection is chained over
    several synapse groups whose exponents differ by :func:`chain_shift` (the second
    group holds the first one's rounding residual), as far as the exponent range allows.
    """
    native = int(target.formats.weight_bits)
    fmt = make_format(target, False)
    span = fmt.exp_span
    sh = chain_shift(fmt)
    extra = span // sh if span >= sh else 0
    low = 1 if fmt.family == "loihi" or not fmt.wsigned else 2  # sign + magnitude
    return low, native, native + extra * sh


def weight_bits_plan(target: Target, bits: int | None) -> tuple[int, int]:
    """``(mantissa bits, chained groups)`` for a requested ``weight_bits`` (None: the
    target's own); raises :class:`UsageError` (exit 2) outside :func:`weight_bits_limits`."""
    lo, native, hi = weight_bits_limits(target)
    if bits is None:
        return native, 0
    if not isinstance(bits, (int, np.integer)) or isinstance(bits, bool) or \
            not lo <= int(bits) <= hi:
        more = (f"; above {native} bits by chaining synapse groups, as the weight "
                f"exponent range {target.formats.weight_exponent_min}.."
                f"{target.formats.weight_exponent_max} allows") if hi > native else \
            " (no weight exponent range to chain synapse groups)"
        raise UsageError(
            f"weight_bits = {bits!r} is outside {lo}..{hi} for {target.name}",
            obj="weight_bits", rule=f"{lo} <= weight_bits <= {hi}", need=bits,
            limit=[lo, hi],
            hint=f"{target.name} stores {native}-bit weights{more}: pass --weight-bits "
                 f"between {lo} and {hi}")
    bits = int(bits)
    if bits <= native:
        return bits, 0
    sh = chain_shift(make_format(target, False))
    return native, -(-(bits - native) // sh)


def with_weight_bits(target: Target, bits: int | None) -> Target:
    """``target`` with narrower weights (``bits`` below its own width): ``formats.
    weight_bits`` and, where synaptic memory is charged per bit of a synapse entry
    (``loihi_synapse_config``, ``fixed_bits``), ``core.synapse_entry_bits`` lowered by the
    same amount, so fewer bits leave room for more synapses per core. Wider requests and
    None return ``target`` itself (chaining is the quantize pass's, see
    :func:`weight_bits_plan`). The changed numbers are marked ``synthetic``."""
    wbits, _ = weight_bits_plan(target, bits)
    native = int(target.formats.weight_bits)
    if wbits >= native:
        return target
    changes: dict[str, Any] = {
        "formats": dataclasses.replace(target.formats, weight_bits=wbits)}
    keys = ["formats.weight_bits"]
    core = target.core
    if core.synapse_accounting in ("loihi_synapse_config", "fixed_bits"):
        changes["core"] = dataclasses.replace(
            core, synapse_entry_bits=max(1, int(core.synapse_entry_bits) - (native - wbits)))
        keys.append("core_budget.synapse_entry_bits")
    sources = tuple(
        dataclasses.replace(p, status="synthetic", source=f"weight_bits = {wbits}",
                            note=None) if p.key in keys else p
        for p in target.sources)
    return dataclasses.replace(target, sources=sources, _cache={}, **changes)


def make_format(target: Target, negative_weight_exp: bool, chain: int = 0) -> Fmt:
    """The quantiser's number formats of ``target`` (``chain``: chained synapse groups,
    :func:`weight_bits_plan`)."""
    f = target.formats
    family = target.family  # number format and spike test (nmcompiler.targets.families)
    fam = family.number_format
    s0 = f.weight_exponent_offset if f.weight_exponent_offset is not None else 0
    floor = family.weight_exponent_floor(int(s0), negative_weight_exp)
    emin = max(int(f.weight_exponent_min), floor)
    emax = max(int(f.weight_exponent_max), emin)
    return Fmt(
        family=fam, rules=family, s0=int(s0), emin=emin, emax=emax, wbits=int(f.weight_bits),
        wsigned=bool(f.weight_signed), vmax=2 ** (int(f.voltage_bits) - 1) - 1,
        umax=2 ** (max(int(f.current_bits), 1) - 1) - 1,
        th_mant_max=2 ** int(f.threshold_bits) - 1, th_shift=int(f.threshold_shift),
        b_mant_max=(2 ** (int(f.bias_bits) - 1) - 1) if f.bias_bits else 0,
        b_exp_max=2 ** int(f.bias_exponent_bits) - 1 if f.bias_exponent_bits else 0,
        decay_bits=int(f.decay_bits), current=int(f.current_bits) > 0,
        frac_bits=int(f.state_fraction_bits or 0),
        compare=family.spike_compare, chain=int(chain),
    )


_sign_mode = loihi.sign_mode_of


def mantissa_range(fmt: Fmt, w: np.ndarray, obj: str, tname: str) -> tuple[int, int, int, str]:
    """(lo, hi, step, sign mode) of the integer mantissas of one projection."""
    mode = _sign_mode(w)
    rng = fmt.rules.mantissa_range(fmt.wbits, fmt.wsigned, mode)
    if rng is None:
        raise FitError(
            f"projection '{obj}' has negative weights; {tname} weights are unsigned",
            obj=obj, rule="weight sign", need="negative weights", limit="unsigned",
            hint="split it into excitatory and inhibitory projections",
        )
    return rng[0], rng[1], rng[2], mode
