"""The :class:`Family` protocol: what the compiler asks of a chip family.

A chip family is the ``backend`` field of a target file (``loihi``, ``spinnaker``,
``speck``, ``emulator``). Passes and backends never compare that string; they ask
``target.family``, an instance of one subclass of :class:`Family` (one module per family
in :mod:`nmcompiler.targets.families`). The defaults here are the generic fixed-point
rules; a family overrides what differs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ..model import Target

__all__ = ["Family"]


class Family:
    """The rules of one chip family (defaults: generic fixed point).

    Class attributes:
        name: the ``backend`` value of the family's target files.
        number_format: the quantizer's number-format rules: ``"loihi"`` (8-bit mantissas
            by sign mode, 12-bit decays), ``"speck"`` (integer IAF) or ``"fixed"``
            (signed fixed point of ``target.formats``).
        spike_compare: the chip's spike test on the integer membrane: ``">"`` (fires when
            ``v > threshold``), ``">="``, or None (the model's own ``fire_at_threshold``).
        emulator_arithmetic: the name of the emulator's arithmetic that reproduces the
            chip's neuron update (a key of
            ``nmcompiler.backends.emulator.arith.ARITHMETICS``: ``"emulator"`` is the
            generic fixed point of ``target.formats``). A family whose chip computes like
            an existing one names that arithmetic and needs no emulator code.
    """

    name: ClassVar[str] = "generic"
    number_format: ClassVar[str] = "fixed"
    spike_compare: ClassVar[str | None] = None
    emulator_arithmetic: ClassVar[str] = "emulator"
    #: the chip resets v to 0 only (no ``v_reset`` parameter)
    resets_to_zero_only: ClassVar[bool] = False
    #: why the family's arithmetic cannot run resonate-and-fire as the IR defines it, or
    #: None where it can (the target's ``resonate_and_fire`` capability still applies)
    no_resonate_and_fire: ClassVar[str | None] = None
    #: why the family's neurons have no refractory period, or None where they have one
    no_refractory: ClassVar[str | None] = None

    # ------------------------------------------------------------ number formats
    def weight_exponent_floor(self, offset: int, negative_weight_exp: bool) -> int:
        """Lowest weight exponent the quantizer may choose, given the format's exponent
        offset (weights are ``mantissa * 2**(offset + exponent)``)."""
        return -offset

    def mantissa_range(self, bits: int, signed: bool, sign_mode: str
                       ) -> tuple[int, int, int] | None:
        """``(lo, hi, step)`` of a projection's integer weight mantissas with ``bits`` bits
        and Lava's ``sign_mode`` of its weights; None if the chip cannot hold them
        (negative weights on an unsigned format)."""
        if signed:
            return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1, 1
        if sign_mode != "excitatory":
            return None
        return 0, 2**bits - 1, 1

    def decay(self, name: str, factor: Any) -> tuple[Any, dict[str, Any]] | None:
        """The chip's own encoding of decay ``name`` (``alpha_u`` or ``lam``) with per-step
        factor ``factor``: ``(realised factor, integer entries)``, or None where the
        family uses the generic fixed point of ``decay_bits``."""
        return None

    def parameter_entries(self, entries: dict[str, Any]) -> dict[str, Any]:
        """A population's integer entries in the family's order and names."""
        return entries

    def mixes_populations(self, target: Target) -> bool:
        """May neurons of different populations (of one neuron model) share a core?

        Not where a core's synaptic rows are per population (word-per-synapse rows)."""
        return target.core.synapse_accounting != "word_per_synapse"

    def route_words(self, target: Target) -> int:
        """32-bit words of one routing-table route word (1 where the chip has no tables)."""
        return 1

    def __repr__(self) -> str:
        return f"<chip family {self.name!r}>"
