"""Shared test settings: headless plots, the shared/ folder beside the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """../shared beside the repository (CI clones with shared/ beside it), or None."""
    for cand in (REPO.parent / "shared", REPO / "shared"):
        if (cand / "DESIGN.md").is_file():
            return cand
    return None


@pytest.fixture(scope="session")
def shared() -> Path:
    """Path of ../shared; skips the test where it is absent."""
    path = shared_dir()
    if path is None:
        pytest.skip("../shared (interop files) is not beside this checkout")
    return path
