"""Hardware-in-the-loop testing: compare a deployed network with an expectation.

The pytest plugin (:mod:`nmcompiler.testing.plugin`, registered under ``pytest11``) gives
fixtures that compile a network for a target, deploy it on a backend that can run here
(the emulator by default), and compare its spikes with the reference simulator or a
recorded expectation, reporting the first diverging step, neuron and core. The functions
here are the plain-Python half, usable without pytest.
"""

from __future__ import annotations

from .compare import Divergence, assert_same_spikes, first_divergence, format_divergence

__all__ = ["Divergence", "first_divergence", "format_divergence", "assert_same_spikes"]
