"""Compiler passes: lower, quantize, partition, place, route (docs/passes.md).

Each pass is a frozen :class:`~nmcompiler.passes.base.Pass` (options as fields) over a
:class:`~nmcompiler.passes.base.CompileState`;
:func:`~nmcompiler.passes.pipeline.run_pipeline` runs them with ``ir.verify`` around each.
The algorithms stay plain functions in the pass modules (``nmcompiler.passes.lower.lower``,
...), which the pass classes call. Imports are lazy, so the command line can read
:mod:`nmcompiler.passes.options` without loading numpy.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Pass", "CompileState", "PassResult", "run_pipeline", "default_pipeline",
           "DEFAULT_PIPELINE", "LowerPass", "QuantizePass", "PartitionPass", "PlacePass",
           "RoutePass"]

_WHERE = {
    "Pass": ".base", "CompileState": ".base", "PassResult": ".base",
    "run_pipeline": ".pipeline", "default_pipeline": ".pipeline",
    "LowerPass": ".lower", "QuantizePass": ".quantize", "PartitionPass": ".partition",
    "PlacePass": ".place", "RoutePass": ".route",
}


def __getattr__(name: str) -> Any:
    if name == "DEFAULT_PIPELINE":
        from .pipeline import default_pipeline

        return default_pipeline()
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
