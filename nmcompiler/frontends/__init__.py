"""Frontends: build ir.Network objects from other descriptions (DESIGN.md section 4)."""

from . import nir  # noqa: E402,F401  (NIR import / export; needs the 'nir' extra at call time)
