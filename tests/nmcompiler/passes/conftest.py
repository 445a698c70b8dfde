"""Shared fixtures for the pass tests."""

from __future__ import annotations

import pytest

from nmcompiler.targets import load_target


@pytest.fixture(scope="session")
def loihi():
    return load_target("loihi")


@pytest.fixture(scope="session")
def loihi2():
    return load_target("loihi2")


@pytest.fixture(scope="session")
def spinnaker():
    return load_target("spinnaker")
