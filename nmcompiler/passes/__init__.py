"""Compiler passes (DESIGN.md section 3): pure functions over an ``ir.Network``.

Each pass is ``fn(network, target, *, seed, **options) -> (new_network, report)``; it
never mutates its input. :mod:`nmcompiler.passes.pipeline` wraps passes in named
:class:`~nmcompiler.passes.pipeline.Pass` objects and runs ``ir.verify`` around each.
"""

from .lower import lower
from .pipeline import Pass, run_passes
from .quantize import dequantize, quantize

__all__ = ["lower", "quantize", "dequantize", "Pass", "run_passes"]
