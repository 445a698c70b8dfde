"""NIR import: ``nir.NIRGraph`` or NIR file -> ``ir.Network`` (docs/nir.md).

NIR (Pedersen et al., "Neuromorphic intermediate representation: A unified instruction set
for interoperable brain-inspired computing", Nature Communications 15, 8122, 2024) is
continuous-time. A NIR ``LIF`` is ``tau dv/dt = (v_leak - v) + r I``, spiking at
``v > v_threshold`` and resetting to ``v_reset``; a ``CubaLIF`` adds a current stage
``tau_syn dI/dt = -I + w_in S``. NIR records neither the time step, the integration
scheme nor the reset mode, and the frameworks that export it disagree on all three, so
:func:`from_nir` takes them as explicit :class:`NirOptions`, with a :class:`Preset` for the
conventions of each framework. With ``x = dt / tau``:

=====================  ==========================  ==================================
option                 decay ``lam``               input gain (per step)
=====================  ==========================  ==================================
``Integration.EULER``  ``1 - x``                   ``InputScale.EULER``: ``x * r``
``Integration.EXACT``  ``exp(-x)``                 ``InputScale.EXACT``: ``(1-lam) r``
                                                   ``InputScale.UNIT``: ``r``
                                                   ``InputScale.DECAYED``: ``lam r``
                                                   ``InputScale.ONE``: ``1``
=====================  ==========================  ==================================

``IF`` and ``I`` nodes have ``lam = 1`` and gain ``dt * r`` (``r`` under ``UNIT`` and
``DECAYED``, 1 under ``ONE``). The
leak voltage becomes the per-step bias ``(1 - lam) * v_leak`` in both schemes. An
``Affine`` bias ``b`` reaching a neuron adds ``gain * b`` per step. The gain is folded
into the incoming weights, so voltages stay in NIR units, or, with
``NirOptions.scale_voltage`` (snnTorch's importer), the weights stay as written and the
voltage, threshold, reset and bias are divided by the gain.

Graph mapping: every neuron node becomes an :class:`~nmcompiler.ir.Population`; the stateless
nodes on the way from one neuron (or input) to the next compose into one projection
(:mod:`nmcompiler.frontends.nir_linear`); an ``Affine`` or convolution bias becomes neuron
bias; ``Delay`` nodes become projection delays; edges that close a cycle (back edges of a
depth-first search from the inputs) take one step; nested graphs are flattened with
``"subgraph.node"`` names. The exporter :func:`nmcompiler.exporters.nir.to_nir` inverts
the mapping for a given ``dt`` and options.

The package, one stage per module: :mod:`.options` (options, presets, result types),
:mod:`.read` (files), :mod:`.graph` (flattening), :mod:`.shapes` (shape inference, one
function per stateless node type), :mod:`.neurons` (discretisation, one function per neuron
node type) and :mod:`.convert` (:func:`from_nir`).
"""

from __future__ import annotations

from .convert import from_nir
from .options import (
    InputScale,
    Integration,
    NirImport,
    NirImportWarning,
    NirOptions,
    Preset,
    ResetMode,
    resolve_options,
)
from .read import read_nir

__all__ = [
    "Integration",
    "InputScale",
    "ResetMode",
    "NirOptions",
    "Preset",
    "NirImportWarning",
    "NirImport",
    "from_nir",
    "read_nir",
    "resolve_options",
]
