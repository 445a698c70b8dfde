"""Target value types: what a chip offers, as frozen values.

A :class:`Target` is built by :func:`nmcompiler.targets.schema.load_target` from one checked
TOML file (docs/targets.md). Its network-on-chip geometry (coordinates, hops, links,
routes) lives in :mod:`nmcompiler.targets.topology` and is reached through
``target.noc``; its chip family's rules (number formats, spike test, memory formulas,
arithmetic) through ``target.family`` (:mod:`nmcompiler.targets.families`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from nmcompiler.ir.errors import UsageError

from .topology import NoC, make_noc

if TYPE_CHECKING:
    from .families import Family

__all__ = [
    "COORD_NAMES",
    "Provenance",
    "Topology",
    "CoreBudget",
    "ChipBudget",
    "NumberFormat",
    "Capabilities",
    "CostModel",
    "ConvolutionLimits",
    "Target",
    "did_you_mean",
]

COORD_NAMES = ("chip_x", "chip_y", "node_x", "node_y", "slot")
"""Columns of :meth:`Target.core_coords`."""


def did_you_mean(word: str, options: Any, *, what: str = "allowed") -> str:
    """A hint naming the closest of ``options`` to ``word`` and listing them all."""
    options = list(options)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    listing = f"{what}: {', '.join(options)}"
    if close:
        return f"did you mean '{close[0]}'? {listing}"
    return listing


# --------------------------------------------------------------------------- value types

@dataclass(frozen=True, slots=True, kw_only=True)
class Provenance:
    """Where one number of a target comes from.

    ``status``: ``cited`` (from the source), ``derived`` (arithmetic on cited numbers,
    shown in the source string), ``unknown`` (not published; the value is a labelled
    conservative default explained in ``note``) or ``synthetic`` (a design value of a
    chip that does not exist, such as the emulator's).
    """

    key: str
    status: str
    source: str | None
    note: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Topology:
    """Cores, routers (nodes) and chips. Units: counts; coordinates are integers."""

    kind: str
    chip_grid: tuple[int, int]
    chips: tuple[tuple[int, int], ...]
    chips_per_system: int
    wrap: tuple[bool, bool]
    node_grid: tuple[int, int]
    cores_per_node: int
    cores_per_chip: int

    @property
    def nodes_per_chip(self) -> int:
        """Routers (tiles) per chip."""
        return self.node_grid[0] * self.node_grid[1]


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreBudget:
    """Per-core limits. A tuple value gives one limit per core of a chip (Speck).

    ``None`` means the target has no limit of that kind.
    """

    neurons: int | tuple[int, ...]
    input_axons: int | None
    output_axons: int | None
    synaptic_memory_words: int | tuple[int, ...]
    synaptic_word_bits: int
    synapse_accounting: str
    synapse_entry_bits: int
    row_header_words: int | None
    bias_memory_words: int | tuple[int, ...] | None
    local_memory_bytes: int | None
    min_delay: int
    max_delay: int
    max_destinations: int | None

    @property
    def synaptic_memory_bits(self) -> int | tuple[int, ...]:
        """Synaptic memory in bits (words × word bits), per core."""
        if isinstance(self.synaptic_memory_words, tuple):
            return tuple(w * self.synaptic_word_bits for w in self.synaptic_memory_words)
        return self.synaptic_memory_words * self.synaptic_word_bits


@dataclass(frozen=True, slots=True, kw_only=True)
class ChipBudget:
    """Per-chip limits (``None``: none of that kind)."""

    routing_entries: int | None
    shared_memory_bytes: int | None
    links_per_chip: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class NumberFormat:
    """Fixed-point formats of weights, state, decays, thresholds and biases (bits)."""

    weight_bits: int
    weight_signed: bool
    weight_exponent_min: int
    weight_exponent_max: int
    weight_exponent_offset: int | None
    input_shift: int | None
    voltage_bits: int
    current_bits: int
    state_fraction_bits: int | None
    voltage_overflow: str
    current_overflow: str
    decay_bits: int
    threshold_bits: int
    threshold_shift: int
    bias_bits: int
    bias_exponent_bits: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What the chip can do natively."""

    time_stepped: bool
    convolution_hardware: bool
    graded_spikes: bool
    graded_spike_bits: int
    resonate_and_fire: bool
    per_synapse_delays: bool
    stochastic: bool
    on_chip_learning: bool
    reset_modes: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CostModel:
    """Energy (J), time (s) and power (W) per event; ``None`` where the file gives none."""

    energy_per_synop_j: float
    energy_per_neuron_update_j: float
    energy_per_neuron_update_inactive_j: float | None
    energy_per_spike_local_j: float | None
    energy_per_spike_sent_j: float | None
    energy_per_hop_j: float
    energy_per_hop_x_j: float | None
    energy_per_hop_y_j: float | None
    time_per_synop_s: float
    time_per_neuron_update_s: float
    time_per_neuron_update_inactive_s: float | None
    time_per_spike_local_s: float | None
    time_per_hop_s: float
    time_per_hop_x_s: float | None
    time_per_hop_y_s: float | None
    barrier_time_s: float
    step_time_s: float | None
    static_power_w: float
    power_per_active_core_w: float | None
    synop_energy_all_in: bool | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConvolutionLimits:
    """Limits of native convolution layers (targets with convolution hardware)."""

    max_kernel_size: int
    strides: tuple[int, ...]
    max_padding: int
    pooling_sizes: tuple[int, ...]
    max_input_size: tuple[int, int]
    max_output_size: tuple[int, int]
    max_channels: int



@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """A checked target description. Build it with :func:`load_target`.

    ``name`` is ``"<file name>"`` or ``"<file name>:<variant>"``; ``sources`` holds the
    provenance of every hardware number, keyed ``"section.field"``.
    """

    name: str
    base_name: str
    variant: str | None
    variants: tuple[str, ...]
    description: str
    backend: str
    real_chip: bool
    path: str
    topology: Topology
    core: CoreBudget
    chip: ChipBudget
    formats: NumberFormat
    capabilities: Capabilities
    cost: CostModel
    convolution: ConvolutionLimits | None
    sources: tuple[Provenance, ...]
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    # ----------------------------------------------------------------- chip knowledge

    @property
    def noc(self) -> NoC:
        """The network-on-chip (:mod:`nmcompiler.targets.topology`), built once."""
        if "noc" not in self._cache:
            self._cache["noc"] = make_noc(self.topology)
        return self._cache["noc"]

    @property
    def family(self) -> Family:
        """The chip family of the ``backend`` field (:mod:`nmcompiler.targets.families`)."""
        from .families import family_of

        return family_of(self.backend)

    # ----------------------------------------------------------------- provenance

    def source_of(self, key: str) -> Provenance:
        """Provenance of ``"section.field"``; raises ``KeyError`` for a field not given."""
        for p in self.sources:
            if p.key == key:
                return p
        raise KeyError(key)

    def unknown_fields(self) -> tuple[str, ...]:
        """Keys whose value is a labelled default because the number is not published."""
        return tuple(p.key for p in self.sources if p.status == "unknown")

    # ----------------------------------------------------------------- sizes

    @property
    def n_chips(self) -> int:
        """Chips in the system."""
        return self.topology.chips_per_system

    @property
    def total_cores(self) -> int:
        """Usable cores in the system."""
        return self.n_chips * self.topology.cores_per_chip

    @property
    def n_nodes(self) -> int:
        """Routers (tiles; on SpiNNaker: chips) in the system."""
        return self.n_chips * self.topology.nodes_per_chip

    def per_core(self, name: str) -> np.ndarray:
        """A core-budget field as an int64 array over all cores (``-1`` where ``None``)."""
        if name not in _CORE_BUDGET_NAMES:
            raise UsageError(
                f"unknown core budget {name!r}",
                hint=did_you_mean(name, _CORE_BUDGET_NAMES),
            )
        value = getattr(self.core, name)
        if isinstance(value, (str, bool)):
            raise UsageError(f"core budget {name!r} is not a number")
        if value is None:
            per_chip = np.full(self.topology.cores_per_chip, -1, dtype=np.int64)
        else:
            per_chip = np.broadcast_to(
                np.asarray(value, dtype=np.int64), (self.topology.cores_per_chip,)
            )
        return np.tile(per_chip, self.n_chips)


    # ----------------------------------------------------------------- geometry

    def core_coords(self) -> np.ndarray:
        """Coordinates of every core, shape ``(total_cores, 5)``, columns :data:`COORD_NAMES`
        (:meth:`NoC.core_coords <nmcompiler.targets.topology.NoC.core_coords>`)."""
        return self.noc.core_coords()

    def node_coords(self) -> np.ndarray:
        """Global (x, y) of every router, shape ``(n_nodes, 2)``."""
        return self.noc.node_coords()

    def core_node(self, cores: Any) -> np.ndarray:
        """Index of the router (node) of each core; vectorised."""
        return self.noc.core_node(self._check_cores(cores))

    def hops(self, core_a: Any, core_b: Any) -> np.ndarray:
        """Router-to-router hops between cores (broadcasting int arrays); 0 on one node.

        ``mesh2d``: Manhattan distance on the global grid (wrapped axes take the shorter
        way). ``triangular_torus``: the SpiNNaker distance between chips with
        d = (dx, dy): max(|dx|, |dy|) when dx and dy have the same sign, |dx| + |dy|
        otherwise, minimised over the wrap-arounds of wrapped axes.
        ``speck_layers`` / ``full``: 1 between different nodes. Distances on a chip set
        with holes assume the set is convex in the lattice (true for SpiNN-5 boards).
        """
        return self.noc.node_hops(self.core_node(core_a), self.core_node(core_b))

    def links(self) -> np.ndarray:
        """Directed router-to-router links, shape ``(n_links, 2)`` of node indices, sorted.

        Both directions are listed; link-load accounting counts each direction apart.
        """
        return self.noc.links()

    def _check_cores(self, cores: Any) -> np.ndarray:
        c = np.asarray(cores)
        if c.dtype.kind not in "iu":
            if c.size and not np.all(np.equal(np.mod(c, 1), 0)):
                raise UsageError(f"core ids must be integers; got dtype {c.dtype}")
            c = c.astype(np.int64)
        if c.size and (c.min() < 0 or c.max() >= self.total_cores):
            raise UsageError(
                f"core id out of range for target {self.name!r}: "
                f"{int(c.min())}..{int(c.max())} not within 0..{self.total_cores - 1}",
                limit=self.total_cores,
            )
        return c.astype(np.int64)



_CORE_BUDGET_NAMES = tuple(f.name for f in fields(CoreBudget))
