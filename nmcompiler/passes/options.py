"""Choices of pass options, light enough for the command line to import (no numpy).

The passes validate against these and the CLI offers them (``nmc compile --partitioner``,
``--placer``), so the choices are declared once.
"""

from __future__ import annotations

import enum

__all__ = ["PartitionMethod", "PlaceMethod"]


class PartitionMethod(str, enum.Enum):
    """Partitioner: multilevel (METIS) or the sequential-fill baseline."""

    auto = "auto"
    metis = "metis"
    sequential = "sequential"


class PlaceMethod(str, enum.Enum):
    """Placer: CP-SAT where small enough, else heuristic + local search."""

    auto = "auto"
    cpsat = "cpsat"
    heuristic = "heuristic"
    sequential = "sequential"
    random = "random"
