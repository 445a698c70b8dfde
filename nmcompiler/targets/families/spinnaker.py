"""The SpiNNaker family: sPyNNaker's rules.

* spike test ``v >= theta`` (sPyNNaker's ``threshold_type_static``);
* synaptic rows per population: neurons of different populations never share a core
  (sPyNNaker builds one machine vertex per population slice);
* route words: 6 link bits, then one bit per processor (:meth:`SpinnakerFamily.route_words`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Family

if TYPE_CHECKING:
    from ..model import Target

__all__ = ["SpinnakerFamily"]


class SpinnakerFamily(Family):
    """SpiNNaker 1 and 2 (``backend = "spinnaker"``)."""

    name = "spinnaker"
    spike_compare = ">="
    emulator_arithmetic = "spinnaker"

    def mixes_populations(self, target: Target) -> bool:  # noqa: D102
        return False

    def route_words(self, target: Target) -> int:
        """32-bit words per route: 6 link bits, then one bit per processor
        0..cores_per_chip (processor 0 is the monitor; application core in slot ``k`` is
        processor ``k + 1``). SpiNNaker 1 (18 processors): 24 bits, one word; SpiNNaker 2
        (150 application cores): 157 bits, five words. SpiNNMachine encodes routes the
        same way (``RoutingEntry._calc_spinnaker_route``: bit ``6 + p`` for processor
        ``p``, for every processor of the chip); how SpiNNaker 2's router stores the wider
        word is not public (docs/targets.md), so the words here are a logical bit set,
        not a register layout."""
        return (6 + 1 + int(target.topology.cores_per_chip) + 31) // 32
