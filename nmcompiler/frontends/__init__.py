"""Frontends: build ir.Network objects from other descriptions (DESIGN.md section 4)."""
