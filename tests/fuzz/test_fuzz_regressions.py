"""Inputs the fuzz suite found (docs/reliability.md), kept as regression tests."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from nmcompiler.ir.errors import ImportFormatError

DATA = Path(__file__).parent / "data"


def test_a_nir_file_that_makes_hdf5_loop_is_a_named_error(monkeypatch):
    """A bit-flipped NIR file on which the HDF5 library loops inside C code (no Python
    time limit reaches it): read in a child process with a time limit first."""
    pytest.importorskip("nir")
    from nmcompiler import load_model
    from nmcompiler.frontends import nir_checks

    monkeypatch.setattr(nir_checks, "PROBE_TIMEOUT_S", 5)
    t0 = time.perf_counter()
    with pytest.raises(ImportFormatError, match="did not finish reading it"):
        load_model(DATA / "hdf5_loop.nir")
    assert time.perf_counter() - t0 < 30
