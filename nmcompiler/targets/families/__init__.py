"""Chip families: one module per family behind the :class:`Family` protocol.

``target.family`` (:func:`family_of` of the target's ``backend`` field) is how passes and
backends ask chip-specific questions; no code outside this package compares family
names. Adding a family: a module here with a :class:`Family` subclass, one line in
:data:`FAMILIES`, and its target file in ``hw_configs/``
(docs/architecture.md#adding-a-chip-family).
"""

from __future__ import annotations

from .base import Family
from .generic import GenericFamily
from .loihi import LoihiFamily
from .speck import SpeckFamily
from .spinnaker import SpinnakerFamily

__all__ = ["Family", "FAMILIES", "family_of"]

#: family name (a target's ``backend`` field) -> its rules
FAMILIES: dict[str, Family] = {
    f.name: f for f in (GenericFamily(), LoihiFamily(), SpinnakerFamily(), SpeckFamily())
}


def family_of(name: str) -> Family:
    """The family named ``name``; a name without a module gets the generic rules."""
    return FAMILIES.get(str(name), FAMILIES["emulator"])
