"""Frontends: build ``ir.Network`` objects from other descriptions (docs/architecture.md#layers).

:mod:`nmcompiler.frontends.nir` reads NIR graphs (needs the ``nir`` extra when called);
:mod:`nmcompiler.frontends.ann2snn` converts trained rate networks. Nothing is imported
here, so ``import nmcompiler.frontends`` loads no toolchain.
"""
