"""Blocks of array work on a thread pool (numpy and scipy release the GIL in their loops).

Used where each block writes only its own part of an output, so the result does not
depend on the order in which the blocks run (docs/emulator.md, "Threads").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

__all__ = ["each"]


def each(fn: Callable[[Any], Any], items: Sequence[Any], pool: Executor | None = None
         ) -> None:
    """``fn(item)`` for every item: on ``pool``'s threads where given and there is more
    than one item, else in order on the calling thread. Results are dropped; the first
    error is raised."""
    if pool is not None and len(items) > 1:
        for _ in pool.map(fn, items):
            pass
    else:
        for item in items:
            fn(item)
