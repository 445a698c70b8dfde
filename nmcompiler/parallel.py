"""Blocks of array work on a thread pool (numpy and scipy release the GIL in their loops).

Used where each block writes only its own part of an output, or returns its own result,
so the result does not depend on the order in which the blocks run (docs/emulator.md,
"Threads").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from typing import Any

__all__ = ["each", "ordered"]


def ordered(fn: Callable[[Any], Any], items: Sequence[Any], pool: Executor | None = None,
            wave: int = 0) -> Iterator[Any]:
    """``fn(item)`` for every item, the results in item order: on ``pool``'s threads
    where given and there is more than one item (at most ``wave`` items at a time where
    given, so that the results held at once stay bounded), else in order on the calling
    thread. The first error is raised."""
    if pool is None or len(items) <= 1:
        yield from map(fn, items)
        return
    step = wave if wave > 0 else len(items)
    for i in range(0, len(items), step):
        yield from pool.map(fn, items[i:i + step])


def each(fn: Callable[[Any], Any], items: Sequence[Any], pool: Executor | None = None
         ) -> None:
    """:func:`ordered` with the results dropped."""
    for _ in ordered(fn, items, pool):
        pass
