"""nmcompiler: fit a spiking network onto any neuromorphic chip (docs/architecture.md).

One import root holds the whole project: :mod:`nmcompiler.ir` (the network IR, numpy
only), the compiler (frontends, passes, targets, API, CLI), :mod:`nmcompiler.backends`
(one plugin per chip family, found through entry points) and :mod:`nmcompiler.hw_configs`
(the bundled chip files). The public API is imported lazily, so ``import nmcompiler.ir``
loads the IR and nothing else.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_API = {
    "compile": "nmcompiler.api",
    "load_model": "nmcompiler.api",
    "CompiledNetwork": "nmcompiler.compiled",
    "save_compiled": "nmcompiler.compiled",
    "load_compiled": "nmcompiler.compiled",
    "run_aligned": "nmcompiler.run_outputs",
}

__all__ = ["compile", "load_model", "CompiledNetwork", "save_compiled", "load_compiled",
           "run_aligned", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nmcompiler' has no attribute {name!r}")
