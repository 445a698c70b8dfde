"""The fields of a target file: every section, key, type, bound and unit (docs/targets.md).

:data:`SCHEMA` maps section -> field -> :class:`FieldSpec`; :mod:`nmcompiler.targets.schema`
checks a file against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .topology import TOPOLOGY_KINDS

__all__ = ["SCHEMA_VERSION", "SCHEMA", "FieldSpec", "SYNAPSE_ACCOUNTINGS", "STATUSES",
           "RESET_MODES", "OVERFLOW_MODES", "QUANTITY_KEYS", "TOP_KEYS", "VARIANT_EXTRA_KEYS",
           "OPTIONAL_SECTIONS", "PLAIN_FIELDS", "TYPE_WORDS"]

SCHEMA_VERSION = 1


SYNAPSE_ACCOUNTINGS = ("loihi_synapse_config", "word_per_synapse", "speck_kernel", "fixed_bits")
"""How synapses are charged against ``synaptic_memory_words`` (see docs/targets.md)."""

STATUSES = ("cited", "derived", "unknown", "synthetic")
RESET_MODES = ("hard", "soft", "none")
OVERFLOW_MODES = ("saturate", "wrap")

QUANTITY_KEYS = ("value", "source", "status", "note")
TOP_KEYS = ("schema_version", "name", "description", "backend", "real_chip", "variants")
VARIANT_EXTRA_KEYS = ("description",)


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldSpec:
    """One field of the target TOML schema: kind, bounds, choices, unit and meaning."""
    kind: str  # int | float | bool | str | int_pair | bool_pair | int_pairs | int_list | str_list
    required: bool = True
    min: float | None = None
    choices: tuple[str, ...] = ()
    per_core: bool = False  # a list with one value per core of a chip is allowed
    unit: str = ""
    doc: str = ""


def _s(kind: str, doc: str, **kw: Any) -> FieldSpec:
    return FieldSpec(kind=kind, doc=doc, **kw)


_OPT = {"required": False}

SCHEMA: dict[str, dict[str, FieldSpec]] = {
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
        "weight_exponent_min": _s("int", "smallest shared weight exponent", min=-64,
                                  unit="bits"),
        "weight_exponent_max": _s("int", "largest shared weight exponent", min=-64,
                                  unit="bits"),
        "weight_exponent_offset": _s("int", "fixed extra shift: scale 2**(offset+exp)",
                                     min=-64, **_OPT, unit="bits"),
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

OPTIONAL_SECTIONS = ("convolution",)
PLAIN_FIELDS = {("topology", "kind")}

TYPE_WORDS = {
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
