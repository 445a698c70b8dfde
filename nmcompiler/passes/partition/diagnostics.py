"""Fit errors of the partitioner: what does not fit, the limit, and a hint (including
the bundled targets on which it would fit)."""

from __future__ import annotations

import math

import numpy as np

from nmcompiler.ir.errors import FitError

from ...targets import Target
from ...targets.budgets import limits_of
from .view import View

RESOURCE_WORDS = {
    "neurons": "neurons",
    "input_axons": "input axons",
    "output_axons": "output axons",
    "synaptic_memory_bits": "bits of synaptic memory",
    "destination_cores": "destination cores",
    "kernel_memory_words": "words of kernel memory",
    "neuron_memory_words": "words of neuron memory",
    "bias_memory_words": "words of bias memory",
}

_RESOURCE_HINTS = {
    "neurons": "split the population",
    "input_axons": "split it or lower fan-in (fewer presynaptic neurons per neuron)",
    "output_axons": "lower its fan-out (fewer destination cores per neuron)",
    "synaptic_memory_bits": "lower its fan-in or the weight bits",
    "destination_cores": "send it to fewer populations",
}


# =========================================================================== fit errors
def _suggest_targets(resource: str, need: int, current: str) -> str:
    """Bundled targets whose per-core ``resource`` limit is at least ``need``."""
    try:
        from ..targets import list_targets

        ok = []
        for t in list_targets():
            if t.name == current:
                continue
            limit = limits_of(t, (resource,), t.noc.layered)[0]
            if limit < 0 or limit >= need:
                ok.append(t.name)
        return ("; targets that would fit: " + ", ".join(ok)) if ok else ""
    except Exception:  # noqa: BLE001 - a hint must never hide the real error
        return ""


def _where(view: View, neuron: int) -> tuple[str, int]:
    k = int(np.searchsorted(view.pop_off, neuron, side="right") - 1)
    return view.pops[k], int(neuron - view.pop_off[k])


def single_neuron_error(view: View, target: Target, neuron: int, name: str, need: int,
                         limit: int) -> FitError:
    """The FitError for one neuron that alone needs more of resource ``name`` than a core has."""
    pop, i = _where(view, neuron)
    words = RESOURCE_WORDS.get(name, name)
    hint = _RESOURCE_HINTS.get(name, "change the network") + \
        _suggest_targets(name, need, target.name)
    return FitError(
        f"population '{pop}' needs {need} {words} on one core (neuron {i} alone); "
        f"{target.name} allows {limit}",
        obj=pop, rule=name, need=need, limit=limit, hint=hint)


def too_many_cores(view: View, target: Target, n_cores: int, used: np.ndarray | None,
                    names: tuple[str, ...] | None) -> FitError:
    """The FitError for a partition that needs more cores than the target has."""
    total = int(target.total_cores)
    per_chip = int(target.topology.cores_per_chip)
    chips = math.ceil(n_cores / per_chip)
    binding = ""
    if used is not None and names is not None:
        lim = limits_of(target, names, False)
        frac = np.where(lim > 0, used / np.maximum(lim, 1), 0).mean(axis=0)
        binding = f" (binding budget: {names[int(np.argmax(frac))]})"
    biggest = view.pops[int(np.argmax(np.diff(view.pop_off)))]
    return FitError(
        f"network needs {n_cores} cores{binding}; {target.name} has {total} "
        f"({target.n_chips} chip(s) x {per_chip})",
        obj="network", rule="cores", need=n_cores, limit=total,
        hint=f"use a system with at least {chips} chips, or shrink population '{biggest}'")
