"""Targets: what a chip offers, and the one home of chip knowledge.

* :mod:`~nmcompiler.targets.model`: the frozen value types (:class:`Target`, budgets,
  number formats, cost model);
* :mod:`~nmcompiler.targets.fields`: the declared fields of a target file (:data:`SCHEMA`);
* :mod:`~nmcompiler.targets.schema`: :func:`load_target` and the checks against the fields;
* :mod:`~nmcompiler.targets.topology`: the network-on-chip (coordinates, hops, links,
  unicast routes, multicast trees, link loads), reached as ``target.noc``;
* :mod:`~nmcompiler.targets.budgets`: per-core limits and synaptic-memory formulas;
* :mod:`~nmcompiler.targets.families`: one module per chip family behind the
  :class:`~nmcompiler.targets.families.Family` protocol, reached as ``target.family``.

See docs/targets.md for the file format and docs/architecture.md#the-compiler-core for the layout.
"""

from .fields import (
    OVERFLOW_MODES,
    RESET_MODES,
    SCHEMA,
    SCHEMA_VERSION,
    STATUSES,
    SYNAPSE_ACCOUNTINGS,
)
from .model import (
    COORD_NAMES,
    Capabilities,
    ChipBudget,
    ConvolutionLimits,
    CoreBudget,
    CostModel,
    NumberFormat,
    Provenance,
    Target,
    Topology,
)
from .schema import list_targets, load_target, parse_target, target_names
from .topology import TOPOLOGY_KINDS, NoC

__all__ = [
    "SCHEMA_VERSION",
    "SCHEMA",
    "STATUSES",
    "RESET_MODES",
    "OVERFLOW_MODES",
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
    "NoC",
    "load_target",
    "parse_target",
    "list_targets",
    "target_names",
]
