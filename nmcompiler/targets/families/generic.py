"""The generic family (``backend = "emulator"`` and any target without a family module):
signed fixed point of the target's ``formats``, the model's own threshold rule."""

from __future__ import annotations

from .base import Family

__all__ = ["GenericFamily"]


class GenericFamily(Family):
    """Fixed-point rules of :class:`~nmcompiler.targets.families.base.Family` unchanged."""

    name = "emulator"
