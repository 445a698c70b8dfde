"""Target descriptions: what a chip offers, read from a checked TOML file.

A *target* is one file in ``hw_configs/`` (or a user's own file): the topology of cores,
chips and links, the per-core and per-chip budgets a partition must respect, the number
formats the quantizer must produce, the capability flags and a cost model. The format is
documented in ``docs/targets.md``; the numbers and their sources are in
``shared/hw_reference.md``.

Every hardware number in a file is a small table that carries its provenance::

    neurons = { value = 1024, source = "hw_reference.md §1b, Davies18 p.89" }
    fan_in  = { value = 4096, status = "unknown", note = "conservative default: ..." }

``load_target`` checks the file against the schema below and raises
:class:`nmcompiler.ir.errors.ConfigError` naming the file, the key, the problem and a hint. The
resulting :class:`Target` is a frozen value with derived geometry: core coordinates,
hop distances (vectorised) and the link list of the network-on-chip.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nmcompiler.ir.errors import ConfigError, UsageError

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = [
    "SCHEMA_VERSION",
    "TOPOLOGY_KINDS",
    "SYNAPSE_ACCOUNTINGS",
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
    "load_target",
    "parse_target",
    "list_targets",
    "target_names",
]

SCHEMA_VERSION = 1

TOPOLOGY_KINDS = ("mesh2d", "triangular_torus", "speck_layers", "full")
"""Network-on-chip kinds. ``mesh2d``: routers on a 2-D grid, chips extend the grid
(Loihi). ``triangular_torus``: one router per chip, six links (x±1, y), (x, y±1),
(x+1, y+1), (x−1, y−1), optionally wrapped (SpiNNaker). ``speck_layers``: every core
talks directly to the cores it sends to (≤ ``max_destinations``). ``full``: every node
reaches every other in one hop."""

SYNAPSE_ACCOUNTINGS = ("loihi_synapse_config", "word_per_synapse", "speck_kernel", "fixed_bits")
"""How synapses are charged against ``synaptic_memory_words`` (see docs/targets.md)."""

COORD_NAMES = ("chip_x", "chip_y", "node_x", "node_y", "slot")
"""Columns of :meth:`Target.core_coords`."""

STATUSES = ("cited", "derived", "unknown", "synthetic")
RESET_MODES = ("hard", "soft", "none")
OVERFLOW_MODES = ("saturate", "wrap")

_QUANTITY_KEYS = ("value", "source", "status", "note")
_TOP_KEYS = ("schema_version", "name", "description", "backend", "real_chip", "variants")
_VARIANT_EXTRA_KEYS = ("description",)


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True, slots=True, kw_only=True)
class _Spec:
    kind: str  # int | float | bool | str | int_pair | bool_pair | int_pairs | int_list | str_list
    required: bool = True
    min: float | None = None
    choices: tuple[str, ...] = ()
    per_core: bool = False  # a list with one value per core of a chip is allowed
    unit: str = ""
    doc: str = ""


def _s(kind: str, doc: str, **kw: Any) -> _Spec:
    return _Spec(kind=kind, doc=doc, **kw)


_OPT = {"required": False}

SCHEMA: dict[str, dict[str, _Spec]] = {
    "topology": {
        "kind": _s("str", "network-on-chip kind", choices=TOPOLOGY_KINDS),
        "chip_grid": _s("int_pair", "chips in x and y (bounding box of the system)", min=1),
        "chips": _s("int_pairs", "coordinates of the chips present, if not the full grid", **_OPT),
        "chips_per_system": _s("int", "number of chips in the system", min=1),
        "wrap": _s("bool_pair", "wrap-around links in x and y (torus)", **_OPT),
        "node_grid": _s("int_pair", "routers (tiles) per chip in x and y", min=1),
        "cores_per_node": _s("int", "cores sharing one router (a tile)", min=1),
        "cores_per_chip": _s("int", "usable cores per chip", min=1),
    },
    "core_budget": {
        "neurons": _s("int", "neurons (compartments) per core", min=1, per_core=True),
        "input_axons": _s("int", "distinct inputs (fan-in) per core", min=1, **_OPT),
        "output_axons": _s("int", "output axons (core-to-core edges) per core", min=1, **_OPT),
        "synaptic_memory_words": _s(
            "int", "synaptic memory per core", min=0, per_core=True, unit="words"
        ),
        "synaptic_word_bits": _s("int", "width of one synaptic memory word", min=1, unit="bits"),
        "synapse_accounting": _s("str", "how synapses are charged", choices=SYNAPSE_ACCOUNTINGS),
        "synapse_entry_bits": _s(
            "int", "bits of one synapse entry (minimum where variable)", min=1, unit="bits"
        ),
        "row_header_words": _s("int", "header words per synaptic row", min=0, **_OPT, unit="words"),
        "bias_memory_words": _s(
            "int", "bias memory per core", min=0, per_core=True, **_OPT, unit="words"
        ),
        "local_memory_bytes": _s("int", "core-local data memory", min=0, **_OPT, unit="bytes"),
        "min_delay": _s("int", "smallest synaptic delay", min=0, unit="steps"),
        "max_delay": _s("int", "largest native synaptic delay", min=0, unit="steps"),
        "max_destinations": _s("int", "destination cores one core may send to", min=1, **_OPT),
    },
    "chip_budget": {
        "routing_entries": _s("int", "multicast routing-table entries per chip", min=1, **_OPT),
        "shared_memory_bytes": _s(
            "int", "memory shared by the cores of a chip", min=0, **_OPT, unit="bytes"
        ),
        "links_per_chip": _s("int", "chip-to-chip links", min=0, **_OPT),
    },
    "formats": {
        "weight_bits": _s("int", "weight width (incl. sign when signed)", min=1, unit="bits"),
        "weight_signed": _s("bool", "weights carry a sign"),
        "weight_exponent_min": _s("int", "smallest shared weight exponent"),
        "weight_exponent_max": _s("int", "largest shared weight exponent"),
        "weight_exponent_offset": _s("int", "fixed extra shift: scale 2**(offset+exp)", **_OPT),
        "input_shift": _s(
            "int", "left shift of synaptic input into the state", min=0, **_OPT, unit="bits"
        ),
        "voltage_bits": _s("int", "membrane voltage width (incl. sign)", min=1, unit="bits"),
        "current_bits": _s(
            "int", "synaptic current width (0: no current stage)", min=0, unit="bits"
        ),
        "state_fraction_bits": _s(
            "int", "fraction bits of fixed-point state", min=0, **_OPT, unit="bits"
        ),
        "voltage_overflow": _s("str", "voltage on overflow", choices=OVERFLOW_MODES),
        "current_overflow": _s("str", "current on overflow", choices=OVERFLOW_MODES),
        "decay_bits": _s(
            "int", "decay constant width; decay = d / 2**bits (0: none)", min=0, unit="bits"
        ),
        "threshold_bits": _s("int", "threshold mantissa width", min=1, unit="bits"),
        "threshold_shift": _s("int", "threshold = mantissa << shift", min=0, unit="bits"),
        "bias_bits": _s("int", "bias mantissa width (incl. sign)", min=0, unit="bits"),
        "bias_exponent_bits": _s("int", "bias exponent width (bias = m << e)", min=0, unit="bits"),
    },
    "capabilities": {
        "time_stepped": _s("bool", "discrete time steps (false: asynchronous, event-driven)"),
        "convolution_hardware": _s("bool", "native convolution layers"),
        "graded_spikes": _s("bool", "spikes carry an integer payload"),
        "graded_spike_bits": _s("int", "payload width (0 when not graded)", min=0, unit="bits"),
        "resonate_and_fire": _s("bool", "resonate-and-fire neurons"),
        "per_synapse_delays": _s("bool", "a delay per synapse (else per projection or none)"),
        "stochastic": _s("bool", "stochastic firing / noise"),
        "on_chip_learning": _s("bool", "synaptic plasticity on chip"),
        "reset_modes": _s("str_list", "supported reset modes", choices=RESET_MODES),
    },
    "cost": {
        "energy_per_synop_j": _s("float", "energy per synaptic operation", min=0, unit="J"),
        "energy_per_neuron_update_j": _s(
            "float", "energy per (active) neuron update", min=0, unit="J"
        ),
        "energy_per_neuron_update_inactive_j": _s(
            "float", "energy per idle neuron update", min=0, unit="J", **_OPT
        ),
        "energy_per_spike_local_j": _s(
            "float", "energy per spike delivered within a node", min=0, unit="J", **_OPT
        ),
        "energy_per_spike_sent_j": _s(
            "float", "energy per spike packet sent", min=0, unit="J", **_OPT
        ),
        "energy_per_hop_j": _s("float", "energy per spike per router hop", min=0, unit="J"),
        "energy_per_hop_x_j": _s(
            "float", "energy per hop along x (anisotropic mesh)", min=0, unit="J", **_OPT
        ),
        "energy_per_hop_y_j": _s(
            "float", "energy per hop along y (anisotropic mesh)", min=0, unit="J", **_OPT
        ),
        "time_per_synop_s": _s("float", "time per synaptic operation", min=0, unit="s"),
        "time_per_neuron_update_s": _s("float", "time per (active) neuron update", min=0, unit="s"),
        "time_per_neuron_update_inactive_s": _s(
            "float", "time per idle neuron update", min=0, unit="s", **_OPT
        ),
        "time_per_spike_local_s": _s(
            "float", "latency of a spike within a node", min=0, unit="s", **_OPT
        ),
        "time_per_hop_s": _s("float", "latency per router hop", min=0, unit="s"),
        "time_per_hop_x_s": _s("float", "latency per hop along x", min=0, unit="s", **_OPT),
        "time_per_hop_y_s": _s("float", "latency per hop along y", min=0, unit="s", **_OPT),
        "barrier_time_s": _s("float", "end-of-step synchronisation", min=0, unit="s"),
        "step_time_s": _s(
            "float", "fixed wall time per step (timer-driven chips)", min=0, unit="s", **_OPT
        ),
        "static_power_w": _s("float", "static / idle power per chip", min=0, unit="W"),
        "power_per_active_core_w": _s(
            "float", "extra power per active core", min=0, unit="W", **_OPT
        ),
        "synop_energy_all_in": _s(
            "bool", "energy_per_synop_j already includes static, routing and neuron energy", **_OPT
        ),
    },
    "convolution": {
        "max_kernel_size": _s("int", "largest square kernel side", min=1),
        "strides": _s("int_list", "allowed strides", min=1),
        "max_padding": _s("int", "largest padding", min=0),
        "pooling_sizes": _s("int_list", "allowed sum-pooling sizes", min=1),
        "max_input_size": _s("int_pair", "largest input feature map (h, w)", min=1),
        "max_output_size": _s("int_pair", "largest output feature map (h, w)", min=1),
        "max_channels": _s("int", "largest number of output channels", min=1),
    },
}
"""The schema: section -> field -> spec. ``topology.kind`` is a plain string; every other
field is a provenance table ``{ value, source | status + note }``."""

_OPTIONAL_SECTIONS = ("convolution",)
_PLAIN_FIELDS = {("topology", "kind")}

_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "str": "a string",
    "int_pair": "a list of two integers",
    "bool_pair": "a list of two booleans",
    "int_pairs": "a list of [x, y] integer pairs",
    "int_list": "a list of integers",
    "str_list": "a list of strings",
}


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
        if name not in SCHEMA["core_budget"]:
            raise UsageError(
                f"unknown core budget {name!r}",
                hint=_did_you_mean(name, SCHEMA["core_budget"]),
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
        """Coordinates of every core, shape ``(total_cores, 5)``, columns :data:`COORD_NAMES`.

        Core ``c`` lies on chip ``c // cores_per_chip`` (chips in the order of
        ``topology.chips``); its local index ``l`` lives in node ``l // cores_per_node``
        (nodes numbered x fastest) at slot ``l % cores_per_node``.
        """
        if "core_coords" not in self._cache:
            t = self.topology
            local = np.arange(t.cores_per_chip)
            node = local // t.cores_per_node
            per_chip = np.stack(
                [node % t.node_grid[0], node // t.node_grid[0], local % t.cores_per_node],
                axis=1,
            )
            chips = np.asarray(t.chips, dtype=np.int64).reshape(-1, 2)
            out = np.concatenate(
                [
                    np.repeat(chips, t.cores_per_chip, axis=0),
                    np.tile(per_chip, (t.chips_per_system, 1)),
                ],
                axis=1,
            ).astype(np.int64)
            out.setflags(write=False)
            self._cache["core_coords"] = out
        return self._cache["core_coords"]

    def node_coords(self) -> np.ndarray:
        """Global (x, y) of every router, shape ``(n_nodes, 2)``.

        Node ``n`` is router ``n % nodes_per_chip`` (x fastest) of chip
        ``n // nodes_per_chip``; x = chip_x · node_grid_x + node_x (likewise y).
        """
        if "node_coords" not in self._cache:
            t = self.topology
            nx, ny = t.node_grid
            k = np.arange(nx * ny)
            local = np.stack([k % nx, k // nx], axis=1)
            chips = np.asarray(t.chips, dtype=np.int64).reshape(-1, 2)
            out = (
                np.repeat(chips * (nx, ny), nx * ny, axis=0)
                + np.tile(local, (t.chips_per_system, 1))
            ).astype(np.int64)
            out.setflags(write=False)
            self._cache["node_coords"] = out
        return self._cache["node_coords"]

    def core_node(self, cores: Any) -> np.ndarray:
        """Index of the router (node) of each core; vectorised."""
        c = self._check_cores(cores)
        t = self.topology
        chip, local = np.divmod(c, t.cores_per_chip)
        return chip * t.nodes_per_chip + local // t.cores_per_node

    def hops(self, core_a: Any, core_b: Any) -> np.ndarray:
        """Router-to-router hops between cores (broadcasting int arrays); 0 on one node.

        ``mesh2d``: Manhattan distance on the global grid (wrapped axes take the shorter
        way). ``triangular_torus``: the SpiNNaker distance between chips with
        d = (dx, dy): max(|dx|, |dy|) when dx and dy have the same sign, |dx| + |dy|
        otherwise, minimised over the wrap-arounds of wrapped axes.
        ``speck_layers`` / ``full``: 1 between different nodes. Distances on a chip set
        with holes assume the set is convex in the lattice (true for SpiNN-5 boards).
        """
        na = self.core_node(core_a)
        nb = self.core_node(core_b)
        return self._node_hops(na, nb)

    def _node_hops(self, na: np.ndarray, nb: np.ndarray) -> np.ndarray:
        t = self.topology
        if t.kind in ("speck_layers", "full"):
            return (na != nb).astype(np.int64)
        xy = self.node_coords()
        d = xy[nb] - xy[na]
        extent = np.asarray(t.chip_grid) * np.asarray(t.node_grid)
        if t.kind == "mesh2d":
            ad = np.abs(d)
            for axis in (0, 1):
                if t.wrap[axis]:
                    ad[..., axis] = np.minimum(ad[..., axis], extent[axis] - ad[..., axis])
            return ad.sum(axis=-1).astype(np.int64)
        # triangular_torus: one router per chip (node_grid is (1, 1))
        dx, dy = d[..., 0], d[..., 1]
        shifts_x = (-extent[0], 0, extent[0]) if t.wrap[0] else (0,)
        shifts_y = (-extent[1], 0, extent[1]) if t.wrap[1] else (0,)
        best = None
        for sx in shifts_x:
            for sy in shifts_y:
                h = _tri_distance(dx + sx, dy + sy)
                best = h if best is None else np.minimum(best, h)
        return np.asarray(best, dtype=np.int64)

    def links(self) -> np.ndarray:
        """Directed router-to-router links, shape ``(n_links, 2)`` of node indices, sorted.

        Both directions are listed; link-load accounting counts each direction apart.
        """
        if "links" not in self._cache:
            t = self.topology
            n = self.n_nodes
            if t.kind in ("speck_layers", "full"):
                a, b = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
                pairs = np.stack([a.ravel(), b.ravel()], axis=1)
                pairs = pairs[pairs[:, 0] != pairs[:, 1]]
            else:
                # vectorised over nodes: a grid of node indices, one lookup per direction
                xy = self.node_coords()
                ex, ey = (int(v) for v in np.asarray(t.chip_grid) * np.asarray(t.node_grid))
                index = np.full((ex, ey), -1, dtype=np.int64)
                index[xy[:, 0], xy[:, 1]] = np.arange(n)
                steps = [(1, 0), (-1, 0), (0, 1), (0, -1)]
                if t.kind == "triangular_torus":
                    steps += [(1, 1), (-1, -1)]
                keys = []
                for sx, sy in steps:
                    qx, qy = xy[:, 0] + sx, xy[:, 1] + sy
                    if t.wrap[0]:
                        qx = np.mod(qx, ex)
                    if t.wrap[1]:
                        qy = np.mod(qy, ey)
                    ok = (qx >= 0) & (qx < ex) & (qy >= 0) & (qy < ey)
                    i = np.flatnonzero(ok)
                    j = index[qx[ok], qy[ok]]
                    keep = (j >= 0) & (j != i)
                    keys.append(i[keep] * n + j[keep])
                key = np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
                pairs = np.stack(np.divmod(key, n), axis=1).astype(np.int64).reshape(-1, 2)
            pairs = pairs.astype(np.int64)
            pairs.setflags(write=False)
            self._cache["links"] = pairs
        return self._cache["links"]

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


def _tri_distance(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    same_sign = (dx * dy) >= 0
    return np.where(same_sign, np.maximum(np.abs(dx), np.abs(dy)), np.abs(dx) + np.abs(dy))


# --------------------------------------------------------------------------- loading


def target_names() -> list[str]:
    """Names of the bundled targets (``hw_configs/*.toml``)."""
    from nmcompiler import hw_configs

    return hw_configs.names()


def list_targets() -> list[Target]:
    """Every bundled target (default variants), loaded and checked."""
    return [load_target(name) for name in target_names()]


def load_target(name_or_path: str | Path, *, variant: str | None = None) -> Target:
    """Load a bundled target by name or a user's TOML file by path, and check it.

    ``name_or_path``: ``"loihi2"``, ``"spinnaker:spinn3"`` (name and variant), or a path
    to a ``.toml`` file (a ``Path``, or a string ending in ``.toml`` or containing a path
    separator). ``variant`` selects a ``[variants.<name>]`` block (board variant).
    Raises :class:`nmcompiler.ir.errors.ConfigError` for a missing, unreadable or invalid file.
    """
    path, variant = _resolve(name_or_path, variant)
    label = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{label}: cannot read target file ({exc.strerror or exc})",
            obj=label,
            rule="file",
            hint="check the path, or use a bundled name: " + ", ".join(target_names()),
        ) from exc
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{label}: not valid TOML ({exc})",
            obj=label,
            rule="toml",
            hint="fix the syntax; see docs/targets.md for the format",
        ) from exc
    return parse_target(doc, label=label, variant=variant)


def _resolve(name_or_path: str | Path, variant: str | None) -> tuple[Path, str | None]:
    if isinstance(name_or_path, Path):
        return name_or_path, variant
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text or "\\" in text:
        return Path(text), variant
    name, sep, var = text.partition(":")
    if sep:
        if variant is not None and variant != var:
            raise ConfigError(
                f"target {text!r} names variant {var!r} but variant={variant!r} was given",
                obj=text,
                rule="variant",
                hint="give the variant once",
            )
        variant = var
    names = target_names()
    if name not in names:
        raise ConfigError(
            f"unknown target {name!r}",
            obj=name,
            rule="target",
            hint=_did_you_mean(name, names, what="bundled targets")
            + "; or pass the path of your own .toml file",
        )
    from nmcompiler import hw_configs

    return hw_configs.path(name), variant


def parse_target(doc: Mapping[str, Any], *, label: str, variant: str | None = None) -> Target:
    """Check a parsed TOML document and build the :class:`Target` (``label`` names it)."""
    doc = dict(doc)
    variants_raw = doc.get("variants", {})
    if not isinstance(variants_raw, dict) or not all(
        isinstance(v, dict) for v in variants_raw.values()
    ):
        raise _err(
            label,
            "variants",
            "must be a table of tables [variants.<name>]",
            "write each variant as [variants.<name>] with the sections it overrides",
        )
    variant_names = tuple(sorted(variants_raw))
    for vname, vdoc in variants_raw.items():
        _check_keys(label, f"variants.{vname}", vdoc, tuple(SCHEMA) + _VARIANT_EXTRA_KEYS)
        for section, table in vdoc.items():
            if section in SCHEMA and not isinstance(table, dict):
                raise _err(
                    label,
                    f"variants.{vname}.{section}",
                    "must be a table",
                    f"write it as [variants.{vname}.{section}]",
                )
    base_name = _plain_str(label, doc, "name")
    if variant is not None:
        if variant not in variants_raw:
            raise ConfigError(
                f"{label}: unknown variant {variant!r} of target {base_name!r}",
                obj=label,
                rule="variant",
                hint=_did_you_mean(variant, variant_names, what="variants"),
            )
        doc = _merge(doc, variants_raw[variant])

    _check_keys(label, "", doc, _TOP_KEYS + tuple(SCHEMA))
    for key in ("schema_version", "name", "description", "backend", "real_chip"):
        if key not in doc:
            raise _missing(label, key)
    version = doc["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise _err(
            label,
            "schema_version",
            f"must be an integer, got {_show(version)}",
            f"write schema_version = {SCHEMA_VERSION}",
        )
    if version != SCHEMA_VERSION:
        raise _err(
            label,
            "schema_version",
            f"unsupported schema version {version} (this nmcompiler reads {SCHEMA_VERSION})",
            f"write schema_version = {SCHEMA_VERSION}",
        )
    description = _plain_str(label, doc, "description")
    backend = _plain_str(label, doc, "backend")
    real_chip = doc["real_chip"]
    if not isinstance(real_chip, bool):
        raise _err(
            label,
            "real_chip",
            f"must be true or false, got {_show(real_chip)}",
            "write real_chip = true for a chip that exists, false for a model",
        )

    values: dict[str, dict[str, Any]] = {}
    sources: list[Provenance] = []
    for section, specs in SCHEMA.items():
        if section not in doc:
            if section in _OPTIONAL_SECTIONS:
                values[section] = {}
                continue
            raise _missing(label, section, section=True)
        table = doc[section]
        if not isinstance(table, dict):
            raise _err(
                label, section, f"must be a table, got {_show(table)}", f"write it as [{section}]"
            )
        _check_keys(label, section, table, tuple(specs))
        sec_values: dict[str, Any] = {}
        for fname, spec in specs.items():
            key = f"{section}.{fname}"
            if fname not in table:
                if spec.required:
                    raise _missing(label, key)
                sec_values[fname] = None
                continue
            if (section, fname) in _PLAIN_FIELDS:
                sec_values[fname] = _check_value(label, key, spec, table[fname])
                continue
            value, prov = _parse_quantity(label, key, spec, table[fname], real_chip)
            sec_values[fname] = value
            sources.append(prov)
        values[section] = sec_values

    topo = _build_topology(label, values["topology"])
    core = CoreBudget(**values["core_budget"])
    chip = ChipBudget(**values["chip_budget"])
    formats = NumberFormat(**values["formats"])
    caps = Capabilities(**values["capabilities"])
    cost = CostModel(**values["cost"])
    conv = ConvolutionLimits(**values["convolution"]) if values["convolution"] else None
    _check_consistency(label, topo, core, formats, caps, conv)

    return Target(
        name=base_name if variant is None else f"{base_name}:{variant}",
        base_name=base_name,
        variant=variant,
        variants=variant_names,
        description=description,
        backend=backend,
        real_chip=real_chip,
        path=label,
        topology=topo,
        core=core,
        chip=chip,
        formats=formats,
        capabilities=caps,
        cost=cost,
        convolution=conv,
        sources=tuple(sources),
    )


# --------------------------------------------------------------------------- checks


def _merge(base: dict, override: Mapping[str, Any]) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key in SCHEMA:
            merged = dict(out[key])
            merged.update(value)
            out[key] = merged
        else:
            out[key] = value
    return out


def _err(label: str, key: str, problem: str, hint: str, **kw: Any) -> ConfigError:
    where = f"key '{key}'" if key else "top level"
    return ConfigError(f"{label}: {where} {problem}", obj=label, rule=key or None, hint=hint, **kw)


def _missing(label: str, key: str, *, section: bool = False) -> ConfigError:
    if section:
        return ConfigError(
            f"{label}: missing section [{key}]",
            obj=label,
            rule=key,
            hint=f"add a [{key}] table with the keys listed in docs/targets.md",
        )
    section_name, _, fname = key.rpartition(".")
    if section_name:
        hint = (
            f'add {fname} = {{ value = ..., source = "hw_reference.md §..." }} to '
            f'[{section_name}], or mark it status = "unknown" with a note'
        )
    else:
        hint = f"add {key} = ... at the top of the file (see docs/targets.md)"
    return ConfigError(f"{label}: missing key '{key}'", obj=label, rule=key, hint=hint)


def _did_you_mean(word: str, options: Any, *, what: str = "allowed") -> str:
    options = list(options)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    listing = f"{what}: {', '.join(options)}"
    if close:
        return f"did you mean '{close[0]}'? {listing}"
    return listing


def _check_keys(label: str, prefix: str, table: Mapping[str, Any], allowed: tuple) -> None:
    for key in table:
        if key not in allowed:
            full = f"{prefix}.{key}" if prefix else key
            raise ConfigError(
                f"{label}: unknown key '{full}'",
                obj=label,
                rule=full,
                hint=_did_you_mean(key, allowed, what="allowed keys"),
            )


def _plain_str(label: str, doc: Mapping[str, Any], key: str) -> str:
    if key not in doc:
        raise _missing(label, key)
    value = doc[key]
    if not isinstance(value, str) or not value.strip():
        raise _err(
            label, key, f"must be a non-empty string, got {_show(value)}", f'write {key} = "..."'
        )
    return value


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _parse_quantity(
    label: str, key: str, spec: _Spec, raw: Any, real_chip: bool
) -> tuple[Any, Provenance]:
    example = '{ value = ..., source = "hw_reference.md §..." }'
    if not isinstance(raw, dict):
        what = (
            "a number" if isinstance(raw, (int, float)) and not isinstance(raw, bool) else "a value"
        )
        raise _err(
            label,
            key,
            f"is {what} without a source ({_show(raw)})",
            f'write {key.rpartition(".")[2]} = {example}, or status = "unknown" with a '
            "note giving the conservative default",
        )
    _check_keys(label, key, raw, _QUANTITY_KEYS)
    if "value" not in raw:
        raise _missing(label, f"{key}.value")
    status = raw.get("status", "cited")
    if status not in STATUSES:
        raise _err(
            label,
            f"{key}.status",
            f"has unknown value {status!r}",
            _did_you_mean(str(status), STATUSES, what="statuses"),
        )
    source = raw.get("source")
    note = raw.get("note")
    for sub, text in (("source", source), ("note", note)):
        if text is not None and (not isinstance(text, str) or not text.strip()):
            raise _err(
                label,
                f"{key}.{sub}",
                f"must be a non-empty string, got {_show(text)}",
                f'write {sub} = "..."',
            )
    if status in ("cited", "derived") and source is None:
        raise _err(
            label,
            key,
            f"is a number without a source (status {status!r})",
            'add source = "hw_reference.md §..., <paper or code>" or, if the number is not '
            'published, status = "unknown" and a note explaining the default',
        )
    if status == "unknown" and note is None:
        raise _err(
            label,
            key,
            "is marked unknown but has no note",
            'add note = "conservative default: <why this value>"',
        )
    if status == "synthetic":
        if real_chip:
            raise _err(
                label,
                key,
                "is synthetic in a file with real_chip = true",
                'cite the number, or mark it status = "unknown" with a note',
            )
        if source is None and note is None:
            raise _err(
                label,
                key,
                "is synthetic but has neither source nor note",
                'add note = "design value of this model chip"',
            )
    value = _check_value(label, key, spec, raw["value"])
    return value, Provenance(key=key, status=status, source=source, note=note)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_value(label: str, key: str, spec: _Spec, value: Any) -> Any:
    kind = spec.kind
    if spec.per_core and isinstance(value, list):
        if not value or not all(_is_int(v) for v in value):
            raise _err(
                label,
                key,
                f"must be an integer or a list of integers (one per core), got {_show(value)}",
                "write value = 1024 or value = [65536, 32768, ...]",
            )
        for v in value:
            _check_min(label, key, spec, v)
        return tuple(value)
    ok = True
    if kind == "int":
        ok = _is_int(value)
    elif kind == "float":
        ok = (_is_int(value) or isinstance(value, float)) and math.isfinite(value)
        if ok:
            value = float(value)
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "str":
        ok = isinstance(value, str)
    elif kind in ("int_pair", "bool_pair"):
        test = _is_int if kind == "int_pair" else (lambda v: isinstance(v, bool))
        ok = isinstance(value, list) and len(value) == 2 and all(test(v) for v in value)
        if ok:
            value = tuple(value)
    elif kind == "int_pairs":
        ok = (
            isinstance(value, list)
            and bool(value)
            and all(
                isinstance(p, list) and len(p) == 2 and all(_is_int(v) for v in p) for p in value
            )
        )
        if ok:
            value = tuple(tuple(p) for p in value)
    elif kind == "int_list":
        ok = isinstance(value, list) and bool(value) and all(_is_int(v) for v in value)
        if ok:
            value = tuple(value)
    elif kind == "str_list":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        if ok:
            value = tuple(value)
    if not ok:
        raise _err(
            label,
            key,
            f"must be {_TYPE_WORDS[kind]}, got {_show(value)}",
            f"see the meaning and units of '{key}' in docs/targets.md",
        )
    if spec.choices:
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if item not in spec.choices:
                raise _err(
                    label,
                    key,
                    f"has unknown value {item!r}",
                    _did_you_mean(item, spec.choices, what="choose one of"),
                )
    if kind in ("int", "float"):
        _check_min(label, key, spec, value)
    elif kind in ("int_pair", "int_list"):
        for v in value:
            _check_min(label, key, spec, v)
    return value


#: upper bounds of integer fields, by unit (docs/targets.md): no chip has wider words or
#: longer native delays, and larger values would make compile work without bound
_MAX_BY_UNIT = {"bits": 64, "steps": 2**16}
_MAX_INT = 2**40
_MAX_CORES = 2**24


def _check_min(label: str, key: str, spec: _Spec, v: float) -> None:
    top = _MAX_BY_UNIT.get(spec.unit, _MAX_INT) if spec.kind in ("int", "int_pair",
                                                                  "int_list") else None
    if top is not None and v > top:
        raise _err(label, key, f"must be <= {top:,}, got {v:g}",
                   "no chip has a larger value; check the units in docs/targets.md",
                   need=v, limit=top)
    if spec.min is not None and v < spec.min:
        bound = int(spec.min) if float(spec.min).is_integer() else spec.min
        raise _err(
            label,
            key,
            f"must be >= {bound}, got {v}",
            "budgets, widths and costs cannot be negative; "
            "omit an optional limit that does not exist",
            need=v,
            limit=spec.min,
        )


def _build_topology(label: str, v: dict[str, Any]) -> Topology:
    grid = v["chip_grid"]
    sizes = (v["chips_per_system"] * v["cores_per_chip"],
             grid[0] * grid[1] * v["node_grid"][0] * v["node_grid"][1])
    if max(sizes) > _MAX_CORES:  # before anything per chip or core is built
        raise _err(label, "topology", f"describes {max(sizes):,} cores or routers; at most "
                   f"{_MAX_CORES:,} are supported", "check chip_grid, node_grid and the counts",
                   need=max(sizes), limit=_MAX_CORES)
    chips = v["chips"]
    if chips is None:
        chips = tuple((x, y) for y in range(grid[1]) for x in range(grid[0]))
    if len(set(chips)) != len(chips):
        raise _err(label, "topology.chips", "lists a chip twice", "list each chip coordinate once")
    for x, y in chips:
        if not (0 <= x < grid[0] and 0 <= y < grid[1]):
            raise _err(
                label,
                "topology.chips",
                f"has chip ({x}, {y}) outside chip_grid {grid}",
                "enlarge topology.chip_grid or fix the coordinate",
            )
    if len(chips) != v["chips_per_system"]:
        raise _err(
            label,
            "topology.chips_per_system",
            f"is {v['chips_per_system']} but the topology has {len(chips)} chips",
            "chips_per_system must equal the number of chips in 'chips' (or "
            "chip_grid x * y when 'chips' is omitted)",
            need=v["chips_per_system"],
            limit=len(chips),
        )
    wrap = v["wrap"] if v["wrap"] is not None else (False, False)
    topo = Topology(
        kind=v["kind"],
        chip_grid=grid,
        chips=chips,
        chips_per_system=v["chips_per_system"],
        wrap=wrap,
        node_grid=v["node_grid"],
        cores_per_node=v["cores_per_node"],
        cores_per_chip=v["cores_per_chip"],
    )
    slots = topo.nodes_per_chip * topo.cores_per_node
    if topo.cores_per_chip > slots:
        raise _err(
            label,
            "topology.cores_per_chip",
            f"is {topo.cores_per_chip} but node_grid {topo.node_grid} x cores_per_node "
            f"{topo.cores_per_node} gives only {slots} core slots",
            "enlarge node_grid or cores_per_node, or lower cores_per_chip",
            need=topo.cores_per_chip,
            limit=slots,
        )
    if topo.kind == "triangular_torus" and topo.node_grid != (1, 1):
        raise _err(
            label,
            "topology.node_grid",
            f"must be [1, 1] for kind 'triangular_torus' (one router per chip), got "
            f"{list(topo.node_grid)}",
            "write node_grid = { value = [1, 1], ... }",
        )
    if any(wrap) and len(chips) != grid[0] * grid[1]:
        raise _err(
            label,
            "topology.wrap",
            "wraps a chip grid that has holes",
            "wrap-around needs every chip of chip_grid present (omit 'chips')",
        )
    if topo.kind in ("speck_layers", "full") and any(wrap):
        raise _err(
            label, "topology.wrap", f"has no meaning for kind {topo.kind!r}", "remove topology.wrap"
        )
    return topo


def _check_consistency(
    label: str,
    topo: Topology,
    core: CoreBudget,
    fmt: NumberFormat,
    caps: Capabilities,
    conv: ConvolutionLimits | None,
) -> None:
    if core.min_delay > core.max_delay:
        raise _err(
            label,
            "core_budget.min_delay",
            f"({core.min_delay}) is greater than 'core_budget.max_delay' ({core.max_delay})",
            "min_delay must be <= max_delay (both in steps)",
            need=core.min_delay,
            limit=core.max_delay,
        )
    for fname in ("neurons", "synaptic_memory_words", "bias_memory_words"):
        value = getattr(core, fname)
        if isinstance(value, tuple) and len(value) != topo.cores_per_chip:
            raise _err(
                label,
                f"core_budget.{fname}",
                f"lists {len(value)} per-core values but cores_per_chip is {topo.cores_per_chip}",
                "give one value per core, or a single value",
                need=len(value),
                limit=topo.cores_per_chip,
            )
    if fmt.weight_exponent_min > fmt.weight_exponent_max:
        raise _err(
            label,
            "formats.weight_exponent_min",
            f"({fmt.weight_exponent_min}) is greater than 'formats.weight_exponent_max' "
            f"({fmt.weight_exponent_max})",
            "write min <= max; [0, 0] means no exponent",
        )
    if caps.graded_spikes != (caps.graded_spike_bits > 0):
        raise _err(
            label,
            "capabilities.graded_spike_bits",
            f"is {caps.graded_spike_bits} but graded_spikes is {str(caps.graded_spikes).lower()}",
            "graded spikes need a payload width > 0; binary spikes have width 0",
        )
    if not caps.reset_modes:
        raise _err(
            label,
            "capabilities.reset_modes",
            "is empty",
            'list at least one of "hard", "soft", "none"',
        )
    if caps.convolution_hardware and conv is None:
        raise _missing(label, "convolution", section=True)
    if conv is not None and not caps.convolution_hardware:
        raise _err(
            label,
            "convolution",
            "is given but capabilities.convolution_hardware is false",
            "remove [convolution] or set convolution_hardware true",
        )
    if core.synapse_accounting == "word_per_synapse" and core.row_header_words is None:
        raise _missing(label, "core_budget.row_header_words")
    if topo.kind == "speck_layers" and core.max_destinations is None:
        raise _missing(label, "core_budget.max_destinations")
