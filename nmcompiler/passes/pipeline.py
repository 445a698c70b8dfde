"""The pass pipeline: named passes, run in order with ``ir.verify`` around each.

A pass is a pure function ``fn(network, target, *, seed, **options) -> (network, report)``
(DESIGN.md section 3): it takes plain data and returns new data, never mutating its input,
and its report is a JSON-serialisable dict. :class:`Pass` names such a function and fixes
its options; :func:`run_passes` runs a list of them, verifying the network before and after
every pass, and collects the reports in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from nmcompiler.ir.errors import UsageError
from nmcompiler.ir.network import Network
from nmcompiler.ir.verify import verify

__all__ = ["Pass", "PassResult", "run_passes", "default_passes"]

PassFn = Callable[..., "tuple[Network, dict[str, Any]]"]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Pass:
    """A named pass with fixed options.

    Attributes:
        name: name used in reports (``"lower"``, ``"quantize"``...).
        fn: the pure function ``fn(network, target, *, seed, **options) -> (network,
            report)``.
        options: keyword options given to ``fn`` on every run.
        enforces_min_delay: after this pass every projection must respect the target's
            minimum delay, so the post-pass ``verify`` checks it.
    """

    name: str
    fn: PassFn
    options: Mapping[str, Any] = field(default_factory=dict)
    enforces_min_delay: bool = False

    def __call__(self, net: Network, target: Any, *, seed: int = 0) -> tuple[Network, dict]:
        """Run the pass once (no verification; see :func:`run_passes`)."""
        out = self.fn(net, target, seed=seed, **dict(self.options))
        if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], Network)):
            raise UsageError(
                f"pass '{self.name}' returned {type(out).__name__}, expected "
                "(Network, report dict)",
                obj=self.name,
                rule="pass signature",
                hint="a pass returns (new_network, report_dict)",
            )
        return out

    def with_options(self, **options: Any) -> Pass:
        """A copy with some options replaced."""
        merged = dict(self.options)
        merged.update(options)
        return Pass(name=self.name, fn=self.fn, options=merged,
                    enforces_min_delay=self.enforces_min_delay)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class PassResult:
    """What :func:`run_passes` returns: the final network and one report per pass."""

    network: Network
    reports: tuple[tuple[str, dict[str, Any]], ...]

    def report(self, name: str) -> dict[str, Any]:
        """The report of the (last) pass called ``name``."""
        for n, rep in reversed(self.reports):
            if n == name:
                return rep
        raise KeyError(name)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """Reports by pass name (a repeated name gets ``#2``, ``#3``...)."""
        out: dict[str, dict[str, Any]] = {}
        for n, rep in self.reports:
            key, k = n, 2
            while key in out:
                key, k = f"{n}#{k}", k + 1
            out[key] = rep
        return out


def run_passes(net: Network, target: Any, passes: Iterable[Pass], seed: int = 0) -> PassResult:
    """Run ``passes`` in order on ``net`` for ``target``.

    ``ir.verify`` runs on the input and after every pass (with the target's minimum delay
    once a pass with ``enforces_min_delay`` has run), so a pass that produces an invalid
    network fails at once, naming the fault. Returns a :class:`PassResult`.
    """
    verify(net)
    min_delay = 0
    reports: list[tuple[str, dict[str, Any]]] = []
    for p in passes:
        if not isinstance(p, Pass):
            raise UsageError(
                f"{p!r} is not a Pass", obj=repr(p), rule="pass type",
                hint="wrap the function: Pass(name=..., fn=...)",
            )
        net, rep = p(net, target, seed=seed)
        if p.enforces_min_delay and target is not None:
            min_delay = int(target.core.min_delay)
        verify(net, min_delay=min_delay)
        reports.append((p.name, rep))
    return PassResult(network=net, reports=tuple(reports))


def default_passes(**options: Mapping[str, Any]) -> list[Pass]:
    """``[lower, quantize]`` with per-pass options, e.g. ``default_passes(lower={...})``."""
    from .lower import lower
    from .quantize import quantize

    return [
        Pass(name="lower", fn=lower, options=dict(options.get("lower", {})),
             enforces_min_delay=True),
        Pass(name="quantize", fn=quantize, options=dict(options.get("quantize", {}))),
    ]
