"""nmcompiler: fit a spiking network onto any neuromorphic chip (DESIGN.md)."""

__version__ = "0.1.0"
