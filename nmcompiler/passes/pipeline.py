"""The pass pipeline: :func:`run_pipeline` runs passes in order on a
:class:`~nmcompiler.passes.base.CompileState`.

Around every pass it checks the pass's ``requires`` against the facts the state holds,
runs ``ir.verify`` on the network before the first pass and after every pass that changed
it (with the target's minimum delay once a pass ensured ``"min_delay"``), and calls the
hooks: ``before(pass, index, total)`` (progress) and ``after(pass, index, total, result,
seconds)`` (timings, printing the IR, ...). Timings reach the caller only through
``after`` and :attr:`PipelineResult.timings`, never through reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from nmcompiler.ir.errors import UsageError
from nmcompiler.ir.verify import verify as verify_network

from .base import CompileState, Pass, PassResult

__all__ = ["run_pipeline", "PipelineResult", "default_pipeline", "DEFAULT_PASS_NAMES", "Before",
           "After"]

#: the passes of a compile, in order (their ``name``; progress callbacks receive these)
DEFAULT_PASS_NAMES = ("lower", "quantize", "partition", "place", "route")

Before = Callable[[Pass, int, int], None]
After = Callable[[Pass, int, int, PassResult, float], None]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class PipelineResult:
    """The final state, and per pass its wall time and its own timing detail."""

    state: CompileState
    seconds: dict[str, float] = field(default_factory=dict)
    timings: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def network(self) -> Any:
        """The final network."""
        return self.state.network

    def report(self, name: str) -> dict[str, Any]:
        """The report of the (last) pass called ``name``."""
        return self.state.report(name)


def run_pipeline(passes: Iterable[Pass], state: CompileState, *, verify: bool = True,
                 before: Before | None = None, after: After | None = None
                 ) -> PipelineResult:
    """Run ``passes`` in order from ``state`` (see the module docstring).

    Raises:
        UsageError: an object that is not a :class:`Pass`, or a pass whose ``requires``
            the state does not hold (it names the missing facts).
        NetworkError: ``ir.verify`` rejects the network before or after a pass.
    """
    passes = list(passes)
    if verify:
        verify_network(state.network)
    seconds: dict[str, float] = {}
    timings: dict[str, dict[str, Any]] = {}
    for k, p in enumerate(passes):
        if not isinstance(p, Pass):
            raise UsageError(f"{p!r} is not a Pass", obj=repr(p), rule="pass type",
                             hint="subclass nmcompiler.passes.base.Pass")
        missing = sorted(p.requires - state.facts)
        if missing:
            raise UsageError(f"pass '{p.name}' requires {missing}, which no earlier pass "
                             "ensured", obj=p.name, rule="requires",
                             hint="run the passes of nmcompiler.passes.DEFAULT_PIPELINE "
                                  "in order")
        if before is not None:
            before(p, k, len(passes))
        t0 = time.perf_counter()
        res = p.run(state)
        dt = time.perf_counter() - t0
        if not isinstance(res, PassResult):
            raise UsageError(f"pass '{p.name}' returned {type(res).__name__}, expected a "
                             "PassResult", obj=p.name, rule="pass signature",
                             hint="return PassResult(state=..., report=...)")
        state = res.state.replace(reports=state.reports + ((p.name, res.report),),
                                  facts=state.facts | p.ensures)
        if verify and res.changed:
            min_delay = int(state.target.core.min_delay) if "min_delay" in state.facts else 0
            verify_network(state.network, min_delay=min_delay)
        seconds[p.name] = dt
        if res.timings:
            timings[p.name] = res.timings
        if after is not None:
            after(p, k, len(passes), res, dt)
    return PipelineResult(state=state, seconds=seconds, timings=timings)


def default_pipeline(**options: dict[str, Any]) -> tuple[Pass, ...]:
    """The five passes with per-pass options, e.g. ``default_pipeline(lower={...},
    place={"method": "heuristic"})``."""
    from .lower import LowerPass
    from .partition import PartitionPass
    from .place import PlacePass
    from .quantize import QuantizePass
    from .route import RoutePass

    classes = {c.name: c for c in (LowerPass, QuantizePass, PartitionPass, PlacePass, RoutePass)}
    return tuple(classes[n](**dict(options.get(n, {}))) for n in DEFAULT_PASS_NAMES)
