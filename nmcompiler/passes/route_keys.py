"""Routing-table merging policy of the route pass (docs/spinnaker_backend.md, last section).

sPyNNaker always compresses its tables (its pair compressor, run on every chip), while the
route pass used to merge entries only on a chip whose table exceeded the target's
``routing_entries``. :func:`merge_target` is the policy the route pass asks, per chip
(the hook in :func:`nmcompiler.passes.route.route`): with :data:`MERGE_BY_DEFAULT` every
chip's entries that share a route merge as far as they can (the route pass's prefix-block
compressor run to level ``id_bits``: keys are ``core id << neuron bits`` and the partition
numbers cores in order of their first neuron, so a population's slices are consecutive
ids and a prefix block of ids is a run of slices), otherwise only until the table fits.
"""

from __future__ import annotations

__all__ = ["MERGE_BY_DEFAULT", "merge_target"]

#: merge entries that share a route on every chip, not only on chips over the limit
MERGE_BY_DEFAULT = True


def merge_target(limit: int | None, n_entries: int, compress: bool) -> int | None:
    """The entry count a chip's table is merged down to, or None for no merging.

    Args:
        limit: the target's ``routing_entries`` (None: no table limit).
        n_entries: the chip's entries before merging (default-routed ones removed).
        compress: the route pass's ``compress`` option (False: never merge).

    Returns:
        0 (merge as far as possible) by default; ``limit`` when only over-full tables are
        merged and this one is over; None otherwise.
    """
    if not compress or limit is None:
        return None
    if MERGE_BY_DEFAULT:
        return 0 if n_entries > 1 else None
    return int(limit) if n_entries > limit else None
