"""The quantisation record: how to read a quantised network's integers.

The quantize pass (:mod:`nmcompiler.passes.quantize`) turns a float network into the
target's integer units and writes a :class:`QuantizationInfo`: per population its scale
(``x_float = x / scale``) and the chip's integer parameters, per projection its weight
exponent, shift and sign mode. It travels inside the network (``network.metadata
["quantization"]``, written by :meth:`QuantizationInfo.to_metadata`, so a saved network or
compiled artifact carries it), and a :class:`~nmcompiler.compiled.CompiledNetwork` holds
it typed as ``compiled.quantization``. Backends read it by attribute through
:meth:`QuantizationInfo.of`; docs/passes.md describes the fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["METADATA_KEY", "PopulationQuant", "ProjectionQuant", "QuantizationInfo"]

#: key of the record in ``network.metadata``
METADATA_KEY = "quantization"

#: an integer, or one integer per neuron
Ints = int | list[int]


@dataclass(frozen=True, slots=True, kw_only=True)
class PopulationQuant:
    """One population's integers.

    Attributes:
        scale: state units per float unit (``x_float = x / scale``).
        du, dv, vth, bias_mant, bias_exp: Loihi's 12-bit decays, threshold mantissa and
            bias (None where the family has no such parameter).
        model_comparison: where the chip's spike test differs from the model's, the
            model's rule and threshold (``{"fire_at_threshold", "theta"}``), else None.
        entries: every entry as written, in order (other families' integers, e.g.
            ``theta_mant``, ``decay_bits``); :meth:`get` reads them.
    """

    scale: float
    du: Ints | None = None
    dv: Ints | None = None
    vth: Ints | None = None
    bias_mant: Ints | None = None
    bias_exp: Ints | None = None
    model_comparison: Mapping[str, Any] | None = None
    entries: Mapping[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        """Entry ``key`` as written, or ``default``."""
        return self.entries.get(key, default)

    @staticmethod
    def from_entries(entries: Mapping[str, Any]) -> PopulationQuant:
        """Read one population's entry of the metadata dict."""
        mc = entries.get("model_comparison")
        return PopulationQuant(
            scale=float(entries.get("scale", 1.0)), du=entries.get("du"),
            dv=entries.get("dv"), vth=entries.get("vth"), bias_mant=entries.get("bias_mant"),
            bias_exp=entries.get("bias_exp"),
            model_comparison=dict(mc) if isinstance(mc, Mapping) else None,
            entries=dict(entries))


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectionQuant:
    """One projection's weights: ``weight = mantissa * 2**weight_shift`` (state units of
    the post population).

    Attributes:
        post: the postsynaptic population.
        scale: the post population's scale.
        weight_exp: the shared weight exponent.
        weight_shift: ``weight_exp`` plus the family's fixed offset (Loihi: 6).
        sign_mode: Lava's sign mode (``mixed``, ``excitatory``, ``inhibitory``).
        num_weight_bits: mantissa bits.
        num_message_bits: payload bits of graded spikes (None: from the source).
        entries: every entry as written, in order.
    """

    post: str | None = None
    scale: float | None = None
    weight_exp: int | None = None
    weight_shift: int | None = None
    sign_mode: str | None = None
    num_weight_bits: int | None = None
    num_message_bits: int | None = None
    entries: Mapping[str, Any] = field(default_factory=dict)

    @staticmethod
    def from_entries(entries: Mapping[str, Any]) -> ProjectionQuant:
        """Read one projection's entry of the metadata dict."""
        def opt_int(key: str) -> int | None:
            v = entries.get(key)
            return None if v is None else int(v)

        scale = entries.get("scale")
        return ProjectionQuant(
            post=entries.get("post"), scale=None if scale is None else float(scale),
            weight_exp=opt_int("weight_exp"), weight_shift=opt_int("weight_shift"),
            sign_mode=entries.get("sign_mode") or None,
            num_weight_bits=opt_int("num_weight_bits"),
            num_message_bits=opt_int("num_message_bits"), entries=dict(entries))


@dataclass(frozen=True, slots=True, kw_only=True)
class QuantizationInfo:
    """How a quantised network's integers are read (see the module docstring).

    Attributes:
        version: record version (1).
        target: the target it was quantised for.
        family: the quantizer's number format (``loihi``, ``speck``, ``fixed``).
        units: a sentence on the units.
        state_fraction_bits: fraction bits of the state (fixed-point families).
        threshold_shift: the chip compares ``v`` with ``threshold << threshold_shift``.
        comparison: the chip's spike test (``>``, ``>=``) or ``model``.
        populations, projections: per-name records.
    """

    version: int = 1
    target: str = ""
    family: str = ""
    units: str = ""
    state_fraction_bits: int = 0
    threshold_shift: int = 0
    comparison: str = "model"
    populations: Mapping[str, PopulationQuant] = field(default_factory=dict)
    projections: Mapping[str, ProjectionQuant] = field(default_factory=dict)

    def population(self, name: str) -> PopulationQuant | None:
        """The record of population ``name``, or None."""
        return self.populations.get(name)

    def projection(self, name: str) -> ProjectionQuant | None:
        """The record of projection ``name``, or None."""
        return self.projections.get(name)

    def to_metadata(self) -> dict[str, Any]:
        """The record as the plain dict stored in ``network.metadata["quantization"]``."""
        return {
            "version": self.version,
            "target": self.target,
            "family": self.family,
            "units": self.units,
            "state_fraction_bits": self.state_fraction_bits,
            "threshold_shift": self.threshold_shift,
            "comparison": self.comparison,
            "populations": {k: dict(v.entries) for k, v in self.populations.items()},
            "projections": {k: dict(v.entries) for k, v in self.projections.items()},
        }

    @staticmethod
    def from_metadata(meta: Mapping[str, Any]) -> QuantizationInfo:
        """Read the dict of ``network.metadata["quantization"]`` (the sections may also be
        named ``population`` / ``projection``)."""
        def section(kind: str) -> Mapping[str, Any]:
            for key in (kind, kind[:-1]):
                sect = meta.get(key)
                if isinstance(sect, Mapping):
                    return sect
            return {}

        return QuantizationInfo(
            version=int(meta.get("version", 1)), target=str(meta.get("target", "")),
            family=str(meta.get("family", "")), units=str(meta.get("units", "")),
            state_fraction_bits=int(meta.get("state_fraction_bits") or 0),
            threshold_shift=int(meta.get("threshold_shift") or 0),
            comparison=str(meta.get("comparison", "model")),
            populations={k: PopulationQuant.from_entries(v)
                         for k, v in section("populations").items() if isinstance(v, Mapping)},
            projections={k: ProjectionQuant.from_entries(v)
                         for k, v in section("projections").items() if isinstance(v, Mapping)},
        )

    @staticmethod
    def of(network: Any) -> QuantizationInfo | None:
        """The record a network carries (``network.metadata``), or None if unquantised."""
        md = getattr(network, "metadata", None)
        meta = md.get(METADATA_KEY) if isinstance(md, Mapping) else None
        return QuantizationInfo.from_metadata(meta) if isinstance(meta, Mapping) else None


# ------------------------------------------------------------------ checking a record
#: the record's number formats (docs/passes.md)
FAMILIES = ("loihi", "fixed", "speck")
#: the chip's spike tests
COMPARISONS = (">", ">=", "model")
SIGN_MODES = ("mixed", "excitatory", "inhibitory")

#: bounds of the integer entries of a population: (low, high), both inclusive. Wide enough
#: for every target's registers (docs/hw_reference.md), narrow enough that no emulator or
#: backend computation on them can overflow its integer type.
POPULATION_INTS: dict[str, tuple[int, int]] = {
    "du": (0, 4095), "dv": (0, 4095), "vth": (0, 2**24 - 1),
    "bias_mant": (-(2**24), 2**24), "bias_exp": (-24, 24),
    "alpha_u_mant": (-(2**32), 2**32), "lam_mant": (-(2**32), 2**32),
    "decay_bits": (0, 32), "theta_mant": (-(2**53), 2**53),
}
#: bounds of the integer entries of a projection
PROJECTION_INTS: dict[str, tuple[int, int]] = {
    "weight_exp": (-32, 32), "weight_shift": (-40, 40), "num_weight_bits": (1, 32),
    "num_message_bits": (0, 32),
}
#: bounds of the record's own integers
RECORD_INTS: dict[str, tuple[int, int]] = {
    "version": (1, 1), "state_fraction_bits": (0, 32), "threshold_shift": (0, 32),
}
#: the largest magnitude of any other numeric entry (a per-family integer not named above)
OTHER_LIMIT = 2**53


class _Bad(Exception):
    """One malformed entry (turned into a FormatError naming it)."""


def _numbers(v: Any, size: int, what: str, *, integer: bool) -> Any:
    """``v`` as a numpy array: a number, or one number per neuron (``size``)."""
    import numpy as np

    if isinstance(v, bool) or v is None:
        raise _Bad(f"{what} is {v!r}, not a number")
    try:
        a = np.asarray(v, dtype=object if isinstance(v, list) else None)
    except (ValueError, TypeError, OverflowError) as exc:
        raise _Bad(f"{what} is not a number or a list of numbers ({exc})") from None
    if a.ndim > 1 or (a.ndim == 1 and a.shape[0] != size):
        raise _Bad(f"{what} has shape {a.shape}; expected a number or {size} numbers")
    flat = a.reshape(-1).tolist()
    for x in flat:
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise _Bad(f"{what} holds {x!r}, not a number")
        if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
            raise _Bad(f"{what} holds {x!r}")
        if integer and not isinstance(x, int) and not float(x).is_integer():
            raise _Bad(f"{what} holds {x!r}, not an integer")
    return flat


def _bounded(v: Any, size: int, what: str, lo: int, hi: int, *, integer: bool = True) -> None:
    for x in _numbers(v, size, what, integer=integer):
        if not lo <= x <= hi:
            raise _Bad(f"{what} = {x!r} is outside [{lo}, {hi}]")


def _check_entries(entries: Any, size: int, ints: dict[str, tuple[int, int]],
                   what: str) -> None:
    if not isinstance(entries, Mapping):
        raise _Bad(f"{what} is {type(entries).__name__}, not a table")
    for key, v in entries.items():
        name = f"{what}.{key}"
        if key in ints:
            if v is None and key in ("num_message_bits", "weight_shift", "weight_exp"):
                continue
            _bounded(v, size, name, *ints[key])
        elif key == "scale":
            if v is None and "post" in entries:
                continue
            flat = _numbers(v, size, name, integer=False)
            if not all(0 < x <= 1e300 for x in flat):
                raise _Bad(f"{name} = {v!r}: a scale must be positive and finite")
        elif key == "sign_mode":
            if v not in (None, "", *SIGN_MODES):
                raise _Bad(f"{name} = {v!r}; expected one of {', '.join(SIGN_MODES)}")
        elif key == "model_comparison":
            if v is None:
                continue
            if not isinstance(v, Mapping) or not isinstance(v.get("fire_at_threshold"), bool):
                raise _Bad(f"{name} must be a table with a boolean fire_at_threshold")
            _bounded(v.get("theta"), size, f"{name}.theta", -OTHER_LIMIT, OTHER_LIMIT,
                     integer=False)
        elif key == "post":
            continue  # checked by the caller
        elif v is None or isinstance(v, (bool, str)):
            continue
        else:
            _bounded(v, size, name, -OTHER_LIMIT, OTHER_LIMIT, integer=False)


def check_record(meta: Any, network: Any, where: str = "") -> None:
    """Check a quantisation record read from a file (``network.metadata
    ["quantization"]``) against ``network``: the sections name the network's populations
    and projections, every entry has its type, shape (one value or one per neuron) and
    range (``POPULATION_INTS``, ``PROJECTION_INTS``). Raises
    :class:`~nmcompiler.ir.errors.FormatError` naming the first bad entry, so that a forged
    artifact is refused on load instead of crashing a backend (docs/reliability.md)."""
    from nmcompiler.ir.errors import FormatError

    try:
        _check_header(meta)
        _check_sections(meta, network)
    except _Bad as exc:
        raise FormatError(f"{where}{': ' if where else ''}quantisation record: {exc}"[:500],
                          obj="quantization",
                          rule="quantisation record",
                          hint="the file is damaged or edited: compile again") from None
    except (TypeError, ValueError, OverflowError, AttributeError, KeyError) as exc:
        raise FormatError(f"{where}{': ' if where else ''}quantisation record is malformed "
                          f"({exc!r})"[:500],
                          obj="quantization", rule="quantisation record",
                          hint="the file is damaged or edited: compile again") from None


def _check_header(meta: Any) -> None:
    if not isinstance(meta, Mapping):
        raise _Bad(f"the record is {type(meta).__name__}, not a table")
    for key, (lo, hi) in RECORD_INTS.items():
        if key in meta:
            _bounded(meta[key], 1, key, lo, hi)
    if meta.get("family", "") not in ("", *FAMILIES):
        raise _Bad(f"family = {meta.get('family')!r}; expected one of {', '.join(FAMILIES)}")
    if meta.get("comparison", "model") not in COMPARISONS:
        raise _Bad(f"comparison = {meta.get('comparison')!r}; expected one of "
                   f"{', '.join(COMPARISONS)}")
    for key in ("target", "units"):
        if not isinstance(meta.get(key, ""), str):
            raise _Bad(f"{key} is not text")
    for kind in ("populations", "projections", "population", "projection"):
        sect = meta.get(kind)
        if sect is None:
            continue
        if not isinstance(sect, Mapping):
            raise _Bad(f"{kind} is not a table")
        for name, entries in sect.items():
            if not isinstance(entries, Mapping):
                raise _Bad(f"{kind}.{name} is not a table")


def _check_sections(meta: Mapping[str, Any], network: Any) -> None:
    pops, projs = network.populations, network.projections
    info = QuantizationInfo.from_metadata(meta)
    for name, pq in info.populations.items():
        if name not in pops:
            raise _Bad(f"populations.{name}: the network has no population {name!r}")
        _check_entries(pq.entries, pops[name].size, POPULATION_INTS, f"populations.{name}")
    for name, jq in info.projections.items():
        if name not in projs:
            raise _Bad(f"projections.{name}: the network has no projection {name!r}")
        post = projs[name].post
        if jq.post is not None and jq.post != post:
            raise _Bad(f"projections.{name}.post = {jq.post!r}; the projection ends at "
                       f"{post!r}")
        _check_entries(jq.entries, 1, PROJECTION_INTS, f"projections.{name}")
