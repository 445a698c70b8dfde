"""The pass contract: a frozen :class:`CompileState`, one :class:`Pass` base, a
:class:`PassResult` (docs/architecture.md#the-pass-contract).

A pass is a frozen dataclass whose fields are its options and whose class attributes say
what it is: ``name`` (used in reports and on the command line), ``requires`` (facts the
state must hold before it runs) and ``ensures`` (facts it establishes). ``run(state)``
returns a new state (never mutating the old one), the pass's JSON report and whether the
network changed; wall-clock timings go to a separate channel (``PassResult.timings``),
never into the report or the mapping records, so same input and seed give the same bytes.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from nmcompiler.ir.network import Network

from ..mapping import Partition, Placement, Routes
from ..targets import Target

__all__ = ["CompileState", "Pass", "PassResult", "strip_timings", "clean_record", "FACTS"]

#: facts a pass may require or ensure
FACTS = ("lowered", "min_delay", "quantized", "partitioned", "placed", "routed")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class CompileState:
    """Everything a compile has built so far.

    Attributes:
        network: the network (lowered and quantised once those passes ran).
        target: the target.
        seed: seeds every pass.
        partition, placement, routes: the mapping, once built.
        link_load: the unicast link load of the placement's routes (``target.links()``
            order), handed from place to route; None where not computed.
        reports: ``(pass name, report)`` in the order the passes ran.
        facts: what the passes so far ensured (:data:`FACTS`).
        source: the network as the user gave it (before lowering), the float reference
            of the behaviour check (docs/passes.md#fidelity); None where not given.
    """

    network: Network
    target: Target
    seed: int = 0
    partition: Partition | None = None
    placement: Placement | None = None
    routes: Routes | None = None
    link_load: np.ndarray | None = None
    reports: tuple[tuple[str, dict[str, Any]], ...] = ()
    facts: frozenset[str] = frozenset()
    source: Network | None = None

    def replace(self, **changes: Any) -> CompileState:
        """A copy with some fields replaced."""
        return dataclasses.replace(self, **changes)

    def report(self, name: str) -> dict[str, Any]:
        """The report of the (last) pass called ``name``."""
        for n, rep in reversed(self.reports):
            if n == name:
                return rep
        raise KeyError(name)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class PassResult:
    """What :meth:`Pass.run` returns: the new state, the pass's report (deterministic,
    JSON-serialisable), whether the network changed, and wall-clock timings apart."""

    state: CompileState
    report: dict[str, Any]
    changed: bool = True
    timings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Pass(ABC):
    """Base of every pass: options are the dataclass fields of the subclass."""

    name: ClassVar[str] = ""
    requires: ClassVar[frozenset[str]] = frozenset()
    ensures: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def run(self, state: CompileState) -> PassResult:
        """Run the pass on ``state``; never mutates it."""

    def options(self) -> dict[str, Any]:
        """The options (field values) by name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def with_options(self, **options: Any) -> Pass:
        """A copy with some options replaced."""
        return dataclasses.replace(self, **options)


def _is_timing(key: str) -> bool:
    return key.endswith("_s") or "wall" in key


def strip_timings(value: Any) -> tuple[Any, dict[str, Any]]:
    """Split wall-clock entries (numeric values under keys ending in ``_s`` or holding
    ``wall``) out of nested report dicts: ``(kept, timings)``."""
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        timings: dict[str, Any] = {}
        for k, v in value.items():
            if _is_timing(str(k)) and isinstance(v, (int, float)):
                timings[k] = v
                continue
            kv, tv = strip_timings(v)
            kept[k] = kv
            if tv:
                timings[k] = tv
        return kept, timings
    return value, {}


def clean_record(record: Any) -> tuple[Any, dict[str, Any]]:
    """A mapping record (Partition, Placement, Routes) without wall-clock entries in its
    ``stats``, and those entries."""
    stats = getattr(record, "stats", None)
    if not isinstance(stats, dict):
        return record, {}
    kept, timings = strip_timings(stats)
    return dataclasses.replace(record, stats=kept), timings
