"""nmcompiler's errors: the one errors module lives in :mod:`nmcompiler.ir.errors` (so that the IR,
which imports nothing of ours, can raise them); this module re-exports it."""

from nmcompiler.ir.errors import *  # noqa: F403
from nmcompiler.ir.errors import __all__  # noqa: F401
