"""Hypothesis profiles of the fuzz suite (docs/reliability.md).

``ci`` (default, run by ``make test``): a fixed seed (derandomised) and 20 examples
per property, under two minutes in all. ``long`` (``make fuzz``): ``NMC_FUZZ_EXAMPLES``
examples per property (default 1300; 9 properties: over 10,000 cases).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, print_blob=True, database=None,
               suppress_health_check=list(HealthCheck))
settings.register_profile("ci", max_examples=int(os.environ.get("NMC_FUZZ_EXAMPLES", "20")),
                          derandomize=True, **_COMMON)
settings.register_profile("long", max_examples=int(os.environ.get("NMC_FUZZ_EXAMPLES", "1300")),
                          derandomize=False, **_COMMON)
settings.load_profile(os.environ.get("NMC_FUZZ_PROFILE", "ci"))


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/fuzz/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.fuzz)
