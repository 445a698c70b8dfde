"""Network models: generators built in code from a few parameters (:mod:`nmcompiler.models.lsm`,
docs/lsm.md) and example models shipped inside the package, ready for ``nmc compile``
(docs/cli.md).

Each model is an ``.nmir`` file (docs/ir_format.md) next to this module, built by the
function of the same name below; ``tests/test_packaging.py`` checks that the shipped bytes
are what that function writes, so the files are reproducible and never hand-edited.

Find them from the shell::

    python -m nmcompiler.models              # name, neurons, path of every bundled model
    nmc compile "$(python -m nmcompiler.models tiny_if)" -t loihi2 -o build/

or from Python: ``nmcompiler.models.path("tiny_if")``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from nmcompiler import ir
from nmcompiler.ir.errors import UsageError

__all__ = ["NAMES", "path", "build", "tiny_if"]

_SUFFIX = ".nmir"


def tiny_if() -> ir.Network:
    """16 inputs -> 64 IF -> 4 IF, dense, seed 0: compiles for every bundled target.

    Integrate-and-fire neurons (no leak, no current stage) are the model every chip has,
    Speck included; 68 neurons keep each compile around a second.
    """
    import numpy as np

    rng = np.random.default_rng(0)
    net = ir.Network("tiny_if")
    net.input("in", 16)
    net.population("hidden", 64, ir.IF(theta=1.0))
    net.population("out", 4, ir.IF(theta=2.0))
    net.connect("in", "hidden", ir.Dense(weight=rng.normal(size=(64, 16))), delay=1)
    net.connect("hidden", "out", ir.Dense(weight=rng.normal(size=(4, 64)) * 0.2), delay=1)
    net.output("out")
    return net


_BUILDERS = {"tiny_if": tiny_if}
#: the bundled models, by name
NAMES: tuple[str, ...] = tuple(_BUILDERS)


def _check(name: str) -> str:
    if name not in _BUILDERS:
        raise UsageError(f"no bundled model named {name!r}", obj=name, rule="bundled model",
                         hint=f"one of: {', '.join(NAMES)} (python -m nmcompiler.models)")
    return name


def build(name: str) -> ir.Network:
    """The network of bundled model ``name``, built in code (what its file holds)."""
    return _BUILDERS[_check(name)]()


def path(name: str) -> Path:
    """Path of the installed ``.nmir`` file of bundled model ``name``."""
    return Path(str(resources.files(__name__) / f"{_check(name)}{_SUFFIX}"))
