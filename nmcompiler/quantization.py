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
