"""Exporters: write an ``ir.Network`` in another project's format.

:mod:`nmcompiler.exporters.nir` writes NIR graphs (docs/nir.md#export-and-round-trips).
"""
