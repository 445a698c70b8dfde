"""nmcompiler: fit a spiking network onto any neuromorphic chip (DESIGN.md)."""

__version__ = "0.1.0"

from .api import compile, load_model  # noqa: E402  (the public API: nmcompiler.compile)
from .compiled import CompiledNetwork, load_compiled, save_compiled  # noqa: E402

__all__ = ["compile", "load_model", "CompiledNetwork", "save_compiled", "load_compiled",
           "__version__"]
