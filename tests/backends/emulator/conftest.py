"""Shared fixtures of the emulator tests (helpers in emu_nets.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def emulator_target():
    from nmcompiler.targets import load_target

    return load_target("emulator")
