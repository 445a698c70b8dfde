"""Per-core budgets of a target: the limits a partition must respect, and how synapses
are charged against synaptic memory (``synapse_accounting``, docs/targets.md)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..mapping import BUDGET_NAMES
from .model import Target

__all__ = ["BUDGET_NAMES", "LAYER_BUDGET_NAMES", "limits_of", "synapse_row_bits",
           "layer_mapped"]

#: the budgets of a layer-mapped (Speck) core
LAYER_BUDGET_NAMES = ("neurons", "kernel_memory_words", "neuron_memory_words",
                      "bias_memory_words", "destination_cores")


def layer_mapped(target: Target) -> bool:
    """Is the network mapped one layer per core (Speck: layer NoC or kernel memory)?"""
    return target.noc.layered or target.core.synapse_accounting == "speck_kernel"


def limits_of(target: Target, names: tuple[str, ...], layers: bool = False) -> np.ndarray:
    """The per-core limit of each budget in ``names`` (-1: none). A per-core list takes its
    smallest value, or for layer-mapped budgets (``layers``) its largest."""
    core = target.core

    def lim(v: Any, agg: Any = min) -> int:
        if v is None:
            return -1
        return int(agg(v)) if isinstance(v, tuple) else int(v)

    source = {
        "neurons": (core.neurons, max if layers else min),
        "input_axons": (core.input_axons, min),
        "output_axons": (core.output_axons, min),
        "synaptic_memory_bits": (core.synaptic_memory_bits, min),
        "destination_cores": (core.max_destinations, min),
        "kernel_memory_words": (core.synaptic_memory_words, max),
        "neuron_memory_words": (core.neurons, max),
        "bias_memory_words": (core.bias_memory_words, max),
    }
    return np.array([lim(*source[name]) for name in names if name in source], dtype=np.int64)


def _loihi_rows(n: np.ndarray, core: Any) -> np.ndarray:
    bpw = int(core.synapse_entry_bits)
    per_block = 64

    def block(k: np.ndarray | np.int64) -> np.ndarray | np.int64:
        return -64 * ((-(k * bpw + 10)) // 64)

    full, rem = np.divmod(n, per_block)
    return full * block(np.int64(per_block)) + np.where(rem > 0, block(rem), 0)


def _word_rows(n: np.ndarray, core: Any) -> np.ndarray:
    return int(core.synaptic_word_bits) * (n + int(core.row_header_words or 0))


def _fixed_rows(n: np.ndarray, core: Any) -> np.ndarray:
    return n * int(core.synapse_entry_bits)


#: synapse_accounting -> bits of rows of n synapses
ROW_BITS = {"loihi_synapse_config": _loihi_rows, "word_per_synapse": _word_rows}


def synapse_row_bits(n: np.ndarray, target: Target) -> np.ndarray:
    """Synaptic memory in bits of rows of ``n`` synapses (one row = one input axon on a core).

    ``loihi_synapse_config`` follows nengo-loihi's ``SynapseConfig.bits_per_axon``
    (docs/targets.md): blocks of up to 64 synapses, each ``n * bits_per_weight + 4 + 6``
    bits rounded up to 64; ``word_per_synapse`` (sPyNNaker ``synapse_row.h``):
    ``word_bits * (n + row_header_words)``; ``fixed_bits`` (and ``speck_kernel``):
    ``n * synapse_entry_bits``. Vectorised over ``n``.
    """
    n = np.asarray(n)
    if n.size > 65_536 and n.dtype.kind in "iu":  # a table over the row lengths, one gather
        top = int(n.max(initial=0))
        if top < 1 << 20:
            return synapse_row_bits(np.arange(top + 1, dtype=np.int64), target)[n]
    n = n.astype(np.int64, copy=False)
    return ROW_BITS.get(target.core.synapse_accounting, _fixed_rows)(n, target.core)
