"""Shared test settings: headless plots, the interop folder of NIR files from other
frameworks (docs/nir.md#interop-files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """The folder that holds ``interop/`` (``$NMC_INTEROP``'s parent, else ``shared/``
    inside or beside the checkout), or None."""
    env = os.environ.get("NMC_INTEROP")
    if env:
        return Path(env).parent if Path(env).is_dir() else None
    for cand in (REPO.parent / "shared", REPO / "shared"):
        if (cand / "interop").is_dir():
            return cand
    return None


@pytest.fixture(scope="session")
def shared() -> Path:
    """The folder that holds ``interop/``; skips the test where it is absent."""
    path = shared_dir()
    if path is None:
        pytest.skip("the interop files (docs/nir.md#interop-files) are not beside this "
                    "checkout; set NMC_INTEROP")
    return path
