"""The quantizer's number formats: one :class:`Fmt` per target, built from
``target.formats`` and the chip family's rules (:mod:`nmcompiler.targets.families`)."""

from __future__ import annotations

import dataclasses

import numpy as np

from nmcompiler.ir.errors import FitError

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


def make_format(target: Target, negative_weight_exp: bool) -> Fmt:
    """The quantiser's number formats of ``target``."""
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
        compare=family.spike_compare,
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
