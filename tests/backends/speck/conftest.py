"""Fixtures of the Speck backend tests: the samna stand-in and sinabs' dynapcnn backend."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "data"
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


@pytest.fixture(scope="module")
def dynapcnn():
    """sinabs.backend.dynapcnn imported over the samna stand-in (never the real samna);
    the stand-in and the imported modules are removed again afterwards."""
    pytest.importorskip("sinabs")
    import samna_standin

    before = set(sys.modules)
    samna_standin.install()
    import sinabs.backend.dynapcnn as dyn
    from sinabs.backend.dynapcnn.chips.speck2f import Speck2FConfigBuilder
    from sinabs.backend.dynapcnn.mapping import get_valid_mapping

    yield types.SimpleNamespace(dyn=dyn, Builder=Speck2FConfigBuilder,
                                get_valid_mapping=get_valid_mapping)
    for name in set(sys.modules) - before:
        if name.startswith(("samna", "sinabs.backend.dynapcnn")):
            del sys.modules[name]
